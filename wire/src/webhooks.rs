//! Outbound webhooks (Standard Webhooks): endpoints that subscribe to event
//! patterns, and the log of each event's delivery to each of them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;
pub use crate::ids::{WebhookDeliveryId, WebhookId};

string_enum!(
    /// `active` endpoints receive deliveries; `disabled` ones (by a 410
    /// answer, by failing for the whole retry window, or by staff) do not
    /// until staff set them `active` again.
    WebhookStatus, "status" {
        Active => "active",
        Disabled => "disabled",
    }
);

string_enum!(
    /// `pending` (not tried yet, or being tried), `failed` (an attempt failed
    /// and a retry is scheduled at `next_attempt_at`), `succeeded` (a 2xx
    /// answer), `dead` (given up: out of the retry window, a 410, or a refused address).
    DeliveryStatus, "status" {
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
        Dead => "dead",
    }
);

/// An endpoint. `secret` (`whsec_...`) is present only in the answers of
/// create and rotate-secret: it is shown once.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    /// Event type patterns: exact (`order.paid`), a prefix (`order.*`) or `*`.
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: WebhookStatus,
    /// Why a disabled endpoint was disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// While the previous secret still signs too (after a rotation).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    /// Since when every attempt has failed; none while deliveries succeed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST /api/webhooks`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `https://` (or `http://` for a host the server allows with `--webhook-allow-host`).
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /api/webhooks/{id}`: only the fields given change. Setting
/// `status` to `active` re-enables a disabled endpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WebhookStatus>,
}

/// One event's delivery to one endpoint. Its `id` is the `webhook-id`
/// header of every attempt, retries and replays included.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: u64,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts since it was queued (or replayed).
    pub attempts: u32,
    /// The HTTP status of the last answer, if there was one.
    pub response_status: Option<u16>,
    /// When the next attempt is due, for `pending` and `failed` deliveries.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last failure: a status with the start of the answer's body, or why no answer came.
    pub last_error: Option<String>,
    /// How long the last attempt took.
    pub duration_ms: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

/// `POST /api/webhooks/{id}/replay`: every failed or dead delivery created
/// since `since` is queued again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// How many deliveries a replay queued again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayResult {
    pub replayed: u64,
}

/// The answer of `POST /api/webhooks/{id}/test`: the `webhook.test` event logged for it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestResult {
    pub event_id: u64,
}

/// The prefix of a signing secret; base64 of the key's bytes follows it.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret made of `key` (at least 24 random bytes).
pub fn secret_from_key(key: &[u8]) -> String {
    use base64::Engine;
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Why a secret cannot sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSecret;

impl std::fmt::Display for BadSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a webhook secret is `whsec_` followed by base64")
    }
}

impl std::error::Error for BadSecret {}

/// One Standard Webhooks signature, `v1,<base64>`: HMAC-SHA256 keyed with
/// the secret's bytes (the base64 after `whsec_`) over
/// `<webhook-id>.<webhook-timestamp>.<body>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| BadSecret)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", engine.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret, separated by
/// spaces (during a rotation's overlap, the new and the old secret's).
pub fn signature_header(
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_reference_example() {
        // The example of the Standard Webhooks specification and its libraries' tests.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .expect("sign");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotation_sends_both_signatures_and_bad_secrets_are_errors() {
        let old = secret_from_key(&[1; 24]);
        let new = secret_from_key(&[2; 32]);
        assert!(new.starts_with(SECRET_PREFIX));
        let header =
            signature_header(&[new.clone(), old.clone()], "msg_1", 5, b"{}").expect("sign");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&new, "msg_1", 5, b"{}").expect("sign"));
        assert_eq!(parts[1], sign(&old, "msg_1", 5, b"{}").expect("sign"));
        assert_ne!(parts[0], parts[1]);
        assert_eq!(sign("whsec_not base64!", "m", 1, b""), Err(BadSecret));
    }
}
