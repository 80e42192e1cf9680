//! The dispatcher: claims due deliveries, POSTs them signed, records the
//! outcomes.
//!
//! A round claims a batch in event id order (none of an endpoint whose
//! breaker is open or whose lane is still under way, one probe of a
//! half-open one) and starts a lane per endpoint: a task that sends the
//! endpoint's share in event order with at most `max_in_flight_per_endpoint`
//! attempts under way and commits its outcomes in one transaction. A slow
//! endpoint therefore delays only itself. Rounds repeat while there is due
//! work; then the dispatcher waits for a lane to end, the feeder's wake-up
//! or the poll interval.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use futures::{FutureExt, StreamExt};
use rand::Rng;
use shop_wire::events::{EventData, WebhookDeliveryEvent, WebhookEvent};
use shop_wire::webhooks::{WebhookId, WebhookStatus, signature_header};
use tokio::task::JoinSet;

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
/// How often the backlog gauge is counted at most (a query), when idle.
const BACKLOG_EVERY: Duration = Duration::from_secs(1);

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

/// Endpoint lanes: each endpoint's claimed share is sent and recorded by a
/// task of its own, so a slow endpoint holds up only its own deliveries.
type Lanes = JoinSet<(WebhookId, anyhow::Result<()>)>;

/// One run: claim for every endpoint without a lane under way, start their
/// lanes, and wait for a lane to finish, a wake-up or the poll interval
/// whenever there is nothing more to claim. On shutdown the lanes under way
/// get one attempt's timeout to finish and record their outcomes.
async fn pass(state: &AppState) -> anyhow::Result<()> {
    let settings = state.webhooks.settings();
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let mut lanes = Lanes::new();
    let mut busy: HashSet<WebhookId> = HashSet::new();
    let mut published = Instant::now()
        .checked_sub(BACKLOG_EVERY)
        .unwrap_or_else(Instant::now);
    let result = loop {
        if state.shutdown.is_cancelled() {
            break Ok(());
        }
        while let Some(done) = lanes.try_join_next() {
            finished(done, &mut busy);
        }
        let (started, full) = match round(state, &busy, &mut lanes).await {
            Ok(round) => round,
            Err(err) => break Err(err),
        };
        busy.extend(started);
        // A batch short of full took every due delivery there was: claiming
        // again at once would only scan the queue to find nothing.
        if full {
            continue;
        }
        if lanes.is_empty() && published.elapsed() >= BACKLOG_EVERY {
            published = Instant::now();
            metrics::gauge!("shop_webhook_backlog")
                .set(state.store.webhook_backlog().await.unwrap_or_default() as f64);
        }
        tokio::select! {
            Some(done) = lanes.join_next(), if !lanes.is_empty() => finished(done, &mut busy),
            () = state.webhooks.woken() => {}
            () = tokio::time::sleep(poll) => {}
            () = state.shutdown.cancelled() => {}
        }
    };
    let grace = Duration::from_millis(settings.timeout_ms) + Duration::from_secs(1);
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = lanes.join_next().await {
            finished(done, &mut busy);
        }
    })
    .await;
    if drained.is_err() {
        // Their deliveries' leases run out and they are attempted again.
        lanes.abort_all();
    }
    result
}

fn finished(
    done: Result<(WebhookId, anyhow::Result<()>), tokio::task::JoinError>,
    busy: &mut HashSet<WebhookId>,
) {
    match done {
        Ok((id, result)) => {
            busy.remove(&id);
            if let Err(err) = result {
                // The leases run out and the deliveries are attempted again.
                tracing::warn!(webhook = %id, error = format!("{err:#}"), "recording webhook deliveries failed");
            }
        }
        // Lanes catch their own panics: only an abort (at shutdown) ends here.
        Err(err) => tracing::warn!(error = %err, "a webhook delivery lane was stopped"),
    }
}

/// Claims a batch for the endpoints not in `busy` and starts a lane per
/// endpoint; returns the endpoints whose lanes started, and whether the
/// batch was full (more may be due).
pub async fn round(
    state: &AppState,
    busy: &HashSet<WebhookId>,
    lanes: &mut Lanes,
) -> anyhow::Result<(Vec<WebhookId>, bool)> {
    let settings = state.webhooks.settings();
    let allowances = state.webhooks.allowances();
    let mut excluded: Vec<WebhookId> = allowances
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(id, _)| id.clone())
        .collect();
    excluded.extend(busy.iter().cloned());
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
    if claimed.is_empty() {
        return Ok((Vec::new(), false));
    }
    let claimed_count = claimed.len();
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
    let full = claimed_count >= settings.batch_size as usize;
    let in_flight = settings.max_in_flight_per_endpoint;
    let mut started = Vec::with_capacity(groups.len());
    for (id, group) in groups {
        let state = state.clone();
        started.push(id.clone());
        lanes.spawn(async move {
            let lane = async {
                let completions: Vec<DeliveryCompletion> = futures::stream::iter(group)
                    .map(|claim| attempt(&state, claim))
                    .buffered(in_flight)
                    .collect()
                    .await;
                state.store.complete_deliveries(completions).await
            };
            // A panic ends the lane, not the endpoint: it becomes claimable
            // again, and its deliveries once their leases run out.
            let recorded = match std::panic::AssertUnwindSafe(lane).catch_unwind().await {
                Ok(recorded) => recorded.map(|_| ()).map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("a webhook delivery lane panicked")),
            };
            (id, recorded)
        });
    }
    Ok((started, full))
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
