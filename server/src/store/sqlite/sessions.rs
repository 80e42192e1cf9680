//! Sessions and refresh-token rotation in SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use shop_wire::{SessionId, UserId};
use time::OffsetDateTime;

use super::{SqliteStore, append, from_millis, millis, parse_column};
use crate::services::users::rules::{self as user_rules, RefreshDecision};
use crate::store::{
    NewEvent, RefreshOutcome, SessionAuth, SessionRecord, SessionStore, StoreResult, now,
};

const SESSION_COLUMNS: &str =
    "id, user_id, refresh_hash, user_agent, ip, created_at, last_used_at, expires_at, revoked_at";

fn session_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: parse_column(row, "id")?,
        user_id: parse_column(row, "user_id")?,
        refresh_hash: row.get("refresh_hash")?,
        user_agent: row.get("user_agent")?,
        ip: row.get("ip")?,
        created_at: from_millis(row.get("created_at")?)?,
        last_used_at: from_millis(row.get("last_used_at")?)?,
        expires_at: from_millis(row.get("expires_at")?)?,
        revoked_at: row
            .get::<_, Option<i64>>("revoked_at")?
            .map(from_millis)
            .transpose()?,
    })
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |tx| {
            tx.prepare_cached(&format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                s.id.as_str(),
                s.user_id.as_str(),
                s.refresh_hash,
                s.user_agent,
                s.ip,
                millis(s.created_at),
                millis(s.last_used_at),
                millis(s.expires_at),
                s.revoked_at.map(millis),
            ])?;
            append(tx, events)?;
            Ok(())
        })
        .await
    }

    async fn session_auth(&self, id: &SessionId) -> StoreResult<Option<SessionAuth>> {
        let id = id.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT s.user_id, u.email, u.role, s.expires_at, s.revoked_at IS NOT NULL AS revoked
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
            )?
            .query_row([id.as_str()], |row| {
                Ok(SessionAuth {
                    user_id: parse_column(row, "user_id")?,
                    email: row.get("email")?,
                    role: parse_column(row, "role")?,
                    expires_at: from_millis(row.get("expires_at")?)?,
                    revoked: row.get("revoked")?,
                })
            })
            .optional()
        })
        .await
    }

    async fn active_sessions(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions
                 WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
                 ORDER BY id DESC"
            ))?
            .query_map(params![user.as_str(), millis(at)], session_row)?
            .collect()
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        id: &SessionId,
        presented_hash: &str,
        new_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome> {
        let (id, presented, new_hash) =
            (id.clone(), presented_hash.to_owned(), new_hash.to_owned());
        self.write(move |tx| {
            let at = now();
            let session = tx
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
                ))?
                .query_row([id.as_str()], session_row)
                .optional()?;
            let revoke = || -> StoreResult<RefreshOutcome> {
                tx.prepare_cached(
                    "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![id.as_str(), millis(at)])?;
                Ok(RefreshOutcome::ReuseDetected)
            };
            match user_rules::decide_refresh(session.as_ref(), &presented, at) {
                RefreshDecision::Inactive => Ok(RefreshOutcome::Inactive),
                RefreshDecision::RevokeForReuse => revoke(),
                RefreshDecision::Rotate => {
                    // Guarded by the secret presented: of two refreshes racing
                    // with one secret, only one rotates.
                    let rotated = tx
                        .prepare_cached(&format!(
                            "UPDATE sessions SET refresh_hash = ?2, last_used_at = ?3, expires_at = ?4
                             WHERE id = ?1 AND refresh_hash = ?5 AND revoked_at IS NULL
                             RETURNING {SESSION_COLUMNS}"
                        ))?
                        .query_row(
                            params![id.as_str(), new_hash, millis(at), millis(expires_at), presented],
                            session_row,
                        )
                        .optional()?;
                    match rotated {
                        Some(rotated) => Ok(RefreshOutcome::Rotated(rotated)),
                        // Another refresh rotated this secret first: this one is a replay.
                        None => revoke(),
                    }
                }
            }
        })
        .await
    }

    async fn revoke_session(
        &self,
        id: &SessionId,
        user: &UserId,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        let (id, user) = (id.clone(), user.clone());
        self.write(move |tx| {
            let at = millis(now());
            let changed = tx
                .prepare_cached(
                    "UPDATE sessions SET revoked_at = ?3
                     WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND expires_at > ?3",
                )?
                .execute(params![id.as_str(), user.as_str(), at])?;
            if changed == 0 {
                return Ok(false);
            }
            append(tx, events)?;
            Ok(true)
        })
        .await
    }

    async fn purge_sessions(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.write(move |tx| {
            let cutoff = millis(before);
            let deleted = tx
                .prepare_cached("DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1")?
                .execute([cutoff])?;
            Ok(deleted as u64)
        })
        .await
    }
}
