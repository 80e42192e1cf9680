//! The dispatcher: claims due notifications, renders and sends them, records
//! the outcomes.
//!
//! One round claims up to a batch per channel (a single probe for a channel
//! whose breaker is half-open, none for an open one), sends the batch
//! concurrently and commits every outcome, with its event and any local-sink
//! record, in one transaction. Rounds repeat while there is due work; then the
//! dispatcher sleeps until woken by an enqueue or the poll interval passes.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::Rng;
use shop_wire::backoff::Backoff;
use shop_wire::events::{EventData, EventKind, MakeEvent};
use shop_wire::notifications::{Channel, Notification};

use super::channels::{Outgoing, SendError, Sent};
use super::domain::{find_template, status_event};
use super::templates;
use crate::config::NotificationsConfig;
use crate::state::AppState;
use crate::store::{AttemptOutcome, Completion, now};

pub const DISPATCHER: &str = "notification_dispatcher";

pub fn spawn(state: &AppState) {
    let worker_state = state.clone();
    // Each run drains the queue and then waits for a wake-up; the interval
    // only spaces runs after a failed one.
    state
        .workers
        .spawn_periodic(DISPATCHER, Duration::from_millis(10), move || {
            let state = worker_state.clone();
            async move {
                let result = pass(&state).await;
                if result.is_err() {
                    // Back off a little rather than spin on a failing database.
                    let poll =
                        Duration::from_millis(state.notifications.settings().poll_interval_ms);
                    tokio::select! {
                        () = tokio::time::sleep(poll) => {}
                        () = state.shutdown.cancelled() => {}
                    }
                }
                result
            }
        });
}

/// The wait before retry number `attempt` (1 = the first retry), by the
/// project's one backoff (equal jitter) with the configured base and cap.
pub fn backoff(settings: &NotificationsConfig, attempt: u32, jitter: f64) -> Duration {
    Backoff::new(
        Duration::from_millis(settings.retry_base_ms),
        Duration::from_millis(settings.retry_max_ms),
    )
    .delay(attempt, jitter)
}

/// One run of the dispatcher: recover expired leases, drain what is due, wait.
async fn pass(state: &AppState) -> anyhow::Result<()> {
    let notifier = &state.notifications;
    let released = state.store.release_expired_leases(now()).await?;
    if released > 0 {
        tracing::warn!(
            released,
            "re-queued notifications whose send was interrupted"
        );
    }
    loop {
        if state.shutdown.is_cancelled() {
            return Ok(());
        }
        if round(state).await? == 0 {
            break;
        }
    }
    publish_depth(state).await?;
    let poll = Duration::from_millis(notifier.settings().poll_interval_ms);
    tokio::select! {
        () = notifier.0.wake.notified() => {}
        () = tokio::time::sleep(poll) => {}
        () = state.shutdown.cancelled() => {}
    }
    Ok(())
}

async fn publish_depth(state: &AppState) -> anyhow::Result<()> {
    for (priority, depth) in state.store.queue_depth().await? {
        metrics::gauge!("shop_notifications_queue_depth", "priority" => priority.as_str())
            .set(depth as f64);
    }
    Ok(())
}

/// Claims, sends and records one batch; returns how many were claimed.
pub async fn round(state: &AppState) -> anyhow::Result<usize> {
    let notifier = &state.notifications;
    let settings = notifier.settings();
    let limits: Vec<(Channel, u32)> = Channel::ALL
        .iter()
        .map(|c| (*c, notifier.breakers().allowance(*c, settings.batch_size)))
        .collect();
    if limits.iter().all(|(_, limit)| *limit == 0) {
        return Ok(0);
    }
    let at = now();
    let lease = time::Duration::milliseconds(settings.lease_ms as i64);
    let claimed = state
        .store
        .claim_notifications(at, at + lease, limits)
        .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let count = claimed.len();
    let completions = join_all(claimed.iter().map(|n| attempt(state, n))).await;
    state.store.complete_attempts(completions).await?;
    Ok(count)
}

/// Renders and sends one claimed notification, and says how it went.
async fn attempt(state: &AppState, n: &Notification) -> Completion {
    let started = Instant::now();
    let settings = state.notifications.settings();
    let (outcome, rendered, delivery) = match render(state, n).await {
        Err(outcome) => (outcome, None, None),
        Ok(rendered) => {
            let message = Outgoing {
                id: &n.id,
                channel: n.channel,
                recipient: &n.recipient,
                template: &n.template,
                rendered: &rendered,
            };
            let breakers = state.notifications.breakers();
            let (outcome, delivery) = match state.notifications.channels().send(&message).await {
                Ok(sent) => {
                    breakers.on_answer(n.channel);
                    let delivery = match sent {
                        Sent::Recorded(delivery) => Some(delivery),
                        Sent::Remote => None,
                    };
                    (AttemptOutcome::Sent, delivery)
                }
                Err(SendError::Permanent(error)) => {
                    breakers.on_answer(n.channel);
                    (
                        AttemptOutcome::Dead {
                            error,
                            permanent: true,
                        },
                        None,
                    )
                }
                Err(SendError::Transient(error)) => {
                    breakers.on_transient_failure(n.channel);
                    (retry_or_give_up(settings, n.attempts, error), None)
                }
            };
            (outcome, Some(rendered), delivery)
        }
    };
    let (kind, error): (MakeEvent<_>, _) = match &outcome {
        AttemptOutcome::Sent => (EventData::NotificationSent, None),
        AttemptOutcome::Retry { error, .. } => {
            (EventData::NotificationFailed, Some(error.as_str()))
        }
        AttemptOutcome::Dead { error, .. } => (EventData::NotificationDead, Some(error.as_str())),
    };
    let status = match &outcome {
        AttemptOutcome::Sent => EventKind::NotificationSent.action(),
        AttemptOutcome::Retry { .. } => EventKind::NotificationFailed.action(),
        AttemptOutcome::Dead { .. } => EventKind::NotificationDead.action(),
    };
    metrics::counter!("shop_notifications_total", "channel" => n.channel.as_str(), "outcome" => status)
        .increment(1);
    if let Some(error) = error {
        tracing::warn!(id = %n.id, channel = %n.channel, attempt = n.attempts, outcome = status, error, "notification not sent");
    }
    Completion {
        id: n.id.clone(),
        attempt: n.attempts,
        finished_at: now(),
        duration_ms: started.elapsed().as_millis() as u64,
        rendered,
        events: vec![status_event(kind, n, error)],
        outcome,
        delivery,
    }
}

/// The template rendered, or the outcome when it cannot be: a template that
/// is missing or fails to render (a variable not supplied) is permanent.
async fn render(
    state: &AppState,
    n: &Notification,
) -> Result<shop_wire::notifications::Rendered, AttemptOutcome> {
    let template = match find_template(state, &n.template, n.channel).await {
        Ok(Some(template)) => template,
        Ok(None) => {
            return Err(AttemptOutcome::Dead {
                error: format!("no template `{}` for the {} channel", n.template, n.channel),
                permanent: true,
            });
        }
        // The database hiccuped: not the notification's fault.
        Err(err) => {
            return Err(retry_or_give_up(
                state.notifications.settings(),
                n.attempts,
                format!("reading the template: {err}"),
            ));
        }
    };
    let vars = n.vars.clone().unwrap_or_default();
    templates::render(&template, &vars).map_err(|err| AttemptOutcome::Dead {
        error: format!("template {}: {err}", n.template),
        permanent: true,
    })
}

fn retry_or_give_up(
    settings: &NotificationsConfig,
    attempts: u32,
    error: String,
) -> AttemptOutcome {
    if attempts >= settings.max_attempts {
        AttemptOutcome::Dead {
            error: format!("gave up after {attempts} attempts: {error}"),
            permanent: false,
        }
    } else {
        let wait = backoff(settings, attempts, rand::thread_rng().r#gen::<f64>());
        AttemptOutcome::Retry {
            error,
            retry_at: now() + wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jitters_in_the_upper_half() {
        let settings = NotificationsConfig {
            retry_base_ms: 1000,
            retry_max_ms: 10_000,
            ..NotificationsConfig::default()
        };
        assert_eq!(backoff(&settings, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&settings, 1, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(&settings, 2, 0.0), Duration::from_millis(1000));
        assert_eq!(backoff(&settings, 3, 0.5), Duration::from_millis(3000));
        // 2^4 s would be 16 s: capped at 10 s.
        assert_eq!(backoff(&settings, 5, 1.0), Duration::from_millis(10_000));
        assert_eq!(backoff(&settings, 5, 0.0), Duration::from_millis(5_000));
        // Huge attempt numbers neither overflow nor exceed the cap.
        assert_eq!(
            backoff(&settings, u32::MAX, 1.0),
            Duration::from_millis(10_000)
        );
        for attempt in 1..10 {
            let low = backoff(&settings, attempt, 0.0);
            let high = backoff(&settings, attempt, 1.0);
            let mid = backoff(&settings, attempt, 0.37);
            assert!(low <= mid && mid <= high && high == low * 2);
        }
    }

    #[test]
    fn out_of_attempts_is_dead_otherwise_a_retry_is_scheduled() {
        let settings = NotificationsConfig {
            max_attempts: 3,
            ..NotificationsConfig::default()
        };
        assert!(matches!(
            retry_or_give_up(&settings, 2, "503".into()),
            AttemptOutcome::Retry { .. }
        ));
        match retry_or_give_up(&settings, 3, "503".into()) {
            AttemptOutcome::Dead { error, permanent } => {
                assert!(!permanent);
                assert!(
                    error.contains("3 attempts") && error.contains("503"),
                    "{error}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
