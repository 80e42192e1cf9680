//! The storefront's only way into the services: the public HTTP API, called
//! in-process. Every rule, permission, rate limit and idempotency check the
//! API applies to a client applies to a storefront page too.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;
use tower::ServiceExt;

use crate::gateway::ClientAddr;

/// Larger API answers than this are not expected by any page (a search page is a few tens of KB).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// Who a call is made for: the visitor's address (for rate limits) and their credentials.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub addr: ClientAddr,
    pub access_token: Option<&'a str>,
    pub cart_token: Option<&'a str>,
}

/// An API answer: the status and the JSON body (`Null` for an empty one).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The stable error code of a failed call, e.g. `card_declined`.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The API's own explanation of a failed call, written for people.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl Api {
    pub fn new(router: Router) -> Self {
        Api { router }
    }

    pub async fn get(&self, caller: Caller<'_>, path: &str) -> Answer {
        self.call(caller, Method::GET, path, None).await
    }

    pub async fn send(
        &self,
        caller: Caller<'_>,
        method: Method,
        path: &str,
        body: Value,
    ) -> Answer {
        self.call(caller, method, path, Some(body)).await
    }

    /// The API's response as it comes, body streaming (for the event stream).
    pub async fn stream(&self, caller: Caller<'_>, path: &str) -> axum::response::Response {
        let mut request = Request::builder().method(Method::GET).uri(path);
        if let Some(token) = caller
            .access_token
            .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            request = request.header(header::AUTHORIZATION, token);
        }
        let request = request
            .extension(ConnectInfo(caller.addr))
            .body(Body::empty());
        match request {
            Ok(request) => match self.router.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }

    async fn call(
        &self,
        caller: Caller<'_>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = caller
            .access_token
            .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            request = request.header(header::AUTHORIZATION, token);
        }
        if let Some(token) = caller
            .cart_token
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            request = request.header("x-cart-token", token);
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let request = request
            .extension(ConnectInfo(caller.addr))
            .body(body)
            .map_err(|err| err.to_string());
        let answer = match request {
            Ok(request) => self.router.clone().oneshot(request).await,
            Err(err) => return failure(&format!("cannot build the API request: {err}")),
        };
        let response = match answer {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        match axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await {
            Ok(bytes) if bytes.is_empty() => Answer {
                status,
                body: Value::Null,
            },
            Ok(bytes) => Answer {
                status,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            },
            Err(err) => failure(&format!("cannot read the API answer: {err}")),
        }
    }
}

fn failure(message: &str) -> Answer {
    tracing::error!(%message, "storefront API call failed");
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: serde_json::json!({"error": {"code": "internal_error", "message": "the shop could not complete the request"}}),
    }
}
