//! Idempotency keys in SQLite: claims, stored responses and their expiry.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{SqliteStore, from_millis, millis};
use crate::store::{
    IdempotencyBegin, IdempotencyStore, StoreResult, StoredClaim, StoredResponse, now, reclaim,
};

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        stale_after: time::Duration,
    ) -> StoreResult<IdempotencyBegin> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        self.write(move |tx| {
            let at = now();
            let existing = tx
                .prepare_cached(
                    "SELECT fingerprint, state, status, content_type, body, created_at
                     FROM idempotency_keys WHERE key = ?1",
                )?
                .query_row([&key], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<u16>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<Vec<u8>>>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                })
                .optional()?;
            if let Some((stored, state, status, content_type, body, created_at)) = existing {
                let response = status.filter(|_| state == "done").map(|status| StoredResponse {
                    status,
                    content_type,
                    body: body.unwrap_or_default(),
                });
                let stored = StoredClaim {
                    fingerprint: stored,
                    response,
                    created_at: from_millis(created_at)?,
                };
                if let Some(outcome) = reclaim(stored, &fingerprint, stale_after, at) {
                    return Ok(outcome);
                }
            }
            tx.prepare_cached(
                "INSERT INTO idempotency_keys (key, fingerprint, state, created_at)
                 VALUES (?1, ?2, 'in_progress', ?3)
                 ON CONFLICT (key) DO UPDATE SET state = 'in_progress', created_at = excluded.created_at",
            )?
            .execute(params![key, fingerprint, millis(at)])?;
            Ok(IdempotencyBegin::Started)
        })
        .await
    }

    async fn complete_idempotent(&self, key: &str, response: &StoredResponse) -> StoreResult<()> {
        let (key, response) = (key.to_owned(), response.clone());
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE idempotency_keys SET state = 'done', status = ?2, content_type = ?3, body = ?4
                 WHERE key = ?1",
            )?
            .execute(params![key, response.status, response.content_type, response.body])?;
            Ok(())
        })
        .await
    }

    async fn abandon_idempotent(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |tx| {
            tx.prepare_cached(
                "DELETE FROM idempotency_keys WHERE key = ?1 AND state = 'in_progress'",
            )?
            .execute([key])?;
            Ok(())
        })
        .await
    }

    async fn purge_idempotency(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.write(move |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                .execute([millis(before)])?;
            Ok(deleted as u64)
        })
        .await
    }
}
