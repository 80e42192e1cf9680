//! `shop order invoice` and `shop order packing-slip`: an order's documents,
//! as the shop's HTML template renders them or as PDF, to stdout or a file.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::parse_order_ref;
use crate::client::ApiClient;
use crate::error::CliError;

#[derive(Debug, clap::Args)]
pub struct DocumentArgs {
    /// The order's id (ord_...) or number (ORD-001042).
    #[arg(add = crate::complete::orders(), value_name = "ORDER", value_parser = parse_order_ref)]
    order: String,
    /// A PDF instead of HTML from the shop's template.
    #[arg(long)]
    pdf: bool,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
}

pub const INVOICE_HELP: &str = "\
The first time an order's invoice is asked for, it gets the next number of the shop's gapless
sequence (INV-000001, INV-000002, ...); it keeps that number. Only orders money was taken for
have an invoice (exit 5 otherwise). Change the HTML with `shop document template set invoice`.
Examples:
  shop order invoice ORD-001042 > invoice.html
  shop order invoice ORD-001042 --pdf > invoice.pdf";

pub const PACKING_SLIP_HELP: &str = "\
Lists each line's units ordered, shipped and left to pack, and the address it goes to.
Example: shop order packing-slip ORD-001042 --pdf --output-file slip.pdf";

/// Fetches `/api/orders/{order}/{document}` and writes it where it was asked to go.
pub async fn run(client: &ApiClient, document: &str, args: DocumentArgs) -> Result<(), CliError> {
    if args.pdf && args.output_file.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "a PDF would garble the terminal: redirect it (> file.pdf) or give --output-file FILE"
                .to_owned(),
        ));
    }
    let response = client
        .get(&format!("/api/orders/{}/{document}", args.order))
        .query("format", if args.pdf { "pdf" } else { "html" })
        .response()
        .await?;
    let body = response
        .bytes()
        .await
        .map_err(|err| CliError::Other(format!("the {document} broke off: {err}")))?;
    match &args.output_file {
        Some(path) => std::fs::write(path, &body)
            .map_err(|err| CliError::Other(format!("{}: {err}", path.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&body)?;
            out.flush()?;
            Ok(())
        }
    }
}
