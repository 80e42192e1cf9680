//! API keys in SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use shop_wire::keys::{ApiKey, Scope};
use shop_wire::{KeyId, UserId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::audit;
use super::{SqliteStore, append, backend, conversion, from_millis, millis, parse_column};
use crate::store::audit::snapshot;
use crate::store::{AuditChange, KeyAuth, KeyRecord, KeyStore, NewEvent, StoreResult};

const KEY_COLUMNS: &str =
    "id, name, user_id, scopes, prefix, created_at, last_used_at, expires_at, revoked_at";

fn scopes(text: &str) -> rusqlite::Result<Vec<Scope>> {
    serde_json::from_str(text).map_err(conversion)
}

fn optional_time(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<OffsetDateTime>> {
    row.get::<_, Option<i64>>(column)?
        .map(from_millis)
        .transpose()
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: parse_column(row, "id")?,
        name: row.get("name")?,
        scopes: scopes(&row.get::<_, String>("scopes")?)?,
        prefix: row.get("prefix")?,
        created_by: parse_column(row, "user_id")?,
        created_at: from_millis(row.get("created_at")?)?,
        last_used_at: optional_time(row, "last_used_at")?,
        expires_at: optional_time(row, "expires_at")?,
        revoked_at: optional_time(row, "revoked_at")?,
    })
}

/// What the audit log shows of a key: never its hash.
fn audited(key: &ApiKey) -> serde_json::Value {
    serde_json::json!({
        "name": key.name,
        "scopes": snapshot(&key.scopes),
        "prefix": key.prefix,
        "created_by": key.created_by,
        "expires_at": key.expires_at.and_then(|t| t.format(&Rfc3339).ok()),
        "revoked": key.revoked_at.is_some(),
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, record: &KeyRecord, events: Vec<NewEvent>) -> StoreResult<()> {
        let record = record.clone();
        self.write(move |tx| {
            let key = &record.key;
            let scopes = serde_json::to_string(&key.scopes).map_err(backend)?;
            tx.prepare_cached(&format!(
                "INSERT INTO api_keys ({KEY_COLUMNS}, secret_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                key.id.as_str(),
                key.name,
                key.created_by.as_str(),
                scopes,
                key.prefix,
                millis(key.created_at),
                key.last_used_at.map(millis),
                key.expires_at.map(millis),
                key.revoked_at.map(millis),
                record.secret_hash,
            ])?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "key.created",
                    "key",
                    key.id.as_str(),
                    serde_json::Value::Null,
                    audited(key),
                )],
            )?;
            append(tx, events)?;
            Ok(())
        })
        .await
    }

    async fn key_auth(&self, secret_hash: &str) -> StoreResult<Option<KeyAuth>> {
        let hash = secret_hash.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT k.id, k.user_id, u.email, u.role, k.scopes, k.expires_at,
                        k.revoked_at IS NOT NULL AS revoked
                 FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = ?1",
            )?
            .query_row([hash], |row| {
                Ok(KeyAuth {
                    id: parse_column(row, "id")?,
                    user_id: parse_column(row, "user_id")?,
                    email: row.get("email")?,
                    role: parse_column(row, "role")?,
                    scopes: scopes(&row.get::<_, String>("scopes")?)?,
                    expires_at: optional_time(row, "expires_at")?,
                    revoked: row.get("revoked")?,
                })
            })
            .optional()
        })
        .await
    }

    async fn key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        let id = id.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?
                .query_row([id.as_str()], key_row)
                .optional()
        })
        .await
    }

    async fn list_keys(&self, owner: Option<&UserId>) -> StoreResult<Vec<ApiKey>> {
        let owner = owner.cloned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR user_id = ?1
                 ORDER BY id DESC"
            ))?
            .query_map([owner.as_ref().map(UserId::as_str)], key_row)?
            .collect()
        })
        .await
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<ApiKey>> {
        let id = id.clone();
        self.write(move |tx| {
            let before = tx
                .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?
                .query_row([id.as_str()], key_row)
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            if before.revoked_at.is_some() {
                return Ok(Some(before));
            }
            tx.prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1")?
                .execute(params![id.as_str(), millis(at)])?;
            let after = ApiKey {
                revoked_at: Some(at),
                ..before.clone()
            };
            audit::record(
                tx,
                [AuditChange::diff(
                    "key.revoked",
                    "key",
                    id.as_str(),
                    audited(&before),
                    audited(&after),
                )],
            )?;
            append(tx, events)?;
            Ok(Some(after))
        })
        .await
    }

    async fn touch_keys(&self, used: Vec<(KeyId, OffsetDateTime)>) -> StoreResult<()> {
        self.write(move |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
            )?;
            for (id, at) in &used {
                update.execute(params![id.as_str(), millis(*at)])?;
            }
            Ok(())
        })
        .await
    }
}
