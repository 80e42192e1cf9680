//! The dispatcher: claims due deliveries, POSTs them signed, records the
//! outcomes.
//!
//! One round claims a batch in event id order (none of an endpoint whose
//! breaker is open, one probe of a half-open one), sends each endpoint's
//! share in event order with at most `max_in_flight_per_endpoint` attempts
//! under way (different endpoints concurrently), and commits every outcome
//! in one transaction. Rounds repeat while there is due work; then the
//! dispatcher sleeps until the feeder wakes it or the poll interval passes.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use futures::future::join_all;
use rand::Rng;
use shop_wire::events::{EventData, WebhookDeliveryEvent, WebhookEvent};
use shop_wire::webhooks::{WebhookId, WebhookStatus, signature_header};

use super::domain::{Answer, EndpointChange, decide, parse_retry_after};
use super::safety;
use crate::state::AppState;
use crate::store::{
    ClaimedDelivery, DeliveryCompletion, DeliveryOutcome, EndpointEffect, NewEvent, now,
};

pub const DISPATCHER: &str = "webhook_dispatcher";
/// The most of an answer's body kept (for `last_error`); the rest is not read.
const BODY_LIMIT: usize = 4096;
/// The part of it shown in `last_error`.
const EXCERPT: usize = 200;

pub fn spawn(state: &AppState) {
    let worker_state = state.clone();
    state
        .workers
        .spawn_periodic(DISPATCHER, Duration::from_millis(10), move || {
            let state = worker_state.clone();
            async move {
                let result = pass(&state).await;
                if result.is_err() {
                    let poll = Duration::from_millis(state.webhooks.settings().poll_interval_ms);
                    tokio::select! {
                        () = tokio::time::sleep(poll) => {}
                        () = state.shutdown.cancelled() => {}
                    }
                }
                result
            }
        });
}

/// One run: drain what is due, publish the backlog, wait.
async fn pass(state: &AppState) -> anyhow::Result<()> {
    loop {
        if state.shutdown.is_cancelled() {
            return Ok(());
        }
        if round(state).await? == 0 {
            break;
        }
    }
    metrics::gauge!("shop_webhook_backlog").set(state.store.webhook_backlog().await? as f64);
    let poll = Duration::from_millis(state.webhooks.settings().poll_interval_ms);
    tokio::select! {
        () = state.webhooks.woken() => {}
        () = tokio::time::sleep(poll) => {}
        () = state.shutdown.cancelled() => {}
    }
    Ok(())
}

/// Claims, sends and records one batch; returns how many were claimed.
pub async fn round(state: &AppState) -> anyhow::Result<usize> {
    let settings = state.webhooks.settings();
    let allowances = state.webhooks.allowances();
    let excluded: Vec<WebhookId> = allowances
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(id, _)| id.clone())
        .collect();
    let probes: Vec<WebhookId> = allowances
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(id, _)| id)
        .collect();
    let at = now();
    let lease = time::Duration::milliseconds(settings.lease_ms as i64);
    let claimed = state
        .store
        .claim_deliveries(at, at + lease, settings.batch_size, excluded)
        .await?;
    let count = claimed.len();
    if count == 0 {
        return Ok(0);
    }
    // Per endpoint, in event order; a half-open endpoint gets its one probe.
    let mut groups: Vec<(WebhookId, Vec<ClaimedDelivery>)> = Vec::new();
    let mut index: HashMap<WebhookId, usize> = HashMap::new();
    let mut released = Vec::new();
    for claim in claimed {
        let id = claim.delivery.webhook_id.clone();
        let slot = *index.entry(id.clone()).or_insert_with(|| {
            groups.push((id.clone(), Vec::new()));
            groups.len() - 1
        });
        let group = &mut groups[slot].1;
        if probes.contains(&id) && !group.is_empty() {
            released.push((claim.delivery.id.clone(), claim.lease_until));
        } else {
            group.push(claim);
        }
    }
    if !released.is_empty() {
        state.store.release_deliveries(released).await?;
    }
    let in_flight = settings.max_in_flight_per_endpoint;
    let completions: Vec<DeliveryCompletion> = join_all(groups.into_iter().map(|(_, group)| {
        futures::stream::iter(group)
            .map(|claim| async move { attempt(state, claim).await })
            .buffered(in_flight)
            .collect::<Vec<_>>()
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    state.store.complete_deliveries(completions).await?;
    Ok(count)
}

/// Sends one claimed delivery and says how it went.
async fn attempt(state: &AppState, claim: ClaimedDelivery) -> DeliveryCompletion {
    let started = Instant::now();
    let answer = send(state, &claim).await;
    let elapsed = started.elapsed();
    let at = now();
    let delivery = &claim.delivery;
    let verdict = decide(
        &answer,
        delivery.attempts,
        claim.window_start,
        claim.webhook.failing_since,
        at,
        state.webhooks.settings(),
        rand::thread_rng().r#gen::<f64>(),
    );
    if verdict.failure {
        state.webhooks.on_failure(&delivery.webhook_id);
    } else {
        state.webhooks.on_answer(&delivery.webhook_id);
    }
    let outcome = match &verdict.outcome {
        DeliveryOutcome::Succeeded { .. } => "succeeded",
        DeliveryOutcome::Retry { .. } => "failed",
        DeliveryOutcome::Dead { .. } => "dead",
    };
    let webhook = delivery.webhook_id.to_string();
    metrics::counter!("shop_webhook_deliveries_total", "webhook" => webhook.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("shop_webhook_delivery_seconds", "webhook" => webhook)
        .record(elapsed.as_secs_f64());
    let mut events = Vec::new();
    if let DeliveryOutcome::Dead { error, .. } = &verdict.outcome {
        tracing::warn!(delivery = %delivery.id, webhook = %delivery.webhook_id, event = delivery.event_id, error, "webhook delivery given up");
        events.push(NewEvent::now(EventData::WebhookDeliveryDead(
            WebhookDeliveryEvent {
                id: delivery.id.clone(),
                webhook_id: delivery.webhook_id.clone(),
                event_id: delivery.event_id,
                event_type: delivery.event_type.clone(),
                attempts: delivery.attempts,
                error: Some(error.clone()),
            },
        )));
    }
    let endpoint = match verdict.endpoint {
        EndpointChange::Answered => EndpointEffect::Answered,
        EndpointChange::Failing => EndpointEffect::Failing,
        EndpointChange::Disable(reason) => {
            tracing::warn!(webhook = %delivery.webhook_id, reason, "disabling a webhook endpoint");
            let mut webhook = claim.webhook.clone();
            webhook.status = WebhookStatus::Disabled;
            EndpointEffect::Disable {
                event: Box::new(NewEvent::now(EventData::WebhookDisabled(
                    WebhookEvent::new(&webhook, Some(&reason)),
                ))),
                reason,
            }
        }
    };
    DeliveryCompletion {
        id: delivery.id.clone(),
        webhook_id: delivery.webhook_id.clone(),
        lease_until: claim.lease_until,
        finished_at: at,
        duration_ms: elapsed.as_millis() as u64,
        outcome: verdict.outcome,
        endpoint,
        events,
    }
}

/// POSTs the event, signed, and reads at most [`BODY_LIMIT`] of the answer.
async fn send(state: &AppState, claim: &ClaimedDelivery) -> Answer {
    let allow = state.webhooks.allow();
    let url = match safety::check_syntax(&claim.webhook.url, allow) {
        Ok((url, _)) => url,
        Err(refused) => return Answer::Refused(refused.0),
    };
    // A literal address is connected to without the resolver: check it here.
    if let Some(host) = url.host_str() {
        let port = url.port_or_known_default().unwrap_or(443);
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>()
            && !allow.allows(host, port)
            && !safety::is_public(ip)
        {
            return Answer::Refused(format!("{ip} is not a public address"));
        }
    }
    let id = claim.delivery.id.as_str();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = match signature_header(&claim.secrets, id, timestamp, claim.body.as_bytes()) {
        Ok(signature) => signature,
        Err(err) => return Answer::Refused(format!("the endpoint's secret cannot sign: {err}")),
    };
    let sent = state
        .webhooks
        .client()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(claim.body.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => return no_answer(&err),
    };
    let code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let mut body = Vec::new();
    while body.len() < BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            // A body cut short does not change the answer's status.
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(BODY_LIMIT);
    let text = String::from_utf8_lossy(&body);
    let excerpt: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(EXCERPT)
        .collect();
    Answer::Status {
        code,
        retry_after,
        excerpt,
    }
}

/// Why no answer came, in a line: the resolver's refusal, a timeout, a failed connection.
fn no_answer(err: &reqwest::Error) -> Answer {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(cause) = source {
        let text = cause.to_string();
        if text.contains("resolves to no public address") {
            return Answer::Refused(text);
        }
        innermost = text;
        source = cause.source();
    }
    if err.is_timeout() {
        Answer::Unanswered("timed out".to_owned())
    } else if err.is_connect() {
        Answer::Unanswered(format!("cannot connect: {innermost}"))
    } else {
        Answer::Unanswered(innermost)
    }
}
