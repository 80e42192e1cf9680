//! `shop order ship`: one shipment of an order (all that is left of it, or
//! the `--item`s given), or one per row of a CSV file of tracking numbers
//! (`--from-file`).
//!
//! The file is what carriers' and label tools' exports look like: a header
//! row, then `order,carrier,tracking_number[,items]`, where `order` is an
//! id or a number and `items` (optional) is `SKU:QTY;SKU:QTY`. Each row
//! gets one result line on stdout, as `order create -` gives each input
//! line, and a bad row (unreadable, an unknown order, more than is left to
//! ship) is reported on its line while the rows after it still ship. The
//! exit code is that of the first failed row.

use std::io::Read;
use std::path::PathBuf;

use shop_wire::orders::{FulfillmentItem, Order, ShipOrder};

use super::batch::{Done, LineResult, Outcome, ids_only};
use super::create::parse_item;
use super::transition::transition;
use super::{parse_order_ref, parse_text};
use crate::client::ApiClient;
use crate::error::CliError;
use crate::output::Output;

pub(super) const SHIP_HELP: &str = "\
Without --item everything not shipped yet goes; with --item only those units do, and the
order stays paid (partially_shipped) until the last unit ships. A known carrier (dhl, fedex,
ups, usps, or one in the server's [carriers] config) fills in the tracking URL.

--from-file reads a CSV file (- for stdin) with a header row and the columns
order,carrier,tracking_number[,items], items as SKU:QTY;SKU:QTY. One result line per row
goes to stdout; failed rows are reported and the rest still ship; the exit code is that of
the first failed row.

Examples:
  shop order ship ORD-001042 --carrier ups --tracking 1Z999AA10123456784
  shop order ship ORD-001042 --item CHAIR-01:1 --carrier dhl --tracking 00340434
  shop order ship --from-file tracking.csv
  shop order list --status paid --financial-status paid -q | xargs -n1 shop order ship";

#[derive(Debug, clap::Args)]
pub struct ShipArgs {
    /// The order's id (ord_...) or number (ORD-001042).
    #[arg(
        add = crate::complete::orders(),
        value_name = "ORDER",
        value_parser = parse_order_ref,
        required_unless_present = "from_file",
        conflicts_with = "from_file"
    )]
    order: Option<String>,
    /// The carrier, e.g. ups, fedex, dhl or usps.
    #[arg(long, value_parser = parse_text)]
    carrier: Option<String>,
    /// The carrier's tracking number (the order's tracking_number).
    #[arg(long = "tracking", alias = "tracking-number", value_name = "NUMBER", value_parser = parse_text)]
    tracking_number: Option<String>,
    /// The tracking page, instead of the carrier's [default: from the carrier].
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    tracking_url: Option<String>,
    /// Ship only these units (repeatable) [default: everything left].
    #[arg(long = "item", value_name = "SKU:QTY", value_parser = parse_ship_item)]
    items: Vec<FulfillmentItem>,
    /// A note for the order's history.
    #[arg(long, value_parser = parse_text)]
    note: Option<String>,
    /// Ship one order per row of this CSV file (- for stdin).
    #[arg(long, value_name = "FILE",
        conflicts_with_all = ["carrier", "tracking_number", "tracking_url", "items", "note"])]
    from_file: Option<PathBuf>,
}

fn parse_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.starts_with("https://") || text.starts_with("http://") {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is not an http:// or https:// URL"))
    }
}

/// `SKU:QTY` as one shipment line.
fn parse_ship_item(text: &str) -> Result<FulfillmentItem, String> {
    parse_item(text).map(|line| FulfillmentItem {
        sku: line.sku,
        quantity: line.quantity,
    })
}

pub(super) async fn run(
    client: &ApiClient,
    output: &mut Output,
    args: ShipArgs,
) -> Result<(), CliError> {
    if let Some(path) = &args.from_file {
        return from_file(client, output, path).await;
    }
    let order = args
        .order
        .ok_or_else(|| CliError::Usage("give an ORDER, or --from-file".into()))?;
    let body = ShipOrder {
        carrier: args.carrier,
        tracking_number: args.tracking_number,
        tracking_url: args.tracking_url,
        items: (!args.items.is_empty()).then_some(args.items),
        note: args.note,
    };
    transition(client, output, &order, "ship", &body).await
}

/// One data row of a tracking file: the order it ships and the shipment.
#[derive(Debug, PartialEq)]
struct Row {
    order: String,
    shipment: ShipOrder,
}

/// A data row (`order,carrier,tracking_number[,items]`), checked as the
/// flags of one shipment are.
fn parse_row(record: &csv::StringRecord) -> Result<Row, String> {
    let cell = |index: usize| record.get(index).map(str::trim).filter(|c| !c.is_empty());
    let order = parse_order_ref(cell(0).ok_or("the order is missing")?)?;
    let items = match cell(3) {
        None => None,
        Some(items) => Some(
            items
                .split(';')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(parse_ship_item)
                .collect::<Result<Vec<_>, _>>()?,
        )
        .filter(|items| !items.is_empty()),
    };
    if record.len() > 4 {
        return Err(format!(
            "{} columns; a row is order,carrier,tracking_number[,items]",
            record.len()
        ));
    }
    Ok(Row {
        order,
        shipment: ShipOrder {
            carrier: cell(1).map(str::to_owned),
            tracking_number: cell(2).map(str::to_owned),
            tracking_url: None,
            items,
            note: None,
        },
    })
}

async fn from_file(
    client: &ApiClient,
    output: &mut Output,
    path: &std::path::Path,
) -> Result<(), CliError> {
    let ids_only = ids_only(output, "order ship --from-file", "shipped")?;
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text))
    };
    read.map_err(|err| CliError::Usage(format!("{}: {err}", path.display())))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut outcome = Outcome::default();
    for record in reader.records() {
        let (line, parsed) = match record {
            Ok(record) => (
                record.position().map_or(0, csv::Position::line),
                parse_row(&record),
            ),
            Err(err) => (
                err.position().map_or(0, csv::Position::line),
                Err(err.to_string()),
            ),
        };
        let done = match parsed {
            Ok(row) => {
                let shipped = client
                    .post(&format!("/api/orders/{}/ship", row.order))
                    .json(&row.shipment)?
                    .send::<Order>()
                    .await;
                match shipped {
                    Ok(order) => Done::success(line, order),
                    Err(err) => Done::failed(line, err),
                }
            }
            Err(problem) => Done::invalid_row(line, format!("line {line}: {problem}")),
        };
        let fatal = outcome.record(done, |result: &LineResult| match result {
            LineResult {
                order: Some(order), ..
            } if ids_only => output.stream(order),
            LineResult {
                error: Some(error), ..
            } if ids_only => {
                eprintln!("line {}: {} ({})", result.line, error.message, error.code);
                Ok(())
            }
            _ => output.stream(result),
        })?;
        if fatal {
            outcome.stopped_after = Some(line);
            break;
        }
    }
    outcome.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    #[test]
    fn a_row_names_the_order_its_tracking_and_maybe_its_items() {
        let row = parse_row(&record(&[
            "ORD-001042",
            "ups",
            "1Z999",
            "CHAIR-01:2; LAMP-02:1",
        ]))
        .expect("row");
        assert_eq!(row.order, "ORD-001042");
        assert_eq!(row.shipment.carrier.as_deref(), Some("ups"));
        assert_eq!(row.shipment.tracking_number.as_deref(), Some("1Z999"));
        assert_eq!(
            row.shipment.items,
            Some(vec![
                FulfillmentItem {
                    sku: "CHAIR-01".into(),
                    quantity: 2
                },
                FulfillmentItem {
                    sku: "LAMP-02".into(),
                    quantity: 1
                },
            ])
        );
        let all = parse_row(&record(&["1042", "", ""]));
        assert!(all.is_err(), "a bare number is not an order: {all:?}");
        let rest = parse_row(&record(&["ord-001042", "dhl", "00340434", ""])).expect("row");
        assert_eq!(rest.shipment.items, None, "no items: everything left");
        for bad in [
            record(&["", "ups", "1Z"]),
            record(&["ORD-000001", "ups", "1Z", "CHAIR-01:0"]),
            record(&["ORD-000001", "ups", "1Z", "CHAIR-01:x"]),
            record(&["ORD-000001", "ups", "1Z", "A:1", "extra"]),
        ] {
            assert!(parse_row(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_tracking_url_is_a_web_address() {
        assert!(parse_url("https://t.example/1").is_ok());
        assert!(parse_url("javascript:alert(1)").is_err());
    }
}
