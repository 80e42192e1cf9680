//! Reactions to events: the reactor follows the event log from a cursor kept
//! in the store and turns events into notifications.
//!
//! The mapping is data ([`REACTIONS`]): an event type, a template, a channel,
//! a priority and where the recipient comes from. The notifications it makes
//! and the cursor move commit together, and each has the unique key (event,
//! template, recipient), so an event is acted on once however often the
//! reactor reads it (after a crash, from the log again). The service's own
//! `notification.*` events never match a reaction.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use shop_wire::Event;
use shop_wire::notifications::{Channel, Notification, Priority};

use super::domain::{new_notification, normalize_recipient, staff_emails};
use crate::state::AppState;
use crate::store::{NewEvent, now};

pub const REACTOR: &str = "notification_reactions";
/// The reactor's name in the store's event cursors.
pub const CURSOR: &str = "notifications";
/// Events read per transaction at most.
const CHUNK: usize = 256;

/// Who receives a reaction's notification.
#[derive(Clone, Copy, Debug)]
pub enum To {
    /// The first of these fields of the event data (or of its `order`,
    /// `payment` or `user` object) that holds an email address.
    Field(&'static [&'static str]),
    /// Every staff and admin account.
    Staff,
}

#[derive(Clone, Copy, Debug)]
pub struct Reaction {
    pub event: &'static str,
    pub template: &'static str,
    pub channel: Channel,
    pub priority: Priority,
    pub to: To,
}

const CUSTOMER: To = To::Field(&["customer_email", "email"]);

pub const REACTIONS: &[Reaction] = &[
    Reaction {
        event: "user.registered",
        template: "welcome",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Field(&["email"]),
    },
    Reaction {
        event: "order.paid",
        template: "order_confirmation",
        channel: Channel::Email,
        priority: Priority::High,
        to: CUSTOMER,
    },
    Reaction {
        event: "order.shipped",
        template: "order_shipped",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: CUSTOMER,
    },
    Reaction {
        event: "order.cancelled",
        template: "order_cancelled",
        channel: Channel::Email,
        priority: Priority::High,
        to: CUSTOMER,
    },
    Reaction {
        event: "payment.refunded",
        template: "refund_issued",
        channel: Channel::Email,
        priority: Priority::High,
        to: CUSTOMER,
    },
    Reaction {
        event: "inventory.low_stock",
        template: "low_stock_alert",
        channel: Channel::Email,
        priority: Priority::Urgent,
        to: To::Staff,
    },
];

/// A notification to queue for an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub channel: Channel,
    pub recipient: String,
    pub template: &'static str,
    pub priority: Priority,
    pub vars: Value,
}

fn email_in(data: &Value, fields: &[&str]) -> Option<String> {
    let scopes = [
        Some(data),
        data.get("order"),
        data.get("payment"),
        data.get("user"),
    ];
    scopes.into_iter().flatten().find_map(|scope| {
        fields
            .iter()
            .find_map(|f| scope.get(*f).and_then(Value::as_str))
            .map(str::to_owned)
    })
}

/// Whether any reaction could come of an event of this type.
pub fn reacts_to(kind: &str) -> bool {
    !kind.starts_with("notification.") && REACTIONS.iter().any(|r| r.event == kind)
}

/// The notifications an event calls for. `staff` is asked for only when a
/// reaction goes to staff. A recipient that is missing or invalid is logged
/// and skipped: there is no one to tell.
pub fn plan(event: &Event, staff: &[String]) -> Vec<Planned> {
    if !reacts_to(&event.kind) {
        return Vec::new();
    }
    let mut vars = match &event.data {
        Value::Object(map) => map.clone(),
        other => serde_json::Map::from_iter([("data".to_owned(), other.clone())]),
    };
    vars.insert("event_id".to_owned(), json!(event.id));
    vars.insert("event_type".to_owned(), json!(event.kind));
    let vars = Value::Object(vars);
    let mut planned = Vec::new();
    for reaction in REACTIONS.iter().filter(|r| r.event == event.kind) {
        let recipients = match reaction.to {
            To::Field(fields) => email_in(&event.data, fields).into_iter().collect(),
            To::Staff => staff.to_vec(),
        };
        if recipients.is_empty() {
            tracing::warn!(event = event.id, kind = %event.kind, template = reaction.template, "no recipient in the event; no notification");
        }
        for raw in recipients {
            match normalize_recipient(reaction.channel, "recipient", &raw) {
                Ok(recipient) => planned.push(Planned {
                    channel: reaction.channel,
                    recipient,
                    template: reaction.template,
                    priority: reaction.priority,
                    vars: vars.clone(),
                }),
                Err(err) => {
                    tracing::warn!(event = event.id, kind = %event.kind, error = %err, "bad recipient in the event; no notification")
                }
            }
        }
    }
    planned
}

pub fn spawn(state: &AppState) {
    let worker_state = state.clone();
    state
        .workers
        .spawn_periodic(REACTOR, Duration::from_secs(1), move || {
            let state = worker_state.clone();
            async move {
                tokio::select! {
                    result = follow(&state) => result,
                    () = state.shutdown.cancelled() => Ok(()),
                }
            }
        });
}

/// Follows the event log from the stored cursor for as long as it runs.
async fn follow(state: &AppState) -> anyhow::Result<()> {
    let cursor = state.store.event_cursor(CURSOR).await?;
    let mut stream = Box::pin(state.events.stream_after(cursor).ready_chunks(CHUNK));
    let mut unsaved = 0usize;
    while let Some(chunk) = stream.next().await {
        let events = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
        let Some(last) = events.last().map(|e| e.id) else {
            continue;
        };
        unsaved += events.len();
        let saved = react(state, &events, last, unsaved >= CHUNK).await?;
        if saved {
            unsaved = 0;
        }
    }
    Ok(())
}

/// Queues the reactions to `events` and moves the cursor to `last` in one
/// transaction. Events that call for nothing move the cursor only now and
/// then (`force`): rereading a few after a restart is harmless. Returns
/// whether the cursor was saved.
pub async fn react(
    state: &AppState,
    events: &[Event],
    last: u64,
    force: bool,
) -> anyhow::Result<bool> {
    let needs_staff = events.iter().any(|e| {
        REACTIONS
            .iter()
            .any(|r| r.event == e.kind && matches!(r.to, To::Staff))
    });
    let staff = if needs_staff {
        staff_emails(state.store.as_ref()).await?
    } else {
        Vec::new()
    };
    let items: Vec<(Notification, Vec<NewEvent>)> = events
        .iter()
        .flat_map(|event| {
            plan(event, &staff).into_iter().map(|p| {
                new_notification(
                    p.channel,
                    p.recipient,
                    p.template.to_owned(),
                    p.vars,
                    p.priority,
                    now(),
                    Some(event.id),
                )
            })
        })
        .collect();
    if items.is_empty() && !force {
        return Ok(false);
    }
    let queued = !items.is_empty();
    let logged = state
        .store
        .enqueue_notifications(items, Some((CURSOR, last)))
        .await?;
    state.events.publish(logged);
    if queued {
        state.notifications.wake();
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, kind: &str, data: Value) -> Event {
        Event {
            id,
            kind: kind.to_owned(),
            occurred_at: time::OffsetDateTime::now_utc(),
            data,
        }
    }

    #[test]
    fn events_map_to_their_templates_and_recipients() {
        let staff = vec![
            "boss@example.com".to_owned(),
            "clerk@example.com".to_owned(),
        ];
        let cases = [
            (
                "user.registered",
                json!({"email": "Ada@Example.com", "name": "Ada"}),
                "welcome",
                vec!["ada@example.com"],
            ),
            (
                "order.paid",
                json!({"customer_email": "c@example.com", "number": "1001"}),
                "order_confirmation",
                vec!["c@example.com"],
            ),
            (
                "order.shipped",
                json!({"order": {"customer_email": "c@example.com", "number": "1001"}}),
                "order_shipped",
                vec!["c@example.com"],
            ),
            (
                "order.cancelled",
                json!({"customer_email": "c@example.com"}),
                "order_cancelled",
                vec!["c@example.com"],
            ),
            (
                "payment.refunded",
                json!({"email": "p@example.com", "amount_cents": 500, "currency": "EUR"}),
                "refund_issued",
                vec!["p@example.com"],
            ),
            (
                "inventory.low_stock",
                json!({"sku": "TEE-1", "available": 2}),
                "low_stock_alert",
                vec!["boss@example.com", "clerk@example.com"],
            ),
        ];
        for (i, (kind, data, template, recipients)) in cases.into_iter().enumerate() {
            let planned = plan(&event(i as u64 + 1, kind, data), &staff);
            let got: Vec<&str> = planned.iter().map(|p| p.recipient.as_str()).collect();
            assert_eq!(got, recipients, "{kind}");
            assert!(
                planned
                    .iter()
                    .all(|p| p.template == template && p.channel == Channel::Email)
            );
            assert_eq!(planned[0].vars["event_type"], kind);
        }
    }

    #[test]
    fn own_events_unknown_events_and_missing_recipients_make_nothing() {
        let staff = vec!["boss@example.com".to_owned()];
        for kind in [
            "notification.queued",
            "notification.sent",
            "notification.dead",
            "user.logged_in",
        ] {
            assert!(
                plan(&event(1, kind, json!({"email": "a@example.com"})), &staff).is_empty(),
                "{kind}"
            );
        }
        assert!(plan(&event(1, "order.paid", json!({"number": "1"})), &staff).is_empty());
        assert!(
            plan(
                &event(1, "order.paid", json!({"customer_email": "nope"})),
                &staff
            )
            .is_empty()
        );
    }
}

#[cfg(test)]
mod store_tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::store::sqlite::{Durability, SqliteStore};
    use crate::store::{NotificationQuery, Store};

    #[tokio::test]
    async fn appended_events_become_notifications_once_however_often_they_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("shop.db"), Durability::Process).expect("open"),
        );
        let state = AppState::new(
            Arc::new(Config::default()),
            store.clone(),
            &[7; 32],
            crate::services::payments::provider::Providers::from_config(&Default::default())
                .expect("the simulated provider"),
            std::time::Instant::now(),
            tokio_util::sync::CancellationToken::new(),
        );
        let events = store
            .append_events(vec![
                NewEvent::now(
                    "user.registered",
                    json!({"email": "ada@example.com", "name": "Ada"}),
                ),
                NewEvent::now(
                    "order.paid",
                    json!({"customer_email": "bob@example.com", "number": "1001"}),
                ),
                NewEvent::now("notification.sent", json!({"recipient": "x@example.com"})),
                NewEvent::now("search.query", json!({"q": "tee"})),
            ])
            .await
            .expect("append");
        let last = events.last().expect("events").id;
        assert!(react(&state, &events, last, false).await.expect("react"));
        // Read again, as after a crash before the cursor moved: nothing new.
        react(&state, &events, last, true)
            .await
            .expect("react again");
        let (items, total) = store
            .list_notifications(&NotificationQuery {
                limit: 10,
                ..NotificationQuery::default()
            })
            .await
            .expect("list");
        assert_eq!(total, 2, "{items:?}");
        let mut templates: Vec<_> = items.iter().map(|n| n.template.as_str()).collect();
        templates.sort_unstable();
        assert_eq!(templates, ["order_confirmation", "welcome"]);
        assert_eq!(store.event_cursor(CURSOR).await.expect("cursor"), last);
        // Nothing to do and not forced: the cursor is not written.
        let quiet = store
            .append_events(vec![NewEvent::now("search.query", json!({}))])
            .await
            .expect("append");
        assert!(
            !react(&state, &quiet, quiet[0].id, false)
                .await
                .expect("react")
        );
    }
}
