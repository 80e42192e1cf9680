//! Webhook endpoints and their delivery queue in SQLite.
//!
//! The queue is the `webhook_deliveries` table: a claim is one write
//! transaction that leases the due rows in event id order, so two claims
//! never take the same row; a lease that runs out (its worker died
//! mid-attempt) leaves the row claimable again, with no sweeper needed.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde_json::value::RawValue;
use shop_wire::webhooks::{Webhook, WebhookDelivery, WebhookDeliveryId, WebhookId};
use time::OffsetDateTime;

use super::audit;
use super::events::append_returning;
use super::filter::Filter;
use super::notifications::move_cursor;
use super::{SqliteStore, append, conversion, from_millis, millis, parse_column};
use crate::store::audit::snapshot;
use crate::store::{
    AuditChange, ClaimedDelivery, CursorMove, DeliveryCompletion, DeliveryOutcome, EndpointEffect,
    NewEvent, ReplayEvents, ReplaySelection, StoreResult, WebhookDeliveryQuery, WebhookRecord,
    WebhookStore,
};

const WEBHOOK_COLUMNS: &str = "id, url, events, description, secret, previous_secret, \
     previous_until, status, disabled_reason, failing_since, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, status, attempts, \
     response_status, last_error, duration_ms, next_attempt_at, lease_until, window_start, \
     created_at, updated_at, delivered_at";

fn optional_millis(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<OffsetDateTime>> {
    row.get::<_, Option<i64>>(column)?
        .map(from_millis)
        .transpose()
}

fn record_row(row: &Row<'_>) -> rusqlite::Result<WebhookRecord> {
    let events: String = row.get("events")?;
    let previous_secret: Option<String> = row.get("previous_secret")?;
    let previous_until = optional_millis(row, "previous_until")?;
    Ok(WebhookRecord {
        webhook: Webhook {
            id: parse_column(row, "id")?,
            url: row.get("url")?,
            events: serde_json::from_str(&events).map_err(conversion)?,
            description: row.get("description")?,
            status: parse_column(row, "status")?,
            disabled_reason: row.get("disabled_reason")?,
            secret: None,
            previous_secret_expires_at: previous_until,
            failing_since: optional_millis(row, "failing_since")?,
            created_at: from_millis(row.get("created_at")?)?,
            updated_at: from_millis(row.get("updated_at")?)?,
        },
        secret: row.get("secret")?,
        previous_secret: previous_secret.zip(previous_until),
    })
}

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: parse_column(row, "id")?,
        webhook_id: parse_column(row, "webhook_id")?,
        event_id: row.get::<_, i64>("event_id")? as u64,
        event_type: row.get("event_type")?,
        status: parse_column(row, "status")?,
        attempts: row.get("attempts")?,
        response_status: row.get("response_status")?,
        last_error: row.get("last_error")?,
        duration_ms: row.get::<_, Option<i64>>("duration_ms")?.map(|d| d as u64),
        next_attempt_at: optional_millis(row, "next_attempt_at")?,
        created_at: from_millis(row.get("created_at")?)?,
        updated_at: from_millis(row.get("updated_at")?)?,
        delivered_at: optional_millis(row, "delivered_at")?,
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

fn event_body(tx: &Transaction<'_>, event_id: u64) -> StoreResult<Option<String>> {
    let row = tx
        .prepare_cached("SELECT type, occurred_at, data FROM events WHERE id = ?1")?
        .query_row([event_id as i64], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    let Some((kind, occurred_at, data)) = row else {
        return Ok(None);
    };
    let data: &RawValue = serde_json::from_str(&data).map_err(conversion)?;
    let body = Body {
        id: event_id,
        kind: &kind,
        occurred_at: from_millis(occurred_at)?,
        data,
    };
    Ok(Some(serde_json::to_string(&body).map_err(conversion)?))
}

/// A webhook endpoint's audit entry from `before` to `after` (`None` before
/// a creation and after a deletion). The secret is never part of it.
fn audit_change(
    tx: &Transaction<'_>,
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
}

fn webhook_record(tx: &rusqlite::Connection, id: &str) -> StoreResult<Option<WebhookRecord>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"
        ))?
        .query_row([id], record_row)
        .optional()?)
}

/// Records one attempt; false when the lease is no longer the one named.
fn complete(tx: &Transaction<'_>, c: DeliveryCompletion) -> StoreResult<bool> {
    let at = millis(c.finished_at);
    let (status, response, error, next, delivered) = match &c.outcome {
        DeliveryOutcome::Succeeded { status } => ("succeeded", Some(*status), None, None, Some(at)),
        DeliveryOutcome::Retry { status, error, at } => (
            "failed",
            *status,
            Some(error.clone()),
            Some(millis(*at)),
            None,
        ),
        DeliveryOutcome::Dead { status, error } => {
            ("dead", *status, Some(error.clone()), None, None)
        }
    };
    let updated = tx
        .prepare_cached(
            "UPDATE webhook_deliveries
             SET status = ?3, response_status = ?4, last_error = ?5, next_attempt_at = ?6,
                 delivered_at = coalesce(?7, delivered_at), duration_ms = ?8,
                 lease_until = NULL, updated_at = ?9
             WHERE id = ?1 AND lease_until = ?2",
        )?
        .execute(params![
            c.id.as_str(),
            millis(c.lease_until),
            status,
            response,
            error,
            next,
            delivered,
            c.duration_ms as i64,
            at,
        ])?;
    if updated == 0 {
        return Ok(false);
    }
    match c.endpoint {
        EndpointEffect::Answered => {
            tx.prepare_cached(
                "UPDATE webhooks SET failing_since = NULL
                 WHERE id = ?1 AND failing_since IS NOT NULL",
            )?
            .execute([c.webhook_id.as_str()])?;
        }
        EndpointEffect::Failing => {
            tx.prepare_cached(
                "UPDATE webhooks SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL",
            )?
            .execute(params![c.webhook_id.as_str(), at])?;
        }
        EndpointEffect::Disable { reason, event } => {
            let disabled = tx
                .prepare_cached(
                    "UPDATE webhooks SET status = 'disabled', disabled_reason = ?2,
                            failing_since = coalesce(failing_since, ?3), updated_at = ?3
                     WHERE id = ?1 AND status = 'active'",
                )?
                .execute(params![c.webhook_id.as_str(), reason, at])?;
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
                )?;
                append(tx, vec![*event])?;
            }
        }
    }
    append(tx, c.events)?;
    Ok(true)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn insert_webhook(
        &self,
        record: &WebhookRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let record = record.clone();
        self.write(move |tx| {
            let w = &record.webhook;
            tx.prepare_cached(&format!(
                "INSERT INTO webhooks ({WEBHOOK_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, ?7, NULL, ?8, ?9)"
            ))?
            .execute(params![
                w.id.as_str(),
                w.url,
                serde_json::to_string(&w.events).map_err(conversion)?,
                w.description,
                record.secret,
                w.status.as_str(),
                w.disabled_reason,
                millis(w.created_at),
                millis(w.updated_at),
            ])?;
            audit_change(tx, "webhook.created", &w.id, None, Some(w))?;
            append(tx, events)
        })
        .await
    }

    async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<WebhookRecord>> {
        let id = id.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"
            ))?
            .query_row([id.as_str()], record_row)
            .optional()
        })
        .await
    }

    async fn list_webhooks(&self, limit: u32, offset: u64) -> StoreResult<(Vec<Webhook>, u64)> {
        self.read(move |conn| {
            let filter = Filter::default();
            let total = filter.count(conn, "FROM webhooks")?;
            let select = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks");
            let items = filter.page(conn, &select, "created_at, id", (limit, offset), |row| {
                record_row(row).map(|r| r.webhook)
            })?;
            Ok((items, total))
        })
        .await
    }

    async fn active_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE status = 'active' ORDER BY id"
            ))?
            .query_map([], |row| record_row(row).map(|r| r.webhook))?
            .collect()
        })
        .await
    }

    async fn update_webhook(&self, webhook: &Webhook, events: Vec<NewEvent>) -> StoreResult<bool> {
        let w = webhook.clone();
        self.write(move |tx| {
            let Some(before) = webhook_record(tx, w.id.as_str())? else {
                return Ok(false);
            };
            let updated = tx
                .prepare_cached(
                    "UPDATE webhooks SET url = ?2, events = ?3, description = ?4, status = ?5,
                            disabled_reason = ?6, updated_at = ?7,
                            failing_since = CASE WHEN ?5 = 'active' THEN NULL ELSE failing_since END
                     WHERE id = ?1",
                )?
                .execute(params![
                    w.id.as_str(),
                    w.url,
                    serde_json::to_string(&w.events).map_err(conversion)?,
                    w.description,
                    w.status.as_str(),
                    w.disabled_reason,
                    millis(w.updated_at),
                ])?;
            if updated == 0 {
                return Ok(false);
            }
            let after = webhook_record(tx, w.id.as_str())?.map(|r| r.webhook);
            audit_change(
                tx,
                "webhook.updated",
                &w.id,
                Some(&before.webhook),
                after.as_ref(),
            )?;
            append(tx, events)?;
            Ok(true)
        })
        .await
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
        self.write(move |tx| {
            let Some(before) = webhook_record(tx, id.as_str())? else {
                return Ok(None);
            };
            let updated = tx
                .prepare_cached(
                    "UPDATE webhooks SET previous_secret = secret, previous_until = ?3,
                            secret = ?2, updated_at = ?4
                     WHERE id = ?1",
                )?
                .execute(params![
                    id.as_str(),
                    secret,
                    millis(previous_until),
                    millis(at)
                ])?;
            if updated == 0 {
                return Ok(None);
            }
            let after = webhook_record(tx, id.as_str())?.map(|r| r.webhook);
            // The secrets stay out of the log; when the old one stops signing shows the rotation.
            audit_change(
                tx,
                "webhook.secret_rotated",
                &id,
                Some(&before.webhook),
                after.as_ref(),
            )?;
            append(tx, events)?;
            Ok(after)
        })
        .await
    }

    async fn delete_webhook(&self, id: &WebhookId, events: Vec<NewEvent>) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |tx| {
            let Some(before) = webhook_record(tx, id.as_str())? else {
                return Ok(false);
            };
            tx.prepare_cached("DELETE FROM webhook_deliveries WHERE webhook_id = ?1")?
                .execute([id.as_str()])?;
            tx.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
                .execute([id.as_str()])?;
            audit_change(tx, "webhook.deleted", &id, Some(&before.webhook), None)?;
            append(tx, events)?;
            Ok(true)
        })
        .await
    }

    async fn enqueue_deliveries(
        &self,
        deliveries: Vec<WebhookDelivery>,
        cursor: Option<CursorMove>,
    ) -> StoreResult<u64> {
        self.write(move |tx| {
            let mut queued = 0;
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS})
                 SELECT ?1, ?2, ?3, ?4, ?5, 0, NULL, NULL, NULL, ?6, NULL, ?7, ?7, ?7, NULL
                 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?2)
                 ON CONFLICT (webhook_id, event_id) DO NOTHING"
            ))?;
            for d in &deliveries {
                queued += insert.execute(params![
                    d.id.as_str(),
                    d.webhook_id.as_str(),
                    d.event_id as i64,
                    d.event_type,
                    d.status.as_str(),
                    d.next_attempt_at
                        .map(millis)
                        .unwrap_or(millis(d.created_at)),
                    millis(d.created_at),
                ])? as u64;
            }
            if let Some(cursor) = cursor {
                move_cursor(tx, cursor)?;
            }
            Ok(queued)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        excluded: Vec<WebhookId>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let excluded = serde_json::to_string(&excluded).map_err(conversion)?;
        self.write(move |tx| {
            let mut rows = tx
                .prepare_cached(&format!(
                    "UPDATE webhook_deliveries
                     SET lease_until = ?2, attempts = attempts + 1, updated_at = ?1
                     WHERE seq IN (
                         SELECT d.seq FROM webhook_deliveries d
                         JOIN webhooks w ON w.id = d.webhook_id AND w.status = 'active'
                         WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= ?1
                           AND (d.lease_until IS NULL OR d.lease_until < ?1)
                           AND d.webhook_id NOT IN (SELECT value FROM json_each(?4))
                         ORDER BY d.event_id LIMIT ?3)
                     RETURNING {DELIVERY_COLUMNS}"
                ))?
                .query_map(
                    params![millis(now), millis(lease_until), limit, excluded],
                    |row| Ok((delivery_row(row)?, from_millis(row.get("window_start")?)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // RETURNING gives no order guarantee: restore the claim order.
            rows.sort_by_key(|(d, _)| (d.event_id, d.webhook_id.clone()));
            let mut endpoints: HashMap<WebhookId, Option<WebhookRecord>> = HashMap::new();
            let mut bodies: HashMap<u64, Option<String>> = HashMap::new();
            let mut claimed = Vec::with_capacity(rows.len());
            for (delivery, window_start) in rows {
                if !endpoints.contains_key(&delivery.webhook_id) {
                    let record = webhook_record(tx, delivery.webhook_id.as_str())?;
                    endpoints.insert(delivery.webhook_id.clone(), record);
                }
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    bodies.entry(delivery.event_id)
                {
                    slot.insert(event_body(tx, delivery.event_id)?);
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
            Ok(claimed)
        })
        .await
    }

    async fn release_deliveries(
        &self,
        claims: Vec<(WebhookDeliveryId, OffsetDateTime)>,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let mut release = tx.prepare_cached(
                "UPDATE webhook_deliveries SET lease_until = NULL, attempts = attempts - 1
                 WHERE id = ?1 AND lease_until = ?2",
            )?;
            for (id, lease) in &claims {
                release.execute(params![id.as_str(), millis(*lease)])?;
            }
            Ok(())
        })
        .await
    }

    async fn complete_deliveries(&self, completions: Vec<DeliveryCompletion>) -> StoreResult<u64> {
        self.write(move |tx| {
            let mut recorded = 0;
            for completion in completions {
                if complete(tx, completion)? {
                    recorded += 1;
                }
            }
            Ok(recorded)
        })
        .await
    }

    async fn webhook_deliveries(
        &self,
        webhook: &WebhookId,
        query: &WebhookDeliveryQuery,
    ) -> StoreResult<(Vec<WebhookDelivery>, u64)> {
        let (webhook, q) = (webhook.clone(), query.clone());
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter.add_one("webhook_id = ?", webhook.as_str().to_owned());
            filter.add_some("status = ?", q.status.map(|s| s.as_str().to_owned()));
            let total = filter.count(conn, "FROM webhook_deliveries")?;
            let select = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries");
            let items =
                filter.page(conn, &select, "seq DESC", (q.limit, q.offset), delivery_row)?;
            Ok((items, total))
        })
        .await
    }

    async fn webhook_delivery(
        &self,
        webhook: &WebhookId,
        id: &WebhookDeliveryId,
    ) -> StoreResult<Option<WebhookDelivery>> {
        let (webhook, id) = (webhook.clone(), id.clone());
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1 AND webhook_id = ?2"
            ))?
            .query_row([id.as_str(), webhook.as_str()], delivery_row)
            .optional()
        })
        .await
    }

    async fn replay_deliveries(
        &self,
        webhook: &WebhookId,
        selection: ReplaySelection,
        at: OffsetDateTime,
        make: ReplayEvents,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let webhook = webhook.clone();
        self.write(move |tx| {
            let (condition, value) = match &selection {
                ReplaySelection::One(id) => (
                    "id = ?3",
                    rusqlite::types::Value::from(id.as_str().to_owned()),
                ),
                ReplaySelection::FailedSince(since) => (
                    "status IN ('failed', 'dead') AND created_at >= ?3",
                    rusqlite::types::Value::from(millis(*since)),
                ),
            };
            // A delivery leased right now is being attempted: left to its attempt.
            let replayed = tx
                .prepare_cached(&format!(
                    "UPDATE webhook_deliveries
                     SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                         window_start = ?2, lease_until = NULL, updated_at = ?2
                     WHERE webhook_id = ?1 AND {condition}
                       AND (lease_until IS NULL OR lease_until < ?2)
                     RETURNING {DELIVERY_COLUMNS}"
                ))?
                .query_map(params![webhook.as_str(), millis(at), value], delivery_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let ids: Vec<WebhookDeliveryId> = replayed.iter().map(|d| d.id.clone()).collect();
            if !ids.is_empty() {
                audit::record(
                    tx,
                    [AuditChange::diff(
                        "webhook.deliveries_replayed",
                        "webhook",
                        webhook.as_str(),
                        serde_json::Value::Null,
                        serde_json::json!({ "replayed": snapshot(&ids) }),
                    )],
                )?;
                append(tx, make(&ids))?;
            }
            Ok(replayed)
        })
        .await
    }

    async fn log_webhook_test(&self, id: &WebhookId, event: NewEvent) -> StoreResult<Option<u64>> {
        let id = id.clone();
        self.write(move |tx| {
            let active = tx
                .prepare_cached("SELECT 1 FROM webhooks WHERE id = ?1 AND status = 'active'")?
                .exists([id.as_str()])?;
            if !active {
                return Ok(None);
            }
            let logged = append_returning(tx, vec![event])?;
            Ok(logged.first().map(|e| e.id))
        })
        .await
    }

    async fn webhook_backlog(&self) -> StoreResult<u64> {
        self.read(|conn| {
            conn.query_row(
                "SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'failed')",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
        .await
    }
}
