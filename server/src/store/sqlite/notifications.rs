//! The notification queue, its history, the local sinks and templates in SQLite.
//!
//! The queue is the `notifications` table itself: a claim is one `BEGIN
//! IMMEDIATE` transaction that picks the due rows in priority then insertion
//! order and marks them `sending` with a lease, so two claims can never take
//! the same row, and a row whose lease ran out (its worker died mid-send) is
//! put back by [`NotificationStore::release_expired_leases`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use shop_wire::notifications::{
    Attempt, Channel, Delivery, Notification, NotificationAnalytics, NotificationId,
    NotificationStatus, Priority, Rendered, StatusCounts, Template,
};
use time::OffsetDateTime;

use super::audit;
use super::filter::Filter;
use super::{SqliteStore, append, conversion, from_millis, millis, parse_column};
use crate::store::AuditChange;
use crate::store::{
    AttemptOutcome, Completion, CursorMove, DeliveryQuery, NewEvent, NotificationQuery,
    NotificationStore, Requeue, StoreError, StoreResult,
};

const COLUMNS: &str = "id, channel, recipient, template, vars, priority, status, attempts, \
     last_error, subject, body, html, event_id, resent_from, send_at, created_at, updated_at, sent_at";

fn rank(priority: Priority) -> i64 {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .unwrap_or(2) as i64
}

fn priority_of(rank: i64) -> rusqlite::Result<Priority> {
    usize::try_from(rank)
        .ok()
        .and_then(|i| Priority::ALL.get(i).copied())
        .ok_or_else(|| conversion(std::io::Error::other(format!("priority rank {rank}"))))
}

fn optional_millis(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<OffsetDateTime>> {
    row.get::<_, Option<i64>>(column)?
        .map(from_millis)
        .transpose()
}

fn notification_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    let vars: String = row.get("vars")?;
    let body: Option<String> = row.get("body")?;
    let resent_from: Option<String> = row.get("resent_from")?;
    Ok(Notification {
        id: parse_column(row, "id")?,
        channel: parse_column(row, "channel")?,
        recipient: row.get("recipient")?,
        template: row.get("template")?,
        priority: priority_of(row.get("priority")?)?,
        status: parse_column(row, "status")?,
        attempts: row.get("attempts")?,
        last_error: row.get("last_error")?,
        created_at: from_millis(row.get("created_at")?)?,
        sent_at: optional_millis(row, "sent_at")?,
        send_at: from_millis(row.get("send_at")?)?,
        updated_at: from_millis(row.get("updated_at")?)?,
        event_id: row.get::<_, Option<i64>>("event_id")?.map(|id| id as u64),
        resent_from: resent_from
            .map(|id| id.parse().map_err(conversion))
            .transpose()?,
        vars: Some(serde_json::from_str(&vars).map_err(conversion)?),
        rendered: body
            .map(|body| -> rusqlite::Result<Rendered> {
                Ok(Rendered {
                    subject: row.get("subject")?,
                    body,
                    html: row.get("html")?,
                })
            })
            .transpose()?,
        history: Vec::new(),
    })
}

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        seq: row.get::<_, i64>("seq")? as u64,
        notification_id: parse_column(row, "notification_id")?,
        channel: parse_column(row, "channel")?,
        recipient: row.get("recipient")?,
        template: row.get("template")?,
        subject: row.get("subject")?,
        body: row.get("body")?,
        html: row.get("html")?,
        delivered_at: from_millis(row.get("delivered_at")?)?,
    })
}

fn template_row(row: &Row<'_>) -> rusqlite::Result<Template> {
    Ok(Template {
        name: row.get("name")?,
        channel: parse_column(row, "channel")?,
        subject: row.get("subject")?,
        body: row.get("body")?,
        html: row.get("html")?,
        builtin: false,
        updated_at: Some(from_millis(row.get("updated_at")?)?),
    })
}

/// Inserts one notification; false when its reaction key already exists.
fn insert(tx: &Transaction<'_>, n: &Notification) -> StoreResult<bool> {
    let vars = n
        .vars
        .as_ref()
        .map_or_else(|| "{}".to_owned(), serde_json::Value::to_string);
    let inserted = tx
        .prepare_cached(&format!(
            "INSERT INTO notifications ({COLUMNS}) VALUES
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT (event_id, template, recipient) DO NOTHING"
        ))?
        .execute(params![
            n.id.as_str(),
            n.channel.as_str(),
            n.recipient,
            n.template,
            vars,
            rank(n.priority),
            n.status.as_str(),
            n.attempts,
            n.last_error,
            n.rendered.as_ref().and_then(|r| r.subject.clone()),
            n.rendered.as_ref().map(|r| r.body.clone()),
            n.rendered.as_ref().and_then(|r| r.html.clone()),
            n.event_id.map(|id| id as i64),
            n.resent_from.as_ref().map(NotificationId::as_str),
            millis(n.send_at),
            millis(n.created_at),
            millis(n.updated_at),
            n.sent_at.map(millis),
        ])?;
    Ok(inserted == 1)
}

/// Moves a follower's cursor if it is still where the follower last stored
/// it; otherwise fails, and the caller's transaction rolls back with it.
/// A cursor never stored is at 0 (the migrations store those that must
/// start at the log's end).
pub(super) fn move_cursor(tx: &Transaction<'_>, cursor: CursorMove) -> StoreResult<()> {
    let moved = tx
        .prepare_cached(
            "INSERT INTO event_cursors (consumer, event_id) VALUES (?1, ?3)
             ON CONFLICT (consumer) DO UPDATE SET event_id = excluded.event_id
             WHERE event_cursors.event_id = ?2",
        )?
        .execute(params![
            cursor.consumer,
            cursor.from as i64,
            cursor.to as i64
        ])?;
    if moved == 0 {
        return Err(StoreError::CursorMoved {
            consumer: cursor.consumer,
        });
    }
    Ok(())
}

/// Records one attempt; false when it was dropped (no longer `sending`).
fn complete(tx: &Transaction<'_>, c: Completion) -> StoreResult<bool> {
    let at = millis(c.finished_at);
    let (status, error, send_at, sent_at, outcome) = match &c.outcome {
        AttemptOutcome::Sent => ("sent", None, None, Some(at), "sent"),
        AttemptOutcome::Retry { error, retry_at } => (
            "failed",
            Some(error.clone()),
            Some(millis(*retry_at)),
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
    let updated = tx
        .prepare_cached(
            "UPDATE notifications SET status = ?2, last_error = ?3,
                    send_at = coalesce(?4, send_at), sent_at = coalesce(?5, sent_at),
                    subject = coalesce(?6, subject), body = coalesce(?7, body),
                    html = coalesce(?8, html), lease_until = NULL, updated_at = ?9
             WHERE id = ?1 AND status = 'sending' AND attempts = ?10",
        )?
        .execute(params![
            c.id.as_str(),
            status,
            error,
            send_at,
            sent_at,
            rendered.and_then(|r| r.subject.clone()),
            rendered.map(|r| r.body.clone()),
            rendered.and_then(|r| r.html.clone()),
            at,
            // The claim's own attempt: after its lease ran out and another
            // worker claimed it again, this late completion is not that one.
            c.attempt,
        ])?;
    if updated == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO notification_attempts (notification_id, number, at, outcome, error, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        c.id.as_str(),
        c.attempt,
        at,
        outcome,
        error,
        c.duration_ms as i64
    ])?;
    if let Some(d) = &c.delivery {
        tx.prepare_cached(
            "INSERT INTO notification_deliveries
                 (notification_id, channel, recipient, template, subject, body, html, delivered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (notification_id) DO NOTHING",
        )?
        .execute(params![
            d.notification_id.as_str(),
            d.channel.as_str(),
            d.recipient,
            d.template,
            d.subject,
            d.body,
            d.html,
            millis(d.delivered_at),
        ])?;
    }
    append(tx, c.events)?;
    Ok(true)
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn count_notifications_since(
        &self,
        template: &str,
        var: Option<(&'static str, String)>,
        since: OffsetDateTime,
    ) -> StoreResult<u64> {
        let template = template.to_owned();
        self.read(move |conn| {
            let (name, value) = var.unzip();
            let count: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM notifications
                     WHERE template = ?1 AND created_at >= ?2
                       AND (?3 IS NULL OR json_extract(vars, '$.' || ?3) = ?4)",
                )?
                .query_row(params![template, millis(since), name, value], |row| {
                    row.get(0)
                })?;
            Ok(count.unsigned_abs())
        })
        .await
    }

    async fn enqueue_notifications(
        &self,
        items: Vec<(Notification, Vec<NewEvent>)>,
        cursor: Option<CursorMove>,
    ) -> StoreResult<u64> {
        self.write(move |tx| {
            let mut queued = 0;
            for (notification, events) in items {
                if insert(tx, &notification)? {
                    append(tx, events)?;
                    queued += 1;
                }
            }
            if let Some(cursor) = cursor {
                move_cursor(tx, cursor)?;
            }
            Ok(queued)
        })
        .await
    }

    async fn notification(&self, id: &NotificationId) -> StoreResult<Option<Notification>> {
        let id = id.clone();
        self.read(move |conn| {
            let Some(mut notification) = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM notifications WHERE id = ?1"
                ))?
                .query_row([id.as_str()], notification_row)
                .optional()?
            else {
                return Ok(None);
            };
            notification.history = conn
                .prepare_cached(
                    "SELECT number, at, outcome, error, duration_ms FROM notification_attempts
                     WHERE notification_id = ?1 ORDER BY rowid",
                )?
                .query_map([id.as_str()], |row| {
                    Ok(Attempt {
                        number: row.get(0)?,
                        at: from_millis(row.get(1)?)?,
                        outcome: row.get(2)?,
                        error: row.get(3)?,
                        duration_ms: row.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(notification))
        })
        .await
    }

    async fn list_notifications(
        &self,
        query: &NotificationQuery,
    ) -> StoreResult<(Vec<Notification>, u64)> {
        let q = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter.add_some("status = ?", q.status.map(|s| s.as_str().to_owned()));
            filter.add_some("channel = ?", q.channel.map(|c| c.as_str().to_owned()));
            filter.add_some("template = ?", q.template.clone());
            filter.add_some("recipient = ?", q.recipient.clone());
            filter.add_some("priority = ?", q.priority.map(rank));
            let total = filter.count(conn, "FROM notifications")?;
            let select = format!("SELECT {COLUMNS} FROM notifications");
            let page = (q.limit, q.offset);
            let items = filter.page(conn, &select, "seq DESC", page, |row| {
                notification_row(row).map(|mut n| {
                    n.vars = None;
                    n.rendered = None;
                    n
                })
            })?;
            Ok((items, total))
        })
        .await
    }

    async fn claim_notifications(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limits: Vec<(Channel, u32)>,
    ) -> StoreResult<Vec<Notification>> {
        self.write(move |tx| {
            let mut claimed = Vec::new();
            for (channel, limit) in limits {
                if limit == 0 {
                    continue;
                }
                let rows = tx
                    .prepare_cached(&format!(
                        "UPDATE notifications
                         SET status = 'sending', lease_until = ?3, attempts = attempts + 1,
                             updated_at = ?2
                         WHERE seq IN (
                             SELECT seq FROM notifications
                             WHERE channel = ?1 AND status IN ('queued', 'failed') AND send_at <= ?2
                             ORDER BY priority, seq LIMIT ?4)
                         RETURNING seq, {COLUMNS}"
                    ))?
                    .query_map(
                        params![channel.as_str(), millis(now), millis(lease_until), limit],
                        |row| Ok((row.get::<_, i64>("seq")?, notification_row(row)?)),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                claimed.extend(rows);
            }
            // RETURNING gives no order guarantee: restore the claim order.
            claimed.sort_by_key(|(seq, n)| (rank(n.priority), *seq));
            Ok(claimed.into_iter().map(|(_, n)| n).collect())
        })
        .await
    }

    async fn complete_attempts(&self, completions: Vec<Completion>) -> StoreResult<u64> {
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

    async fn release_expired_leases(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.write(move |tx| {
            let released = tx
                .prepare_cached(
                    "UPDATE notifications SET status = 'queued', lease_until = NULL, updated_at = ?1
                     WHERE status = 'sending' AND lease_until < ?1",
                )?
                .execute([millis(now)])?;
            Ok(released as u64)
        })
        .await
    }

    async fn requeue_notification(
        &self,
        id: &NotificationId,
        from: &[NotificationStatus],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Requeue> {
        let (id, from) = (id.clone(), from.to_vec());
        self.write(move |tx| {
            let status: Option<NotificationStatus> = tx
                .prepare_cached("SELECT status FROM notifications WHERE id = ?1")?
                .query_row([id.as_str()], |row| parse_column(row, "status"))
                .optional()?;
            let Some(status) = status else {
                return Ok(Requeue::NotFound);
            };
            if !from.contains(&status) {
                return Ok(Requeue::WrongState(status));
            }
            let notification = tx
                .prepare_cached(&format!(
                    "UPDATE notifications SET status = 'queued', attempts = 0, send_at = ?2,
                            lease_until = NULL, updated_at = ?2
                     WHERE id = ?1 RETURNING {COLUMNS}"
                ))?
                .query_row(params![id.as_str(), millis(at)], notification_row)?;
            append(tx, events)?;
            Ok(Requeue::Requeued(Box::new(notification)))
        })
        .await
    }

    async fn queue_depth(&self) -> StoreResult<BTreeMap<Priority, u64>> {
        self.read(|conn| {
            let mut depth: BTreeMap<Priority, u64> =
                Priority::ALL.iter().map(|p| (*p, 0)).collect();
            let rows = conn
                .prepare_cached(
                    "SELECT priority, count(*) FROM notifications
                     WHERE status IN ('queued', 'failed') GROUP BY priority",
                )?
                .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (rank, count) in rows {
                depth.insert(priority_of(rank)?, count as u64);
            }
            Ok(depth)
        })
        .await
    }

    async fn notification_analytics(&self) -> StoreResult<NotificationAnalytics> {
        self.read(|conn| {
            let mut analytics = NotificationAnalytics::default();
            let count = |counts: &mut StatusCounts, status: &str, n: u64| match status {
                "queued" => counts.queued += n,
                "sending" => counts.sending += n,
                "sent" => counts.sent += n,
                "failed" => counts.failed += n,
                _ => counts.dead += n,
            };
            let rows = conn
                .prepare_cached(
                    "SELECT channel, template, status, priority, count(*) FROM notifications
                     GROUP BY channel, template, status, priority",
                )?
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)? as u64,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for priority in Priority::ALL {
                analytics
                    .queue_depth
                    .insert(priority.as_str().to_owned(), 0);
            }
            for (channel, template, status, priority, n) in rows {
                analytics.total += n;
                count(analytics.by_channel.entry(channel).or_default(), &status, n);
                count(
                    analytics.by_template.entry(template).or_default(),
                    &status,
                    n,
                );
                if status == "queued" || status == "failed" {
                    *analytics
                        .queue_depth
                        .entry(priority_of(priority)?.as_str().to_owned())
                        .or_default() += n;
                }
            }
            let sent = analytics.by_channel.values().map(|c| c.sent).sum::<u64>();
            if sent > 0 {
                // The median: the middle value, or the mean of the two middle ones.
                let middle = conn
                    .prepare_cached(
                        "SELECT sent_at - created_at FROM notifications
                         WHERE status = 'sent' AND sent_at IS NOT NULL
                         ORDER BY sent_at - created_at LIMIT ?1 OFFSET ?2",
                    )?
                    .query_map(
                        params![2 - (sent % 2) as i64, ((sent - 1) / 2) as i64],
                        |row| row.get::<_, i64>(0),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                if !middle.is_empty() {
                    let ms = middle.iter().sum::<i64>() as f64 / middle.len() as f64;
                    analytics.median_seconds_to_send = Some(ms / 1000.0);
                }
            }
            Ok(analytics)
        })
        .await
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<(Vec<Delivery>, u64)> {
        let q = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter.add_some("channel = ?", q.channel.map(|c| c.as_str().to_owned()));
            filter.add_some("recipient = ?", q.recipient.clone());
            let total = filter.count(conn, "FROM notification_deliveries")?;
            let select = "SELECT * FROM notification_deliveries";
            let page = (q.limit, q.offset);
            let items = filter.page(conn, select, "seq DESC", page, delivery_row)?;
            Ok((items, total))
        })
        .await
    }

    async fn save_template(&self, template: &Template) -> StoreResult<bool> {
        let t = template.clone();
        self.write(move |tx| {
            let at = millis(t.updated_at.unwrap_or_else(crate::store::now));
            let before = tx
                .prepare_cached(
                    "SELECT * FROM notification_templates WHERE name = ?1 AND channel = ?2",
                )?
                .query_row(params![t.name, t.channel.as_str()], template_row)
                .optional()?;
            let existed = before.is_some();
            let audited = |template: &Template| {
                serde_json::json!({"subject": template.subject, "body": template.body, "html": template.html})
            };
            audit::record(
                tx,
                [AuditChange::diff(
                    if existed { "template.updated" } else { "template.created" },
                    "template",
                    format!("{}:{}", t.name, t.channel.as_str()),
                    before.as_ref().map_or(serde_json::Value::Null, audited),
                    audited(&t),
                )],
            )?;
            tx.prepare_cached(
                "INSERT INTO notification_templates (name, channel, subject, body, html, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (name, channel) DO UPDATE SET subject = excluded.subject,
                     body = excluded.body, html = excluded.html, updated_at = excluded.updated_at",
            )?
            .execute(params![t.name, t.channel.as_str(), t.subject, t.body, t.html, at])?;
            Ok(!existed)
        })
        .await
    }

    async fn stored_template(&self, name: &str, channel: Channel) -> StoreResult<Option<Template>> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT * FROM notification_templates WHERE name = ?1 AND channel = ?2",
            )?
            .query_row(params![name, channel.as_str()], template_row)
            .optional()
        })
        .await
    }

    async fn stored_templates(&self) -> StoreResult<Vec<Template>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT * FROM notification_templates ORDER BY name, channel")?
                .query_map([], template_row)?
                .collect()
        })
        .await
    }

    async fn event_cursor(&self, consumer: &str) -> StoreResult<u64> {
        let consumer = consumer.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT event_id FROM event_cursors WHERE consumer = ?1")?
                .query_row([consumer], |row| row.get::<_, i64>(0))
                .optional()
                .map(|id| id.unwrap_or(0) as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::notifications::domain::new_notification;
    use crate::store::sqlite::tests::store;
    use crate::store::{EventStore, now};
    use serde_json::json;

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

    #[tokio::test]
    async fn claims_go_by_priority_then_fifo_and_wait_for_their_time() {
        let (_dir, store) = store();
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
        assert!(
            first
                .iter()
                .all(|n| n.status == NotificationStatus::Sending && n.attempts == 1)
        );
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
        assert!(
            store
                .claim_notifications(now(), lease, all_channels(10))
                .await
                .expect("claim")
                .is_empty(),
            "claimed rows are not claimed twice"
        );
        let due_later = store
            .claim_notifications(later, later + time::Duration::minutes(1), all_channels(10))
            .await
            .expect("claim");
        assert_eq!(due_later[0].template, "scheduled_urgent");
        let depth = store.queue_depth().await.expect("depth");
        assert_eq!(depth.values().sum::<u64>(), 0);
    }

    #[tokio::test]
    async fn an_expired_lease_goes_back_to_the_queue_and_completion_records_once() {
        let (_dir, store) = store();
        let (n, events) = queued("welcome", Priority::Normal, now());
        store
            .enqueue_notifications(vec![(n.clone(), events)], None)
            .await
            .expect("enqueue");
        let at = now();
        let claimed = store
            .claim_notifications(at, at + time::Duration::milliseconds(1), all_channels(5))
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        // The worker "crashed": the lease runs out and the row is queued again.
        assert_eq!(
            store.release_expired_leases(at).await.expect("release"),
            0,
            "not yet"
        );
        let after = at + time::Duration::seconds(1);
        assert_eq!(
            store.release_expired_leases(after).await.expect("release"),
            1
        );
        let again = store
            .claim_notifications(after, after + time::Duration::minutes(1), all_channels(5))
            .await
            .expect("claim");
        assert_eq!((again.len(), again[0].attempts), (1, 2));

        let delivery = Delivery {
            seq: 0,
            notification_id: n.id.clone(),
            channel: Channel::Email,
            recipient: n.recipient.clone(),
            template: n.template.clone(),
            subject: Some("s".into()),
            body: "b".into(),
            html: None,
            delivered_at: now(),
        };
        let completion = Completion {
            id: n.id.clone(),
            attempt: 2,
            finished_at: now(),
            duration_ms: 1,
            rendered: Some(Rendered {
                subject: Some("s".into()),
                body: "b".into(),
                html: None,
            }),
            outcome: AttemptOutcome::Sent,
            delivery: Some(delivery),
            events: vec![NewEvent::example()],
        };
        let recorded = store
            .complete_attempts(vec![completion.clone()])
            .await
            .expect("complete");
        assert_eq!(recorded, 1);
        let logged = store.latest_event_id().await.expect("events");
        // A second completion (a stale worker) changes nothing and records nothing.
        let recorded = store
            .complete_attempts(vec![completion])
            .await
            .expect("complete");
        assert_eq!(recorded, 0);
        assert_eq!(store.latest_event_id().await.expect("events"), logged);
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

        // Sent is not requeued in place; queued is refused too.
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
        assert!(analytics.median_seconds_to_send.is_some());
    }

    #[tokio::test]
    async fn a_reaction_is_queued_once_per_event_template_and_recipient() {
        let (_dir, store) = store();
        let reaction = || {
            new_notification(
                Channel::Email,
                "a@example.com".to_owned(),
                "welcome".to_owned(),
                json!({"name": "A"}),
                Priority::Normal,
                now(),
                Some(7),
            )
        };
        let cursor = |from, to| {
            Some(CursorMove {
                consumer: "test",
                from,
                to,
            })
        };
        let queued = store
            .enqueue_notifications(vec![reaction()], cursor(0, 7))
            .await
            .expect("enqueue");
        assert_eq!(queued, 1);
        let logged = store.latest_event_id().await.expect("events");
        let queued = store
            .enqueue_notifications(vec![reaction()], cursor(7, 9))
            .await
            .expect("enqueue");
        assert_eq!(queued, 0, "the duplicate is skipped");
        assert_eq!(
            store.latest_event_id().await.expect("events"),
            logged,
            "and so is its event"
        );
        assert_eq!(store.event_cursor("test").await.expect("cursor"), 9);
        let stale = store
            .enqueue_notifications(vec![reaction()], cursor(7, 8))
            .await
            .expect_err("a follower that read the cursor at 7 is too late");
        assert!(matches!(
            stale,
            StoreError::CursorMoved { consumer: "test" }
        ));
        assert_eq!(
            store.event_cursor("test").await.expect("cursor"),
            9,
            "never moves back"
        );
        let (_, total) = store
            .list_notifications(&NotificationQuery {
                limit: 10,
                ..NotificationQuery::default()
            })
            .await
            .expect("list");
        assert_eq!(total, 1);
    }
}
