//! The Stripe adapter: PaymentIntents and Refunds over HTTPS (reqwest,
//! rustls), used when `SHOP_STRIPE_SECRET_KEY` is set.
//!
//! Charges are PaymentIntents created and confirmed in one call
//! (`confirm=true`); bank transfers are `customer_balance` intents that stay
//! `requires_action` until the money arrives, and `settle` reads the intent
//! back. Every POST carries our idempotency key (our payment or refund id),
//! so a repeat after a timeout, a 5xx or a crash is the same charge at Stripe.
//!
//! Answers map onto the provider interface the way Stripe documents them: a
//! 402 `card_error` is a decline; a 429, a 409 (the same key still in flight),
//! a 5xx, a timeout or a connection failure is transient; any other 4xx is
//! our mistake or misconfiguration and is rejected. The secret key and card
//! numbers are never logged and never put in an error: Stripe's own messages
//! are scrubbed of anything that looks like a key before they are passed on.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use shop_wire::money::Currency;

use super::{
    ChargeOutcome, ChargeRequest, MethodDetails, PaymentProvider, ProviderError, RefundCall,
    RefundOutcome,
};

pub const NAME: &str = "stripe";

/// The secret key, kept out of Debug output.
#[derive(Clone)]
struct SecretKey(String);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[derive(Clone, Debug)]
pub struct Stripe {
    client: reqwest::Client,
    /// `https://api.stripe.com`, without a trailing slash.
    base: String,
    key: SecretKey,
}

impl Stripe {
    /// A client for `api_base` (Stripe's, or a test double's). `timeout`
    /// bounds each request on its own, in case the adapter is used unwrapped.
    pub fn new(
        secret_key: &str,
        api_base: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("shop/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Stripe {
            client,
            base: api_base.trim_end_matches('/').to_owned(),
            key: SecretKey(secret_key.to_owned()),
        })
    }

    /// Sends one request and returns Stripe's JSON, or the error it maps to.
    /// `form` is `None` for a GET.
    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        form: Option<&[(String, String)]>,
    ) -> Result<Reply, ProviderError> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key.0);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        let response = request.send().await.map_err(|err| {
            // The URL holds no secret (the key travels in a header, card
            // numbers in the body), but keep errors short and uniform.
            let kind = if err.is_timeout() {
                "timed out"
            } else if err.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            ProviderError::Transient(format!("Stripe {path}: {kind}"))
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|err| {
            ProviderError::Transient(format!(
                "Stripe {path}: the answer broke off ({})",
                if err.is_timeout() {
                    "timed out"
                } else {
                    "read failed"
                }
            ))
        })?;
        let json: Option<Value> = serde_json::from_str(&body).ok();
        if status.is_success() {
            // A 2xx we cannot read may still have moved money: transient, so
            // the same key is asked again and Stripe replays its answer.
            return json.map(Reply::Ok).ok_or_else(|| {
                ProviderError::Transient(format!(
                    "Stripe {path}: an answer that is not JSON ({status})"
                ))
            });
        }
        let error = json
            .as_ref()
            .and_then(|v| serde_json::from_value::<ErrorBody>(v.clone()).ok())
            .map(|b| b.error)
            .unwrap_or_default();
        let message = scrub(error.message.as_deref().unwrap_or("no message"));
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::CONFLICT
            || status.is_server_error()
        {
            return Err(ProviderError::Transient(format!(
                "Stripe {path}: {message} ({status})"
            )));
        }
        if error.kind.as_deref() == Some("card_error") {
            return Ok(Reply::CardError(error));
        }
        Ok(Reply::Refused {
            status,
            code: error.code.clone(),
            message: format!("Stripe {path}: {message} ({status})"),
        })
    }

    async fn create_customer(&self, request: &ChargeRequest) -> Result<String, ProviderError> {
        let form = vec![
            pair("description", &request.description),
            pair("metadata[order_id]", &request.order_id),
        ];
        // Its own key, derived from the payment's: a repeat finds the same customer.
        let key = format!("{}-customer", request.idempotency_key);
        match self
            .call(Method::POST, "/v1/customers", Some(&key), Some(&form))
            .await?
        {
            Reply::Ok(json) => json["id"].as_str().map(str::to_owned).ok_or_else(|| {
                ProviderError::Transient("Stripe /v1/customers: no id in the answer".into())
            }),
            Reply::CardError(error) => Err(ProviderError::Rejected(scrub(
                error.message.as_deref().unwrap_or("customer refused"),
            ))),
            Reply::Refused { message, .. } => Err(ProviderError::Rejected(message)),
        }
    }
}

/// Stripe's answer once transport errors and transient statuses are out of the way.
enum Reply {
    Ok(Value),
    /// A 4xx with `error.type = card_error`: the card was declined.
    CardError(ApiError),
    /// Any other 4xx.
    Refused {
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ApiError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    payment_intent: Option<Value>,
}

impl ApiError {
    fn declined(&self) -> ChargeOutcome {
        let code = self
            .decline_code
            .clone()
            .or_else(|| self.code.clone())
            .unwrap_or_else(|| "card_declined".to_owned());
        ChargeOutcome::Declined {
            code,
            message: scrub(self.message.as_deref().unwrap_or("Your card was declined.")),
            provider_ref: self
                .payment_intent
                .as_ref()
                .and_then(|pi| pi["id"].as_str())
                .map(str::to_owned),
        }
    }
}

fn pair(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_owned(), value.into())
}

/// Replaces anything shaped like a Stripe key (`sk_live_...`, `rk_test_...`)
/// with a mask: Stripe's 401 message quotes part of the key it was given.
fn scrub(message: &str) -> String {
    message
        .split(' ')
        .map(|word| {
            if ["sk_", "rk_", "pk_"].iter().any(|p| word.starts_with(p)) {
                "[redacted]"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stripe's bank-transfer flavour for a currency; the ones that need no
/// further choice (EUR needs the country of the receiving account).
fn bank_transfer_type(currency: Currency) -> Option<&'static str> {
    match currency.code() {
        "USD" => Some("us_bank_transfer"),
        "GBP" => Some("gb_bank_transfer"),
        "JPY" => Some("jp_bank_transfer"),
        "MXN" => Some("mx_bank_transfer"),
        _ => None,
    }
}

/// Stripe's refund `reason` enum; anything else is `requested_by_customer`
/// (the free text goes in metadata).
fn refund_reason(reason: Option<&str>) -> &'static str {
    match reason.map(str::trim) {
        Some("duplicate") => "duplicate",
        Some("fraudulent") => "fraudulent",
        _ => "requested_by_customer",
    }
}

/// A PaymentIntent id as a path segment: Stripe's ids are `pi_` and
/// alphanumerics; anything else must not reach a URL.
fn intent_id(provider_ref: &str) -> Option<&str> {
    (provider_ref.starts_with("pi_")
        && provider_ref.len() <= 255
        && provider_ref
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then_some(provider_ref)
}

/// The brand and last four digits of the card an intent charged, from the
/// expanded latest charge or the payment method, whichever is present.
fn card_details(intent: &Value) -> (Option<String>, Option<String>) {
    let card = [
        intent.pointer("/latest_charge/payment_method_details/card"),
        intent.pointer("/payment_method/card"),
    ]
    .into_iter()
    .flatten()
    .find(|c| c.is_object());
    let field = |name: &str| card.and_then(|c| c[name].as_str()).map(str::to_owned);
    (field("brand"), field("last4"))
}

/// What an intent's status means to us. `pending_ok` says whether waiting
/// is expected (a bank transfer) or a failure (a card that wants 3-D Secure,
/// which a terminal cannot complete).
fn intent_outcome(intent: &Value, pending_ok: bool) -> Result<ChargeOutcome, ProviderError> {
    let id = intent["id"]
        .as_str()
        .ok_or_else(|| ProviderError::Transient("Stripe: a PaymentIntent without an id".into()))?
        .to_owned();
    let status = intent["status"].as_str().unwrap_or("");
    match status {
        "succeeded" => {
            let (card_brand, card_last4) = card_details(intent);
            Ok(ChargeOutcome::Succeeded {
                provider_ref: id,
                card_brand,
                card_last4,
            })
        }
        "processing" | "requires_action" if pending_ok => {
            Ok(ChargeOutcome::Pending { provider_ref: id })
        }
        "requires_action" => Ok(ChargeOutcome::Declined {
            code: "authentication_required".to_owned(),
            message: "The card needs authentication (3-D Secure), which cannot be done here."
                .to_owned(),
            provider_ref: Some(id),
        }),
        "processing" => Ok(ChargeOutcome::Pending { provider_ref: id }),
        "requires_payment_method" | "canceled" => {
            let last = intent
                .get("last_payment_error")
                .and_then(|e| serde_json::from_value::<ApiError>(e.clone()).ok());
            Ok(match last {
                Some(error) => match error.declined() {
                    ChargeOutcome::Declined { code, message, .. } => ChargeOutcome::Declined {
                        code,
                        message,
                        provider_ref: Some(id),
                    },
                    other => other,
                },
                None => ChargeOutcome::Declined {
                    code: if status == "canceled" {
                        "canceled"
                    } else {
                        "card_declined"
                    }
                    .to_owned(),
                    message: format!("The payment is {}.", status.replace('_', " ")),
                    provider_ref: Some(id),
                },
            })
        }
        other => Err(ProviderError::Rejected(format!(
            "Stripe: PaymentIntent {id} is in an unexpected state `{other}`"
        ))),
    }
}

#[async_trait]
impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let mut form = vec![
            pair("amount", request.amount_cents.to_string()),
            pair("currency", request.currency.code().to_ascii_lowercase()),
            pair("confirm", "true"),
            pair("description", &request.description),
            pair("metadata[order_id]", &request.order_id),
            pair("metadata[payment_id]", &request.idempotency_key),
            pair("expand[]", "latest_charge"),
        ];
        let bank_transfer = matches!(request.method, MethodDetails::BankTransfer);
        match &request.method {
            MethodDetails::Card {
                number,
                exp_month,
                exp_year,
                cvc,
            } => {
                // Only card: the account's other methods may redirect, which
                // would need a return URL a terminal does not have.
                form.push(pair("payment_method_types[]", "card"));
                form.push(pair("payment_method_data[type]", "card"));
                let digits: String = number.chars().filter(char::is_ascii_digit).collect();
                form.push(pair("payment_method_data[card][number]", digits));
                form.push(pair(
                    "payment_method_data[card][exp_month]",
                    exp_month.to_string(),
                ));
                form.push(pair(
                    "payment_method_data[card][exp_year]",
                    exp_year.to_string(),
                ));
                if let Some(cvc) = cvc {
                    form.push(pair("payment_method_data[card][cvc]", cvc));
                }
            }
            MethodDetails::Wallet { token, .. } => {
                form.push(pair("payment_method_types[]", "card"));
                // A wallet hands over a card token (`tok_...`) or a
                // PaymentMethod (`pm_...`); Stripe takes them differently.
                if token.starts_with("tok_") {
                    form.push(pair("payment_method_data[type]", "card"));
                    form.push(pair("payment_method_data[card][token]", token));
                } else {
                    form.push(pair("payment_method", token));
                }
            }
            MethodDetails::BankTransfer => {
                let Some(kind) = bank_transfer_type(request.currency) else {
                    return Err(ProviderError::Rejected(format!(
                        "bank transfers through Stripe are available in USD, GBP, JPY and MXN, not {}",
                        request.currency
                    )));
                };
                let customer = self.create_customer(request).await?;
                form.push(pair("customer", customer));
                form.push(pair("payment_method_types[]", "customer_balance"));
                form.push(pair("payment_method_data[type]", "customer_balance"));
                form.push(pair(
                    "payment_method_options[customer_balance][funding_type]",
                    "bank_transfer",
                ));
                form.push(pair(
                    "payment_method_options[customer_balance][bank_transfer][type]",
                    kind,
                ));
            }
        }
        let reply = self
            .call(
                Method::POST,
                "/v1/payment_intents",
                Some(&request.idempotency_key),
                Some(&form),
            )
            .await?;
        match reply {
            Reply::Ok(intent) => intent_outcome(&intent, bank_transfer),
            Reply::CardError(error) => Ok(error.declined()),
            Reply::Refused { message, .. } => Err(ProviderError::Rejected(message)),
        }
    }

    async fn settle(&self, provider_ref: &str) -> Result<ChargeOutcome, ProviderError> {
        let Some(id) = intent_id(provider_ref) else {
            return Err(ProviderError::Rejected(format!(
                "`{provider_ref}` is not a Stripe PaymentIntent id"
            )));
        };
        let path = format!("/v1/payment_intents/{id}?expand[]=latest_charge");
        match self.call(Method::GET, &path, None, None).await? {
            Reply::Ok(intent) => intent_outcome(&intent, true),
            Reply::CardError(error) => Ok(error.declined()),
            Reply::Refused { message, .. } => Err(ProviderError::Rejected(message)),
        }
    }

    /// Stripe has no lookup by idempotency key, so every PaymentIntent
    /// carries our payment id as `metadata[payment_id]` and is found by a
    /// search on it. Stripe's search index trails writes by up to a minute,
    /// which the recovery worker's wait before asking covers.
    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        if !idempotency_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ProviderError::Rejected(format!(
                "`{idempotency_key}` is not a payment id"
            )));
        }
        let query = format!("metadata['payment_id']:'{idempotency_key}'");
        let path = format!(
            "/v1/payment_intents/search?query={}&expand[]=data.latest_charge",
            encode_query(&query)
        );
        match self.call(Method::GET, &path, None, None).await? {
            Reply::Ok(found) => match found["data"].as_array().and_then(|d| d.first()) {
                Some(intent) => intent_outcome(intent, true).map(Some),
                None => Ok(None),
            },
            Reply::CardError(error) => Ok(Some(error.declined())),
            Reply::Refused { message, .. } => Err(ProviderError::Rejected(message)),
        }
    }

    async fn refund(&self, call: &RefundCall) -> Result<RefundOutcome, ProviderError> {
        let mut form = vec![
            pair("payment_intent", &call.provider_ref),
            pair("amount", call.amount_cents.to_string()),
            pair("reason", refund_reason(call.reason.as_deref())),
            pair("metadata[refund_id]", &call.idempotency_key),
        ];
        if let Some(reason) = &call.reason {
            form.push(pair("metadata[reason]", reason));
        }
        let reply = self
            .call(
                Method::POST,
                "/v1/refunds",
                Some(&call.idempotency_key),
                Some(&form),
            )
            .await?;
        match reply {
            Reply::Ok(refund) => {
                let id = refund["id"].as_str().unwrap_or_default().to_owned();
                match refund["status"].as_str() {
                    // `pending`: accepted, the money is on its way back.
                    Some("succeeded" | "pending" | "requires_action") if !id.is_empty() => {
                        Ok(RefundOutcome::Succeeded { provider_ref: id })
                    }
                    Some("failed" | "canceled") => Ok(RefundOutcome::Refused {
                        message: format!(
                            "Stripe refund {id} {}: {}",
                            refund["status"].as_str().unwrap_or_default(),
                            refund["failure_reason"]
                                .as_str()
                                .unwrap_or("no reason given")
                        ),
                    }),
                    _ => Err(ProviderError::Transient(
                        "Stripe /v1/refunds: an answer without a refund".into(),
                    )),
                }
            }
            Reply::CardError(error) => Ok(RefundOutcome::Refused {
                message: scrub(error.message.as_deref().unwrap_or("refund refused")),
            }),
            // Stripe understood and said no to this refund (already refunded,
            // more than is left, no such charge): a refusal, not our bug.
            Reply::Refused {
                status,
                code: Some(code),
                message,
            } if status != StatusCode::UNAUTHORIZED
                && status != StatusCode::FORBIDDEN
                && REFUND_REFUSALS.contains(&code.as_str()) =>
            {
                Ok(RefundOutcome::Refused { message })
            }
            Reply::Refused { message, .. } => Err(ProviderError::Rejected(message)),
        }
    }
}

/// Stripe error codes that refuse a refund on its merits.
const REFUND_REFUSALS: &[&str] = &[
    "charge_already_refunded",
    "charge_disputed",
    "amount_too_large",
    "resource_missing",
    "payment_intent_unexpected_state",
];

/// Percent-encodes a query parameter's value (RFC 3986 unreserved characters stay).
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests;
