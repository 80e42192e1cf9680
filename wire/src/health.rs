//! Health reports of each service and of the whole server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The eight services of SPEC section 2 and the webhooks of section 11, by
/// the name in their base path `/api/<name>`; health, metrics, the status
/// page and the dashboard list them in this order.
pub const SERVICES: [&str; 9] = [
    "users",
    "products",
    "search",
    "cart",
    "inventory",
    "orders",
    "payments",
    "notifications",
    "webhooks",
];

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
    Down,
}

/// One named check inside a service's health, e.g. `database` or `worker:session_sweeper`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Check {
    pub status: HealthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `GET /api/<service>/health`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceHealth {
    pub service: String,
    pub status: HealthStatus,
    pub checks: BTreeMap<String, Check>,
}

/// `GET /health`: the worst status of all services, and each service's report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemHealth {
    pub status: HealthStatus,
    pub version: String,
    pub uptime_seconds: u64,
    pub services: Vec<ServiceHealth>,
}
