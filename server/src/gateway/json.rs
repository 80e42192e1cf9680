//! Request extractors whose rejections are API errors with field details.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::AppError;

/// The deepest `offset` a list route pages to. Deeper pages cost a scan of
/// every row skipped, and a value past `i64::MAX` would wrap around in SQL
/// and answer the first page; a client that needs more narrows its filters
/// (or, for the event log, pages with `after`).
pub const MAX_OFFSET: u64 = 1_000_000;

/// A list route's `offset` (default 0), refused with 400 above [`MAX_OFFSET`].
pub fn page_offset(offset: Option<u64>) -> Result<u64, AppError> {
    match offset.unwrap_or(0) {
        n @ 0..=MAX_OFFSET => Ok(n),
        _ => Err(AppError::validation(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}; narrow the filters to go deeper"),
        )),
    }
}

/// A JSON body. Malformed JSON is 400 `malformed_json`; JSON of the wrong
/// shape (a missing, unknown or mistyped field) is 422 `invalid_body` naming the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&request) {
            return Err(not_json());
        }
        let bytes = body_bytes(request, state).await?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: no body (or only whitespace), or JSON `null`, is
/// `None`, for routes whose whole body is optional (`POST /api/orders/{id}/ship`);
/// their documents say so with a nullable body.
impl<S, T> OptionalFromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let is_json = is_json(&request);
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !is_json {
            return Err(not_json());
        }
        if bytes.trim_ascii() == b"null" {
            return Ok(None);
        }
        parse_object(&bytes).map(|value| Some(ApiJson(value)))
    }
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            essence == "application/json" || essence.ends_with("+json")
        })
}

fn not_json() -> AppError {
    AppError::Status {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: "send the body as JSON with `Content-Type: application/json`".to_owned(),
    }
}

async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::Status {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "payload_too_large",
                    message: "the request body is larger than the server accepts".to_owned(),
                }
            } else {
                AppError::BadRequest {
                    code: "unreadable_body",
                    message: rejection.body_text(),
                }
            }
        })
}

/// A request body, which on every route is a JSON object. serde would also
/// fill a struct from an array of its fields in order (`[null, null]`), a
/// shape no schema documents and no client means: that is refused as 422.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let value = parse(bytes)?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(value),
        _ => Err(AppError::Unprocessable {
            message: "body: expected a JSON object".to_owned(),
            details: json!({ "fields": { "body": "expected a JSON object" } }),
        }),
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(err) if err.inner().is_syntax() || err.inner().is_eof() => {
            return Err(malformed(err.into_inner()));
        }
        // JSON has one number type: `5.0` and `5e0` are the integer 5 to
        // JSON Schema and to most clients' encoders, but serde refuses them
        // for an integer field. Only on that refusal is the body read again
        // with integral numbers written as integers.
        Err(err) => return reparse_integral(bytes).ok_or_else(|| shape_error(err))?,
    };
    deserializer.end().map_err(malformed)?;
    Ok(value)
}

fn malformed(err: serde_json::Error) -> AppError {
    AppError::BadRequest {
        code: "malformed_json",
        message: format!("the body is not valid JSON: {err}"),
    }
}

fn shape_error(err: serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let field = if path == "." { "body".to_owned() } else { path };
    AppError::Unprocessable {
        message: format!("{field}: {inner}"),
        details: json!({ "fields": { field: inner.to_string() } }),
    }
}

/// The body parsed again with every integral float (`5.0`, `1e3`) as an
/// integer; `None` when it has none, so the first error stands.
fn reparse_integral<T: DeserializeOwned>(bytes: &[u8]) -> Option<Result<T, AppError>> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !integral_floats_to_integers(&mut value) {
        return None;
    }
    Some(serde_path_to_error::deserialize(value).map_err(shape_error))
}

/// Rewrites integral floats within the i64/u64 range as integers; whether any was.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return false };
            // Both bounds are exact powers of two as f64, so the casts below cannot saturate.
            let integer = if f.fract() != 0.0 || !f.is_finite() {
                None
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                Some(Value::from(f as i64))
            } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                Some(Value::from(f as u64))
            } else {
                None
            };
            integer.map(|integer| *value = integer).is_some()
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            integral_floats_to_integers(item) | changed
        }),
        Value::Object(fields) => fields.values_mut().fold(false, |changed, item| {
            integral_floats_to_integers(item) | changed
        }),
        _ => false,
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters; a bad one is 400 `invalid_query` naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection| AppError::BadRequest {
                code: "invalid_query",
                message: rejection.body_text(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: u8,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Optional {
        #[serde(default)]
        name: Option<String>,
    }

    #[test]
    fn a_body_is_an_object_not_an_array_of_its_fields() {
        assert!(parse::<Optional>(b"[null]").is_ok(), "serde alone takes it");
        let err = parse_object::<Optional>(b" [null]").unwrap_err();
        assert_eq!(err.code(), "invalid_body");
        let body = parse_object::<Optional>(br#" {"name":"x"}"#).unwrap();
        assert_eq!(body.name.as_deref(), Some("x"));
    }

    #[test]
    fn offsets_past_the_bound_are_refused_not_wrapped() {
        assert_eq!(page_offset(None).ok(), Some(0));
        assert_eq!(page_offset(Some(MAX_OFFSET)).ok(), Some(MAX_OFFSET));
        let err = page_offset(Some(i64::MAX as u64 + 1)).unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        assert!(page_offset(Some(u64::MAX)).is_err());
    }

    #[test]
    fn shape_errors_name_the_field_and_syntax_errors_do_not() {
        let err = parse::<Body>(br#"{"email":"a@b.c","age":"x"}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_body");
        assert!(err.to_string().starts_with("age:"), "{err}");
        let err = parse::<Body>(br#"{"email":"a@b.c"}"#).unwrap_err();
        assert!(err.to_string().contains("age"), "{err}");
        let err = parse::<Body>(br#"{"email":"a@b.c","age":1,"admin":true}"#).unwrap_err();
        assert!(err.to_string().contains("admin"), "{err}");
        // An integral float is the integer; a fractional one is still refused.
        let body = parse::<Body>(br#"{"email":"a@b.c","age":5.0}"#).unwrap();
        assert_eq!(body.age, 5);
        assert_eq!(
            parse::<Body>(br#"{"email":"a@b.c","age":1e1}"#)
                .unwrap()
                .age,
            10
        );
        let err = parse::<Body>(br#"{"email":"a@b.c","age":5.5}"#).unwrap_err();
        assert!(err.to_string().starts_with("age:"), "{err}");
        let err = parse::<Body>(br#"{"email":"a@b.c","age":300.0}"#).unwrap_err();
        assert!(err.to_string().starts_with("age:"), "{err}");
        assert_eq!(
            parse::<Body>(b"{\"email\":").unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(
            parse::<Body>(br#"{"email":"a","age":1} trailing"#)
                .unwrap_err()
                .code(),
            "malformed_json"
        );
    }
}
