//! Reactions to events: the reactor follows the event log from a cursor kept
//! in the store and turns events into notifications.
//!
//! The mapping is data ([`REACTIONS`]): an event type, a template, a channel,
//! a priority and where the recipient comes from. The notifications it makes
//! and the cursor move commit together, and each has the unique key (event,
//! template, recipient), so an event is acted on once however often the
//! reactor reads it (after a crash, from the log again). The service's own
//! `notification.*` events never match a reaction, and each reaction
//! reads the event's typed payload.
//!
//! A reaction may also issue an account token (the welcome email's address
//! proof, a password reset): the token is made here, as its email is
//! queued, and only its hash is stored, so no event, log or API answer
//! ever carries it. A re-read event makes a token whose email is then
//! skipped as a duplicate; that token is never sent and expires unused.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shop_wire::Event;
use shop_wire::events::{EventData, EventKind};
use shop_wire::notifications::{Channel, Notification, Priority};

use super::domain::{admin_emails, new_notification, normalize_recipient, staff_emails};
use super::rules;
use crate::events::{FOLLOW_CHUNK, moved_by_another_follower};
use crate::services::users::domain::issue_token;
use crate::state::AppState;
use crate::store::{CursorMove, NewEvent, TokenPurpose, now};
use shop_wire::UserId;

pub const REACTOR: &str = "notification_reactions";
/// The reactor's name in the store's event cursors.
pub const CURSOR: &str = "notifications";

/// Who receives a reaction's notification.
#[derive(Clone, Copy, Debug)]
pub enum To {
    /// The customer the event names (see [`shop_wire::events::EventData::customer_email`]).
    Customer,
    /// Every staff and admin account.
    Staff,
    /// Every admin account.
    Admins,
}

#[derive(Clone, Copy, Debug)]
pub struct Reaction {
    pub event: EventKind,
    pub template: &'static str,
    pub channel: Channel,
    pub priority: Priority,
    pub to: To,
    /// The account token the email carries, in its variable [`TOKEN_VAR`].
    pub issues: Option<TokenPurpose>,
}

/// The variable that carries an account token to a template.
pub const TOKEN_VAR: &str = "token";

pub const REACTIONS: &[Reaction] = &[
    Reaction {
        event: EventKind::UserRegistered,
        template: "welcome",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: Some(TokenPurpose::VerifyEmail),
    },
    Reaction {
        event: EventKind::UserPasswordResetRequested,
        template: "password_reset",
        channel: Channel::Email,
        priority: Priority::High,
        to: To::Customer,
        issues: Some(TokenPurpose::PasswordReset),
    },
    Reaction {
        event: EventKind::OrderPaid,
        template: "order_confirmation",
        channel: Channel::Email,
        priority: Priority::High,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::OrderShipped,
        template: "order_shipped",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::OrderPartiallyShipped,
        template: "order_shipped",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::OrderDelivered,
        template: "order_delivered",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::ReturnRequested,
        template: "return_requested",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::ReturnApproved,
        template: "return_approved",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::ReturnRejected,
        template: "return_rejected",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::ReturnReceived,
        template: "return_received",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::ReturnRefunded,
        template: "return_refunded",
        channel: Channel::Email,
        priority: Priority::Normal,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::OrderCancelled,
        template: "order_cancelled",
        channel: Channel::Email,
        priority: Priority::High,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::PaymentRefunded,
        template: "refund_issued",
        channel: Channel::Email,
        priority: Priority::High,
        to: To::Customer,
        issues: None,
    },
    Reaction {
        event: EventKind::WebhookDisabled,
        template: "webhook_disabled",
        channel: Channel::Email,
        priority: Priority::High,
        to: To::Admins,
        issues: None,
    },
    Reaction {
        event: EventKind::InventoryLowStock,
        template: "low_stock_alert",
        channel: Channel::Email,
        priority: Priority::Urgent,
        to: To::Staff,
        issues: None,
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
    /// The token to issue for the account, and put in the variables, as it is queued.
    pub token: Option<(TokenPurpose, UserId)>,
}

/// The templates whose emails carry an account token.
pub fn token_templates() -> impl Iterator<Item = &'static str> {
    REACTIONS
        .iter()
        .filter(|r| r.issues.is_some())
        .map(|r| r.template)
}

/// The account an event about one names, for the reactions that issue it a token.
fn account_of(data: &EventData) -> Option<&UserId> {
    match data {
        EventData::UserRegistered(e) | EventData::UserPasswordResetRequested(e) => Some(&e.user_id),
        _ => None,
    }
}

/// The reactions to an event of this type.
fn reactions_to(kind: Option<EventKind>) -> impl Iterator<Item = &'static Reaction> {
    REACTIONS.iter().filter(move |r| Some(r.event) == kind)
}

/// The notifications an event calls for. `staff` (and `admins`) are asked
/// for only when a reaction goes to staff (or admins). A recipient that is missing or invalid, or data
/// that is not its type's, is logged and skipped: there is no one to tell.
pub fn plan(event: &Event, staff: &[String], admins: &[String]) -> Vec<Planned> {
    let kind = event.event_kind();
    if reactions_to(kind).next().is_none() {
        return Vec::new();
    }
    let data = match event.decode() {
        Ok(data) => data,
        Err(err) => {
            tracing::warn!(event = event.id, error = %err, "unreadable event; no notification");
            return Vec::new();
        }
    };
    // The templates read the payload's fields by name.
    let mut vars = match data.to_value() {
        Value::Object(map) => map,
        other => serde_json::Map::from_iter([("data".to_owned(), other)]),
    };
    vars.insert("event_id".to_owned(), json!(event.id));
    vars.insert("event_type".to_owned(), json!(event.kind));
    let vars = Value::Object(vars);
    let mut planned = Vec::new();
    for reaction in reactions_to(kind) {
        let recipients = match reaction.to {
            To::Customer => data
                .customer_email()
                .map(str::to_owned)
                .into_iter()
                .collect(),
            To::Staff => staff.to_vec(),
            To::Admins => admins.to_vec(),
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
                    token: reaction.issues.zip(account_of(&data).cloned()),
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

/// Follows the event log from the stored cursor for as long as it runs, or
/// until another node's reactor moves the cursor: then this run ends, and
/// the next one reads on from where that one got.
async fn follow(state: &AppState) -> anyhow::Result<()> {
    let mut stored = state.store.event_cursor(CURSOR).await?;
    let mut follower = state.events.follow(stored, CURSOR);
    let mut unsaved = 0usize;
    while let Some(events) = follower.next().await {
        let events = events?;
        let Some(last) = events.last().map(|e| e.id) else {
            continue;
        };
        unsaved += events.len();
        let cursor = CursorMove {
            consumer: CURSOR,
            from: stored,
            to: last,
        };
        match react(state, &events, cursor, unsaved >= FOLLOW_CHUNK).await {
            Ok(true) => {
                stored = last;
                unsaved = 0;
            }
            Ok(false) => {}
            Err(err) if moved_by_another_follower(&err) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Queues the reactions to `events` and moves the cursor past them in one
/// transaction, or does nothing if another node's reactor moved the cursor
/// first (see [`CursorMove`]). Events that call for nothing move the cursor
/// only now and then (`force`): rereading a few after a restart is
/// harmless. Returns whether the cursor was saved.
pub async fn react(
    state: &AppState,
    events: &[Arc<Event>],
    cursor: CursorMove,
    force: bool,
) -> anyhow::Result<bool> {
    let needs_staff = events
        .iter()
        .any(|e| reactions_to(e.event_kind()).any(|r| matches!(r.to, To::Staff)));
    let staff = if needs_staff {
        staff_emails(state.store.as_ref()).await?
    } else {
        Vec::new()
    };
    let needs_admins = events
        .iter()
        .any(|e| reactions_to(e.event_kind()).any(|r| matches!(r.to, To::Admins)));
    let admins = if needs_admins {
        admin_emails(state.store.as_ref()).await?
    } else {
        Vec::new()
    };
    let held = held_back(state, events).await?;
    let mut items: Vec<(Notification, Vec<NewEvent>)> = Vec::new();
    let mut tokens = Vec::new();
    for event in events.iter().filter(|event| !held.contains(&event.id)) {
        for mut p in plan(event, &staff, &admins) {
            if let Some((purpose, user)) = p.token.take() {
                let (token, record) = issue_token(&user, purpose);
                if let Value::Object(vars) = &mut p.vars {
                    vars.insert(TOKEN_VAR.to_owned(), Value::String(token));
                }
                tokens.push(record);
            }
            items.push(new_notification(
                p.channel,
                p.recipient,
                p.template.to_owned(),
                p.vars,
                p.priority,
                now(),
                Some(event.id),
            ));
        }
    }
    if items.is_empty() && !force {
        return Ok(false);
    }
    let queued = !items.is_empty();
    // Before the emails: a token whose email was queued is always one the store knows.
    state.store.insert_account_tokens(tokens).await?;
    state
        .store
        .enqueue_notifications(items, Some(cursor))
        .await?;
    if queued {
        state.notifications.wake();
    }
    Ok(true)
}

/// The events among `events` whose reactions are held back by a throttle:
/// low-stock alerts of a SKU already alerted within the window, welcome
/// emails past the hourly cap on mail to unconfirmed addresses, and reset
/// emails past the hourly cap per address.
async fn held_back(state: &AppState, events: &[Arc<Event>]) -> anyhow::Result<HashSet<u64>> {
    let config = &state.config.notifications;
    let at = now();
    let window = time::Duration::seconds(
        i64::try_from(config.low_stock_alert_window_seconds).unwrap_or(i64::MAX),
    );
    let mut held = HashSet::new();
    let mut alerted: HashSet<String> = HashSet::new();
    let mut welcomes: Option<u64> = None;
    let mut resets: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for event in events {
        match event.event_kind() {
            Some(EventKind::InventoryLowStock) => {
                let Ok(EventData::InventoryLowStock(low)) = event.decode() else {
                    continue;
                };
                let recent = if alerted.contains(&low.sku) {
                    1
                } else {
                    let var = Some(("sku", low.sku.clone()));
                    let since = at.checked_sub(window).unwrap_or(at);
                    state
                        .store
                        .count_notifications_since("low_stock_alert", var, since)
                        .await?
                };
                if rules::low_stock_alert_due(recent) {
                    alerted.insert(low.sku);
                } else {
                    tracing::info!(event = event.id, sku = %low.sku, "low-stock alert held back: one went out within the window");
                    held.insert(event.id);
                }
            }
            Some(EventKind::UserPasswordResetRequested) => {
                let Ok(EventData::UserPasswordResetRequested(asked)) = event.decode() else {
                    continue;
                };
                let sent = match resets.get(&asked.email) {
                    Some(sent) => *sent,
                    None => {
                        let var = Some(("email", asked.email.clone()));
                        state
                            .store
                            .count_notifications_since(
                                "password_reset",
                                var,
                                at - time::Duration::hours(1),
                            )
                            .await?
                    }
                };
                if rules::reset_mail_allowed(sent) {
                    resets.insert(asked.email, sent + 1);
                } else {
                    tracing::warn!(
                        event = event.id,
                        "password-reset email held back: this address got its hourly share"
                    );
                    resets.insert(asked.email, sent);
                    held.insert(event.id);
                }
            }
            Some(EventKind::UserRegistered) => {
                let sent = match welcomes {
                    Some(sent) => sent,
                    None => {
                        let since = at - time::Duration::hours(1);
                        state
                            .store
                            .count_notifications_since("welcome", None, since)
                            .await?
                    }
                };
                if rules::unverified_mail_allowed(sent, config.unverified_mail_per_hour) {
                    welcomes = Some(sent + 1);
                } else {
                    tracing::warn!(
                        event = event.id,
                        cap = config.unverified_mail_per_hour,
                        "welcome email held back: the hourly cap on mail to unconfirmed addresses is reached"
                    );
                    welcomes = Some(sent);
                    held.insert(event.id);
                }
            }
            _ => {}
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use shop_wire::events::{
        EventData, LowStockEvent, NotificationEvent, PaymentEvent, RefundPart, SessionEvent,
        UserEvent,
    };
    use shop_wire::notifications::Notification;
    use shop_wire::payments::{MethodKind, PaymentStatus, RefundStatus};
    use shop_wire::{PaymentId, RefundId, Role, SessionId, UserId};

    use super::*;
    use crate::services::orders::events::sample_order;
    use crate::store::NewEvent;

    fn event(id: u64, data: EventData) -> Event {
        NewEvent::now(data).logged(id)
    }

    pub fn registered(email: &str) -> EventData {
        EventData::UserRegistered(UserEvent {
            user_id: UserId::generate(),
            email: email.to_owned(),
            name: "Ada".to_owned(),
            role: Role::Customer,
        })
    }

    fn refunded(email: &str) -> EventData {
        let order = sample_order(email, &["TEE-1"]);
        let payment = PaymentId::generate();
        EventData::PaymentRefunded(PaymentEvent {
            id: payment.clone(),
            payment_id: payment,
            order_id: order.id,
            number: order.number,
            customer_email: order.customer_email,
            method: MethodKind::Card,
            status: PaymentStatus::Succeeded,
            provider: "simulated".to_owned(),
            currency: order.currency,
            amount_cents: 500,
            refunded_cents: 500,
            failure_code: None,
            refund: Some(RefundPart {
                payment_amount_cents: 1000,
                refund_id: RefundId::generate(),
                refund_status: RefundStatus::Succeeded,
                reason: None,
            }),
        })
    }

    pub fn notification_sent() -> EventData {
        let (notification, _) = super::super::domain::new_notification(
            Channel::Email,
            "a@example.com".to_owned(),
            "welcome".to_owned(),
            json!({}),
            Priority::Normal,
            now(),
            None,
        );
        let notification: &Notification = &notification;
        EventData::NotificationSent(NotificationEvent::new(notification, None))
    }

    #[test]
    fn events_map_to_their_templates_and_recipients() {
        let staff = vec![
            "boss@example.com".to_owned(),
            "clerk@example.com".to_owned(),
        ];
        let order = |email| sample_order(email, &["TEE-1"]);
        let cases = [
            (
                registered("Ada@Example.com"),
                "welcome",
                vec!["ada@example.com"],
            ),
            (
                EventData::OrderPaid(order("c@example.com")),
                "order_confirmation",
                vec!["c@example.com"],
            ),
            (
                EventData::OrderShipped(order("c@example.com")),
                "order_shipped",
                vec!["c@example.com"],
            ),
            (
                EventData::OrderCancelled(order("c@example.com")),
                "order_cancelled",
                vec!["c@example.com"],
            ),
            (
                refunded("p@example.com"),
                "refund_issued",
                vec!["p@example.com"],
            ),
            (
                EventData::InventoryLowStock(LowStockEvent {
                    sku: "TEE-1".to_owned(),
                    on_hand: 2,
                    reserved: 0,
                    available: 2,
                    threshold: 3,
                    low_stock_threshold: 3,
                }),
                "low_stock_alert",
                vec!["boss@example.com", "clerk@example.com"],
            ),
        ];
        for (i, (data, template, recipients)) in cases.into_iter().enumerate() {
            let kind = data.kind();
            let planned = plan(&event(i as u64 + 1, data), &staff, &[]);
            let got: Vec<&str> = planned.iter().map(|p| p.recipient.as_str()).collect();
            assert_eq!(got, recipients, "{kind}");
            assert!(
                planned
                    .iter()
                    .all(|p| p.template == template && p.channel == Channel::Email)
            );
            assert_eq!(planned[0].vars["event_type"], kind.as_str());
        }
        // The templates read the payload's fields.
        let planned = plan(&event(9, refunded("p@example.com")), &staff, &[]);
        assert_eq!(planned[0].vars["amount_cents"], 500);
        assert_eq!(planned[0].vars["number"], "ORD-001001");
    }

    #[test]
    fn the_welcome_and_reset_emails_issue_a_token_for_their_account() {
        let user = UserId::generate();
        let account = UserEvent {
            user_id: user.clone(),
            email: "ada@example.com".to_owned(),
            name: "Ada".to_owned(),
            role: Role::Customer,
        };
        let welcome = plan(
            &event(1, EventData::UserRegistered(account.clone())),
            &[],
            &[],
        );
        assert_eq!(
            welcome[0].token,
            Some((TokenPurpose::VerifyEmail, user.clone()))
        );
        let reset = plan(
            &event(2, EventData::UserPasswordResetRequested(account)),
            &[],
            &[],
        );
        assert_eq!(reset[0].template, "password_reset");
        assert_eq!(reset[0].recipient, "ada@example.com");
        assert_eq!(reset[0].token, Some((TokenPurpose::PasswordReset, user)));
        let paid = plan(
            &event(
                3,
                EventData::OrderPaid(sample_order("c@example.com", &["TEE-1"])),
            ),
            &[],
            &[],
        );
        assert_eq!(paid[0].token, None);
        let mut templates: Vec<_> = token_templates().collect();
        templates.sort_unstable();
        assert_eq!(templates, ["password_reset", "welcome"]);
    }

    #[test]
    fn own_events_unknown_events_and_missing_recipients_make_nothing() {
        let staff = vec!["boss@example.com".to_owned()];
        let session = SessionEvent {
            user_id: UserId::generate(),
            session_id: SessionId::generate(),
        };
        for data in [notification_sent(), EventData::UserLoggedOut(session)] {
            let kind = data.kind();
            assert!(plan(&event(1, data), &staff, &[]).is_empty(), "{kind}");
        }
        let unknown = Event {
            kind: "order.eaten".to_owned(),
            ..event(1, EventData::OrderPaid(sample_order("c@example.com", &[])))
        };
        assert!(plan(&unknown, &staff, &[]).is_empty());
        let garbled = Event {
            data: json!({"number": "1"}),
            ..event(1, EventData::OrderPaid(sample_order("c@example.com", &[])))
        };
        assert!(plan(&garbled, &staff, &[]).is_empty());
        assert!(
            plan(
                &event(1, EventData::OrderPaid(sample_order("nope", &["TEE-1"]))),
                &staff,
                &[]
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
    use shop_wire::events::EventData;

    use crate::services::orders::events::sample_order;
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
                NewEvent::now(tests::registered("ada@example.com")),
                NewEvent::now(EventData::OrderPaid(sample_order(
                    "bob@example.com",
                    &["TEE-1"],
                ))),
                NewEvent::now(tests::notification_sent()),
                NewEvent::example(),
            ])
            .await
            .expect("append")
            .into_iter()
            .map(Arc::new)
            .collect::<Vec<_>>();
        let last = events.last().expect("events").id;
        let cursor = CursorMove {
            consumer: CURSOR,
            from: 0,
            to: last,
        };
        assert!(react(&state, &events, cursor, false).await.expect("react"));
        // Read again by a reactor that read the cursor before it moved (on
        // another node): it queues nothing.
        let again = react(&state, &events, cursor, true)
            .await
            .expect_err("the cursor has moved");
        assert!(moved_by_another_follower(&again), "{again}");
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
        // The welcome email carries a code the store knows only by its hash.
        let welcome = items
            .iter()
            .find(|n| n.template == "welcome")
            .expect("welcome");
        let welcome = store
            .notification(&welcome.id)
            .await
            .expect("read")
            .expect("with its variables");
        let code = welcome.vars.as_ref().expect("vars")[TOKEN_VAR]
            .as_str()
            .expect("a code");
        let stored = store
            .account_token(&crate::auth::tokens::account_token_hash(code))
            .await
            .expect("read")
            .expect("the code's hash is stored");
        assert_eq!(stored.purpose, TokenPurpose::VerifyEmail);
        assert!(store.account_token(code).await.expect("read").is_none());
        assert_eq!(store.event_cursor(CURSOR).await.expect("cursor"), last);
        // Nothing to do and not forced: the cursor is not written.
        let quiet = store
            .append_events(vec![NewEvent::example()])
            .await
            .expect("append")
            .into_iter()
            .map(Arc::new)
            .collect::<Vec<_>>();
        assert!(
            !react(
                &state,
                &quiet,
                CursorMove {
                    consumer: CURSOR,
                    from: last,
                    to: quiet[0].id
                },
                false
            )
            .await
            .expect("react")
        );
    }

    #[test]
    fn a_disabled_webhook_endpoint_mails_the_admins_only() {
        let webhook = shop_wire::webhooks::Webhook {
            id: shop_wire::WebhookId::generate(),
            url: "https://example.com/hooks".to_owned(),
            events: vec!["order.*".to_owned()],
            description: None,
            status: shop_wire::webhooks::WebhookStatus::Disabled,
            disabled_reason: None,
            secret: None,
            previous_secret_expires_at: None,
            failing_since: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let data = EventData::WebhookDisabled(shop_wire::events::WebhookEvent::new(
            &webhook,
            Some("it answered 410 Gone"),
        ));
        let staff = vec![
            "staff@example.com".to_owned(),
            "admin@example.com".to_owned(),
        ];
        let admins = vec!["admin@example.com".to_owned()];
        let planned = plan(&NewEvent::now(data).logged(3), &staff, &admins);
        assert_eq!(planned.len(), 1, "{planned:?}");
        assert_eq!(planned[0].recipient, "admin@example.com");
        assert_eq!(planned[0].template, "webhook_disabled");
        assert_eq!(planned[0].vars["reason"], "it answered 410 Gone");
    }
}
