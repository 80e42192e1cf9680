//! `shop audit`: who changed what, newest first (admin).

use shop_wire::Page;
use shop_wire::audit::AuditEntry;
use time::format_description::well_known::Rfc3339;

use super::inventory::parse_duration;
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Output, Tabular};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  shop audit --entity product --since 1d
  shop audit --actor ops@example.com --action inventory
  shop product get SKU-1 --history")]
pub struct AuditArgs {
    /// Only changes to this kind of thing: product, stock, order, payment, user, template, key, reservation.
    #[arg(long)]
    entity: Option<String>,
    /// Only changes to this one (a product's prd_..., a stock row's SKU, an order's ord_...).
    #[arg(long)]
    entity_id: Option<String>,
    /// Only changes by this person (email), user or key id, or `system`.
    #[arg(long)]
    actor: Option<String>,
    /// Only this action (product.updated) or family (product).
    #[arg(long)]
    action: Option<String>,
    /// Only changes made within this long (like 30m, 1h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    since: Option<u64>,
    /// How many entries to show.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

impl Tabular for AuditEntry {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("at", "at").kind(CellKind::Time),
            Column::new("actor", "actor"),
            Column::new("action", "action"),
            Column::new("entity", "entity_id").kind(CellKind::Id),
            Column::new("change", "change"),
            Column::new("ip", "ip"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        let actor = self
            .actor
            .email
            .clone()
            .map(|email| match self.actor.kind {
                shop_wire::audit::ActorKind::ApiKey => {
                    format!("{email} (key {})", self.actor.id.as_deref().unwrap_or(""))
                }
                _ => email,
            })
            .unwrap_or_else(|| self.actor.kind.as_str().to_owned());
        vec![("actor", actor), ("change", change(self))]
    }
}

/// `field: before → after` for each changed field, on one line.
fn change(entry: &AuditEntry) -> String {
    let (Some(before), Some(after)) = (entry.before.as_object(), entry.after.as_object()) else {
        return match (entry.before.is_null(), entry.after.is_null()) {
            (true, false) => "created".to_owned(),
            (false, true) => "deleted".to_owned(),
            _ => String::new(),
        };
    };
    before
        .iter()
        .map(|(field, was)| {
            let now = after.get(field).cloned().unwrap_or_default();
            format!("{field}: {was} → {now}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the entries matching a query.
pub(crate) async fn print(
    client: &ApiClient,
    output: &mut Output,
    query: &[(&str, String)],
) -> Result<(), CliError> {
    let mut call = client.get("/api/audit");
    for (name, value) in query {
        call = call.query(name, value.clone());
    }
    let page: Page<AuditEntry> = call.send().await?;
    output.list(&page, &page.items)
}

impl AuditArgs {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let mut query: Vec<(&str, String)> = vec![("limit", self.limit.to_string())];
        for (name, value) in [
            ("entity", self.entity),
            ("entity_id", self.entity_id),
            ("actor", self.actor),
            ("action", self.action),
        ] {
            if let Some(value) = value {
                query.push((name, value));
            }
        }
        if let Some(seconds) = self.since {
            let from = i64::try_from(seconds)
                .ok()
                .and_then(|s| {
                    time::OffsetDateTime::now_utc().checked_sub(time::Duration::seconds(s))
                })
                .and_then(|t| t.format(&Rfc3339).ok())
                .ok_or_else(|| CliError::Usage("--since is too long".to_owned()))?;
            query.push(("from", from));
        }
        print(&client, &mut output, &query).await
    }
}
