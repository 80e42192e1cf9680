//! The one error body every failing route returns.

use serde::{Deserialize, Serialize};

/// `{"error":{"code","message","request_id","details"}}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable snake_case code that scripts can match on, e.g. `validation_failed`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// The `X-Request-Id` of the failed request, to find it in the server log.
    pub request_id: String,
    /// Machine-readable context: field errors for validation, allowed values, retry hints.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}
