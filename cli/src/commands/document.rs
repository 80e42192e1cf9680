//! `shop document`: the templates invoices and packing slips are rendered
//! from (staff). The documents themselves are `shop order invoice` and
//! `shop order packing-slip`.

use std::io::Write;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use shop_wire::documents::{DocumentKind, DocumentTemplate, DocumentTemplateRequest};

use super::choice;
use super::notification::read_file;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum DocumentCommand {
    /// List the document templates, and whether each is the shop's own or the built-in one.
    Templates,
    /// Show, replace or reset one document's template.
    #[command(subcommand)]
    Template(TemplateCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Print a template's HTML (the shop's own, or the built-in one to start from).
    #[command(after_help = "Example: shop document template show invoice > invoice.html")]
    Show {
        /// invoice or packing_slip.
        #[arg(value_parser = kind())]
        kind: DocumentKind,
    },
    /// Replace a template with the shop's own HTML. It must render a sample order:
    /// an unknown variable or a syntax error is refused with its line.
    #[command(after_help = "\
Templates use Jinja syntax (minijinja); every variable is HTML-escaped. They get `title`,
`shop` (name, address, tax_id, email), `invoice` (number, issued_on; none on packing slips)
and `order` (number, placed_on, customer_email, currency, items with sku, name, quantity,
unit_price_cents, line_total_cents, shipped and to_ship, subtotal_cents, discount_cents,
shipping_cents, tax_cents, total_cents, refunded_cents, prices_include_tax, tax_lines,
discounts, shipping_method, shipping_address, billing_address, shipments). Amounts print
with {{ order.total_cents | money(order.currency) }}.
Example: shop document template set invoice invoice.html")]
    Set {
        /// invoice or packing_slip.
        #[arg(value_parser = kind())]
        kind: DocumentKind,
        /// The HTML file; `-` reads stdin.
        file: PathBuf,
    },
    /// Go back to the built-in template.
    Reset {
        /// invoice or packing_slip.
        #[arg(value_parser = kind())]
        kind: DocumentKind,
    },
}

fn kind() -> impl TypedValueParser<Value = DocumentKind> {
    choice(DocumentKind::ALL.iter().map(|kind| kind.as_str()))
}

impl Tabular for DocumentTemplate {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("kind", "kind"),
            Column::new("customized", "customized"),
            Column::new("updated at", "updated_at").kind(CellKind::Time),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.kind.to_string()
    }
}

impl DocumentCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let path = |kind: DocumentKind| format!("/api/documents/templates/{kind}");
        match self {
            DocumentCommand::Templates => {
                let templates: Vec<DocumentTemplate> =
                    client.get("/api/documents/templates").send().await?;
                output.list(&templates, &templates)
            }
            DocumentCommand::Template(TemplateCommand::Show { kind }) => {
                let template: DocumentTemplate = client.get(&path(kind)).send().await?;
                let mut out = std::io::stdout().lock();
                out.write_all(template.html.as_bytes())?;
                out.flush()?;
                Ok(())
            }
            DocumentCommand::Template(TemplateCommand::Set { kind, file }) => {
                let request = DocumentTemplateRequest {
                    html: read_file(&file)?,
                };
                let template: DocumentTemplate =
                    client.put(&path(kind)).json(&request)?.send().await?;
                output.one(&template)
            }
            DocumentCommand::Template(TemplateCommand::Reset { kind }) => {
                let template: DocumentTemplate = client.delete(&path(kind)).send().await?;
                output.one(&template)
            }
        }
    }
}
