//! API keys in PostgreSQL.
//!
//! `key_auth` is on every API-key request's path: one query by the unique
//! index on the secret's hash, joined to the creator for their role now.
//! Revoking is a guarded update (`WHERE revoked_at IS NULL`), so of racing
//! revokes exactly one writes, audits and logs; the others find the key
//! revoked. Last-used times only move forward (`GREATEST`), whatever order
//! nodes flush them in.

use std::collections::BTreeMap;

use async_trait::async_trait;
use shop_wire::keys::{ApiKey, Scope};
use shop_wire::{KeyId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::filter::Filter;
use super::{PgStore, audit, backend, parse};
use crate::store::audit::snapshot;
use crate::store::{AuditChange, KeyAuth, KeyRecord, KeyStore, NewEvent, StoreResult};

const KEY_COLUMNS: &str = "id, name, user_id, scopes::text AS scopes, prefix, created_at, \
     last_used_at, expires_at, revoked_at";

fn scopes(row: &PgRow) -> StoreResult<Vec<Scope>> {
    let text: String = row.try_get("scopes")?;
    serde_json::from_str(&text).map_err(backend)
}

fn key_row(row: &PgRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: parse(row, "id")?,
        name: row.try_get("name")?,
        scopes: scopes(row)?,
        prefix: row.try_get("prefix")?,
        created_by: parse(row, "user_id")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// What the audit log shows of a key: never its hash (as on SQLite).
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
impl KeyStore for PgStore {
    async fn insert_key(&self, record: &KeyRecord, events: Vec<NewEvent>) -> StoreResult<()> {
        let record = record.clone();
        self.write(move |tx| {
            let (record, events) = (record.clone(), events.clone());
            Box::pin(async move {
                let key = &record.key;
                let scopes = serde_json::to_string(&key.scopes).map_err(backend)?;
                sqlx::query(
                    "INSERT INTO api_keys (id, name, user_id, scopes, prefix, created_at,
                         last_used_at, expires_at, revoked_at, secret_hash)
                     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)",
                )
                .bind(key.id.as_str())
                .bind(&key.name)
                .bind(key.created_by.as_str())
                .bind(scopes)
                .bind(&key.prefix)
                .bind(key.created_at)
                .bind(key.last_used_at)
                .bind(key.expires_at)
                .bind(key.revoked_at)
                .bind(&record.secret_hash)
                .execute(&mut *tx)
                .await?;
                audit::record(
                    tx,
                    [AuditChange::diff(
                        "key.created",
                        "key",
                        key.id.as_str(),
                        serde_json::Value::Null,
                        audited(key),
                    )],
                )
                .await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn key_auth(&self, secret_hash: &str) -> StoreResult<Option<KeyAuth>> {
        let row = sqlx::query(
            "SELECT k.id, k.user_id, u.email, u.role, k.scopes::text AS scopes, k.expires_at,
                    k.revoked_at IS NOT NULL AS revoked
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = $1",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(KeyAuth {
                id: parse(&row, "id")?,
                user_id: parse(&row, "user_id")?,
                email: row.try_get("email")?,
                role: parse(&row, "role")?,
                scopes: scopes(&row)?,
                expires_at: row.try_get("expires_at")?,
                revoked: row.try_get("revoked")?,
            })
        })
        .transpose()
    }

    async fn key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(key_row)
            .transpose()
    }

    async fn list_keys(&self, owner: Option<&UserId>) -> StoreResult<Vec<ApiKey>> {
        let mut filter = Filter::new(&format!("SELECT {KEY_COLUMNS} FROM api_keys"));
        filter.add_some("user_id = ", owner.map(UserId::to_string));
        let mut sql = filter.query();
        sql.push(" ORDER BY id DESC");
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_row)
            .collect()
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<ApiKey>> {
        let (key, _) = self
            .write(move |tx| {
                let (id, events) = (id.clone(), events.clone());
                Box::pin(async move {
                    // Guarded: of racing revokes, the first to commit
                    // matches; the others wait on its row lock, then find
                    // it revoked and write nothing.
                    let sql = format!(
                        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
                         RETURNING {KEY_COLUMNS}"
                    );
                    let revoked = sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .bind(at)
                        .fetch_optional(&mut *tx)
                        .await?
                        .as_ref()
                        .map(key_row)
                        .transpose()?;
                    let Some(after) = revoked else {
                        // No such key, or revoked already: returned as it is.
                        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
                        let found = sqlx::query(AssertSqlSafe(sql))
                            .bind(id.as_str())
                            .fetch_optional(&mut *tx)
                            .await?
                            .as_ref()
                            .map(key_row)
                            .transpose()?;
                        return Ok((found, Vec::new()));
                    };
                    let before = ApiKey {
                        revoked_at: None,
                        ..after.clone()
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
                    )
                    .await?;
                    Ok((Some(after), events))
                })
            })
            .await?;
        Ok(key)
    }

    async fn touch_keys(&self, used: Vec<(KeyId, OffsetDateTime)>) -> StoreResult<()> {
        // The latest use of each key, in id order: one row per key for the
        // update, and the order its row locks are taken in.
        let mut latest: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
        for (id, at) in used {
            let entry = latest.entry(id.to_string()).or_insert(at);
            *entry = (*entry).max(at);
        }
        if latest.is_empty() {
            return Ok(());
        }
        let (ids, ats): (Vec<String>, Vec<OffsetDateTime>) = latest.into_iter().unzip();
        self.write(move |tx| {
            let (ids, ats) = (ids.clone(), ats.clone());
            Box::pin(async move {
                // Locks in id order first, so two nodes flushing the same
                // keys queue rather than deadlock.
                sqlx::query("SELECT 1 FROM api_keys WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                // GREATEST (which skips a NULL): a node flushing an older
                // use later never moves a key's last use back.
                sqlx::query(
                    "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
                     FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
                     WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
                )
                .bind(&ids)
                .bind(&ats)
                .execute(&mut *tx)
                .await?;
                Ok(((), Vec::new()))
            })
        })
        .await?;
        Ok(())
    }
}
