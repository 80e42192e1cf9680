//! The notifications service (`/api/notifications`): templates, channels, a
//! durable priority queue and reactions to the event log.
//!
//! A notification is a row in the store's queue from the moment it is
//! accepted. The dispatcher ([`queue`]) claims due rows with a lease, renders
//! and sends them concurrently, and records each outcome with its event in one
//! transaction; a crash mid-send leaves rows whose lease runs out and go back
//! to the queue, and every provider deduplicates by notification id, so each
//! is delivered at least once and recorded once. The reactor ([`reactions`])
//! follows the event log from a cursor kept in the store and turns events such
//! as `user.registered` into notifications.

pub mod channels;
pub mod domain;
mod handlers;
pub mod queue;
pub mod reactions;
pub mod rules;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use shop_wire::health::Check;
use shop_wire::notifications::{Channel, Template};
use shop_wire::{HealthStatus, ServiceHealth};
use tokio::sync::Notify;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::breaker::{BreakerKey, BreakerState};
use crate::config::NotificationsConfig;
use crate::services::health::HealthReport;
use crate::state::AppState;
use channels::Channels;

pub const NAME: &str = "notifications";

/// A circuit breaker per channel: an open one leaves its notifications
/// queued instead of burning their attempts on a provider that is down.
pub type Breakers = crate::breaker::Breakers<Channel>;

impl BreakerKey for Channel {
    fn label(self) -> &'static str {
        self.as_str()
    }
}

/// What the service shares between its handlers and workers.
#[derive(Clone)]
pub struct Notifier(Arc<Inner>);

struct Inner {
    settings: NotificationsConfig,
    wake: Notify,
    breakers: Breakers,
    channels: Channels,
    /// Templates by name and channel (`None`: no such template), so the
    /// dispatcher does not read one per notification. Saves invalidate it.
    templates: moka::sync::Cache<(String, Channel), Option<Template>>,
}

impl Notifier {
    pub fn new(settings: &NotificationsConfig) -> Self {
        Notifier(Arc::new(Inner {
            wake: Notify::new(),
            breakers: Breakers::new(
                "shop_notifications_circuit_state",
                "channel",
                Channel::ALL,
                settings.breaker_threshold,
                Duration::from_millis(settings.breaker_cooldown_ms),
            ),
            channels: Channels::from_config(settings),
            templates: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            settings: settings.clone(),
        }))
    }

    pub fn settings(&self) -> &NotificationsConfig {
        &self.0.settings
    }

    /// Wakes the dispatcher: there is new work (or it should look again).
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    pub fn breakers(&self) -> &Breakers {
        &self.0.breakers
    }

    pub fn channels(&self) -> &Channels {
        &self.0.channels
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list, handlers::send))
        .routes(routes!(handlers::templates, handlers::save_template))
        .routes(routes!(handlers::template))
        .routes(routes!(handlers::analytics))
        .routes(routes!(handlers::deliveries))
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::get))
        .routes(routes!(handlers::resend))
}

pub fn spawn_workers(state: &AppState) {
    queue::spawn(state);
    reactions::spawn(state);
}

pub async fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.add_worker(&state.workers, queue::DISPATCHER);
    report.add_worker(&state.workers, reactions::REACTOR);
    let notifier = &state.notifications;
    for channel in Channel::ALL {
        let breaker = notifier.breakers().state(*channel);
        let provider = notifier.channels().provider_name(*channel);
        report.add(
            &format!("channel:{channel}"),
            Check {
                status: match breaker {
                    BreakerState::Closed => HealthStatus::Ok,
                    BreakerState::HalfOpen | BreakerState::Open => HealthStatus::Degraded,
                },
                message: Some(format!("{provider}, circuit {}", breaker.as_str())),
            },
        );
    }
    report.add(
        "queue",
        match state.store.queue_depth().await {
            Ok(depth) => Check {
                status: HealthStatus::Ok,
                message: Some(format!("{} waiting", depth.values().sum::<u64>())),
            },
            Err(err) => Check {
                status: HealthStatus::Down,
                message: Some(err.to_string()),
            },
        },
    );
    report.finish()
}
