//! The HTTP client of the shop API, shared by every command and the dashboard.
//!
//! A [`Call`] is one logical request: it carries its own request id (the same
//! on every retry, so the server log shows the attempts together), the bearer
//! token, and for POST and PATCH an `Idempotency-Key` (the user's, or one
//! generated here). The key is what makes a retried POST safe: the server
//! replays the first answer instead of applying the change twice. So every
//! request is retried with backoff when it never reached the server
//! (connection refused), and requests that are safe to repeat (reads, keyed
//! writes) also on timeouts, 502/503/504, and 429 (after the `Retry-After`
//! it names; the server never stores a 429 for replay). Calls that must happen at most
//! once and must not be stored for replay (login, token refresh) opt out with
//! [`Call::once`].

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shop_wire::backoff::Backoff;
use shop_wire::{ErrorBody, ErrorDetail, Event};

use crate::error::{ApiError, CliError};

/// Attempts after the first one.
const RETRIES: u32 = 3;
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(3));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// A 429 that asks to wait longer than this is reported, not waited out
/// (a login lockout, not a burst over the rate limit).
const RATE_LIMIT_WAIT_CAP: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    idempotency_key: Option<String>,
    timeout: Duration,
}

impl ApiClient {
    pub fn new(base: Url, timeout: Duration) -> Result<Self, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("shop-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| CliError::Other(format!("cannot build the HTTP client: {err}")))?;
        Ok(ApiClient {
            http,
            base,
            token: None,
            idempotency_key: None,
            timeout,
        })
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The key sent with the next mutating request instead of a generated one.
    pub fn with_idempotency_key(mut self, key: Option<String>) -> Self {
        self.idempotency_key = key;
        self
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call<'_> {
        self.call(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> Call<'_> {
        self.call(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(Method::DELETE, path)
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        let keyed = matches!(method, Method::POST | Method::PATCH);
        Call {
            client: self,
            idempotency_key: keyed.then(|| {
                self.idempotency_key
                    .clone()
                    .unwrap_or_else(|| format!("cli-{}", ulid::Ulid::new()))
            }),
            method,
            path: path.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            upload: None,
            once: false,
            streaming: false,
        }
    }

    fn url(&self, path: &str) -> Result<Url, CliError> {
        let joined = format!("{}{}", self.base.as_str().trim_end_matches('/'), path);
        Url::parse(&joined).map_err(|err| CliError::Other(format!("bad URL {joined}: {err}")))
    }

    /// The event log after `after`, as a stream that follows new events live.
    /// A dropped connection is resumed from the last event seen, so no event
    /// is missed or repeated. The stream ends with an error when the first
    /// connection fails or the server refuses one (e.g. the login expired).
    pub fn follow_events(
        &self,
        after: u64,
        types: Option<String>,
    ) -> impl Stream<Item = Result<FollowItem, CliError>> + '_ {
        async_stream::stream! {
            let mut last = after;
            let mut failures = 0u32;
            let mut connected = false;
            loop {
                let mut call = self.get("/api/events").query("after", last.to_string()).streaming();
                if let Some(types) = &types {
                    call = call.query("type", types.clone());
                }
                let reason = match call.response().await {
                    Err(err) if !connected || matches!(err, CliError::Api(_) | CliError::Auth(_)) => {
                        yield Err(err);
                        return;
                    }
                    Err(err) => err.to_string(),
                    Ok(response) => {
                        if failures > 0 {
                            failures = 0;
                            yield Ok(FollowItem::Resumed);
                        }
                        connected = true;
                        let mut messages = response.bytes_stream().eventsource();
                        loop {
                            match messages.next().await {
                                Some(Ok(message)) => match serde_json::from_str::<Event>(&message.data) {
                                    Ok(event) => {
                                        last = event.id;
                                        yield Ok(FollowItem::Event(event));
                                    }
                                    Err(err) => {
                                        yield Err(CliError::Other(format!(
                                            "the server sent an event that is not valid JSON: {err}"
                                        )));
                                        return;
                                    }
                                },
                                Some(Err(err)) => break err.to_string(),
                                None => break "the server closed the stream".to_owned(),
                            }
                        }
                    }
                };
                failures += 1;
                let delay = backoff(failures.min(5));
                yield Ok(FollowItem::Reconnecting { reason, delay });
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// What [`ApiClient::follow_events`] yields: events, and notes that the
/// connection dropped and was resumed, for the caller to show or ignore.
#[derive(Debug)]
pub enum FollowItem {
    Event(Event),
    Reconnecting { reason: String, delay: Duration },
    Resumed,
}

/// One logical request; see the module docs for its retry rules.
#[must_use]
pub struct Call<'a> {
    client: &'a ApiClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    /// A streamed body and its content type: sent once, never buffered.
    upload: Option<(&'static str, reqwest::Body)>,
    idempotency_key: Option<String>,
    once: bool,
    streaming: bool,
}

impl Call<'_> {
    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    pub fn query_opt(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.query(name, value.to_string()),
            None => self,
        }
    }

    /// An extra request header (`x-cart-token`, `if-match`).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// This key instead of the client's, for a command that sends several
    /// mutating requests and derives one key per request from the user's
    /// (a key reused for a different request is refused with 409). Only a
    /// call that has a key (POST, PATCH) takes one.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        if self.idempotency_key.is_some() {
            self.idempotency_key = Some(key.into());
        }
        self
    }

    pub fn json(mut self, body: &impl Serialize) -> Result<Self, CliError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|err| CliError::Other(format!("cannot encode the request: {err}")))?;
        self.body = Some(bytes);
        Ok(self)
    }

    /// At most one delivery and no stored replay: no idempotency key, and a
    /// retry only when the request never reached the server.
    pub fn once(mut self) -> Self {
        self.once = true;
        self.idempotency_key = None;
        self
    }

    /// A body streamed from a file or a generator (an import of any size).
    /// A stream cannot be rewound, so the call is sent exactly once: no
    /// retry, and no idempotency key, which would make the server keep the
    /// body to compare it with a replay. It has no overall timeout either:
    /// a gigabyte takes as long as it takes.
    pub fn upload(mut self, content_type: &'static str, body: reqwest::Body) -> Self {
        self.upload = Some((content_type, body));
        self.once().streaming()
    }

    /// A response that may last for ever (an event stream) or be large (an
    /// export): no overall timeout.
    pub fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }

    /// Sends and decodes a 2xx JSON answer; any other answer is an [`ApiError`].
    pub async fn send<T: DeserializeOwned>(self) -> Result<T, CliError> {
        let url = self.client.url(&self.path)?;
        let response = self.response().await?;
        decode(url, response).await
    }

    /// Sends and expects a 2xx answer whose body does not matter.
    pub async fn send_empty(self) -> Result<(), CliError> {
        self.response().await.map(drop)
    }

    /// Sends with retries; a 2xx response, or the error the server answered.
    pub async fn response(self) -> Result<reqwest::Response, CliError> {
        let response = self.raw().await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }

    /// Sends with retries and returns whatever the server answered, e.g. a
    /// 503 health report; only an unreachable server is an error.
    pub async fn raw(mut self) -> Result<reqwest::Response, CliError> {
        let url = self.client.url(&self.path)?;
        let request_id = format!("cli-{}", ulid::Ulid::new());
        let repeatable =
            !self.once && (self.method_is_idempotent() || self.idempotency_key.is_some());
        let mut attempt = 0;
        loop {
            let mut request = self
                .client
                .http
                .request(self.method.clone(), url.clone())
                .query(&self.query)
                .header("x-request-id", &request_id);
            if !self.streaming {
                request = request.timeout(self.client.timeout);
            }
            if let Some(token) = &self.client.token {
                request = request.bearer_auth(token);
            }
            if let Some(key) = &self.idempotency_key {
                request = request.header("idempotency-key", key);
            }
            for (name, value) in &self.headers {
                request = request.header(*name, value);
            }
            if let Some(body) = &self.body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            let uploading = self.upload.is_some();
            if let Some((content_type, body)) = self.upload.take() {
                request = request.header("content-type", content_type).body(body);
            }
            let started = Instant::now();
            tracing::info!(target: "shop::http", "→ {} {} ({request_id})", self.method, url);
            let outcome = request.send().await;
            let elapsed = started.elapsed();
            // A 429 names its wait in Retry-After; other retries back off.
            let mut wait = None;
            let retry = match &outcome {
                Ok(response) => {
                    tracing::info!(target: "shop::http", "← {} in {} ms", response.status(), elapsed.as_millis());
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        wait = retry_after(response.headers());
                        repeatable && wait.is_some_and(|wait| wait <= RATE_LIMIT_WAIT_CAP)
                    } else {
                        repeatable
                            && matches!(
                                response.status(),
                                StatusCode::BAD_GATEWAY
                                    | StatusCode::SERVICE_UNAVAILABLE
                                    | StatusCode::GATEWAY_TIMEOUT
                            )
                    }
                }
                Err(err) => {
                    tracing::info!(target: "shop::http", "✗ {} after {} ms", describe(err), elapsed.as_millis());
                    err.is_connect() || (repeatable && err.is_timeout())
                }
            } && !uploading;
            if retry && attempt < RETRIES {
                attempt += 1;
                let delay = wait.unwrap_or_default().max(backoff(attempt));
                tracing::info!(target: "shop::http", "retrying in {} ms", delay.as_millis());
                tokio::time::sleep(delay).await;
                continue;
            }
            return outcome
                .map_err(|err| unreachable_error(&self.client.base, &err, self.client.timeout));
        }
    }

    fn method_is_idempotent(&self) -> bool {
        matches!(
            self.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        )
    }
}

/// The wait a 429 asks for in `Retry-After` (whole seconds); `None` without one.
/// `text` percent-encoded as one path segment (an email's `/`, `?`, `#` or
/// `%` cannot change the route), by the same encoder reqwest's URLs use.
pub fn path_segment(text: &str) -> String {
    let mut url = Url::parse("http://segment/").expect("a fixed URL parses");
    url.path_segments_mut()
        .expect("an http URL has path segments")
        .pop_if_empty()
        .push(text);
    url.path()[1..].to_owned()
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// The wait before retry `attempt`: the project's one backoff (equal
/// jitter) from 200 ms, capped at 3 s.
fn backoff(attempt: u32) -> Duration {
    BACKOFF.delay(attempt, rand::random())
}

async fn decode<T: DeserializeOwned>(url: Url, response: reqwest::Response) -> Result<T, CliError> {
    let bytes = response.bytes().await.map_err(|err| {
        CliError::Other(format!("reading the answer of {url}: {}", describe(&err)))
    })?;
    serde_json::from_slice(&bytes).map_err(|err| {
        CliError::Other(format!(
            "the server's answer to {url} is not what this shop CLI expects ({err}); \
             are the server and CLI the same version?"
        ))
    })
}

/// Turns a non-2xx answer into an [`ApiError`], whatever its body.
pub async fn api_error(response: reqwest::Response) -> CliError {
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    let detail = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => body.error,
        Err(_) => ErrorDetail {
            code: format!("http_{}", status.as_u16()),
            message: format!(
                "the server answered {status}{}",
                if text.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", text.trim().chars().take(200).collect::<String>())
                }
            ),
            request_id,
            details: serde_json::Value::Null,
        },
    };
    CliError::Api(Box::new(ApiError {
        status: status.as_u16(),
        detail,
    }))
}

fn unreachable_error(base: &Url, err: &reqwest::Error, timeout: Duration) -> CliError {
    let reason = if err.is_timeout() {
        format!("no answer within {} s", timeout.as_secs())
    } else {
        describe(err)
    };
    CliError::Unreachable {
        url: base.as_str().trim_end_matches('/').to_owned(),
        reason,
    }
}

/// The innermost cause of a transport error, which is the useful part
/// ("Connection refused (os error 111)"), not reqwest's outer wrapper.
fn describe(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_segment_cannot_leave_its_segment() {
        assert_eq!(path_segment("carol@example.com"), "carol@example.com");
        assert_eq!(
            path_segment("a/b?c#d%e f@example.com"),
            "a%2Fb%3Fc%23d%25e%20f@example.com"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        assert_eq!(BACKOFF.nominal(1), Duration::from_millis(200));
        assert_eq!(BACKOFF.nominal(5), Duration::from_secs(3));
        for attempt in 1..=10 {
            let ceiling = BACKOFF.nominal(attempt);
            for _ in 0..50 {
                let delay = backoff(attempt);
                assert!(
                    delay <= ceiling && delay >= ceiling / 2,
                    "{attempt}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn urls_join_under_the_base_path() {
        let client = ApiClient::new(
            Url::parse("https://example.com/shop/").expect("url"),
            DEFAULT_TIMEOUT,
        )
        .expect("client");
        assert_eq!(
            client.url("/api/users/me").expect("url").as_str(),
            "https://example.com/shop/api/users/me"
        );
    }

    #[test]
    fn mutating_calls_get_a_key_reads_and_once_calls_do_not() {
        let client =
            ApiClient::new(Url::parse("http://x").expect("url"), DEFAULT_TIMEOUT).expect("client");
        assert!(client.get("/a").idempotency_key.is_none());
        assert!(client.post("/a").idempotency_key.is_some());
        assert!(client.post("/a").once().idempotency_key.is_none());
        let keyed = client.with_idempotency_key(Some("k1".into()));
        assert_eq!(keyed.post("/a").idempotency_key.as_deref(), Some("k1"));
        let derived = keyed.post("/a").idempotency_key("k1-7");
        assert_eq!(derived.idempotency_key.as_deref(), Some("k1-7"));
        assert!(
            keyed
                .get("/a")
                .idempotency_key("k1-7")
                .idempotency_key
                .is_none()
        );
        assert!(
            keyed
                .post("/a")
                .once()
                .idempotency_key("k")
                .idempotency_key
                .is_none()
        );
    }

    #[test]
    fn a_429_names_its_wait_in_whole_seconds() {
        use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None, "a date is not waited for");
    }
}
