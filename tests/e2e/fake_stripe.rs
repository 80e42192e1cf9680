//! A fake of Stripe's API on 127.0.0.1, for tests of the Stripe adapter:
//! PaymentIntents (cards by Stripe's test numbers and tokens, bank
//! transfers through `customer_balance`), retrieval, customers and refunds,
//! with Stripe's idempotency (the same key and body replay the answer; the
//! same key with another body is a 400) and Stripe's error shapes.
//!
//! It records every request (method, path, headers that matter, form body)
//! for a test to assert on, and can be told to fail the next requests with a
//! 500 (`fail_next`) or to mark a bank transfer as paid (`fund`).
//!
//! One file serves two test binaries: the end-to-end tests (`mod
//! fake_stripe;` in `tests/e2e/main.rs`, pointing `shop serve` at it with
//! `SHOP_STRIPE_API_BASE`) and the adapter's unit tests in the server crate,
//! which include it by path. So it uses only axum, tokio and serde_json,
//! which both have.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub content_type: Option<String>,
    /// The form body, decoded, in order (keys keep their brackets).
    pub form: Vec<(String, String)>,
}

impl Recorded {
    /// The first value of a form key, e.g. `payment_method_data[card][number]`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    fail_next: usize,
    /// How long every answer waits before it is given.
    delay: std::time::Duration,
    next_id: u64,
    intents: HashMap<String, Value>,
    refunded: HashMap<String, i64>,
    /// Idempotency key -> (path and body, status, answer).
    replies: HashMap<String, (String, u16, Value)>,
}

/// The handle a test keeps: the requests so far, and the fake's knobs.
#[derive(Clone, Default)]
pub struct FakeStripe(Arc<Mutex<Inner>>);

impl FakeStripe {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The next `count` requests get a 500 (and are not stored as answers).
    pub fn fail_next(&self, count: usize) {
        self.lock().fail_next = count;
    }

    /// Every answer from now on comes `delay` late, as from a slow network.
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.lock().delay = delay;
    }

    /// The bank transfer behind intent `id` has arrived: it succeeds.
    pub fn fund(&self, id: &str) -> bool {
        let mut inner = self.lock();
        match inner.intents.get_mut(id) {
            Some(intent) => {
                intent["status"] = json!("succeeded");
                intent["amount_received"] = intent["amount"].clone();
                true
            }
            None => false,
        }
    }
}

/// Starts the fake on a free port; returns its base URL (for
/// `SHOP_STRIPE_API_BASE`) and the handle. It runs until the runtime ends.
pub async fn start() -> (String, FakeStripe) {
    let fake = FakeStripe::default();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Stripe");
    let addr = listener.local_addr().expect("the fake's address");
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the fake Stripe serves");
    });
    (format!("http://{addr}"), fake)
}

fn error(status: u16, kind: &str, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"type": kind, "code": code, "message": message}}),
    )
}

async fn handle(State(fake): State<FakeStripe>, request: Request) -> Response {
    let delay = fake.lock().delay;
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let header = |headers: &HeaderMap, name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let form: Vec<(String, String)> = url_decode_pairs(&body);
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        authorization: header(&parts.headers, "authorization"),
        idempotency_key: header(&parts.headers, "idempotency-key"),
        content_type: header(&parts.headers, "content-type"),
        form,
    };
    // Recorded on arrival, so a test sees a request the fake is still holding.
    fake.lock().requests.push(recorded.clone());
    tokio::time::sleep(delay).await;
    let (status, answer) = answer(&fake, &parts.method, &recorded);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(answer)).into_response()
}

/// Decodes `%5B` escapes and `+` (a space) of a form or query value.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Decodes `a=1&b%5Bc%5D=2` into pairs, `+` as a space.
fn url_decode_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| String::from_utf8_lossy(&percent_decode(s)).into_owned();
    std::str::from_utf8(body)
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn answer(fake: &FakeStripe, method: &Method, request: &Recorded) -> (u16, Value) {
    let mut inner = fake.lock();
    if !request
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer sk_test_") && a.len() > "Bearer sk_test_".len())
    {
        return error(
            401,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided: sk_test_****",
        );
    }
    if inner.fail_next > 0 {
        inner.fail_next -= 1;
        return error(
            500,
            "api_error",
            "",
            "An unknown error occurred (injected).",
        );
    }
    if *method == Method::GET && request.path == "/v1/payment_intents/search" {
        // Only the one query shape the adapter sends: metadata['payment_id']:'<id>'.
        let query = request
            .query
            .split('&')
            .find_map(|p| p.strip_prefix("query="))
            .map(|q| String::from_utf8_lossy(&percent_decode(q)).into_owned())
            .unwrap_or_default();
        let Some(wanted) = query
            .strip_prefix("metadata['payment_id']:'")
            .and_then(|q| q.strip_suffix('\''))
        else {
            return error(
                400,
                "invalid_request_error",
                "",
                "Unsupported search query.",
            );
        };
        let data: Vec<Value> = inner
            .intents
            .values()
            .filter(|i| i["metadata"]["payment_id"] == wanted)
            .cloned()
            .collect();
        return (200, json!({"object": "search_result", "data": data}));
    }
    if *method == Method::GET {
        let Some(id) = request.path.strip_prefix("/v1/payment_intents/") else {
            return error(
                404,
                "invalid_request_error",
                "resource_missing",
                "Unrecognized request URL.",
            );
        };
        return match inner.intents.get(id) {
            Some(intent) => (200, intent.clone()),
            None => error(
                404,
                "invalid_request_error",
                "resource_missing",
                &format!("No such payment_intent: '{id}'"),
            ),
        };
    }
    if *method != Method::POST {
        return error(405, "invalid_request_error", "", "Method not allowed.");
    }
    if request.content_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return error(
            400,
            "invalid_request_error",
            "",
            "Stripe takes form-encoded bodies.",
        );
    }
    let Some(key) = request.idempotency_key.clone() else {
        return error(
            400,
            "invalid_request_error",
            "",
            "This fake wants an Idempotency-Key on every POST.",
        );
    };
    let fingerprint = format!("{} {:?}", request.path, request.form);
    if let Some((seen, status, body)) = inner.replies.get(&key) {
        if *seen != fingerprint {
            return error(
                400,
                "idempotency_error",
                "idempotency_key_in_use",
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
        }
        return (*status, body.clone());
    }
    let (status, body) = match request.path.as_str() {
        "/v1/payment_intents" => create_intent(&mut inner, request),
        "/v1/customers" => {
            inner.next_id += 1;
            (
                200,
                json!({"id": format!("cus_fake{}", inner.next_id), "object": "customer"}),
            )
        }
        "/v1/refunds" => create_refund(&mut inner, request),
        _ => error(
            404,
            "invalid_request_error",
            "",
            "Unrecognized request URL.",
        ),
    };
    inner
        .replies
        .insert(key, (fingerprint, status, body.clone()));
    (status, body)
}

/// What a test card or token does: a brand and last four, or a decline.
fn card_outcome(
    request: &Recorded,
) -> Result<(&'static str, String), (&'static str, &'static str)> {
    if let Some(number) = request.field("payment_method_data[card][number]") {
        let decline = match number {
            "4000000000000002" => Some(("card_declined", "generic_decline")),
            "4000000000009995" => Some(("card_declined", "insufficient_funds")),
            "4000000000000069" => Some(("expired_card", "expired_card")),
            "4000000000000127" => Some(("incorrect_cvc", "incorrect_cvc")),
            "4000000000000119" => Some(("processing_error", "processing_error")),
            _ => None,
        };
        if let Some(d) = decline {
            return Err(d);
        }
        let brand = match number.as_bytes().first() {
            Some(b'4') => "visa",
            Some(b'5' | b'2') => "mastercard",
            Some(b'3') => "amex",
            Some(b'6') => "discover",
            _ => "unknown",
        };
        return Ok((brand, number[number.len().saturating_sub(4)..].to_owned()));
    }
    let token = request
        .field("payment_method_data[card][token]")
        .or_else(|| request.field("payment_method"))
        .unwrap_or_default();
    match token {
        "tok_chargeDeclined" | "pm_card_chargeDeclined" => {
            Err(("card_declined", "generic_decline"))
        }
        "tok_chargeDeclinedInsufficientFunds" | "pm_card_chargeDeclinedInsufficientFunds" => {
            Err(("card_declined", "insufficient_funds"))
        }
        "tok_mastercard" | "pm_card_mastercard" => Ok(("mastercard", "4444".to_owned())),
        _ => Ok(("visa", "4242".to_owned())),
    }
}

fn create_intent(inner: &mut Inner, request: &Recorded) -> (u16, Value) {
    let Some(amount) = request
        .field("amount")
        .and_then(|a| a.parse::<i64>().ok())
        .filter(|a| *a > 0)
    else {
        return error(
            400,
            "invalid_request_error",
            "parameter_invalid_integer",
            "Invalid integer: amount",
        );
    };
    let currency = request.field("currency").unwrap_or_default();
    if currency.len() != 3 || currency.chars().any(|c| !c.is_ascii_lowercase()) {
        return error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            "Invalid currency.",
        );
    }
    inner.next_id += 1;
    let n = inner.next_id;
    let id = format!("pi_fake{n}");
    let metadata: serde_json::Map<String, Value> = request
        .form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), json!(v)))
        })
        .collect();
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": 0,
        "currency": currency,
        "description": request.field("description"),
        "metadata": metadata,
        "status": "requires_payment_method",
        "latest_charge": null,
        "livemode": false,
    });
    if request.field("payment_method_types[]") == Some("customer_balance") {
        if request.field("customer").is_none() {
            return error(
                400,
                "invalid_request_error",
                "parameter_missing",
                "customer_balance needs a customer.",
            );
        }
        intent["status"] = json!("requires_action");
        intent["next_action"] = json!({"type": "display_bank_transfer_instructions",
            "display_bank_transfer_instructions": {"amount_remaining": amount, "currency": currency,
                "reference": format!("REF{n}"), "type": request.field("payment_method_options[customer_balance][bank_transfer][type]")}});
        inner.intents.insert(id, intent.clone());
        return (200, intent);
    }
    if request.field("confirm") != Some("true") {
        inner.intents.insert(id, intent.clone());
        return (200, intent);
    }
    match card_outcome(request) {
        Ok((brand, last4)) => {
            let charge = json!({
                "id": format!("ch_fake{n}"),
                "object": "charge",
                "paid": true,
                "payment_method_details": {"type": "card", "card": {"brand": brand, "last4": last4}},
            });
            intent["status"] = json!("succeeded");
            intent["amount_received"] = json!(amount);
            let expanded = request
                .form
                .iter()
                .any(|(k, v)| k == "expand[]" && v == "latest_charge");
            intent["latest_charge"] = if expanded {
                charge
            } else {
                json!(format!("ch_fake{n}"))
            };
            inner.intents.insert(id, intent.clone());
            (200, intent)
        }
        Err((code, decline_code)) => {
            intent["last_payment_error"] =
                json!({"type": "card_error", "code": code, "decline_code": decline_code});
            inner.intents.insert(id.clone(), intent.clone());
            let message = match decline_code {
                "insufficient_funds" => "Your card has insufficient funds.",
                "expired_card" => "Your card has expired.",
                "incorrect_cvc" => "Your card's security code is incorrect.",
                "processing_error" => {
                    "An error occurred while processing your card. Try again in a little bit."
                }
                _ => "Your card was declined.",
            };
            (
                402,
                json!({"error": {
                    "type": "card_error",
                    "code": code,
                    "decline_code": decline_code,
                    "message": message,
                    "payment_intent": {"id": id, "object": "payment_intent", "status": "requires_payment_method"},
                }}),
            )
        }
    }
}

fn create_refund(inner: &mut Inner, request: &Recorded) -> (u16, Value) {
    let intent_id = request
        .field("payment_intent")
        .unwrap_or_default()
        .to_owned();
    let Some(intent) = inner.intents.get(&intent_id) else {
        return error(
            404,
            "invalid_request_error",
            "resource_missing",
            &format!("No such payment_intent: '{intent_id}'"),
        );
    };
    if intent["status"] != "succeeded" {
        return error(
            400,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            "This PaymentIntent has not succeeded.",
        );
    }
    let captured = intent["amount_received"].as_i64().unwrap_or_default();
    let already = inner.refunded.get(&intent_id).copied().unwrap_or_default();
    let amount = match request.field("amount") {
        Some(a) => match a.parse::<i64>() {
            Ok(a) if a > 0 => a,
            _ => {
                return error(
                    400,
                    "invalid_request_error",
                    "parameter_invalid_integer",
                    "Invalid integer: amount",
                );
            }
        },
        None => captured - already,
    };
    if amount > captured - already {
        return error(
            400,
            "invalid_request_error",
            "amount_too_large",
            "Refund amount is greater than unrefunded amount on charge.",
        );
    }
    let reason = request.field("reason");
    if !matches!(
        reason,
        None | Some("duplicate" | "fraudulent" | "requested_by_customer")
    ) {
        return error(
            400,
            "invalid_request_error",
            "parameter_invalid_empty",
            "Invalid reason.",
        );
    }
    inner.refunded.insert(intent_id.clone(), already + amount);
    inner.next_id += 1;
    (
        200,
        json!({
            "id": format!("re_fake{}", inner.next_id),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "reason": reason,
            "status": "succeeded",
        }),
    )
}

/// The fake over plain HTTP, independent of `shop serve`: a card charge, its
/// replay by key, a decline, and a refund.
#[tokio::test]
async fn fake_stripe_speaks_stripe() {
    let (base, fake) = start().await;
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: &str| {
        client
            .post(format!("{base}{path}"))
            .header("authorization", "Bearer sk_test_fake")
            .header("idempotency-key", key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
    };
    let body = "amount=1999&currency=usd&confirm=true&payment_method_data%5Btype%5D=card\
                &payment_method_data%5Bcard%5D%5Bnumber%5D=4242424242424242&expand%5B%5D=latest_charge";
    let first = post("/v1/payment_intents", "pay_1", body)
        .await
        .expect("sent");
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["status"], "succeeded");
    assert_eq!(
        first["latest_charge"]["payment_method_details"]["card"]["last4"],
        "4242"
    );
    let again: Value = post("/v1/payment_intents", "pay_1", body)
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(again["id"], first["id"], "the same key replays the answer");
    let other = post("/v1/payment_intents", "pay_1", "amount=5&currency=usd")
        .await
        .expect("sent");
    assert_eq!(other.status(), 400);

    let declined = post(
        "/v1/payment_intents",
        "pay_2",
        "amount=100&currency=usd&confirm=true&payment_method_data%5Bcard%5D%5Bnumber%5D=4000000000009995",
    )
    .await
    .expect("sent");
    assert_eq!(declined.status(), 402);
    let declined: Value = declined.json().await.expect("json");
    assert_eq!(declined["error"]["decline_code"], "insufficient_funds");

    let intent = first["id"].as_str().expect("an id");
    let refund = post(
        "/v1/refunds",
        "ref_1",
        &format!("payment_intent={intent}&amount=2000"),
    )
    .await
    .expect("sent");
    assert_eq!(refund.status(), 400, "more than was captured");
    let refund: Value = post(
        "/v1/refunds",
        "ref_2",
        &format!("payment_intent={intent}&amount=999"),
    )
    .await
    .expect("sent")
    .json()
    .await
    .expect("json");
    assert_eq!(refund["status"], "succeeded");

    // An injected 500 is not stored: the retry with the same key goes through.
    fake.fail_next(1);
    let transfer = "amount=500&currency=usd&confirm=true&customer=cus_1\
                    &payment_method_types%5B%5D=customer_balance";
    let failed = post("/v1/payment_intents", "pay_3", transfer)
        .await
        .expect("sent");
    assert_eq!(failed.status(), 500);
    let pending: Value = post("/v1/payment_intents", "pay_3", transfer)
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(pending["status"], "requires_action");
    let id = pending["id"].as_str().expect("an id");
    assert!(fake.fund(id));
    let get = |path: String, key: &'static str| {
        client
            .get(format!("{base}{path}"))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    let funded: Value = get(
        format!("/v1/payment_intents/{id}?expand%5B%5D=latest_charge"),
        "sk_test_fake",
    )
    .await
    .expect("sent")
    .json()
    .await
    .expect("json");
    assert_eq!(funded["status"], "succeeded");
    let unauthorized = get(format!("/v1/payment_intents/{id}"), "sk_live_nope")
        .await
        .expect("sent");
    assert_eq!(unauthorized.status(), 401);

    let requests = fake.requests();
    assert_eq!(requests.len(), 10);
    let first = &requests[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/v1/payment_intents")
    );
    assert_eq!(first.authorization.as_deref(), Some("Bearer sk_test_fake"));
    assert_eq!(
        first.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(first.idempotency_key.as_deref(), Some("pay_1"));
    assert_eq!(
        first.field("payment_method_data[card][number]"),
        Some("4242424242424242")
    );
    assert_eq!(first.field("expand[]"), Some("latest_charge"));
    assert_eq!(requests[8].query, "expand%5B%5D=latest_charge");
}
