//! The rules of webhooks as plain functions (patterns, which events go
//! where, what an attempt's answer means) and the steps the routes call.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use shop_wire::Event;
use shop_wire::Page;
use shop_wire::backoff::Backoff;
use shop_wire::events::{EventData, EventKind, WebhookEvent, WebhookReplayEvent, WebhookTestEvent};
use shop_wire::webhooks::{
    CreateWebhook, DeliveryStatus, ReplayResult, TestResult, UpdateWebhook, Webhook,
    WebhookDelivery, WebhookDeliveryId, WebhookId, WebhookStatus, secret_from_key,
};
use time::OffsetDateTime;

use super::safety;
use crate::config::WebhooksConfig;
use crate::services::error::{DomainError, DomainResult};
use crate::state::AppState;
use crate::store::{
    DeliveryOutcome, NewEvent, ReplaySelection, WebhookDeliveryQuery, WebhookRecord, now,
};

/// Patterns one endpoint may subscribe to at most.
const MAX_PATTERNS: usize = 50;
const MAX_DESCRIPTION: usize = 500;
const MAX_URL: usize = 2048;
/// Random bytes in a signing secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// The event family whose events are about webhooks themselves: never
/// delivered by pattern (a delivery's outcome would feed more deliveries).
const OWN_FAMILY: &str = "webhook";

/// Whether `pattern` (exact, `family.*` or `*`) matches the event type `kind`.
pub fn pattern_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

/// Checks and normalizes an endpoint's patterns: `*`, `family.*` of a known
/// family, or a known event type; at least one, duplicates dropped.
pub fn check_patterns(patterns: &[String]) -> DomainResult<Vec<String>> {
    if patterns.is_empty() {
        return Err(DomainError::validation(
            "events",
            "name at least one event type or pattern, e.g. order.* or *",
        ));
    }
    if patterns.len() > MAX_PATTERNS {
        return Err(DomainError::validation(
            "events",
            format!("at most {MAX_PATTERNS} patterns"),
        ));
    }
    let families: BTreeSet<&str> = EventKind::ALL.iter().map(|k| k.family()).collect();
    let mut kept: Vec<String> = Vec::new();
    for raw in patterns {
        let pattern = raw.trim();
        let valid = match pattern.strip_suffix(".*") {
            _ if pattern == "*" => true,
            Some(family) => families.contains(family) && family != OWN_FAMILY,
            None => pattern
                .parse::<EventKind>()
                .is_ok_and(|k| k.family() != OWN_FAMILY),
        };
        if !valid {
            return Err(DomainError::validation(
                "events",
                format!(
                    "`{pattern}` is not an event type or pattern (like order.paid, order.* or *); \
                     webhook.* events are not delivered"
                ),
            ));
        }
        if !kept.iter().any(|p| p == pattern) {
            kept.push(pattern.to_owned());
        }
    }
    Ok(kept)
}

/// Whether `webhook` receives `event`: a test event goes only to the
/// endpoint it names; other `webhook.*` events to none; any other event to
/// an endpoint created by the time it occurred whose patterns match it.
pub fn subscribed(webhook: &Webhook, event: &Event) -> bool {
    if event.event_kind() == Some(EventKind::WebhookTest) {
        return matches!(event.decode(), Ok(EventData::WebhookTest(test)) if test.webhook_id == webhook.id);
    }
    if event.kind.split('.').next() == Some(OWN_FAMILY) || event.occurred_at < webhook.created_at {
        return false;
    }
    webhook
        .events
        .iter()
        .any(|p| pattern_matches(p, &event.kind))
}

/// The deliveries `events` call for among `webhooks`.
pub fn plan(
    webhooks: &[Webhook],
    events: &[Arc<Event>],
    at: OffsetDateTime,
) -> Vec<WebhookDelivery> {
    events
        .iter()
        .flat_map(|event| {
            webhooks
                .iter()
                .filter(|w| w.status == WebhookStatus::Active && subscribed(w, event))
                .map(move |w| WebhookDelivery {
                    id: WebhookDeliveryId::generate(),
                    webhook_id: w.id.clone(),
                    event_id: event.id,
                    event_type: event.kind.clone(),
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    response_status: None,
                    next_attempt_at: Some(at),
                    last_error: None,
                    duration_ms: None,
                    created_at: at,
                    updated_at: at,
                    delivered_at: None,
                })
        })
        .collect()
}

/// What came of one attempt, as the dispatcher saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// An HTTP answer: its status, its `Retry-After` wait, and the start of its body.
    Status {
        code: u16,
        retry_after: Option<Duration>,
        excerpt: String,
    },
    /// No answer: the connection failed or the attempt timed out.
    Unanswered(String),
    /// The address is not one a delivery may go to (any more).
    Refused(String),
}

/// What an attempt means for its endpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointChange {
    Answered,
    Failing,
    Disable(String),
}

/// The verdict on an attempt: the delivery's outcome, the endpoint's, and
/// whether the endpoint's breaker counts it as a failure.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub outcome: DeliveryOutcome,
    pub endpoint: EndpointChange,
    pub failure: bool,
}

/// The wait before retry `attempt` (1 = the first retry).
pub fn backoff(settings: &WebhooksConfig, attempt: u32, jitter: f64) -> Duration {
    Backoff::new(
        Duration::from_millis(settings.retry_base_ms),
        Duration::from_millis(settings.retry_max_ms),
    )
    .delay(attempt, jitter)
}

/// Decides what an attempt's answer means. A 2xx succeeds. A 410 is dead
/// and disables the endpoint, as is an address that may not be reached.
/// Anything else is retried after the backoff (or after `Retry-After` on a
/// 429 or 503) while the retry still falls inside the window that started
/// at `window_start`; past it the delivery is dead. An endpoint whose
/// failures have gone on for a whole window is disabled.
pub fn decide(
    answer: &Answer,
    attempts: u32,
    window_start: OffsetDateTime,
    failing_since: Option<OffsetDateTime>,
    at: OffsetDateTime,
    settings: &WebhooksConfig,
    jitter: f64,
) -> Verdict {
    let window = time::Duration::seconds(settings.give_up_seconds as i64);
    let (status, error, retry_after) = match answer {
        Answer::Status { code, .. } if (200..300).contains(code) => {
            return Verdict {
                outcome: DeliveryOutcome::Succeeded { status: *code },
                endpoint: EndpointChange::Answered,
                failure: false,
            };
        }
        Answer::Status { code: 410, .. } => {
            return Verdict {
                outcome: DeliveryOutcome::Dead {
                    status: Some(410),
                    error: "410 Gone: the endpoint asked to receive no more".to_owned(),
                },
                endpoint: EndpointChange::Disable("it answered 410 Gone".to_owned()),
                failure: false,
            };
        }
        Answer::Refused(reason) => {
            return Verdict {
                outcome: DeliveryOutcome::Dead {
                    status: None,
                    error: reason.clone(),
                },
                endpoint: EndpointChange::Disable(reason.clone()),
                failure: false,
            };
        }
        Answer::Status {
            code,
            retry_after,
            excerpt,
        } => {
            let error = if excerpt.is_empty() {
                format!("HTTP {code}")
            } else {
                format!("HTTP {code}: {excerpt}")
            };
            let honoured = retry_after.filter(|_| *code == 429 || *code == 503);
            (Some(*code), error, honoured)
        }
        Answer::Unanswered(reason) => (None, reason.clone(), None),
    };
    let wait = retry_after.unwrap_or_else(|| backoff(settings, attempts, jitter));
    let retry_at = at + time::Duration::try_from(wait).unwrap_or(window);
    let outcome = if retry_at > window_start + window {
        DeliveryOutcome::Dead {
            status,
            error: format!("gave up after {attempts} attempts in the retry window: {error}"),
        }
    } else {
        DeliveryOutcome::Retry {
            status,
            error,
            at: retry_at,
        }
    };
    let endpoint = match failing_since {
        Some(since) if at - since >= window => EndpointChange::Disable(format!(
            "every delivery failed for {} (the retry window)",
            describe(window)
        )),
        _ => EndpointChange::Failing,
    };
    Verdict {
        outcome,
        endpoint,
        failure: true,
    }
}

fn describe(span: time::Duration) -> String {
    let seconds = span.whole_seconds();
    match seconds {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

/// `Retry-After`: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, at: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(at).unwrap_or(Duration::ZERO))
}

fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    secret_from_key(&key)
}

fn check_description(description: Option<String>) -> DomainResult<Option<String>> {
    let description = description
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    if let Some(d) = &description
        && (d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control))
    {
        return Err(DomainError::validation(
            "description",
            format!("at most {MAX_DESCRIPTION} characters, no control characters"),
        ));
    }
    Ok(description)
}

async fn check_url(state: &AppState, url: &str) -> DomainResult<String> {
    if url.len() > MAX_URL {
        return Err(DomainError::validation(
            "url",
            format!("at most {MAX_URL} characters"),
        ));
    }
    safety::check_url(url, state.webhooks.allow())
        .await
        .map(|url| url.to_string())
        .map_err(|refused| DomainError::validation("url", refused.0))
}

fn parse_id(raw: &str) -> DomainResult<WebhookId> {
    raw.parse()
        .map_err(|_| DomainError::not_found(format!("webhook {raw}")))
}

async fn record(state: &AppState, id: &WebhookId) -> DomainResult<WebhookRecord> {
    state
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("webhook {id}")))
}

pub async fn create(state: &AppState, request: CreateWebhook) -> DomainResult<Webhook> {
    let events = check_patterns(&request.events)?;
    let description = check_description(request.description)?;
    let url = check_url(state, &request.url).await?;
    let at = now();
    let secret = new_secret();
    let webhook = Webhook {
        id: WebhookId::generate(),
        url,
        events,
        description,
        status: WebhookStatus::Active,
        disabled_reason: None,
        secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_at: at,
        updated_at: at,
    };
    let event = NewEvent::now(EventData::WebhookCreated(WebhookEvent::new(&webhook, None)));
    let record = WebhookRecord {
        webhook: webhook.clone(),
        secret: secret.clone(),
        previous_secret: None,
    };
    state.store.insert_webhook(&record, vec![event]).await?;
    Ok(Webhook {
        secret: Some(secret),
        ..webhook
    })
}

pub async fn list(state: &AppState, limit: u32, offset: u64) -> DomainResult<Page<Webhook>> {
    let (items, total) = state.store.list_webhooks(limit, offset).await?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

pub async fn get(state: &AppState, raw: &str) -> DomainResult<Webhook> {
    Ok(record(state, &parse_id(raw)?).await?.webhook)
}

pub async fn update(state: &AppState, raw: &str, request: UpdateWebhook) -> DomainResult<Webhook> {
    let id = parse_id(raw)?;
    let mut webhook = record(state, &id).await?.webhook;
    if let Some(events) = &request.events {
        webhook.events = check_patterns(events)?;
    }
    if request.description.is_some() {
        webhook.description = check_description(request.description)?;
    }
    if let Some(url) = &request.url {
        webhook.url = check_url(state, url).await?;
    }
    if let Some(status) = request.status {
        if status == WebhookStatus::Active {
            webhook.disabled_reason = None;
            webhook.failing_since = None;
        } else if webhook.status == WebhookStatus::Active {
            webhook.disabled_reason = Some("disabled by staff".to_owned());
        }
        webhook.status = status;
    }
    webhook.updated_at = now();
    let event = NewEvent::now(EventData::WebhookUpdated(WebhookEvent::new(&webhook, None)));
    if !state.store.update_webhook(&webhook, vec![event]).await? {
        return Err(DomainError::not_found(format!("webhook {id}")));
    }
    state.webhooks.forget(&id);
    state.webhooks.wake();
    Ok(webhook)
}

pub async fn delete(state: &AppState, raw: &str) -> DomainResult<()> {
    let id = parse_id(raw)?;
    let webhook = record(state, &id).await?.webhook;
    let event = NewEvent::now(EventData::WebhookDeleted(WebhookEvent::new(&webhook, None)));
    if !state.store.delete_webhook(&id, vec![event]).await? {
        return Err(DomainError::not_found(format!("webhook {id}")));
    }
    state.webhooks.forget(&id);
    Ok(())
}

pub async fn rotate_secret(state: &AppState, raw: &str) -> DomainResult<Webhook> {
    let id = parse_id(raw)?;
    let webhook = record(state, &id).await?.webhook;
    let secret = new_secret();
    let at = now();
    let overlap = time::Duration::seconds(state.config.webhooks.rotation_overlap_seconds as i64);
    let event = NewEvent::now(EventData::WebhookSecretRotated(WebhookEvent::new(
        &webhook, None,
    )));
    let rotated = state
        .store
        .rotate_webhook_secret(&id, secret.clone(), at + overlap, at, vec![event])
        .await?
        .ok_or_else(|| DomainError::not_found(format!("webhook {id}")))?;
    Ok(Webhook {
        secret: Some(secret),
        ..rotated
    })
}

pub async fn deliveries(
    state: &AppState,
    raw: &str,
    query: WebhookDeliveryQuery,
) -> DomainResult<Page<WebhookDelivery>> {
    let id = parse_id(raw)?;
    record(state, &id).await?;
    let (items, total) = state.store.webhook_deliveries(&id, &query).await?;
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

fn replay_events(webhook: WebhookId) -> crate::store::ReplayEvents {
    Box::new(move |ids: &[WebhookDeliveryId]| {
        vec![NewEvent::now(EventData::WebhookDeliveryReplayed(
            WebhookReplayEvent {
                webhook_id: webhook,
                deliveries: ids.to_vec(),
            },
        ))]
    })
}

/// Queues one delivery again, whatever its status, unless an attempt of it
/// is under way (409). Its `webhook-id` stays the same.
pub async fn replay_one(
    state: &AppState,
    raw: &str,
    delivery: &str,
) -> DomainResult<WebhookDelivery> {
    let id = parse_id(raw)?;
    let missing = || DomainError::not_found(format!("delivery {delivery} of webhook {id}"));
    let delivery_id: WebhookDeliveryId = delivery.parse().map_err(|_| missing())?;
    record(state, &id).await?;
    if state
        .store
        .webhook_delivery(&id, &delivery_id)
        .await?
        .is_none()
    {
        return Err(missing());
    }
    let replayed = state
        .store
        .replay_deliveries(
            &id,
            ReplaySelection::One(delivery_id.clone()),
            now(),
            replay_events(id.clone()),
        )
        .await?;
    // The delivery as the replay left it: once the dispatcher is woken it
    // may be claimed at once, and a read after that would show the attempt.
    let Some(queued) = replayed.into_iter().next() else {
        return Err(DomainError::conflict(
            "delivery_in_flight",
            "an attempt of this delivery is under way; replay it once it has finished",
        ));
    };
    state.webhooks.wake();
    Ok(queued)
}

/// Queues again every failed or dead delivery of the endpoint created since `since`.
pub async fn replay_since(
    state: &AppState,
    raw: &str,
    since: OffsetDateTime,
) -> DomainResult<ReplayResult> {
    let id = parse_id(raw)?;
    record(state, &id).await?;
    let replayed = state
        .store
        .replay_deliveries(
            &id,
            ReplaySelection::FailedSince(since),
            now(),
            replay_events(id.clone()),
        )
        .await?;
    if !replayed.is_empty() {
        state.webhooks.wake();
    }
    Ok(ReplayResult {
        replayed: replayed.len() as u64,
    })
}

/// Logs a `webhook.test` event for the endpoint; it is delivered like any
/// other event, to that endpoint only.
pub async fn test(state: &AppState, raw: &str) -> DomainResult<TestResult> {
    let id = parse_id(raw)?;
    let webhook = record(state, &id).await?.webhook;
    if webhook.status != WebhookStatus::Active {
        return Err(DomainError::conflict(
            "webhook_disabled",
            "the endpoint is disabled; enable it before testing it",
        ));
    }
    let event = NewEvent::now(EventData::WebhookTest(WebhookTestEvent {
        webhook_id: id.clone(),
        message: "A test event from shop webhook test".to_owned(),
    }));
    let event_id = state
        .store
        .log_webhook_test(&id, event)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("webhook {id}")))?;
    Ok(TestResult { event_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn webhook(patterns: &[&str]) -> Webhook {
        let at = OffsetDateTime::UNIX_EPOCH;
        Webhook {
            id: WebhookId::generate(),
            url: "https://example.com/hooks".to_owned(),
            events: patterns.iter().map(|p| (*p).to_owned()).collect(),
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

    fn event(id: u64, kind: &str, data: serde_json::Value) -> Event {
        Event {
            id,
            kind: kind.to_owned(),
            occurred_at: OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1),
            data,
        }
    }

    #[test]
    fn patterns_match_exact_types_prefixes_and_everything() {
        assert!(pattern_matches("order.*", "order.paid"));
        assert!(pattern_matches("order.paid", "order.paid"));
        assert!(!pattern_matches("order.paid", "order.shipped"));
        assert!(!pattern_matches("order.*", "orders.paid"));
        assert!(pattern_matches("*", "inventory.low_stock"));
        assert!(pattern_matches(
            "inventory.low_stock",
            "inventory.low_stock"
        ));
    }

    #[test]
    fn patterns_are_checked_against_the_known_types() {
        let ok = check_patterns(&[
            "order.*".into(),
            "inventory.low_stock".into(),
            "*".into(),
            "order.*".into(),
        ])
        .expect("valid");
        assert_eq!(ok, ["order.*", "inventory.low_stock", "*"]);
        for bad in [
            "",
            "order.eaten",
            "orders.*",
            "webhook.*",
            "webhook.test",
            "order.pa*",
            "ORDER.*",
        ] {
            assert!(check_patterns(&[bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(check_patterns(&[]).is_err());
    }

    #[test]
    fn deliveries_are_planned_per_matching_active_endpoint_and_tests_go_to_their_endpoint_only() {
        let orders = webhook(&["order.*"]);
        let all = webhook(&["*"]);
        let mut off = webhook(&["*"]);
        off.status = WebhookStatus::Disabled;
        let mut late = webhook(&["*"]);
        late.created_at = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(2);
        let test = event(
            3,
            "webhook.test",
            json!({"webhook_id": orders.id, "message": "hi"}),
        );
        let events = vec![
            event(1, "order.paid", json!({})),
            event(2, "user.registered", json!({})),
            test,
            event(4, "webhook.disabled", json!({})),
        ]
        .into_iter()
        .map(Arc::new)
        .collect::<Vec<_>>();
        let hooks = vec![orders.clone(), all.clone(), off, late];
        let planned: Vec<(u64, WebhookId)> = plan(&hooks, &events, OffsetDateTime::UNIX_EPOCH)
            .into_iter()
            .map(|d| (d.event_id, d.webhook_id))
            .collect();
        assert_eq!(
            planned,
            vec![
                (1, orders.id.clone()),
                (1, all.id.clone()),
                (2, all.id.clone()),
                (3, orders.id.clone()),
            ]
        );
    }

    fn settings() -> WebhooksConfig {
        WebhooksConfig {
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            give_up_seconds: 3600,
            ..WebhooksConfig::default()
        }
    }

    fn status(code: u16) -> Answer {
        Answer::Status {
            code,
            retry_after: None,
            excerpt: String::new(),
        }
    }

    #[test]
    fn answers_decide_success_retry_give_up_and_disable() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let s = settings();
        let ok = decide(&status(204), 1, start, Some(start), start, &s, 0.5);
        assert_eq!(ok.outcome, DeliveryOutcome::Succeeded { status: 204 });
        assert_eq!(ok.endpoint, EndpointChange::Answered);

        let failed = decide(&status(500), 1, start, None, start, &s, 1.0);
        assert_eq!(
            failed.outcome,
            DeliveryOutcome::Retry {
                status: Some(500),
                error: "HTTP 500".to_owned(),
                at: start + time::Duration::seconds(1)
            }
        );
        assert_eq!(failed.endpoint, EndpointChange::Failing);
        assert!(failed.failure);

        // A retry that would fall outside the window is a give-up.
        let late = start + time::Duration::seconds(3599);
        let dead = decide(&status(502), 9, start, Some(start), late, &s, 1.0);
        assert!(matches!(
            dead.outcome,
            DeliveryOutcome::Dead {
                status: Some(502),
                ..
            }
        ));
        // Failing for the whole window disables the endpoint.
        let hour = start + time::Duration::seconds(3600);
        let disabled = decide(
            &Answer::Unanswered("timed out".into()),
            9,
            hour,
            Some(start),
            hour,
            &s,
            1.0,
        );
        assert!(
            matches!(disabled.endpoint, EndpointChange::Disable(ref r) if r.contains("1 hours"))
        );

        let gone = decide(&status(410), 1, start, None, start, &s, 0.0);
        assert!(matches!(
            gone.outcome,
            DeliveryOutcome::Dead {
                status: Some(410),
                ..
            }
        ));
        assert!(matches!(gone.endpoint, EndpointChange::Disable(_)));
        let refused = decide(
            &Answer::Refused("private".into()),
            1,
            start,
            None,
            start,
            &s,
            0.0,
        );
        assert!(matches!(refused.endpoint, EndpointChange::Disable(_)));
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let s = settings();
        let wait = |code| Answer::Status {
            code,
            retry_after: Some(Duration::from_secs(120)),
            excerpt: "slow down".to_owned(),
        };
        for code in [429, 503] {
            let v = decide(&wait(code), 1, start, None, start, &s, 0.0);
            assert!(
                matches!(v.outcome, DeliveryOutcome::Retry { at, .. } if at == start + time::Duration::seconds(120)),
                "{code}"
            );
        }
        let v = decide(&wait(500), 1, start, None, start, &s, 0.0);
        assert!(
            matches!(v.outcome, DeliveryOutcome::Retry { at, ref error, .. }
            if at == start + time::Duration::milliseconds(500) && error == "HTTP 500: slow down")
        );
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(90)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
