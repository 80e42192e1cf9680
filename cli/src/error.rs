//! The command line's one error type, and how each kind maps to an exit code
//! (SPEC section 5) and to the lines printed on stderr.

use std::io;
use std::process::ExitCode;

use shop_wire::ErrorDetail;

/// Exit codes of SPEC section 5.
pub mod exit {
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNAVAILABLE: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const CONFLICT: u8 = 5;
    pub const UNAUTHORIZED: u8 = 6;
    pub const PAYMENT: u8 = 7;
}

/// An error answer from the server: its status and the standard error body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub detail: ErrorDetail,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line itself is wrong in a way clap could not see.
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the shop server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answered, but it or one of its services is down.
    #[error("{0}")]
    Unhealthy(String),
    #[error("{}", .0.detail.message)]
    Api(Box<ApiError>),
    /// No usable login: none stored, expired, or refused.
    #[error("{0}")]
    Auth(String),
    /// A local resource (a result, a named user) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The server answered, but what it found conflicts with what was
    /// expected (inventory drift found by a reconcile).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Unreachable { .. } | CliError::Unhealthy(_) => exit::UNAVAILABLE,
            CliError::Api(api) => match api.status {
                401 | 403 => exit::UNAUTHORIZED,
                402 => exit::PAYMENT,
                404 => exit::NOT_FOUND,
                409 | 412 => exit::CONFLICT,
                502..=504 => exit::UNAVAILABLE,
                _ => exit::ERROR,
            },
            CliError::Auth(_) => exit::UNAUTHORIZED,
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Conflict(_) => exit::CONFLICT,
            CliError::Io(_) | CliError::Other(_) => exit::ERROR,
        }
    }

    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }

    /// Prints the error on stderr (the server's code, message, field errors
    /// and request id for API errors) and returns the exit code. A reader that
    /// went away (`shop user list | head -1`) is not an error: exit 0, quietly.
    pub fn report(&self) -> ExitCode {
        if self.is_broken_pipe() {
            return ExitCode::SUCCESS;
        }
        let mut lines = vec![format!("shop: error: {self}")];
        if let CliError::Api(api) = self {
            // A one-field validation error's message already is its field line.
            let message = &api.detail.message;
            lines.extend(
                field_errors(&api.detail.details)
                    .into_iter()
                    .filter(|line| !message.contains(line.trim_start())),
            );
            lines.push(format!(
                "  (HTTP {}, code {}, request id {})",
                api.status, api.detail.code, api.detail.request_id
            ));
        }
        // stderr may be gone too; there is nowhere left to report that.
        let _ = io::Write::write_all(
            &mut io::stderr().lock(),
            (lines.join("\n") + "\n").as_bytes(),
        );
        ExitCode::from(self.exit_code())
    }
}

/// `details.fields` of a validation error as `  field: problem` lines.
fn field_errors(details: &serde_json::Value) -> Vec<String> {
    details
        .get("fields")
        .and_then(serde_json::Value::as_object)
        .map(|fields| {
            fields
                .iter()
                .map(|(field, problem)| match problem.as_str() {
                    Some(text) => format!("  {field}: {text}"),
                    None => format!("  {field}: {problem}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(status: u16) -> CliError {
        CliError::Api(Box::new(ApiError {
            status,
            detail: ErrorDetail {
                code: "x".into(),
                message: "m".into(),
                request_id: "r".into(),
                details: json!({}),
            },
        }))
    }

    #[test]
    fn statuses_map_to_the_documented_exit_codes() {
        let cases = [
            (400, 1),
            (401, 6),
            (402, 7),
            (403, 6),
            (404, 4),
            (409, 5),
            (413, 1),
            (422, 1),
            (429, 1),
            (500, 1),
            (503, 3),
        ];
        for (status, code) in cases {
            assert_eq!(api(status).exit_code(), code, "HTTP {status}");
        }
        let unreachable = CliError::Unreachable {
            url: "http://x".into(),
            reason: "refused".into(),
        };
        assert_eq!(unreachable.exit_code(), 3);
        assert_eq!(CliError::Usage("u".into()).exit_code(), 2);
        assert_eq!(CliError::Conflict("drift".into()).exit_code(), 5);
    }

    #[test]
    fn a_broken_pipe_is_quiet_success() {
        let err = CliError::Io(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(err.is_broken_pipe());
        assert_eq!(err.report(), ExitCode::SUCCESS);
    }

    #[test]
    fn validation_details_become_one_line_per_field() {
        let details = json!({"fields": {"email": "is not an email address", "n": 3}});
        assert_eq!(
            field_errors(&details),
            ["  email: is not an email address", "  n: 3"]
        );
        assert!(field_errors(&json!({})).is_empty());
    }
}
