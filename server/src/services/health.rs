//! Health reports: each service builds one from real checks, `GET /health`
//! aggregates them, and the worst status wins.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use shop_wire::health::Check;
use shop_wire::{HealthStatus, ServiceHealth, SystemHealth};

use crate::gateway::json::ApiJson;
use crate::state::AppState;
use crate::workers::Supervisor;

/// A database that does not answer within this is reported down.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct HealthReport {
    service: &'static str,
    checks: BTreeMap<String, Check>,
}

impl HealthReport {
    pub fn new(service: &'static str) -> Self {
        HealthReport {
            service,
            checks: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, name: &str, check: Check) {
        self.checks.insert(name.to_owned(), check);
    }

    /// A worker that panicked and has not run successfully since (or is not
    /// running at all) degrades the service: it still serves, but something is wrong.
    pub fn add_worker(&mut self, workers: &Supervisor, worker: &'static str) {
        let check = match workers.status(worker) {
            Some(status) if status.healthy => Check {
                status: HealthStatus::Ok,
                message: None,
            },
            Some(status) => Check {
                status: HealthStatus::Degraded,
                message: Some(format!(
                    "restarted {} time(s) after a panic: {}",
                    status.restarts,
                    status.last_error.unwrap_or_default()
                )),
            },
            None => Check {
                status: HealthStatus::Degraded,
                message: Some("not running".to_owned()),
            },
        };
        self.add(&format!("worker:{worker}"), check);
    }

    pub fn finish(self) -> ServiceHealth {
        let status = self
            .checks
            .values()
            .map(|c| c.status)
            .max()
            .unwrap_or(HealthStatus::Ok);
        ServiceHealth {
            service: self.service.to_owned(),
            status,
            checks: self.checks,
        }
    }
}

pub async fn database_check(state: &AppState) -> Check {
    match tokio::time::timeout(DATABASE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Check {
            status: HealthStatus::Ok,
            message: Some(state.store.backend().to_owned()),
        },
        Ok(Err(err)) => Check {
            status: HealthStatus::Down,
            message: Some(err.to_string()),
        },
        Err(_) => Check {
            status: HealthStatus::Down,
            message: Some("no answer within 2s".to_owned()),
        },
    }
}

/// 200 while a service can serve (ok or degraded), 503 when it is down.
pub fn respond<T: serde::Serialize>(status: HealthStatus, health: T) -> (StatusCode, ApiJson<T>) {
    let code = if status == HealthStatus::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, ApiJson(health))
}

/// The platform's own machinery that no single service owns: the event log
/// and the gateway's sweeper.
async fn platform(state: &AppState) -> ServiceHealth {
    let mut report = HealthReport::new("platform");
    report.add("database", database_check(state).await);
    report.add_worker(&state.workers, crate::gateway::GATEWAY_SWEEPER);
    report.finish()
}

/// Every registered service's health and the worst of them.
#[utoipa::path(get, path = "/health", tag = "platform",
    responses((status = 200, body = SystemHealth), (status = 503, body = SystemHealth)))]
pub async fn system(State(state): State<AppState>) -> (StatusCode, ApiJson<SystemHealth>) {
    let (
        platform,
        users,
        products,
        search,
        inventory,
        notifications,
        cart,
        orders,
        payments,
        webhooks,
    ) = tokio::join!(
        platform(&state),
        super::users::health(&state),
        super::products::health(&state),
        super::search::health(&state),
        super::inventory::health(&state),
        super::notifications::health(&state),
        super::cart::health(&state),
        super::orders::health(&state),
        super::payments::health(&state),
        super::webhooks::health(&state)
    );
    let services = vec![
        platform,
        users,
        products,
        search,
        inventory,
        notifications,
        cart,
        orders,
        payments,
        webhooks,
    ];
    let status = services
        .iter()
        .map(|s| s.status)
        .max()
        .unwrap_or(HealthStatus::Ok);
    respond(
        status,
        SystemHealth {
            status,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: state.started.elapsed().as_secs(),
            services,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    #[tokio::test(start_paused = true)]
    async fn a_panicked_worker_degrades_its_service_until_it_runs_again() {
        let workers = Supervisor::new(CancellationToken::new());
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = runs.clone();
        workers.spawn_periodic("sweeper", Duration::from_secs(1), move || {
            let run = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                assert!(run != 1, "the second run panics");
                Ok(())
            }
        });
        let report = |workers: &Supervisor| {
            let mut report = HealthReport::new("users");
            report.add_worker(workers, "sweeper");
            report.add_worker(workers, "never_started");
            report.finish()
        };
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let health = report(&workers);
        assert_eq!(health.status, HealthStatus::Degraded);
        let check = &health.checks["worker:sweeper"];
        assert_eq!(check.status, HealthStatus::Degraded);
        assert!(
            check
                .message
                .as_deref()
                .is_some_and(|m| m.contains("the second run panics")),
            "{check:?}"
        );
        assert_eq!(
            health.checks["worker:never_started"].status,
            HealthStatus::Degraded
        );
        let (code, _) = respond(health.status, health);
        assert_eq!(code, StatusCode::OK, "degraded still serves");

        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            report(&workers).checks["worker:sweeper"].status,
            HealthStatus::Ok
        );
        workers.shutdown().await;
    }
}
