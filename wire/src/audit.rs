//! The audit log: who changed what, when, from where, before and after.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who made a change.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person signed in with a session.
    User,
    /// Another system, through an API key (`id` is the key's, `email` its creator's).
    ApiKey,
    /// The server itself: sweepers, recovery, event reactions.
    System,
}

impl ActorKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::System => "system",
        }
    }
}

impl std::str::FromStr for ActorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(ActorKind::User),
            "api_key" => Ok(ActorKind::ApiKey),
            "system" => Ok(ActorKind::System),
            other => Err(format!("unknown actor kind {other:?}")),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub kind: ActorKind,
    /// `usr_...` or `key_...`; none for the system.
    pub id: Option<String>,
    pub email: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: None,
            email: None,
        }
    }
}

/// One change, as `GET /api/audit` lists it. `before` and `after` hold only
/// the fields that changed (`null` before a creation, after a deletion).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub ip: Option<String>,
    /// What was done, e.g. `product.updated`, `inventory.adjusted`, `key.revoked`.
    pub action: String,
    /// The kind of thing changed, e.g. `product`, `stock`, `order`.
    pub entity: String,
    pub entity_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub before: serde_json::Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub after: serde_json::Value,
    pub request_id: Option<String>,
}
