//! SMS and push through an HTTP webhook provider.
//!
//! `POST <url>` with a JSON body `{id, channel, to, template, title, body}`.
//! Headers: `Idempotency-Key: <notification id>`, `X-Shop-Timestamp: <unix
//! seconds>` and `X-Shop-Signature: sha256=<hex HMAC-SHA256 of
//! "<timestamp>.<body>" with the shared secret>`, so the provider can check
//! the call came from this shop and is fresh.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::json;
use sha2::Sha256;

use super::{Outgoing, SendError};

pub struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Vec<u8>,
}

/// `sha256=<hex>` over `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of every length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl WebhookSender {
    pub fn new(url: &str, secret: &[u8], timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("shop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| err.to_string())?;
        Ok(WebhookSender {
            client,
            url: url.parse().map_err(|err| format!("{err}"))?,
            secret: secret.to_vec(),
        })
    }

    pub async fn send(&self, message: &Outgoing<'_>) -> Result<(), SendError> {
        let body = json!({
            "id": message.id,
            "channel": message.channel,
            "to": message.recipient,
            "template": message.template,
            "title": message.rendered.subject,
            "body": message.rendered.body,
        })
        .to_string();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("idempotency-key", message.id.as_str())
            .header("x-shop-timestamp", timestamp.to_string())
            .header(
                "x-shop-signature",
                signature(&self.secret, timestamp, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|err| {
                let what = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                SendError::Transient(format!("webhook {what}: {}", without_url(&err)))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let error = format!("provider answered {status}: {}", text.trim());
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Err(SendError::Transient(error))
        } else {
            Err(SendError::Permanent(error))
        }
    }
}

/// The error's message without the URL, which may carry credentials.
fn without_url(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last.unwrap_or_else(|| "no detail".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac secret
        let sig = signature(b"secret", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(sig, signature(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(sig, signature(b"other", 1_700_000_000, b"{}"));
    }
}
