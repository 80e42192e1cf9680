//! `shop listen`: forwards the server's live events to a local URL, signed
//! as real webhook deliveries are, like `stripe listen`.
//!
//! It follows the event stream of the server the CLI is logged in to (SSE,
//! resumed by the last event id after a drop), signs each matching event
//! with a secret made for this run (Standard Webhooks, the same code as the
//! server's deliveries) and POSTs it to the local receiver, one at a time
//! in event order. One line per event says what the receiver answered.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::RngCore;
use serde::Serialize;
use shop_wire::webhooks::{WebhookDeliveryId, secret_from_key, sign};
use shop_wire::{Event, Page};

use crate::client::FollowItem;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

/// The most one forward may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  shop listen --forward-to http://localhost:3000/hooks --event 'order.*'
Verify deliveries in the receiver with the printed secret, as you would the real
endpoint's (e.g. the standardwebhooks library); Ctrl-C stops.")]
pub struct ListenArgs {
    /// The local URL to POST each event to.
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    forward_to: reqwest::Url,
    /// Only these event types: exact (`order.paid`), a prefix (`order.*`) or `*`; repeat or separate with commas.
    #[arg(long = "event", value_name = "PATTERN", value_delimiter = ',')]
    events: Vec<String>,
}

fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|err| format!("`{text}` is not a URL: {err}"))?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err(format!("`{text}` is not an http:// or https:// URL"))
    }
}

/// One forwarded event, as printed.
#[derive(Debug, Serialize)]
struct Forwarded {
    event_id: u64,
    #[serde(rename = "type")]
    kind: String,
    webhook_id: String,
    /// The receiver's HTTP status; none when it could not be reached.
    status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
}

impl Tabular for Forwarded {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("event", "event_id").kind(CellKind::Id),
            Column::new("type", "type"),
            Column::new("status", "status"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.event_id.to_string()
    }
}

impl ListenArgs {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let secret = secret_from_key(&key);
        let types = (!self.events.is_empty()).then(|| self.events.join(","));
        // New events only: where the log ends now.
        let latest: Page<Event> = client
            .get("/api/events/log")
            .query("limit", "1")
            .send()
            .await?;
        let after = match latest.total {
            0 => 0,
            total => {
                let last: Page<Event> = client
                    .get("/api/events/log")
                    .query("limit", "1")
                    .query("offset", (total - 1).to_string())
                    .send()
                    .await?;
                last.items.last().map_or(0, |e| e.id)
            }
        };
        let forward = reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| CliError::Other(format!("cannot make an HTTP client: {err}")))?;
        eprintln!(
            "Ready! Forwarding {} events to {}\nYour webhook signing secret is {secret} (Ctrl-C stops)",
            types.as_deref().unwrap_or("all"),
            self.forward_to
        );
        let mut events = std::pin::pin!(client.follow_events(after, types));
        while let Some(item) = events.next().await {
            let event = match item? {
                FollowItem::Event(event) => event,
                FollowItem::Reconnecting { reason, delay } => {
                    eprintln!(
                        "shop: the event stream dropped ({reason}); reconnecting in {:.1} s",
                        delay.as_secs_f64()
                    );
                    continue;
                }
                FollowItem::Resumed => {
                    eprintln!("shop: the event stream is back");
                    continue;
                }
            };
            let forwarded = deliver(&forward, &self.forward_to, &secret, &event).await?;
            if output.format() == Format::Table {
                let answer = match (&forwarded.status, &forwarded.error) {
                    (Some(status), _) => status.to_string(),
                    (None, Some(error)) => format!("failed: {error}"),
                    (None, None) => "failed".to_owned(),
                };
                println!(
                    "{}  {:<28} {} --> POST {} [{answer}] ({} ms)",
                    event
                        .occurred_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    event.kind,
                    forwarded.event_id,
                    self.forward_to,
                    forwarded.duration_ms
                );
            } else {
                output.stream(&forwarded)?;
            }
        }
        Ok(())
    }
}

/// POSTs one event signed with `secret`, as the server's deliveries are.
async fn deliver(
    client: &reqwest::Client,
    url: &reqwest::Url,
    secret: &str,
    event: &Event,
) -> Result<Forwarded, CliError> {
    let body = serde_json::to_string(event)
        .map_err(|err| CliError::Other(format!("cannot encode the event: {err}")))?;
    let id = WebhookDeliveryId::generate().to_string();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign(secret, &id, timestamp, body.as_bytes())
        .map_err(|err| CliError::Other(err.to_string()))?;
    let started = Instant::now();
    let sent = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let (status, error) = match sent {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(err) if err.is_timeout() => (None, Some("timed out".to_owned())),
        Err(err) => (None, Some(format!("cannot reach it: {err}"))),
    };
    Ok(Forwarded {
        event_id: event.id,
        kind: event.kind.clone(),
        webhook_id: id,
        status,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}
