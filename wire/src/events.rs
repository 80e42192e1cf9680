//! Domain events as they are stored in the event log and streamed to clients.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One entry of the durable event log. `id` increases strictly, so a client
/// resumes a stream by sending the last id it saw as `Last-Event-ID`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: u64,
    /// Dotted type, e.g. `user.registered`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}
