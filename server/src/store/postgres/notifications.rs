//! The notification queue, its history, the local sinks and templates in
//! PostgreSQL, shared by the workers of every node.
//!
//! The queue is the `notifications` table. A claim locks the due rows it
//! takes with `FOR UPDATE SKIP LOCKED` and marks them `sending` with a lease
//! in the same statement: a row another node's claim holds is skipped, not
//! waited for, so claimers split the due rows and never take one twice.
//! The sweeper of expired leases skips locked rows the same way (a locked
//! `sending` row is being completed or swept elsewhere). A completion is a
//! guarded statement that only records an attempt on the claim it names,
//! so a late worker whose lease was taken back changes nothing. The event
//! consumers' cursors only move forward (`GREATEST`), and a reaction seen by
//! two nodes is queued once by its unique (event, template, recipient).

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use shop_wire::notifications::{
    Attempt, Channel, Delivery, Notification, NotificationAnalytics, NotificationId,
    NotificationStatus, Priority, Rendered, StatusCounts, Template,
};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::events::move_cursor;
use super::filter::Filter;
use super::{PgStore, audit, backend, parse};
use crate::store::{
    AttemptOutcome, AuditChange, Completion, CursorMove, DeliveryQuery, NewEvent,
    NotificationQuery, NotificationStore, Requeue, StoreResult,
};

const COLUMNS: &str = "id, channel, recipient, template, vars::text AS vars, priority, status, \
     attempts, last_error, subject, body, html, event_id, resent_from, send_at, created_at, \
     updated_at, sent_at";

const DELIVERY_COLUMNS: &str = "seq, notification_id, channel, recipient, template, subject, \
     body, html, delivered_at";

const TEMPLATE_COLUMNS: &str = "name, channel, subject, body, html, updated_at";

/// A priority as stored: its place in the claim order (urgent first).
fn rank(priority: Priority) -> i16 {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .unwrap_or(2) as i16
}

fn priority_of(rank: i16) -> StoreResult<Priority> {
    usize::try_from(rank)
        .ok()
        .and_then(|i| Priority::ALL.get(i).copied())
        .ok_or_else(|| backend(std::io::Error::other(format!("priority rank {rank}"))))
}

fn notification_row(row: &PgRow) -> StoreResult<Notification> {
    let vars: String = row.try_get("vars")?;
    let body: Option<String> = row.try_get("body")?;
    Ok(Notification {
        id: parse(row, "id")?,
        channel: parse(row, "channel")?,
        recipient: row.try_get("recipient")?,
        template: row.try_get("template")?,
        priority: priority_of(row.try_get("priority")?)?,
        status: parse(row, "status")?,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
        send_at: row.try_get("send_at")?,
        updated_at: row.try_get("updated_at")?,
        event_id: row
            .try_get::<Option<i64>, _>("event_id")?
            .map(|id| id as u64),
        resent_from: row
            .try_get::<Option<String>, _>("resent_from")?
            .map(|id| id.parse().map_err(backend))
            .transpose()?,
        vars: Some(serde_json::from_str(&vars).map_err(backend)?),
        rendered: body
            .map(|body| -> StoreResult<Rendered> {
                Ok(Rendered {
                    subject: row.try_get("subject")?,
                    body,
                    html: row.try_get("html")?,
                })
            })
            .transpose()?,
        history: Vec::new(),
    })
}

fn delivery_row(row: &PgRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        seq: row.try_get::<i64, _>("seq")? as u64,
        notification_id: parse(row, "notification_id")?,
        channel: parse(row, "channel")?,
        recipient: row.try_get("recipient")?,
        template: row.try_get("template")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        html: row.try_get("html")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

fn template_row(row: &PgRow) -> StoreResult<Template> {
    Ok(Template {
        name: row.try_get("name")?,
        channel: parse(row, "channel")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        html: row.try_get("html")?,
        builtin: false,
        updated_at: Some(row.try_get("updated_at")?),
    })
}

/// Inserts the notifications in one statement; returns the ids of those
/// queued. One whose reaction key exists is skipped: a racing insert of
/// the same key waits for the other's commit and then skips too, so two
/// nodes reacting to one event queue it once.
async fn insert(tx: &mut PgConnection, items: &[&Notification]) -> StoreResult<Vec<String>> {
    let column = |f: fn(&Notification) -> Option<String>| -> Vec<Option<String>> {
        items.iter().map(|n| f(n)).collect()
    };
    let ids: Vec<&str> = items.iter().map(|n| n.id.as_str()).collect();
    let channels: Vec<&str> = items.iter().map(|n| n.channel.as_str()).collect();
    let recipients: Vec<&str> = items.iter().map(|n| n.recipient.as_str()).collect();
    let templates: Vec<&str> = items.iter().map(|n| n.template.as_str()).collect();
    let vars: Vec<String> = items
        .iter()
        .map(|n| {
            n.vars
                .as_ref()
                .map_or_else(|| "{}".to_owned(), serde_json::Value::to_string)
        })
        .collect();
    let priorities: Vec<i16> = items.iter().map(|n| rank(n.priority)).collect();
    let statuses: Vec<&str> = items.iter().map(|n| n.status.as_str()).collect();
    let attempts: Vec<i32> = items.iter().map(|n| n.attempts as i32).collect();
    let event_ids: Vec<Option<i64>> = items.iter().map(|n| n.event_id.map(|e| e as i64)).collect();
    let send_at: Vec<OffsetDateTime> = items.iter().map(|n| n.send_at).collect();
    let created_at: Vec<OffsetDateTime> = items.iter().map(|n| n.created_at).collect();
    let updated_at: Vec<OffsetDateTime> = items.iter().map(|n| n.updated_at).collect();
    let sent_at: Vec<Option<OffsetDateTime>> = items.iter().map(|n| n.sent_at).collect();
    let queued = sqlx::query_scalar(
        "INSERT INTO notifications (id, channel, recipient, template, vars, priority, status,
             attempts, last_error, subject, body, html, event_id, resent_from, send_at,
             created_at, updated_at, sent_at)
         SELECT n.id, n.channel, n.recipient, n.template, n.vars::jsonb, n.priority, n.status,
                n.attempts, n.last_error, n.subject, n.body, n.html, n.event_id, n.resent_from,
                n.send_at, n.created_at, n.updated_at, n.sent_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[],
                     $7::text[], $8::integer[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::bigint[], $14::text[], $15::timestamptz[], $16::timestamptz[],
                     $17::timestamptz[], $18::timestamptz[])
             WITH ORDINALITY AS n(id, channel, recipient, template, vars, priority, status,
                 attempts, last_error, subject, body, html, event_id, resent_from, send_at,
                 created_at, updated_at, sent_at, ord)
         ORDER BY n.ord
         ON CONFLICT (event_id, template, recipient) DO NOTHING
         RETURNING id",
    )
    .bind(ids)
    .bind(channels)
    .bind(recipients)
    .bind(templates)
    .bind(vars)
    .bind(priorities)
    .bind(statuses)
    .bind(attempts)
    .bind(column(|n| n.last_error.clone()))
    .bind(column(|n| {
        n.rendered.as_ref().and_then(|r| r.subject.clone())
    }))
    .bind(column(|n| n.rendered.as_ref().map(|r| r.body.clone())))
    .bind(column(|n| n.rendered.as_ref().and_then(|r| r.html.clone())))
    .bind(event_ids)
    .bind(column(|n| {
        n.resent_from.as_ref().map(|id| id.as_str().to_owned())
    }))
    .bind(send_at)
    .bind(created_at)
    .bind(updated_at)
    .bind(sent_at)
    .fetch_all(&mut *tx)
    .await?;
    Ok(queued)
}

/// Records one attempt; false when it was dropped.
///
/// The guard is the claim itself: still `sending` and at the attempt the
/// claim counted. A lease taken back and claimed again (by another node)
/// is `sending` once more, but at the next attempt, so the first worker's
/// late completion cannot record over the second claim.
async fn complete(
    tx: &mut PgConnection,
    c: Completion,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<bool> {
    let at = c.finished_at;
    let (status, error, send_at, sent_at, outcome) = match &c.outcome {
        AttemptOutcome::Sent => ("sent", None, None, Some(at), "sent"),
        AttemptOutcome::Retry { error, retry_at } => (
            "failed",
            Some(error.clone()),
            Some(*retry_at),
            None,
            "transient_error",
        ),
        AttemptOutcome::Dead { error, permanent } => (
            "dead",
            Some(error.clone()),
            None,
            None,
            if *permanent {
                "permanent_error"
            } else {
                "transient_error"
            },
        ),
    };
    let rendered = c.rendered.as_ref();
    let updated = sqlx::query(
        "UPDATE notifications SET status = $3, last_error = $4,
                send_at = coalesce($5, send_at), sent_at = coalesce($6, sent_at),
                subject = coalesce($7, subject), body = coalesce($8, body),
                html = coalesce($9, html), lease_until = NULL, updated_at = $10
         WHERE id = $1 AND status = 'sending' AND attempts = $2",
    )
    .bind(c.id.as_str())
    .bind(c.attempt as i32)
    .bind(status)
    .bind(&error)
    .bind(send_at)
    .bind(sent_at)
    .bind(rendered.and_then(|r| r.subject.clone()))
    .bind(rendered.map(|r| r.body.clone()))
    .bind(rendered.and_then(|r| r.html.clone()))
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO notification_attempts (notification_id, number, at, outcome, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.id.as_str())
    .bind(c.attempt as i32)
    .bind(at)
    .bind(outcome)
    .bind(&error)
    .bind(c.duration_ms as i64)
    .execute(&mut *tx)
    .await?;
    if let Some(d) = &c.delivery {
        sqlx::query(
            "INSERT INTO notification_deliveries
                 (notification_id, channel, recipient, template, subject, body, html, delivered_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (notification_id) DO NOTHING",
        )
        .bind(d.notification_id.as_str())
        .bind(d.channel.as_str())
        .bind(&d.recipient)
        .bind(&d.template)
        .bind(&d.subject)
        .bind(&d.body)
        .bind(&d.html)
        .bind(d.delivered_at)
        .execute(&mut *tx)
        .await?;
    }
    pending.extend(c.events);
    Ok(true)
}

async fn attempts(conn: &mut PgConnection, id: &str) -> StoreResult<Vec<Attempt>> {
    sqlx::query(
        "SELECT number, at, outcome, error, duration_ms FROM notification_attempts
         WHERE notification_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        Ok(Attempt {
            number: row.try_get::<i32, _>("number")? as u32,
            at: row.try_get("at")?,
            outcome: row.try_get("outcome")?,
            error: row.try_get("error")?,
            duration_ms: row.try_get::<i64, _>("duration_ms")? as u64,
        })
    })
    .collect()
}

#[async_trait]
impl NotificationStore for PgStore {
    async fn enqueue_notifications(
        &self,
        items: Vec<(Notification, Vec<NewEvent>)>,
        cursor: Option<CursorMove>,
    ) -> StoreResult<u64> {
        let items = std::sync::Arc::new(items);
        let (queued, _) = self
            .write(move |tx| {
                let items = items.clone();
                Box::pin(async move {
                    let notifications: Vec<&Notification> = items.iter().map(|(n, _)| n).collect();
                    let queued: HashSet<String> = if notifications.is_empty() {
                        HashSet::new()
                    } else {
                        insert(tx, &notifications).await?.into_iter().collect()
                    };
                    // Only a queued notification's events are logged, in the items' order.
                    let events = items
                        .iter()
                        .filter(|(n, _)| queued.contains(n.id.as_str()))
                        .flat_map(|(_, events)| events.iter().cloned())
                        .collect();
                    if let Some(cursor) = cursor {
                        move_cursor(tx, cursor).await?;
                    }
                    Ok((queued.len() as u64, events))
                })
            })
            .await?;
        Ok(queued)
    }

    async fn count_notifications_since(
        &self,
        template: &str,
        var: Option<(&'static str, String)>,
        since: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut filter = Filter::new("SELECT count(*) FROM notifications");
        filter.add_some("template = ", Some(template.to_owned()));
        filter.add_some("created_at >= ", Some(since));
        if let Some((name, value)) = var {
            filter
                .and()
                .push("vars ->> ")
                .push_bind(name)
                .push(" = ")
                .push_bind(value);
        }
        let count: i64 = filter
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        Ok(count as u64)
    }

    async fn notification(&self, id: &NotificationId) -> StoreResult<Option<Notification>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1");
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(notification_row)
            .transpose()?;
        let Some(mut notification) = found else {
            return Ok(None);
        };
        notification.history = attempts(&mut conn, id.as_str()).await?;
        Ok(Some(notification))
    }

    async fn list_notifications(
        &self,
        query: &NotificationQuery,
    ) -> StoreResult<(Vec<Notification>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("status = ", query.status.map(|s| s.as_str()));
            filter.add_some("channel = ", query.channel.map(|c| c.as_str()));
            filter.add_some("template = ", query.template.clone());
            filter.add_some("recipient = ", query.recipient.clone());
            filter.add_some("priority = ", query.priority.map(rank));
            filter
        };
        let total: i64 = filtered("SELECT count(*) FROM notifications")
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let items = filtered(&format!("SELECT {COLUMNS} FROM notifications"))
            .page("seq DESC", (query.limit, query.offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                notification_row(row).map(|mut n| {
                    n.vars = None;
                    n.rendered = None;
                    n
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok((items, total as u64))
    }

    async fn claim_notifications(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limits: Vec<(Channel, u32)>,
    ) -> StoreResult<Vec<Notification>> {
        let (claimed, _) = self
            .write(move |tx| {
                let limits = limits.clone();
                Box::pin(async move {
                    let mut claimed = Vec::new();
                    for (channel, limit) in limits {
                        if limit == 0 {
                            continue;
                        }
                        // SKIP LOCKED: rows another node's claim is taking are
                        // left to it, and this claim takes the next due ones
                        // instead of waiting (and then finding them gone). A
                        // row claimed and committed meanwhile is re-checked
                        // against the WHERE when locked, and is no longer due.
                        let sql = format!(
                            "WITH due AS (
                                 SELECT seq FROM notifications
                                 WHERE channel = $1 AND status IN ('queued', 'failed')
                                   AND send_at <= $2
                                 ORDER BY priority, seq LIMIT $4
                                 FOR UPDATE SKIP LOCKED)
                             UPDATE notifications n
                             SET status = 'sending', lease_until = $3,
                                 attempts = n.attempts + 1, updated_at = $2
                             FROM due WHERE n.seq = due.seq
                             RETURNING n.seq, {COLUMNS}"
                        );
                        let rows = sqlx::query(AssertSqlSafe(sql))
                            .bind(channel.as_str())
                            .bind(now)
                            .bind(lease_until)
                            .bind(i64::from(limit))
                            .fetch_all(&mut *tx)
                            .await?;
                        for row in &rows {
                            claimed.push((row.try_get::<i64, _>("seq")?, notification_row(row)?));
                        }
                    }
                    // RETURNING gives no order guarantee: restore the claim order.
                    claimed.sort_by_key(|(seq, n)| (rank(n.priority), *seq));
                    let claimed: Vec<Notification> = claimed.into_iter().map(|(_, n)| n).collect();
                    Ok((claimed, Vec::new()))
                })
            })
            .await?;
        Ok(claimed)
    }

    async fn complete_attempts(&self, completions: Vec<Completion>) -> StoreResult<u64> {
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

    async fn release_expired_leases(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let (released, _) = self
            .write(move |tx| {
                Box::pin(async move {
                    // A `sending` row locked elsewhere is being completed, or
                    // swept by another node: either way not this sweep's, and
                    // skipping it keeps sweepers from queueing behind workers.
                    let released = sqlx::query(
                        "WITH expired AS (
                             SELECT seq FROM notifications
                             WHERE status = 'sending' AND lease_until < $1
                             FOR UPDATE SKIP LOCKED)
                         UPDATE notifications n
                         SET status = 'queued', lease_until = NULL, updated_at = $1
                         FROM expired WHERE n.seq = expired.seq",
                    )
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    Ok((released, Vec::new()))
                })
            })
            .await?;
        Ok(released)
    }

    async fn requeue_notification(
        &self,
        id: &NotificationId,
        from: &[NotificationStatus],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Requeue> {
        let (id, from) = (id.clone(), from.to_vec());
        let (requeued, _) = self
            .write(move |tx| {
                let (id, from, events) = (id.clone(), from.clone(), events.clone());
                Box::pin(async move {
                    // Locked, so the state decided from is the one written over.
                    let row =
                        sqlx::query("SELECT status FROM notifications WHERE id = $1 FOR UPDATE")
                            .bind(id.as_str())
                            .fetch_optional(&mut *tx)
                            .await?;
                    let Some(row) = row else {
                        return Ok((Requeue::NotFound, Vec::new()));
                    };
                    let status: NotificationStatus = parse(&row, "status")?;
                    if !from.contains(&status) {
                        return Ok((Requeue::WrongState(status), Vec::new()));
                    }
                    let sql = format!(
                        "UPDATE notifications SET status = 'queued', attempts = 0, send_at = $2,
                                lease_until = NULL, updated_at = $2
                         WHERE id = $1 RETURNING {COLUMNS}"
                    );
                    let row = sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .bind(at)
                        .fetch_one(&mut *tx)
                        .await?;
                    let notification = notification_row(&row)?;
                    Ok((Requeue::Requeued(Box::new(notification)), events))
                })
            })
            .await?;
        Ok(requeued)
    }

    async fn queue_depth(&self) -> StoreResult<BTreeMap<Priority, u64>> {
        let mut depth: BTreeMap<Priority, u64> = Priority::ALL.iter().map(|p| (*p, 0)).collect();
        let rows = sqlx::query(
            "SELECT priority, count(*) AS n FROM notifications
             WHERE status IN ('queued', 'failed') GROUP BY priority",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let n: i64 = row.try_get("n")?;
            depth.insert(priority_of(row.try_get("priority")?)?, n as u64);
        }
        Ok(depth)
    }

    async fn notification_analytics(&self) -> StoreResult<NotificationAnalytics> {
        let mut analytics = NotificationAnalytics::default();
        let count = |counts: &mut StatusCounts, status: &str, n: u64| match status {
            "queued" => counts.queued += n,
            "sending" => counts.sending += n,
            "sent" => counts.sent += n,
            "failed" => counts.failed += n,
            _ => counts.dead += n,
        };
        let rows = sqlx::query(
            "SELECT channel, template, status, priority, count(*) AS n FROM notifications
             GROUP BY channel, template, status, priority",
        )
        .fetch_all(&self.pool)
        .await?;
        for priority in Priority::ALL {
            analytics
                .queue_depth
                .insert(priority.as_str().to_owned(), 0);
        }
        for row in &rows {
            let channel: String = row.try_get("channel")?;
            let template: String = row.try_get("template")?;
            let status: String = row.try_get("status")?;
            let n = row.try_get::<i64, _>("n")? as u64;
            analytics.total += n;
            count(analytics.by_channel.entry(channel).or_default(), &status, n);
            count(
                analytics.by_template.entry(template).or_default(),
                &status,
                n,
            );
            if status == "queued" || status == "failed" {
                let priority = priority_of(row.try_get("priority")?)?;
                *analytics
                    .queue_depth
                    .entry(priority.as_str().to_owned())
                    .or_default() += n;
            }
        }
        // The median in milliseconds, as SQLite computes it: the middle
        // value, or the mean of the two middle ones (NULL with none sent).
        let median: Option<f64> = sqlx::query_scalar(
            "SELECT percentile_cont(0.5) WITHIN GROUP (
                 ORDER BY round(extract(epoch FROM sent_at - created_at) * 1000))
             FROM notifications WHERE status = 'sent' AND sent_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        analytics.median_seconds_to_send = median.map(|ms| ms / 1000.0);
        Ok(analytics)
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<(Vec<Delivery>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("channel = ", query.channel.map(|c| c.as_str()));
            filter.add_some("recipient = ", query.recipient.clone());
            filter
        };
        let total: i64 = filtered("SELECT count(*) FROM notification_deliveries")
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let items = filtered(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries"
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

    async fn save_template(&self, template: &Template) -> StoreResult<bool> {
        let t = template.clone();
        let (created, _) = self
            .write(move |tx| {
                let t = t.clone();
                Box::pin(async move {
                    let at = t.updated_at.unwrap_or_else(crate::store::now);
                    // Locks a saved template, so racing saves audit what each replaced.
                    let sql = format!(
                        "SELECT {TEMPLATE_COLUMNS} FROM notification_templates
                         WHERE name = $1 AND channel = $2 FOR UPDATE"
                    );
                    let before = sqlx::query(AssertSqlSafe(sql))
                        .bind(&t.name)
                        .bind(t.channel.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                        .as_ref()
                        .map(template_row)
                        .transpose()?;
                    // A first save that raced another takes the update path
                    // of the upsert; `xmax = 0` tells which path it took.
                    let inserted: bool = sqlx::query_scalar(
                        "INSERT INTO notification_templates
                             (name, channel, subject, body, html, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6)
                         ON CONFLICT (name, channel) DO UPDATE SET subject = excluded.subject,
                             body = excluded.body, html = excluded.html,
                             updated_at = excluded.updated_at
                         RETURNING xmax = 0",
                    )
                    .bind(&t.name)
                    .bind(t.channel.as_str())
                    .bind(&t.subject)
                    .bind(&t.body)
                    .bind(&t.html)
                    .bind(at)
                    .fetch_one(&mut *tx)
                    .await?;
                    let audited = |template: &Template| {
                        serde_json::json!({
                            "subject": template.subject,
                            "body": template.body,
                            "html": template.html,
                        })
                    };
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            if inserted {
                                "template.created"
                            } else {
                                "template.updated"
                            },
                            "template",
                            format!("{}:{}", t.name, t.channel.as_str()),
                            before.as_ref().map_or(serde_json::Value::Null, audited),
                            audited(&t),
                        )],
                    )
                    .await?;
                    Ok((inserted, Vec::new()))
                })
            })
            .await?;
        Ok(created)
    }

    async fn stored_template(&self, name: &str, channel: Channel) -> StoreResult<Option<Template>> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM notification_templates WHERE name = $1 AND channel = $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(name)
            .bind(channel.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(template_row)
            .transpose()
    }

    async fn stored_templates(&self) -> StoreResult<Vec<Template>> {
        let sql =
            format!("SELECT {TEMPLATE_COLUMNS} FROM notification_templates ORDER BY name, channel");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(template_row)
            .collect()
    }

    async fn event_cursor(&self, consumer: &str) -> StoreResult<u64> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT event_id FROM event_cursors WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.unwrap_or(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::config::Durability;
    use crate::services::notifications::domain::new_notification;
    use crate::store::contract::racing_notification_claims_on_two_nodes;
    use crate::store::postgres::testing;
    use crate::store::{EventStore, now};

    fn queued(
        template: &str,
        priority: Priority,
        send_at: OffsetDateTime,
    ) -> (Notification, Vec<NewEvent>) {
        new_notification(
            Channel::Email,
            "a@example.com".to_owned(),
            template.to_owned(),
            json!({}),
            priority,
            send_at,
            None,
        )
    }

    fn all_channels(limit: u32) -> Vec<(Channel, u32)> {
        Channel::ALL.iter().map(|c| (*c, limit)).collect()
    }

    /// Claimers on two nodes (two pools on one database) split the queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn claims_from_two_nodes_take_each_notification_once() {
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
        racing_notification_claims_on_two_nodes(node_a, node_b).await;
    }

    #[tokio::test]
    async fn claims_go_by_priority_then_fifo_and_wait_for_their_time() {
        let (_database, store) = testing::open().await;
        let at = now();
        let later = at + time::Duration::hours(1);
        let items = vec![
            queued("low1", Priority::Low, at),
            queued("normal1", Priority::Normal, at),
            queued("urgent1", Priority::Urgent, at),
            queued("low2", Priority::Low, at),
            queued("scheduled_urgent", Priority::Urgent, later),
            queued("urgent2", Priority::Urgent, at),
            queued("high1", Priority::High, at),
        ];
        let queued = store
            .enqueue_notifications(items, None)
            .await
            .expect("enqueue");
        assert_eq!(queued, 7);
        assert_eq!(
            store.latest_event_id().await.expect("events"),
            7,
            "one notification.queued each"
        );
        let lease = now() + time::Duration::minutes(1);
        let first = store
            .claim_notifications(now(), lease, all_channels(3))
            .await
            .expect("claim");
        let names: Vec<&str> = first.iter().map(|n| n.template.as_str()).collect();
        assert_eq!(names, ["urgent1", "urgent2", "high1"]);
        let rest = store
            .claim_notifications(now(), lease, all_channels(10))
            .await
            .expect("claim");
        let names: Vec<&str> = rest.iter().map(|n| n.template.as_str()).collect();
        assert_eq!(
            names,
            ["normal1", "low1", "low2"],
            "the scheduled one is not due"
        );
        let due_later = store
            .claim_notifications(later, later + time::Duration::minutes(1), all_channels(10))
            .await
            .expect("claim");
        assert_eq!(due_later[0].template, "scheduled_urgent");
        let depth = store.queue_depth().await.expect("depth");
        assert_eq!(depth.values().sum::<u64>(), 0);
    }

    /// A lease taken back and claimed again (by another node) is `sending`
    /// again; the first worker's late completion names the earlier attempt
    /// and is dropped, and the second worker's is recorded.
    #[tokio::test]
    async fn a_late_completion_does_not_record_over_the_next_claim() {
        let (_database, store) = testing::open().await;
        let (n, events) = queued("welcome", Priority::Normal, now());
        store
            .enqueue_notifications(vec![(n.clone(), events)], None)
            .await
            .expect("enqueue");
        let at = now();
        let first = store
            .claim_notifications(at, at + time::Duration::milliseconds(1), all_channels(5))
            .await
            .expect("claim");
        let after = at + time::Duration::seconds(1);
        assert_eq!(store.release_expired_leases(after).await.expect("sweep"), 1);
        let second = store
            .claim_notifications(after, after + time::Duration::minutes(1), all_channels(5))
            .await
            .expect("claim again");
        assert_eq!((first[0].attempts, second[0].attempts), (1, 2));
        let completion = |claim: &Notification, error: &str| Completion {
            id: claim.id.clone(),
            attempt: claim.attempts,
            finished_at: now(),
            duration_ms: 1,
            rendered: None,
            outcome: AttemptOutcome::Dead {
                error: error.to_owned(),
                permanent: true,
            },
            delivery: None,
            events: vec![NewEvent::example()],
        };
        let logged = store.latest_event_id().await.expect("events");
        let late = store
            .complete_attempts(vec![completion(&first[0], "late")])
            .await
            .expect("late");
        assert_eq!(late, 0);
        assert_eq!(store.latest_event_id().await.expect("events"), logged);
        let current = store
            .complete_attempts(vec![completion(&second[0], "current")])
            .await
            .expect("current");
        assert_eq!(current, 1);
        let stored = store
            .notification(&n.id)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(stored.status, NotificationStatus::Dead);
        assert_eq!(stored.last_error.as_deref(), Some("current"));
        assert_eq!(
            stored.history.iter().map(|a| a.number).collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(store.latest_event_id().await.expect("events"), logged + 1);
    }

    #[tokio::test]
    async fn a_sent_notification_is_recorded_once_and_counted() {
        let (_database, store) = testing::open().await;
        let (n, events) = queued("welcome", Priority::Normal, now());
        store
            .enqueue_notifications(vec![(n.clone(), events)], None)
            .await
            .expect("enqueue");
        let claimed = store
            .claim_notifications(now(), now() + time::Duration::minutes(1), all_channels(5))
            .await
            .expect("claim");
        let rendered = Rendered {
            subject: Some("s".into()),
            body: "b".into(),
            html: None,
        };
        let completion = Completion {
            id: n.id.clone(),
            attempt: claimed[0].attempts,
            finished_at: now(),
            duration_ms: 1,
            rendered: Some(rendered),
            outcome: AttemptOutcome::Sent,
            delivery: Some(Delivery {
                seq: 0,
                notification_id: n.id.clone(),
                channel: Channel::Email,
                recipient: n.recipient.clone(),
                template: n.template.clone(),
                subject: Some("s".into()),
                body: "b".into(),
                html: None,
                delivered_at: now(),
            }),
            events: vec![NewEvent::example()],
        };
        let recorded = store
            .complete_attempts(vec![completion.clone(), completion])
            .await
            .expect("complete");
        assert_eq!(recorded, 1, "the second is no longer sending");
        let (deliveries, total) = store
            .deliveries(&DeliveryQuery {
                limit: 10,
                ..DeliveryQuery::default()
            })
            .await
            .expect("deliveries");
        assert_eq!((deliveries.len(), total), (1, 1));
        let stored = store
            .notification(&n.id)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(stored.status, NotificationStatus::Sent);
        assert_eq!(stored.history.len(), 1);
        assert_eq!(stored.rendered.expect("rendered").body, "b");
        match store
            .requeue_notification(&n.id, &[NotificationStatus::Dead], now(), vec![])
            .await
            .expect("requeue")
        {
            Requeue::WrongState(NotificationStatus::Sent) => {}
            other => panic!("{other:?}"),
        }
        let analytics = store.notification_analytics().await.expect("analytics");
        assert_eq!(analytics.by_channel["email"].sent, 1);
        assert_eq!(analytics.by_template["welcome"].sent, 1);
        assert!(analytics.median_seconds_to_send.is_some());
        assert_eq!(
            store
                .count_notifications_since("welcome", None, n.created_at)
                .await
                .expect("count"),
            1
        );
    }

    #[tokio::test]
    async fn templates_save_and_list_in_name_order() {
        let (_database, store) = testing::open().await;
        let template = |name: &str, body: &str| Template {
            name: name.to_owned(),
            channel: Channel::Email,
            subject: Some("Hi".to_owned()),
            body: body.to_owned(),
            html: None,
            builtin: false,
            updated_at: None,
        };
        assert!(
            store
                .save_template(&template("welcome", "one"))
                .await
                .expect("save")
        );
        assert!(
            !store
                .save_template(&template("welcome", "two"))
                .await
                .expect("save")
        );
        assert!(
            store
                .save_template(&template("Order", "three"))
                .await
                .expect("save")
        );
        let stored = store
            .stored_template("welcome", Channel::Email)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(stored.body, "two");
        let names: Vec<String> = store
            .stored_templates()
            .await
            .expect("list")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["Order", "welcome"], "in byte order, as on SQLite");
    }
}
