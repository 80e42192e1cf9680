//! Sessions and refresh-token rotation in PostgreSQL.

use async_trait::async_trait;
use shop_wire::{SessionId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::{PgStore, parse};
use crate::services::users::rules::{self as user_rules, RefreshDecision};
use crate::store::{
    NewEvent, RefreshOutcome, SessionAuth, SessionRecord, SessionStore, StoreResult, now,
};

const SESSION_COLUMNS: &str =
    "id, user_id, refresh_hash, user_agent, ip, created_at, last_used_at, expires_at, revoked_at";

fn session_row(row: &PgRow) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: parse(row, "id")?,
        user_id: parse(row, "user_id")?,
        refresh_hash: row.try_get("refresh_hash")?,
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

async fn revoke(tx: &mut PgConnection, id: &SessionId, at: OffsetDateTime) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Decides a refresh from the session's row, locked, so that of refreshes
/// racing with one secret the first rotates and the others, waiting on the
/// lock, find a replaced secret (a replay) rather than rotating it too.
async fn rotate(
    tx: &mut PgConnection,
    id: &SessionId,
    presented: &str,
    new_hash: &str,
    expires_at: OffsetDateTime,
) -> StoreResult<RefreshOutcome> {
    let at = now();
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 FOR UPDATE");
    let session = sqlx::query(AssertSqlSafe(sql))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(session_row)
        .transpose()?;
    match user_rules::decide_refresh(session.as_ref(), presented, at) {
        RefreshDecision::Inactive => Ok(RefreshOutcome::Inactive),
        RefreshDecision::RevokeForReuse => {
            revoke(tx, id, at).await?;
            Ok(RefreshOutcome::ReuseDetected)
        }
        RefreshDecision::Rotate => {
            // Still guarded by the secret presented, as on every backend.
            let sql = format!(
                "UPDATE sessions SET refresh_hash = $2, last_used_at = $3, expires_at = $4
                 WHERE id = $1 AND refresh_hash = $5 AND revoked_at IS NULL
                 RETURNING {SESSION_COLUMNS}"
            );
            let rotated = sqlx::query(AssertSqlSafe(sql))
                .bind(id.as_str())
                .bind(new_hash)
                .bind(at)
                .bind(expires_at)
                .bind(presented)
                .fetch_optional(&mut *tx)
                .await?;
            match rotated {
                Some(row) => Ok(RefreshOutcome::Rotated(session_row(&row)?)),
                None => {
                    revoke(tx, id, at).await?;
                    Ok(RefreshOutcome::ReuseDetected)
                }
            }
        }
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let (s, events) = (session.clone(), events.clone());
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, refresh_hash, user_agent, ip, created_at,
                         last_used_at, expires_at, revoked_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(s.id.as_str())
                .bind(s.user_id.as_str())
                .bind(&s.refresh_hash)
                .bind(&s.user_agent)
                .bind(&s.ip)
                .bind(s.created_at)
                .bind(s.last_used_at)
                .bind(s.expires_at)
                .bind(s.revoked_at)
                .execute(&mut *tx)
                .await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn session_auth(&self, id: &SessionId) -> StoreResult<Option<SessionAuth>> {
        let row = sqlx::query(
            "SELECT s.user_id, u.email, u.role, s.expires_at, s.revoked_at IS NOT NULL AS revoked
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> StoreResult<SessionAuth> {
            Ok(SessionAuth {
                user_id: parse(&row, "user_id")?,
                email: row.try_get("email")?,
                role: parse(&row, "role")?,
                expires_at: row.try_get("expires_at")?,
                revoked: row.try_get("revoked")?,
            })
        })
        .transpose()
    }

    async fn active_sessions(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
             ORDER BY id DESC"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(at)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(session_row)
            .collect()
    }

    async fn rotate_refresh(
        &self,
        id: &SessionId,
        presented_hash: &str,
        new_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome> {
        let (outcome, _) = self
            .write(move |tx| {
                let (id, presented, new_hash) =
                    (id.clone(), presented_hash.to_owned(), new_hash.to_owned());
                Box::pin(async move {
                    let outcome = rotate(tx, &id, &presented, &new_hash, expires_at).await?;
                    Ok((outcome, Vec::new()))
                })
            })
            .await?;
        Ok(outcome)
    }

    async fn revoke_session(
        &self,
        id: &SessionId,
        user: &UserId,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        let (revoked, _) = self
            .write(move |tx| {
                let (id, user, events) = (id.clone(), user.clone(), events.clone());
                Box::pin(async move {
                    let at = now();
                    let changed = sqlx::query(
                        "UPDATE sessions SET revoked_at = $3
                         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3",
                    )
                    .bind(id.as_str())
                    .bind(user.as_str())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if changed == 0 {
                        return Ok((false, Vec::new()));
                    }
                    Ok((true, events))
                })
            })
            .await?;
        Ok(revoked)
    }

    async fn purge_sessions(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }
}
