//! Outbound webhooks (`/api/webhooks`), the way Standard Webhooks, Stripe
//! and Shopify do them.
//!
//! Endpoints subscribe to event patterns. The feeder ([`feeder`]) follows the
//! durable event log from a cursor kept in the store and queues one delivery
//! per matching endpoint and event, in the same transaction as the cursor
//! move, deduplicated by (endpoint, event): at least once, never twice, and
//! never in the request that caused the event. The dispatcher
//! ([`dispatcher`]) claims due deliveries with a lease, POSTs each event
//! signed with the endpoint's secret, and records every outcome; a crash
//! mid-attempt leaves a lease that runs out, and the delivery is attempted
//! again with the same `webhook-id`. Outbound addresses are checked
//! ([`safety`]) when an endpoint is saved and again on every connection.

pub mod dispatcher;
pub mod domain;
pub mod feeder;
mod handlers;
pub mod safety;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shop_wire::health::Check;
use shop_wire::webhooks::WebhookId;
use shop_wire::{HealthStatus, ServiceHealth};
use tokio::sync::Notify;
use tokio::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::breaker::{Breaker, BreakerState};
use crate::config::WebhooksConfig;
use crate::services::health::HealthReport;
use crate::state::AppState;
use safety::{AllowList, GuardedResolver};

pub const NAME: &str = "webhooks";

/// What the service shares between its handlers and workers.
#[derive(Clone)]
pub struct Webhooks(Arc<Inner>);

struct Inner {
    settings: WebhooksConfig,
    allow: AllowList,
    client: reqwest::Client,
    wake: Notify,
    /// A circuit breaker per endpoint, made on its first failure.
    breakers: Mutex<HashMap<WebhookId, Breaker>>,
}

impl Webhooks {
    /// The delivery client: the address guard as its resolver, no proxy
    /// (a proxy would resolve names itself), no redirects (a redirect is
    /// an answer, and could point inside), the configured timeouts.
    pub fn new(settings: &WebhooksConfig) -> Self {
        // The config was validated before the server started.
        let allow = AllowList::parse(&settings.allow_hosts).unwrap_or_default();
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::shared(allow.clone()))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.timeout_ms))
            .pool_max_idle_per_host(settings.max_in_flight_per_endpoint)
            .user_agent(concat!("shop-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds: its TLS backend is compiled in");
        Webhooks(Arc::new(Inner {
            settings: settings.clone(),
            allow,
            client,
            wake: Notify::new(),
            breakers: Mutex::default(),
        }))
    }

    pub fn settings(&self) -> &WebhooksConfig {
        &self.0.settings
    }

    pub fn allow(&self) -> &AllowList {
        &self.0.allow
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.0.client
    }

    /// Wakes the dispatcher: there is new work.
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    async fn woken(&self) {
        self.0.wake.notified().await;
    }

    fn with_breaker<T>(&self, id: &WebhookId, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut all = self
            .0
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let settings = &self.0.settings;
        let breaker = all.entry(id.clone()).or_insert_with(|| {
            Breaker::new(
                settings.breaker_threshold,
                Duration::from_millis(settings.breaker_cooldown_ms),
            )
        });
        let before = breaker.state();
        let out = f(breaker);
        let after = breaker.state();
        if before != after {
            tracing::warn!(webhook = %id, from = before.as_str(), to = after.as_str(), "webhook circuit breaker");
            metrics::gauge!("shop_webhook_circuit_state", "webhook" => id.to_string())
                .set(after.gauge());
        }
        out
    }

    /// The endpoints whose breaker is not closed, each with how many
    /// deliveries may go to it now (0 while open, 1 probe when half-open).
    pub fn allowances(&self) -> Vec<(WebhookId, u32)> {
        self.troubled()
            .into_iter()
            .map(|id| {
                let allowed = self.with_breaker(&id, |b| b.allowance(Instant::now(), 1));
                (id, allowed)
            })
            .collect()
    }

    /// The endpoints whose breaker is open or half-open, without touching them.
    pub fn troubled(&self) -> Vec<WebhookId> {
        self.0
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, b)| b.state() != BreakerState::Closed)
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn on_answer(&self, id: &WebhookId) {
        let known = self
            .0
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id);
        if known {
            self.with_breaker(id, Breaker::on_answer);
        }
    }

    pub fn on_failure(&self, id: &WebhookId) {
        self.with_breaker(id, |b| b.on_transient_failure(Instant::now()));
    }

    /// Drops an endpoint's breaker (it was deleted, or enabled again).
    pub fn forget(&self, id: &WebhookId) {
        self.0
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create, handlers::list))
        .routes(routes!(handlers::get, handlers::update, handlers::delete))
        .routes(routes!(handlers::deliveries))
        .routes(routes!(handlers::replay_one))
        .routes(routes!(handlers::replay_since))
        .routes(routes!(handlers::test))
        .routes(routes!(handlers::rotate_secret))
}

pub fn spawn_workers(state: &AppState) {
    feeder::spawn(state);
    dispatcher::spawn(state);
}

pub async fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.add_worker(&state.workers, feeder::FEEDER);
    report.add_worker(&state.workers, dispatcher::DISPATCHER);
    report.add(
        "backlog",
        match state.store.webhook_backlog().await {
            Ok(waiting) => Check {
                status: HealthStatus::Ok,
                message: Some(format!("{waiting} deliveries waiting")),
            },
            Err(err) => Check {
                status: HealthStatus::Down,
                message: Some(err.to_string()),
            },
        },
    );
    let open: Vec<String> = state
        .webhooks
        .troubled()
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    report.add(
        "endpoints",
        Check {
            status: if open.is_empty() {
                HealthStatus::Ok
            } else {
                HealthStatus::Degraded
            },
            message: Some(if open.is_empty() {
                "every circuit closed".to_owned()
            } else {
                format!("circuit open for {}", open.join(", "))
            }),
        },
    );
    report.finish()
}
