//! `shop key`: scoped API keys for other systems (staff).
//!
//! A key's secret is printed once, when it is made; the server keeps only
//! its hash. The CLI takes a key wherever it takes a token
//! (`SHOP_TOKEN=shop_sk_...` or `--token`).

use shop_wire::Page;
use shop_wire::keys::{ApiKey, CreatedKey, NewKey, Scope};

use super::inventory::parse_duration;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Make a key; its secret is printed once, so store it at once.
    #[command(after_help = "\
Scopes are RESOURCE:read or RESOURCE:write (write implies read); RESOURCE is one of
products, inventory, orders, payments, customers, notifications, webhooks, reports.

Example: shop key create --name warehouse --scope inventory:write --scope orders:read --expires-in 90d")]
    Create {
        /// What the key is for, e.g. the system that will use it.
        #[arg(long)]
        name: String,
        /// A scope the key holds; repeat for more.
        #[arg(long = "scope", value_name = "RESOURCE:ACCESS", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// The key stops working after this long (like 30d, 12h); never, when absent.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<u64>,
    },
    /// List keys (yours; an admin sees everyone's). Secrets are never shown.
    List,
    /// Revoke a key: it stops working at once.
    Revoke {
        /// The key's id (key_...).
        id: String,
    },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    text.parse()
        .map_err(|err: shop_wire::keys::InvalidScope| err.to_string())
}

impl Tabular for ApiKey {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("prefix", "prefix").kind(CellKind::Id),
            Column::new("scopes", "scopes"),
            Column::new("last used", "last_used_at").kind(CellKind::Time),
            Column::new("expires", "expires_at").kind(CellKind::Time),
            Column::new("revoked", "revoked_at").kind(CellKind::Time),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        let scopes: Vec<String> = self.scopes.iter().map(Scope::to_string).collect();
        vec![("scopes", scopes.join(" "))]
    }
}

impl Tabular for CreatedKey {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("secret", "secret").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.key.id.to_string()
    }
}

impl KeyCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            KeyCommand::Create {
                name,
                scopes,
                expires_in,
            } => {
                let expires_at = expires_in
                    .map(|seconds| {
                        i64::try_from(seconds)
                            .ok()
                            .and_then(|s| {
                                time::OffsetDateTime::now_utc()
                                    .checked_add(time::Duration::seconds(s))
                            })
                            .ok_or_else(|| CliError::Usage("--expires-in is too long".to_owned()))
                    })
                    .transpose()?;
                let created: CreatedKey = client
                    .post("/api/keys")
                    .json(&NewKey {
                        name,
                        scopes,
                        expires_at,
                    })?
                    .send()
                    .await?;
                eprintln!(
                    "Store this secret now: it is shown only once, and the server keeps only its hash."
                );
                if output.format() == Format::Id {
                    // `-q` prints the secret, the one thing a script needs.
                    println!("{}", created.secret);
                    return Ok(());
                }
                output.one(&created)
            }
            KeyCommand::List => {
                let page: Page<ApiKey> = client.get("/api/keys").send().await?;
                output.list(&page, &page.items)
            }
            KeyCommand::Revoke { id } => {
                let key: ApiKey = client.delete(&format!("/api/keys/{id}")).send().await?;
                output.one(&key)
            }
        }
    }
}
