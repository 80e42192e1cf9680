//! Why a service refused or failed a step, in the service's own terms.
//!
//! Domain functions return [`DomainError`]; they know nothing of HTTP.
//! The HTTP edge ([`crate::error::AppError`]) gives each kind its status
//! and stable code in one place, so a rule can be moved or reused (a
//! worker, the CLI's store access, another transport) without dragging
//! status codes along.

use std::time::Duration;

use serde_json::{Value, json};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The values break a rule; `fields` maps each field to what is wrong.
    #[error("{message}")]
    Validation { message: String, fields: Value },
    /// One field breaks a rule that has its own code (an unknown country,
    /// a rate over 100 %), so a client can tell the reasons apart.
    #[error("{field}: {message}")]
    Rejected {
        code: &'static str,
        field: String,
        message: String,
    },
    /// Something else the caller asked for cannot be understood, e.g. an
    /// import format that does not exist.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The caller's credentials are missing, wrong or spent.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The caller is known but may not do this.
    #[error("{message}")]
    Forbidden { message: String },
    /// What the caller named does not exist (or is not theirs to see).
    #[error("{message}")]
    NotFound { message: String },
    /// A thing named inside the request does not exist, told apart by its
    /// own code (a SKU no product has, a line the cart does not have).
    #[error("{message}")]
    Missing { code: &'static str, message: String },
    /// The request is valid but the current state forbids it.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// A payment or refund the provider refused.
    #[error("{message}")]
    Declined {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// Too many attempts; the caller may try again after `retry_after`.
    #[error("{message}")]
    Throttled {
        code: &'static str,
        message: String,
        retry_after: Duration,
    },
    /// Something this step needs is not ready or not answering; the same
    /// request may succeed later.
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// A failure of ours; the cause is for the log, never for the caller.
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    pub fn validation(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        DomainError::Validation {
            message: format!("{field}: {problem}"),
            fields: json!({ field: problem }),
        }
    }

    pub fn rejected(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        DomainError::Rejected {
            code,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        DomainError::NotFound {
            message: format!("{} not found", what.into()),
        }
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        DomainError::Forbidden {
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::Conflict {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        DomainError::Internal(cause.into())
    }
}

impl From<StoreError> for DomainError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate { entity, field } => DomainError::Conflict {
                code: "already_exists",
                message: format!("a {entity} with this {field} already exists"),
                details: json!({ "field": field }),
            },
            StoreError::Busy => DomainError::Unavailable {
                code: "database_busy",
                message: "the database is busy; retry shortly".to_owned(),
                details: json!({}),
            },
            StoreError::UnstorableText => DomainError::Validation {
                message: "text must not contain the NUL character (\\0)".to_owned(),
                fields: json!({}),
            },
            other => DomainError::Internal(other.into()),
        }
    }
}
