//! `shop status`: every service's health in one table.

use serde::Serialize;
use shop_wire::{HealthStatus, ServiceHealth, SystemHealth};

use crate::client::api_error;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

/// A service's health as the server reports it, plus a one-line summary of
/// its checks for the table.
#[derive(Debug, Serialize)]
struct ServiceRow<'a> {
    #[serde(flatten)]
    health: &'a ServiceHealth,
    summary: String,
}

impl Tabular for ServiceRow<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("service", "service"),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("checks", "summary"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.health.service.clone()
    }
}

/// "all 3 checks ok", or each check that is not ok with its message.
fn summary(health: &ServiceHealth) -> String {
    let problems: Vec<String> = health
        .checks
        .iter()
        .filter(|(_, check)| check.status != HealthStatus::Ok)
        .map(|(name, check)| {
            let status = serde_json::to_value(check.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match &check.message {
                Some(message) => format!("{name} {status}: {message}"),
                None => format!("{name} {status}"),
            }
        })
        .collect();
    if problems.is_empty() {
        format!("all {} checks ok", health.checks.len())
    } else {
        problems.join("; ")
    }
}

pub async fn run(context: &Context) -> Result<(), CliError> {
    // A service that is down answers 503 with the report: that is data here, not an error.
    let response = context.anonymous()?.get("/health").raw().await?;
    if !matches!(response.status().as_u16(), 200 | 503) {
        return Err(api_error(response).await);
    }
    let health: SystemHealth = response.json().await.map_err(|err| {
        CliError::Other(format!(
            "the server's health report is not what this shop CLI expects: {err}"
        ))
    })?;
    let rows: Vec<ServiceRow<'_>> = health
        .services
        .iter()
        .map(|service| ServiceRow {
            health: service,
            summary: summary(service),
        })
        .collect();
    context.output().list(&health, &rows)?;
    let down: Vec<&str> = health
        .services
        .iter()
        .filter(|service| service.status == HealthStatus::Down)
        .map(|service| service.service.as_str())
        .collect();
    if down.is_empty() && health.status != HealthStatus::Down {
        Ok(())
    } else {
        Err(CliError::Unhealthy(format!(
            "{} is down: {}",
            context.server(),
            down.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_wire::health::Check;

    #[test]
    fn the_summary_names_only_what_is_wrong() {
        let mut health = ServiceHealth {
            service: "users".into(),
            status: HealthStatus::Ok,
            checks: [
                (
                    "database".to_owned(),
                    Check {
                        status: HealthStatus::Ok,
                        message: None,
                    },
                ),
                (
                    "worker:sweeper".to_owned(),
                    Check {
                        status: HealthStatus::Ok,
                        message: None,
                    },
                ),
            ]
            .into(),
        };
        assert_eq!(summary(&health), "all 2 checks ok");
        health.checks.insert(
            "database".into(),
            Check {
                status: HealthStatus::Down,
                message: Some("no answer within 2s".into()),
            },
        );
        assert_eq!(summary(&health), "database down: no answer within 2s");
    }
}
