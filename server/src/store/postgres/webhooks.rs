//! Webhook endpoints and their delivery queue in PostgreSQL, shared by the
//! dispatchers of every node.
//!
//! The queue is the `webhook_deliveries` table. A claim leases the due rows
//! it takes, locking them with `FOR UPDATE SKIP LOCKED` in the same
//! statement, so dispatchers on several nodes split the due rows without
//! waiting on each other and never take one twice. A lease that runs out
//! (its worker died mid-attempt) leaves the row claimable again, with no
//! sweeper; the lease is the claim's name, and a completion or a release is
//! a statement guarded by it, so a worker whose lease ran out and was taken
//! by another changes nothing. Endpoint changes lock the endpoint's row
//! before reading what they audit.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::value::RawValue;
use shop_wire::webhooks::{Webhook, WebhookDelivery, WebhookDeliveryId, WebhookId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::events::move_cursor;
use super::{PgStore, audit, backend, parse};
use crate::store::audit::snapshot;
use crate::store::{
    AuditChange, ClaimedDelivery, CursorMove, DeliveryCompletion, DeliveryOutcome, EndpointEffect,
    NewEvent, ReplayEvents, ReplaySelection, StoreError, StoreResult, WebhookDeliveryQuery,
    WebhookRecord, WebhookStore,
};

use super::filter::Filter;

const WEBHOOK_COLUMNS: &str = "id, url, events, description, secret, previous_secret, \
     previous_until, status, disabled_reason, failing_since, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, status, attempts, \
     response_status, last_error, duration_ms, next_attempt_at, lease_until, window_start, \
     created_at, updated_at, delivered_at";

fn record_row(row: &PgRow) -> StoreResult<WebhookRecord> {
    let previous_secret: Option<String> = row.try_get("previous_secret")?;
    let previous_until: Option<OffsetDateTime> = row.try_get("previous_until")?;
    Ok(WebhookRecord {
        webhook: Webhook {
            id: parse(row, "id")?,
            url: row.try_get("url")?,
            events: row.try_get("events")?,
            description: row.try_get("description")?,
            status: parse(row, "status")?,
            disabled_reason: row.try_get("disabled_reason")?,
            secret: None,
            previous_secret_expires_at: previous_until,
            failing_since: row.try_get("failing_since")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        secret: row.try_get("secret")?,
        previous_secret: previous_secret.zip(previous_until),
    })
}

fn delivery_row(row: &PgRow) -> StoreResult<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: parse(row, "id")?,
        webhook_id: parse(row, "webhook_id")?,
        event_id: row.try_get::<i64, _>("event_id")? as u64,
        event_type: row.try_get("event_type")?,
        status: parse(row, "status")?,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        response_status: row
            .try_get::<Option<i32>, _>("response_status")?
            .map(|s| s as u16),
        last_error: row.try_get("last_error")?,
        duration_ms: row
            .try_get::<Option<i64>, _>("duration_ms")?
            .map(|d| d as u64),
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// The event as a delivery's body: the wire shape, with `data` copied as
/// stored rather than parsed and written again.
#[derive(serde::Serialize)]
struct Body<'a> {
    id: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    data: &'a RawValue,
}

async fn event_body(tx: &mut PgConnection, event_id: u64) -> StoreResult<Option<String>> {
    let row = sqlx::query("SELECT type, occurred_at, data::text AS data FROM events WHERE id = $1")
        .bind(event_id as i64)
        .fetch_optional(tx)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let kind: String = row.try_get("type")?;
    let data: String = row.try_get("data")?;
    let data: &RawValue = serde_json::from_str(&data).map_err(backend)?;
    let body = Body {
        id: event_id,
        kind: &kind,
        occurred_at: row.try_get("occurred_at")?,
        data,
    };
    Ok(Some(serde_json::to_string(&body).map_err(backend)?))
}

/// A webhook endpoint's audit entry from `before` to `after` (`None` before
/// a creation and after a deletion). The secret is never part of it.
async fn audit_change(
    tx: &mut PgConnection,
    action: &str,
    id: &WebhookId,
    before: Option<&Webhook>,
    after: Option<&Webhook>,
) -> StoreResult<()> {
    let shown = |webhook: Option<&Webhook>| {
        webhook.map_or(serde_json::Value::Null, |w| {
            snapshot(&Webhook {
                secret: None,
                ..w.clone()
            })
        })
    };
    audit::record(
        tx,
        [AuditChange::diff(
            action,
            "webhook",
            id.as_str(),
            shown(before),
            shown(after),
        )],
    )
    .await
}

/// An endpoint; `lock` takes its row lock, so the change that read it
/// decides and audits from what it then writes over.
async fn webhook_record(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> StoreResult<Option<WebhookRecord>> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(record_row)
        .transpose()
}

/// Records one attempt; false when the lease is no longer the one named.
async fn complete(
    tx: &mut PgConnection,
    c: DeliveryCompletion,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<bool> {
    let at = c.finished_at;
    let (status, response, error, next, delivered) = match &c.outcome {
        DeliveryOutcome::Succeeded { status } => ("succeeded", Some(*status), None, None, Some(at)),
        DeliveryOutcome::Retry { status, error, at } => {
            ("failed", *status, Some(error.clone()), Some(*at), None)
        }
        DeliveryOutcome::Dead { status, error } => {
            ("dead", *status, Some(error.clone()), None, None)
        }
    };
    let updated = sqlx::query(
        "UPDATE webhook_deliveries
         SET status = $3, response_status = $4, last_error = $5, next_attempt_at = $6,
             delivered_at = coalesce($7, delivered_at), duration_ms = $8,
             lease_until = NULL, updated_at = $9
         WHERE id = $1 AND lease_until = $2",
    )
    .bind(c.id.as_str())
    .bind(c.lease_until)
    .bind(status)
    .bind(response.map(i32::from))
    .bind(error)
    .bind(next)
    .bind(delivered)
    .bind(c.duration_ms as i64)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    match c.endpoint {
        EndpointEffect::Answered => {
            sqlx::query(
                "UPDATE webhooks SET failing_since = NULL
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(c.webhook_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        EndpointEffect::Failing => {
            sqlx::query(
                "UPDATE webhooks SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
            )
            .bind(c.webhook_id.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        EndpointEffect::Disable { reason, event } => {
            // Guarded: of racing attempts that each would disable it, one
            // does, and only that one audits and logs it.
            let disabled = sqlx::query(
                "UPDATE webhooks SET status = 'disabled', disabled_reason = $2,
                        failing_since = coalesce(failing_since, $3), updated_at = $3
                 WHERE id = $1 AND status = 'active'",
            )
            .bind(c.webhook_id.as_str())
            .bind(&reason)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if disabled == 1 {
                audit::record(
                    tx,
                    [AuditChange::diff(
                        "webhook.disabled",
                        "webhook",
                        c.webhook_id.as_str(),
                        serde_json::json!({"status": "active"}),
                        serde_json::json!({"status": "disabled", "disabled_reason": reason}),
                    )],
                )
                .await?;
                pending.push(*event);
            }
        }
    }
    pending.extend(c.events);
    Ok(true)
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn insert_webhook(
        &self,
        record: &WebhookRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let record = record.clone();
        self.write(move |tx| {
            let (record, events) = (record.clone(), events.clone());
            Box::pin(async move {
                let w = &record.webhook;
                sqlx::query(
                    "INSERT INTO webhooks (id, url, events, description, secret, status,
                         disabled_reason, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(w.id.as_str())
                .bind(&w.url)
                .bind(&w.events)
                .bind(&w.description)
                .bind(&record.secret)
                .bind(w.status.as_str())
                .bind(&w.disabled_reason)
                .bind(w.created_at)
                .bind(w.updated_at)
                .execute(&mut *tx)
                .await?;
                audit_change(tx, "webhook.created", &w.id, None, Some(w)).await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<WebhookRecord>> {
        let mut conn = self.pool.acquire().await?;
        webhook_record(&mut conn, id.as_str(), false).await
    }

    async fn list_webhooks(&self, limit: u32, offset: u64) -> StoreResult<(Vec<Webhook>, u64)> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
            .fetch_one(&self.pool)
            .await?;
        let items = Filter::new(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks"))
            .page("created_at, id", (limit, offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| record_row(row).map(|r| r.webhook))
            .collect::<StoreResult<_>>()?;
        Ok((items, total as u64))
    }

    async fn active_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let sql =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE status = 'active' ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| record_row(row).map(|r| r.webhook))
            .collect()
    }

    async fn update_webhook(&self, webhook: &Webhook, events: Vec<NewEvent>) -> StoreResult<bool> {
        let w = webhook.clone();
        let (updated, _) = self
            .write(move |tx| {
                let (w, events) = (w.clone(), events.clone());
                Box::pin(async move {
                    let Some(before) = webhook_record(tx, w.id.as_str(), true).await? else {
                        return Ok((false, Vec::new()));
                    };
                    let sql = format!(
                        "UPDATE webhooks SET url = $2, events = $3, description = $4, status = $5,
                                disabled_reason = $6, updated_at = $7,
                                failing_since = CASE WHEN $5 = 'active' THEN NULL
                                                     ELSE failing_since END
                         WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
                    );
                    let after = sqlx::query(AssertSqlSafe(sql))
                        .bind(w.id.as_str())
                        .bind(&w.url)
                        .bind(&w.events)
                        .bind(&w.description)
                        .bind(w.status.as_str())
                        .bind(&w.disabled_reason)
                        .bind(w.updated_at)
                        .fetch_one(&mut *tx)
                        .await?;
                    let after = record_row(&after)?.webhook;
                    audit_change(
                        tx,
                        "webhook.updated",
                        &w.id,
                        Some(&before.webhook),
                        Some(&after),
                    )
                    .await?;
                    Ok((true, events))
                })
            })
            .await?;
        Ok(updated)
    }

    async fn rotate_webhook_secret(
        &self,
        id: &WebhookId,
        secret: String,
        previous_until: OffsetDateTime,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<Webhook>> {
        let id = id.clone();
        let (rotated, _) = self
            .write(move |tx| {
                let (id, secret, events) = (id.clone(), secret.clone(), events.clone());
                Box::pin(async move {
                    // Locked: of racing rotations each keeps the secret the
                    // one before it set as the previous one.
                    let Some(before) = webhook_record(tx, id.as_str(), true).await? else {
                        return Ok((None, Vec::new()));
                    };
                    let sql = format!(
                        "UPDATE webhooks SET previous_secret = secret, previous_until = $3,
                                secret = $2, updated_at = $4
                         WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
                    );
                    let after = sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .bind(&secret)
                        .bind(previous_until)
                        .bind(at)
                        .fetch_one(&mut *tx)
                        .await?;
                    let after = record_row(&after)?.webhook;
                    // The secrets stay out of the log; when the old one stops
                    // signing shows the rotation.
                    audit_change(
                        tx,
                        "webhook.secret_rotated",
                        &id,
                        Some(&before.webhook),
                        Some(&after),
                    )
                    .await?;
                    Ok((Some(after), events))
                })
            })
            .await?;
        Ok(rotated)
    }

    async fn delete_webhook(&self, id: &WebhookId, events: Vec<NewEvent>) -> StoreResult<bool> {
        let id = id.clone();
        let (deleted, _) = self
            .write(move |tx| {
                let (id, events) = (id.clone(), events.clone());
                Box::pin(async move {
                    let Some(before) = webhook_record(tx, id.as_str(), true).await? else {
                        return Ok((false, Vec::new()));
                    };
                    // Its deliveries go with it (ON DELETE CASCADE).
                    sqlx::query("DELETE FROM webhooks WHERE id = $1")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    audit_change(tx, "webhook.deleted", &id, Some(&before.webhook), None).await?;
                    Ok((true, events))
                })
            })
            .await?;
        Ok(deleted)
    }

    async fn enqueue_deliveries(
        &self,
        deliveries: Vec<WebhookDelivery>,
        cursor: Option<CursorMove>,
    ) -> StoreResult<u64> {
        let ids: Vec<String> = deliveries.iter().map(|d| d.id.to_string()).collect();
        let webhooks: Vec<String> = deliveries
            .iter()
            .map(|d| d.webhook_id.to_string())
            .collect();
        let event_ids: Vec<i64> = deliveries.iter().map(|d| d.event_id as i64).collect();
        let types: Vec<String> = deliveries.iter().map(|d| d.event_type.clone()).collect();
        let statuses: Vec<&'static str> = deliveries.iter().map(|d| d.status.as_str()).collect();
        let due: Vec<OffsetDateTime> = deliveries
            .iter()
            .map(|d| d.next_attempt_at.unwrap_or(d.created_at))
            .collect();
        let created: Vec<OffsetDateTime> = deliveries.iter().map(|d| d.created_at).collect();
        let (queued, _) = self
            .write(move |tx| {
                let (ids, webhooks, event_ids, types, statuses, due, created) = (
                    ids.clone(),
                    webhooks.clone(),
                    event_ids.clone(),
                    types.clone(),
                    statuses.clone(),
                    due.clone(),
                    created.clone(),
                );
                Box::pin(async move {
                    // The endpoint's row is share-locked (FOR KEY SHARE) rather
                    // than only looked for: an endpoint deleted meanwhile is
                    // waited for and then skipped with its deliveries, where a
                    // plain look would pass and the insert fail on its key.
                    // One already queued (another node's feeder read the same
                    // events) is skipped by its (endpoint, event) key.
                    let queued = sqlx::query(
                        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type,
                             status, attempts, next_attempt_at, window_start, created_at,
                             updated_at)
                         SELECT d.id, d.webhook_id, d.event_id, d.event_type, d.status, 0,
                                d.due, d.created, d.created, d.created
                         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[],
                                     $5::text[], $6::timestamptz[], $7::timestamptz[])
                             WITH ORDINALITY AS d(id, webhook_id, event_id, event_type, status,
                                 due, created, ord)
                         JOIN webhooks w ON w.id = d.webhook_id
                         ORDER BY d.ord
                         FOR KEY SHARE OF w
                         ON CONFLICT (webhook_id, event_id) DO NOTHING",
                    )
                    .bind(ids)
                    .bind(webhooks)
                    .bind(event_ids)
                    .bind(types)
                    .bind(statuses)
                    .bind(due)
                    .bind(created)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if let Some(cursor) = cursor {
                        move_cursor(tx, cursor).await?;
                    }
                    Ok((queued, Vec::new()))
                })
            })
            .await?;
        Ok(queued)
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        excluded: Vec<WebhookId>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let excluded: Vec<String> = excluded.iter().map(ToString::to_string).collect();
        let (claimed, _) = self
            .write(move |tx| {
                let excluded = excluded.clone();
                Box::pin(async move {
                    // SKIP LOCKED: rows another node's claim is leasing are
                    // left to it, and this claim takes the next due ones
                    // rather than waiting. A row leased and committed
                    // meanwhile is re-checked when locked: its lease is live,
                    // so it is no longer claimable. Only the deliveries are
                    // locked (OF d): claims never hold up endpoint changes.
                    let sql = format!(
                        "WITH due AS (
                             SELECT d.seq FROM webhook_deliveries d
                             JOIN webhooks w ON w.id = d.webhook_id AND w.status = 'active'
                             WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1
                               AND (d.lease_until IS NULL OR d.lease_until < $1)
                               AND d.webhook_id <> ALL($4::text[])
                             ORDER BY d.event_id LIMIT $3
                             FOR UPDATE OF d SKIP LOCKED)
                         UPDATE webhook_deliveries d
                         SET lease_until = $2, attempts = d.attempts + 1, updated_at = $1
                         FROM due WHERE d.seq = due.seq
                         RETURNING {DELIVERY_COLUMNS}"
                    );
                    let rows = sqlx::query(AssertSqlSafe(sql))
                        .bind(now)
                        .bind(lease_until)
                        .bind(i64::from(limit))
                        .bind(excluded)
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut rows = rows
                        .iter()
                        .map(|row| Ok((delivery_row(row)?, row.try_get("window_start")?)))
                        .collect::<StoreResult<Vec<(WebhookDelivery, OffsetDateTime)>>>()?;
                    // RETURNING gives no order guarantee: restore the claim order.
                    rows.sort_by_key(|(d, _)| (d.event_id, d.webhook_id.clone()));
                    let mut endpoints: HashMap<WebhookId, Option<WebhookRecord>> = HashMap::new();
                    let mut bodies: HashMap<u64, Option<String>> = HashMap::new();
                    let mut claimed = Vec::with_capacity(rows.len());
                    for (delivery, window_start) in rows {
                        if !endpoints.contains_key(&delivery.webhook_id) {
                            let record =
                                webhook_record(tx, delivery.webhook_id.as_str(), false).await?;
                            endpoints.insert(delivery.webhook_id.clone(), record);
                        }
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            bodies.entry(delivery.event_id)
                        {
                            slot.insert(event_body(tx, delivery.event_id).await?);
                        }
                        let (Some(Some(record)), Some(Some(body))) = (
                            endpoints.get(&delivery.webhook_id),
                            bodies.get(&delivery.event_id),
                        ) else {
                            continue;
                        };
                        let mut secrets = vec![record.secret.clone()];
                        if let Some((previous, until)) = &record.previous_secret
                            && *until > now
                        {
                            secrets.push(previous.clone());
                        }
                        claimed.push(ClaimedDelivery {
                            delivery,
                            lease_until,
                            window_start,
                            webhook: record.webhook.clone(),
                            secrets,
                            body: body.clone(),
                        });
                    }
                    Ok((claimed, Vec::new()))
                })
            })
            .await?;
        Ok(claimed)
    }

    async fn release_deliveries(
        &self,
        claims: Vec<(WebhookDeliveryId, OffsetDateTime)>,
    ) -> StoreResult<()> {
        let ids: Vec<String> = claims.iter().map(|(id, _)| id.to_string()).collect();
        let leases: Vec<OffsetDateTime> = claims.iter().map(|(_, lease)| *lease).collect();
        self.write(move |tx| {
            let (ids, leases) = (ids.clone(), leases.clone());
            Box::pin(async move {
                // Guarded by the lease: a claim that ran out and was taken
                // by another worker is that worker's now.
                sqlx::query(
                    "UPDATE webhook_deliveries d
                     SET lease_until = NULL, attempts = d.attempts - 1
                     FROM unnest($1::text[], $2::timestamptz[]) AS c(id, lease)
                     WHERE d.id = c.id AND d.lease_until = c.lease",
                )
                .bind(ids)
                .bind(leases)
                .execute(&mut *tx)
                .await?;
                Ok(((), Vec::new()))
            })
        })
        .await?;
        Ok(())
    }

    async fn complete_deliveries(&self, completions: Vec<DeliveryCompletion>) -> StoreResult<u64> {
        let (recorded, _) = self
            .write(move |tx| {
                let completions = completions.clone();
                Box::pin(async move {
                    let mut recorded = 0;
                    let mut pending = Vec::new();
                    for completion in completions {
                        if complete(tx, completion, &mut pending).await? {
                            recorded += 1;
                        }
                    }
                    Ok((recorded, pending))
                })
            })
            .await?;
        Ok(recorded)
    }

    async fn webhook_deliveries(
        &self,
        webhook: &WebhookId,
        query: &WebhookDeliveryQuery,
    ) -> StoreResult<(Vec<WebhookDelivery>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("webhook_id = ", Some(webhook.to_string()));
            filter.add_some("status = ", query.status.map(|s| s.as_str()));
            filter
        };
        let total: i64 = filtered("SELECT count(*) FROM webhook_deliveries")
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let items = filtered(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries"
        ))
        .page("seq DESC", (query.limit, query.offset))
        .build()
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(delivery_row)
        .collect::<StoreResult<_>>()?;
        Ok((items, total as u64))
    }

    async fn webhook_delivery(
        &self,
        webhook: &WebhookId,
        id: &WebhookDeliveryId,
    ) -> StoreResult<Option<WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(webhook.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(delivery_row)
            .transpose()
    }

    async fn replay_deliveries(
        &self,
        webhook: &WebhookId,
        selection: ReplaySelection,
        at: OffsetDateTime,
        make: ReplayEvents,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let webhook = webhook.clone();
        let events = std::sync::Arc::new(std::sync::Mutex::new(ReplayMaker {
            make: Some(make),
            made: None,
        }));
        let (replayed, _) = self
            .write(move |tx| {
                let (webhook, selection, events) =
                    (webhook.clone(), selection.clone(), events.clone());
                Box::pin(async move {
                    let replayed = replay(tx, &webhook, &selection, at).await?;
                    let ids: Vec<WebhookDeliveryId> =
                        replayed.iter().map(|d| d.id.clone()).collect();
                    if ids.is_empty() {
                        return Ok((replayed, Vec::new()));
                    }
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "webhook.deliveries_replayed",
                            "webhook",
                            webhook.as_str(),
                            serde_json::Value::Null,
                            serde_json::json!({ "replayed": snapshot(&ids) }),
                        )],
                    )
                    .await?;
                    let events = events
                        .lock()
                        .map_err(|_| backend(std::io::Error::other("a replay's events panicked")))?
                        .events(&ids)?;
                    Ok((replayed, events))
                })
            })
            .await?;
        Ok(replayed)
    }

    async fn log_webhook_test(&self, id: &WebhookId, event: NewEvent) -> StoreResult<Option<u64>> {
        let id = id.clone();
        let ((), logged) = self
            .write(move |tx| {
                let (id, event) = (id.clone(), event.clone());
                Box::pin(async move {
                    // Share-locked, so the endpoint is still there and
                    // active when the test event commits.
                    let active = sqlx::query(
                        "SELECT 1 FROM webhooks WHERE id = $1 AND status = 'active' FOR SHARE",
                    )
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                    Ok(((), if active { vec![event] } else { Vec::new() }))
                })
            })
            .await?;
        Ok(logged.first().map(|e| e.id))
    }

    async fn webhook_backlog(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'failed')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }
}

/// Queues the selected deliveries of `webhook` again, due at `at`. One
/// leased right now is being attempted: it is left to its attempt.
async fn replay(
    tx: &mut PgConnection,
    webhook: &WebhookId,
    selection: &ReplaySelection,
    at: OffsetDateTime,
) -> StoreResult<Vec<WebhookDelivery>> {
    let mut sql = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "UPDATE webhook_deliveries
         SET status = 'pending', attempts = 0, next_attempt_at = ",
    );
    sql.push_bind(at)
        .push(", window_start = ")
        .push_bind(at)
        .push(", lease_until = NULL, updated_at = ")
        .push_bind(at)
        .push(" WHERE webhook_id = ")
        .push_bind(webhook.to_string())
        .push(" AND (lease_until IS NULL OR lease_until < ")
        .push_bind(at)
        .push(")");
    match selection {
        ReplaySelection::One(id) => {
            sql.push(" AND id = ").push_bind(id.to_string());
        }
        ReplaySelection::FailedSince(since) => {
            sql.push(" AND status IN ('failed', 'dead') AND created_at >= ")
                .push_bind(*since);
        }
    }
    sql.push(" RETURNING ").push(DELIVERY_COLUMNS);
    sql.build()
        .fetch_all(tx)
        .await?
        .iter()
        .map(delivery_row)
        .collect()
}

/// A replay's events, built once: [`ReplayEvents`] runs once, but the
/// transaction it is for may be retried whole.
struct ReplayMaker {
    make: Option<ReplayEvents>,
    /// The ids the events were built from, and the events.
    made: Option<(Vec<WebhookDeliveryId>, Vec<NewEvent>)>,
}

impl ReplayMaker {
    /// The events of a replay of `ids`. A retry that replays the same ids
    /// gets the events built before; one that replays others (the
    /// deliveries changed between the attempts) cannot have its events
    /// built again, and is told busy, to be asked again.
    fn events(&mut self, ids: &[WebhookDeliveryId]) -> StoreResult<Vec<NewEvent>> {
        if let Some(make) = self.make.take() {
            let events = make(ids);
            self.made = Some((ids.to_vec(), events.clone()));
            return Ok(events);
        }
        match &self.made {
            Some((made_for, events)) if made_for.as_slice() == ids => Ok(events.clone()),
            _ => Err(StoreError::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shop_wire::webhooks::{Webhook, WebhookId, WebhookStatus};
    use time::Duration;

    use super::*;
    use crate::config::Durability;
    use crate::store::contract::racing_webhook_claims_on_two_nodes;
    use crate::store::postgres::testing;
    use crate::store::{EventStore, now};

    /// Dispatchers on two nodes (two pools on one database) split the queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn claims_from_two_nodes_take_each_delivery_once() {
        let (_database, url) = testing::database().await;
        let node_a = Arc::new(
            PgStore::connect(&url, Durability::Process)
                .await
                .expect("node a"),
        );
        let node_b = Arc::new(
            PgStore::connect(&url, Durability::Process)
                .await
                .expect("node b"),
        );
        racing_webhook_claims_on_two_nodes(node_a, node_b).await;
    }

    fn endpoint(at: OffsetDateTime) -> Webhook {
        Webhook {
            id: WebhookId::generate(),
            url: "https://example.com/hooks".to_owned(),
            events: vec!["*".to_owned()],
            description: None,
            status: WebhookStatus::Active,
            disabled_reason: None,
            secret: None,
            previous_secret_expires_at: None,
            failing_since: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn record(webhook: &Webhook) -> WebhookRecord {
        WebhookRecord {
            webhook: webhook.clone(),
            secret: "whsec_b2xk".to_owned(),
            previous_secret: None,
        }
    }

    /// A rotated endpoint signs with both secrets while the old one lasts;
    /// attempts that each disable it log the disabling once; a disabled
    /// endpoint gets no test event; a deleted one takes its deliveries along
    /// and is queued no more.
    #[tokio::test]
    async fn an_endpoint_rotates_is_disabled_once_and_goes_with_its_deliveries() {
        let (_database, store) = testing::open().await;
        let at = now();
        let webhook = endpoint(at);
        store
            .insert_webhook(&record(&webhook), vec![])
            .await
            .expect("insert");
        let rotated = store
            .rotate_webhook_secret(
                &webhook.id,
                "whsec_bmV3".to_owned(),
                at + Duration::hours(1),
                at,
                vec![],
            )
            .await
            .expect("rotate")
            .expect("there");
        assert_eq!(
            rotated.previous_secret_expires_at,
            Some(at + Duration::hours(1))
        );
        let events: Vec<_> = store
            .append_events(vec![NewEvent::example(), NewEvent::example()])
            .await
            .expect("events")
            .into_iter()
            .map(Arc::new)
            .collect();
        let plan =
            || crate::services::webhooks::domain::plan(std::slice::from_ref(&webhook), &events, at);
        assert_eq!(
            store
                .enqueue_deliveries(plan(), None)
                .await
                .expect("enqueue"),
            2
        );
        let claimed = store
            .claim_deliveries(
                at + Duration::seconds(1),
                at + Duration::minutes(5),
                10,
                vec![],
            )
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 2);
        assert_eq!(claimed[0].secrets, ["whsec_bmV3", "whsec_b2xk"]);
        let logged = store.latest_event_id().await.expect("latest");
        let disable = |claim: &ClaimedDelivery| DeliveryCompletion {
            id: claim.delivery.id.clone(),
            webhook_id: claim.delivery.webhook_id.clone(),
            lease_until: claim.lease_until,
            finished_at: at + Duration::seconds(2),
            duration_ms: 5,
            outcome: DeliveryOutcome::Dead {
                status: Some(410),
                error: "gone".to_owned(),
            },
            endpoint: EndpointEffect::Disable {
                reason: "gone".to_owned(),
                event: Box::new(NewEvent::example()),
            },
            events: vec![],
        };
        let recorded = store
            .complete_deliveries(claimed.iter().map(disable).collect())
            .await
            .expect("complete");
        assert_eq!(recorded, 2);
        assert_eq!(
            store.latest_event_id().await.expect("latest"),
            logged + 1,
            "disabled once"
        );
        let stored = store
            .webhook(&webhook.id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(stored.webhook.status, WebhookStatus::Disabled);
        assert_eq!(
            stored.webhook.failing_since,
            Some(at + Duration::seconds(2))
        );
        assert_eq!(
            store
                .log_webhook_test(&webhook.id, NewEvent::example())
                .await
                .expect("test"),
            None
        );
        assert!(store.active_webhooks().await.expect("active").is_empty());

        assert!(
            store
                .delete_webhook(&webhook.id, vec![])
                .await
                .expect("delete")
        );
        assert!(
            !store
                .delete_webhook(&webhook.id, vec![])
                .await
                .expect("again")
        );
        assert_eq!(
            store
                .enqueue_deliveries(plan(), None)
                .await
                .expect("enqueue"),
            0
        );
        let (deliveries, total) = store
            .webhook_deliveries(
                &webhook.id,
                &WebhookDeliveryQuery {
                    limit: 10,
                    ..WebhookDeliveryQuery::default()
                },
            )
            .await
            .expect("deliveries");
        assert_eq!((deliveries.len(), total), (0, 0));
    }
}
