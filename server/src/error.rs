//! The server's HTTP error and the one mapping from domain errors to it.
//!
//! Domain code returns [`DomainError`]; handlers and the gateway return
//! [`AppError`], and `From<DomainError>` below is the one place that gives
//! each domain error its status and stable code. [`AppError`] turns into the
//! one error body of the API (`{"error":{"code","message","request_id","details"}}`).
//! Internal failures are logged with their cause and answered with a bare
//! `internal_error`, so nothing about the database or the code leaks out.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shop_wire::{ErrorBody, ErrorDetail};

use crate::gateway::request_id;
use crate::services::error::DomainError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is well-formed but its values break a rule; `fields` maps each field to what is wrong.
    #[error("{message}")]
    Validation { message: String, fields: Value },
    /// The body is not the JSON shape the route expects (wrong type, missing or unknown field).
    #[error("{message}")]
    Unprocessable { message: String, details: Value },
    /// Anything else the client sent that cannot be understood.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Value,
    },
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after: Duration,
    },
    #[error("{message}")]
    Status {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Any status with details, e.g. 402 for a declined payment naming its order.
    #[error("{message}")]
    Detailed {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Value,
    },
    /// A failure of ours; the cause goes to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn validation(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        AppError::Validation {
            message: format!("{field}: {problem}"),
            fields: json!({ field: problem }),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound {
            message: format!("{} not found", what.into()),
        }
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden {
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(cause.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Validation { .. } | AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Status { status, .. } | AppError::Detailed { status, .. } => *status,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation { .. } => "validation_failed",
            AppError::Unprocessable { .. } => "invalid_body",
            AppError::Forbidden { .. } => "forbidden",
            AppError::NotFound { .. } => "not_found",
            AppError::Internal(_) => "internal_error",
            AppError::BadRequest { code, .. }
            | AppError::Unauthenticated { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::TooManyRequests { code, .. }
            | AppError::Status { code, .. }
            | AppError::Detailed { code, .. } => code,
        }
    }

    fn details(&self) -> Value {
        match self {
            AppError::Validation { fields, .. } => json!({ "fields": fields }),
            AppError::Unprocessable { details, .. }
            | AppError::Conflict { details, .. }
            | AppError::Detailed { details, .. } => details.clone(),
            AppError::TooManyRequests { retry_after, .. } => {
                json!({ "retry_after_seconds": retry_after_seconds(*retry_after) })
            }
            _ => json!({}),
        }
    }
}

/// Whole seconds a client should wait, never 0 (a `Retry-After: 0` invites a hot loop).
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The error body for a status and code, carrying the current request's id.
pub fn error_response(status: StatusCode, code: &str, message: String, details: Value) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
            request_id: request_id::current().unwrap_or_default(),
            details,
        },
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
                "the server could not complete the request; quote the request id to an operator"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let mut response = error_response(status, self.code(), message, self.details());
        if let AppError::TooManyRequests { retry_after, .. } = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(*retry_after)),
            );
        }
        response
    }
}

impl From<DomainError> for AppError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Validation { message, fields } => AppError::Validation { message, fields },
            DomainError::Invalid { code, message } => AppError::BadRequest { code, message },
            DomainError::Rejected {
                code,
                field,
                message,
            } => AppError::Detailed {
                status: StatusCode::BAD_REQUEST,
                code,
                message: format!("{field}: {message}"),
                details: json!({ "fields": { field: message } }),
            },
            DomainError::Unauthenticated { code, message } => {
                AppError::Unauthenticated { code, message }
            }
            DomainError::Forbidden { message } => AppError::Forbidden { message },
            DomainError::NotFound { message } => AppError::NotFound { message },
            DomainError::Missing { code, message } => AppError::Status {
                status: StatusCode::NOT_FOUND,
                code,
                message,
            },
            DomainError::Conflict {
                code,
                message,
                details,
            } => AppError::Conflict {
                code,
                message,
                details,
            },
            DomainError::Declined {
                code,
                message,
                details,
            } => AppError::Detailed {
                status: StatusCode::PAYMENT_REQUIRED,
                code,
                message,
                details,
            },
            DomainError::Throttled {
                code,
                message,
                retry_after,
            } => AppError::TooManyRequests {
                code,
                message,
                retry_after,
            },
            DomainError::Unavailable {
                code,
                message,
                details,
            } => AppError::Detailed {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code,
                message,
                details,
            },
            DomainError::Internal(cause) => AppError::Internal(cause),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        DomainError::from(err).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = AppError::internal(anyhow::anyhow!("UNIQUE constraint failed: secret_table.x"));
        assert_eq!(err.code(), "internal_error");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn each_domain_error_has_its_status_and_code_at_the_edge() {
        let cases = [
            (
                DomainError::validation("limit", "too big"),
                StatusCode::BAD_REQUEST,
                "validation_failed",
            ),
            (
                DomainError::Missing {
                    code: "unknown_sku",
                    message: "no such SKU".to_owned(),
                },
                StatusCode::NOT_FOUND,
                "unknown_sku",
            ),
            (
                DomainError::not_found("order 1"),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                DomainError::conflict("last_admin", "only admin"),
                StatusCode::CONFLICT,
                "last_admin",
            ),
            (
                DomainError::Declined {
                    code: "card_declined",
                    message: "declined".to_owned(),
                    details: json!({}),
                },
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
            ),
            (
                StoreError::Busy.into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "database_busy",
            ),
            (
                StoreError::Duplicate {
                    entity: "user",
                    field: "email",
                }
                .into(),
                StatusCode::CONFLICT,
                "already_exists",
            ),
        ];
        for (domain, status, code) in cases {
            let err = AppError::from(domain);
            assert_eq!((err.status(), err.code()), (status, code), "{err}");
        }
    }

    #[test]
    fn retry_after_is_rounded_up_and_never_zero() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
