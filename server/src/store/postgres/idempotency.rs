//! Idempotency keys in PostgreSQL: claims, stored responses and their expiry.

use async_trait::async_trait;
use sqlx::Row;
use time::OffsetDateTime;

use super::PgStore;
use crate::store::{
    IdempotencyBegin, IdempotencyStore, StoreResult, StoredClaim, StoredResponse, now, reclaim,
};

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        stale_after: time::Duration,
    ) -> StoreResult<IdempotencyBegin> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        let (begin, _) = self
            .write(move |tx| {
                let (key, fingerprint) = (key.clone(), fingerprint.clone());
                Box::pin(async move {
                    let at = now();
                    // Of racing first claims one inserts; the others wait
                    // for it to commit and then find its row.
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (key, fingerprint, state, created_at)
                         VALUES ($1, $2, 'in_progress', $3) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(&key)
                    .bind(&fingerprint)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 1 {
                        return Ok((IdempotencyBegin::Started, Vec::new()));
                    }
                    let row = sqlx::query(
                        "SELECT fingerprint, state, status, content_type, body, created_at
                         FROM idempotency_keys WHERE key = $1 FOR UPDATE",
                    )
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    // Abandoned in between: the next attempt inserts afresh.
                    let Some(row) = row else {
                        return Err(crate::store::StoreError::Busy);
                    };
                    let state: String = row.try_get("state")?;
                    let status: Option<i32> = row.try_get("status")?;
                    let response = status
                        .filter(|_| state == "done")
                        .map(|status| -> StoreResult<StoredResponse> {
                            Ok(StoredResponse {
                                status: u16::try_from(status).map_err(super::backend)?,
                                content_type: row.try_get("content_type")?,
                                body: row
                                    .try_get::<Option<Vec<u8>>, _>("body")?
                                    .unwrap_or_default(),
                            })
                        })
                        .transpose()?;
                    let stored = StoredClaim {
                        fingerprint: row.try_get("fingerprint")?,
                        response,
                        created_at: row.try_get("created_at")?,
                    };
                    if let Some(outcome) = reclaim(stored, &fingerprint, stale_after, at) {
                        return Ok((outcome, Vec::new()));
                    }
                    sqlx::query(
                        "UPDATE idempotency_keys SET state = 'in_progress', created_at = $2
                         WHERE key = $1",
                    )
                    .bind(&key)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    Ok((IdempotencyBegin::Started, Vec::new()))
                })
            })
            .await?;
        Ok(begin)
    }

    async fn complete_idempotent(&self, key: &str, response: &StoredResponse) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', status = $2, content_type = $3, body = $4
             WHERE key = $1",
        )
        .bind(key)
        .bind(i32::from(response.status))
        .bind(&response.content_type)
        .bind(&response.body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn abandon_idempotent(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND state = 'in_progress'")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_idempotency(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }
}
