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

/// Whether the database answers: one cheap round trip that sends the
/// writer no transaction (see [`crate::store::Store::ping`]). `GET /health`
/// runs it once and shares it among the services' reports, so a load
/// balancer polling every second costs a few reads a second and no write.
pub async fn database_check(state: &AppState) -> Check {
    answered(state.store.ping(), state.store.backend()).await
}

/// The check a ping's outcome makes, or `down` when it takes too long.
async fn answered(
    ping: impl std::future::Future<Output = crate::store::StoreResult<()>>,
    backend: &str,
) -> Check {
    match tokio::time::timeout(DATABASE_TIMEOUT, ping).await {
        Ok(Ok(())) => Check {
            status: HealthStatus::Ok,
            message: Some(backend.to_owned()),
        },
        Ok(Err(err)) => Check {
            status: HealthStatus::Down,
            message: Some(err.to_string()),
        },
        Err(_) => Check {
            status: HealthStatus::Down,
            message: Some(format!("no answer within {}s", DATABASE_TIMEOUT.as_secs())),
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
fn platform(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new("platform");
    report.add("database", database);
    report.add_worker(&state.workers, crate::gateway::GATEWAY_SWEEPER);
    report.finish()
}

/// Every registered service's health and the worst of them.
#[utoipa::path(get, path = "/health", tag = "platform",
    responses((status = 200, body = SystemHealth), (status = 503, body = SystemHealth)))]
pub async fn system(State(state): State<AppState>) -> (StatusCode, ApiJson<SystemHealth>) {
    let database = database_check(&state).await;
    let (notifications, webhooks) = tokio::join!(
        super::notifications::health(&state, database.clone()),
        super::webhooks::health(&state, database.clone())
    );
    let services = vec![
        platform(&state, database.clone()),
        super::users::health(&state, database.clone()),
        super::products::health(database.clone()),
        super::search::health(&state, database.clone()),
        super::inventory::health(&state, database.clone()),
        notifications,
        super::cart::health(&state, database.clone()),
        super::orders::health(&state, database.clone()),
        super::payments::health(&state, database.clone()),
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
    use crate::store::StoreError;
    use tokio_util::sync::CancellationToken;

    #[tokio::test(start_paused = true)]
    async fn a_database_that_fails_or_does_not_answer_is_down() {
        let ok = answered(async { Ok::<(), StoreError>(()) }, "sqlite").await;
        assert_eq!(ok.status, HealthStatus::Ok);
        let failed = answered(async { Err::<(), _>(StoreError::Busy) }, "sqlite").await;
        assert_eq!(failed.status, HealthStatus::Down);
        let silent = answered(std::future::pending::<Result<(), StoreError>>(), "sqlite").await;
        assert_eq!(silent.status, HealthStatus::Down);
        assert_eq!(silent.message.as_deref(), Some("no answer within 2s"));
        let (code, _) = respond(silent.status, silent);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    }

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
