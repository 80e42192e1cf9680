//! `shop webhook`: outbound webhook endpoints, their deliveries, replays,
//! test events and secret rotation (staff).

use serde::Serialize;
use shop_wire::Page;
use shop_wire::webhooks::{
    CreateWebhook, DeliveryStatus, ReplayRequest, ReplayResult, TestResult, Webhook,
    WebhookDelivery, WebhookDeliveryId, WebhookId,
};
use time::OffsetDateTime;

use super::{choice, confirm};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint; prints its signing secret (whsec_...), shown only this once.
    #[command(after_help = "\
The URL must be https:// and reach the internet (not a private or loopback address),
unless the server allows its host with --webhook-allow-host.
Example: shop webhook add https://example.com/hooks --event 'order.*' --event inventory.low_stock")]
    Add(AddArgs),
    /// List the endpoints.
    List,
    /// Show one endpoint (without its secret).
    Get {
        /// The endpoint id (whk_...).
        #[arg(value_parser = parse_webhook)]
        id: WebhookId,
    },
    /// List an endpoint's deliveries, newest first: status, attempts, last answer.
    #[command(after_help = "Example: shop webhook deliveries whk_... --status dead")]
    Deliveries {
        /// The endpoint id (whk_...).
        #[arg(value_parser = parse_webhook)]
        id: WebhookId,
        /// Only this status: pending, succeeded, failed or dead.
        #[arg(long, value_parser = delivery_status())]
        status: Option<DeliveryStatus>,
        /// Deliveries per page.
        #[arg(long, default_value_t = 50, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// Deliver one delivery again (same webhook-id), or with --since every failed
    /// or dead delivery created since a time.
    #[command(after_help = "\
Examples:
  shop webhook replay whk_... msg_...
  shop webhook replay whk_... --since 2026-12-24T09:00:00Z")]
    Replay {
        /// The endpoint id (whk_...).
        #[arg(value_parser = parse_webhook)]
        id: WebhookId,
        /// The delivery id (msg_...).
        #[arg(value_parser = parse_delivery, required_unless_present = "since", conflicts_with = "since")]
        delivery: Option<WebhookDeliveryId>,
        /// Every failed or dead delivery created at or after this RFC 3339 time.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<OffsetDateTime>,
    },
    /// Send a webhook.test event to the endpoint (watch it with `shop webhook deliveries`).
    Test {
        /// The endpoint id (whk_...).
        #[arg(value_parser = parse_webhook)]
        id: WebhookId,
    },
    /// Make a new signing secret and print it; the old one keeps signing for the
    /// server's overlap (24 h by default), so receivers can switch without a gap.
    RotateSecret {
        /// The endpoint id (whk_...).
        #[arg(value_parser = parse_webhook)]
        id: WebhookId,
    },
    /// Remove an endpoint and its delivery log.
    Remove {
        /// The endpoint id (whk_...).
        #[arg(value_parser = parse_webhook)]
        id: WebhookId,
        /// Do not ask for confirmation (needed when not on a terminal).
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Where to POST events: https://..., or http:// for a host the server allows.
    #[arg(value_name = "URL")]
    endpoint: String,
    /// An event type (`order.paid`), a prefix (`order.*`) or `*`; repeat for more.
    #[arg(
        long = "event",
        value_name = "PATTERN",
        required = true,
        value_delimiter = ','
    )]
    events: Vec<String>,
    /// A note for people: what this endpoint is for.
    #[arg(long)]
    description: Option<String>,
}

fn delivery_status() -> impl clap::builder::TypedValueParser<Value = DeliveryStatus> {
    choice(DeliveryStatus::ALL.iter().map(|s| s.as_str()))
}

fn parse_webhook(text: &str) -> Result<WebhookId, String> {
    text.parse().map_err(|err| format!("`{text}`: {err}"))
}

fn parse_delivery(text: &str) -> Result<WebhookDeliveryId, String> {
    text.parse().map_err(|err| format!("`{text}`: {err}"))
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("`{text}` is not an RFC 3339 time like 2026-12-24T09:00:00Z"))
}

impl Tabular for Webhook {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("url", "url"),
            Column::new("events", "events"),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("failing since", "failing_since").kind(CellKind::Time),
            Column::new("description", "description"),
            Column::new("created", "created_at").kind(CellKind::Time),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl Tabular for WebhookDelivery {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("event", "event_id"),
            Column::new("type", "event_type"),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("attempts", "attempts"),
            Column::new("answer", "response_status"),
            Column::new("next attempt", "next_attempt_at").kind(CellKind::Time),
            Column::new("last error", "last_error"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// How many deliveries a replay queued.
#[derive(Debug, Serialize)]
struct Replayed {
    replayed: u64,
}

impl Tabular for Replayed {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[Column::new("replayed", "replayed")];
        COLUMNS
    }

    fn id(&self) -> String {
        self.replayed.to_string()
    }
}

impl Tabular for TestResult {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[Column::new("event", "event_id")];
        COLUMNS
    }

    fn id(&self) -> String {
        self.event_id.to_string()
    }
}

impl WebhookCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            WebhookCommand::Add(args) => {
                let webhook: Webhook = client
                    .post("/api/webhooks")
                    .json(&CreateWebhook {
                        url: args.endpoint,
                        events: args.events,
                        description: args.description,
                    })?
                    .send()
                    .await?;
                output.one(&webhook)?;
                if output.format() == Format::Table {
                    eprintln!(
                        "Keep the signing secret now: it is not shown again (rotate it with shop webhook rotate-secret {}).",
                        webhook.id
                    );
                }
                Ok(())
            }
            WebhookCommand::List => {
                let page: Page<Webhook> = client
                    .get("/api/webhooks")
                    .query("limit", "500")
                    .send()
                    .await?;
                output.list(&page, &page.items)
            }
            WebhookCommand::Get { id } => {
                let webhook: Webhook = client.get(&format!("/api/webhooks/{id}")).send().await?;
                output.one(&webhook)
            }
            WebhookCommand::Deliveries { id, status, limit } => {
                let page: Page<WebhookDelivery> = client
                    .get(&format!("/api/webhooks/{id}/deliveries"))
                    .query_opt("status", status)
                    .query("limit", limit.to_string())
                    .send()
                    .await?;
                output.list(&page, &page.items)?;
                super::more_hint(&output, &page, "deliveries");
                Ok(())
            }
            WebhookCommand::Replay {
                id,
                delivery: Some(delivery),
                ..
            } => {
                let delivery: WebhookDelivery = client
                    .post(&format!("/api/webhooks/{id}/deliveries/{delivery}/replay"))
                    .send()
                    .await?;
                output.one(&delivery)
            }
            WebhookCommand::Replay { id, since, .. } => {
                let since = since.ok_or_else(|| {
                    CliError::Usage("name a delivery to replay, or --since TIME".into())
                })?;
                let result: ReplayResult = client
                    .post(&format!("/api/webhooks/{id}/replay"))
                    .json(&ReplayRequest { since })?
                    .send()
                    .await?;
                output.one(&Replayed {
                    replayed: result.replayed,
                })
            }
            WebhookCommand::Test { id } => {
                let result: TestResult = client
                    .post(&format!("/api/webhooks/{id}/test"))
                    .send()
                    .await?;
                output.one(&result)
            }
            WebhookCommand::RotateSecret { id } => {
                let webhook: Webhook = client
                    .post(&format!("/api/webhooks/{id}/rotate-secret"))
                    .send()
                    .await?;
                output.one(&webhook)
            }
            WebhookCommand::Remove { id, yes } => {
                let path = format!("/api/webhooks/{id}");
                if !yes {
                    let found: Webhook = client.get(&path).send().await?;
                    let question = format!(
                        "Remove the endpoint {} ({}) and its delivery log?",
                        found.id, found.url
                    );
                    if !confirm(&question, "--yes")? {
                        return Err(CliError::Other("cancelled; nothing was removed".into()));
                    }
                }
                client.delete(&path).send_empty().await?;
                if output.format() == Format::Table {
                    eprintln!("removed {id}");
                }
                Ok(())
            }
        }
    }
}
