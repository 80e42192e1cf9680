//! `shop inventory`: stock per SKU, its movement ledger, reservations, and
//! the reconcile check (staff).
//!
//! Counts are whole units. A change of stock is either a stocktake (`set`,
//! the count on hand) or a movement (`adjust`, a signed delta), and both need
//! a reason, which the ledger keeps.

use serde::Serialize;
use shop_wire::Page;
use shop_wire::inventory::{
    AdjustStock, Drift, Movement, ReconcileReport, ReconcileRequest, Reservation, ReservationId,
    ReservationStatus, ReserveRequest, SetStock, Stock,
};

use super::{PageArgs, all_pages, choice, more_hint, parse_sku};
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum InventoryCommand {
    /// List stock per SKU, lowest available first.
    #[command(after_help = "Example: shop inventory list --low -o ndjson | jq -r .sku")]
    List(ListArgs),
    /// Show a SKU's stock, and with --history its latest movements.
    Get {
        /// The SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_sku)]
        sku: String,
        /// Also list the movements (stocktakes, adjustments, reservations), newest first.
        #[arg(long)]
        history: bool,
        /// Movements to show with --history.
        #[arg(long, default_value_t = 20, allow_negative_numbers = true, requires = "history",
              value_parser = clap::value_parser!(u32).range(1..=i64::from(super::MAX_PAGE)))]
        limit: u32,
    },
    /// Set the count on hand (a stocktake).
    #[command(after_help = "Example: shop inventory set CHAIR-01 40 --reason 'stocktake 2026-11'")]
    Set {
        /// The SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_sku)]
        sku: String,
        /// Units on hand.
        #[arg(value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
        on_hand: i64,
        /// Why: kept in the SKU's movement ledger.
        #[arg(long, value_parser = parse_reason)]
        reason: String,
        /// Also set the low-stock threshold: alert at this many available or fewer.
        #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
        low_stock: Option<i64>,
    },
    /// Add units to or take units from the count on hand.
    #[command(after_help = "\
The change needs its sign: +5 adds five, -3 takes three away. Taking away more than is on
hand, or than is not reserved, is refused (exit 5).
Example: shop inventory adjust CHAIR-01 --reason 'damaged in store' -- -3
         shop inventory adjust CHAIR-01 +12 --reason 'delivery 4711'")]
    Adjust {
        /// The SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_sku)]
        sku: String,
        /// The change, +N or -N.
        #[arg(value_name = "+N|-N", allow_negative_numbers = true, value_parser = parse_delta)]
        delta: i64,
        /// Why: kept in the SKU's movement ledger.
        #[arg(long, value_parser = parse_reason)]
        reason: String,
    },
    /// List reservations, newest first, by SKU, status or reference.
    Reservations(ReservationsArgs),
    /// Hold units of a SKU for a while (a cart, an order); they are not available meanwhile.
    #[command(
        after_help = "Example: shop inventory reserve CHAIR-01 2 --ttl 15m --reference order-1042"
    )]
    Reserve {
        /// The SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_sku)]
        sku: String,
        /// Units to hold.
        #[arg(value_name = "QTY", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
        quantity: i64,
        /// How long the hold lasts unless committed or released: seconds (900) or 30s, 15m, 2h, 1d [default: 15m].
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<u64>,
        /// What the hold is for, e.g. a cart or order id.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Give a reservation's units back.
    Release {
        /// The reservation id (res_...).
        #[arg(value_parser = parse_reservation_id)]
        id: ReservationId,
    },
    /// Turn a reservation into a sale: its units leave the count on hand.
    Commit {
        /// The reservation id (res_...).
        #[arg(value_parser = parse_reservation_id)]
        id: ReservationId,
    },
    /// List the SKUs at or below their low-stock threshold (same as list --low).
    Low(PageArgs),
    /// Check that reserved counts match the active reservations and the ledger
    /// matches the counts on hand; exit 5 when they drift.
    #[command(after_help = "\
--fix keeps the counts on hand and books any difference to the ledger, and recomputes the
reserved counts from the active reservations.
Exit codes: 0 consistent (or all the drift found was fixed), 5 drift left unfixed.")]
    Reconcile {
        /// Repair the drift found (the counts are recomputed from the reservations and ledger).
        #[arg(long)]
        fix: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only SKUs at or below their low-stock threshold.
    #[arg(long)]
    low: bool,
    /// Only SKUs containing this text.
    #[arg(short, long, value_name = "SKU-TEXT")]
    search: Option<String>,
    /// Order: available (lowest first) or sku.
    #[arg(long, value_parser = ["available", "sku"])]
    sort: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Debug, clap::Args)]
pub struct ReservationsArgs {
    /// Only this SKU's reservations.
    #[arg(add = crate::complete::skus(), long, value_parser = parse_sku)]
    sku: Option<String>,
    /// Only this status: active, committed, released or expired.
    #[arg(long, value_parser = choice::<ReservationStatus>(ReservationStatus::ALL.iter().map(|s| s.as_str())))]
    status: Option<ReservationStatus>,
    /// Only reservations with exactly this reference.
    #[arg(long)]
    reference: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

fn parse_reason(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        Err("a reason cannot be empty: say why the stock changes".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// `+N` or `-N`, not zero: a change of stock written with its direction.
fn parse_delta(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (sign, digits) = match text.split_at_checked(1) {
        Some(("+", digits)) => (1, digits),
        Some(("-", digits)) => (-1, digits),
        _ => {
            return Err(format!(
                "`{text}`: give the change with its sign, +N to add or -N to take away"
            ));
        }
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a whole number like +5 or -3"));
    }
    let count: i64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    if count == 0 {
        return Err("a change of 0 changes nothing".to_owned());
    }
    Ok(sign * count)
}

/// Seconds (`900`) or a number with a unit: `30s`, `15m`, `2h`, `1d`.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not a duration (like 900, 30s, 15m, 2h or 1d)");
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let count: u64 = digits.parse().map_err(|_| invalid())?;
    let seconds = count
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too long"))?;
    if seconds == 0 {
        return Err("a hold of no time would expire at once".to_owned());
    }
    Ok(seconds)
}

fn parse_reservation_id(text: &str) -> Result<ReservationId, String> {
    text.trim()
        .parse()
        .map_err(|err| format!("`{text}`: {err}"))
}

impl Tabular for Stock {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("sku", "sku").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("on hand", "on_hand").kind(CellKind::Id),
            Column::new("reserved", "reserved").kind(CellKind::Id),
            Column::new("available", "available").kind(CellKind::Id),
            Column::new("low at", "low_stock_threshold").kind(CellKind::Id),
            Column::new("", "stock_level").kind(CellKind::Status),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.sku.clone()
    }

    /// `OUT` beside a SKU with nothing left to sell, `LOW` beside one at or
    /// below its threshold, nothing beside the others.
    fn display_fields(&self) -> Vec<(&'static str, String)> {
        if self.available <= 0 {
            vec![("stock_level", "OUT".to_owned())]
        } else if self.is_low() {
            vec![("stock_level", "LOW".to_owned())]
        } else {
            Vec::new()
        }
    }
}

impl Tabular for Movement {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("at", "at").kind(CellKind::Time),
            Column::new("kind", "kind"),
            Column::new("on hand", "on_hand_change").kind(CellKind::Id),
            Column::new("reserved", "reserved_change").kind(CellKind::Id),
            Column::new("reason", "reason"),
            Column::new("by", "actor"),
            Column::new("reference", "reference").wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "on_hand_change",
                change(self.on_hand_before, self.on_hand_after),
            ),
            (
                "reserved_change",
                change(self.reserved_before, self.reserved_after),
            ),
        ]
    }
}

/// `10 → 15 (+5)`, or just `10` when nothing changed.
fn change(before: i64, after: i64) -> String {
    if before == after {
        before.to_string()
    } else {
        format!("{before} → {after} ({:+})", after - before)
    }
}

impl Tabular for Reservation {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("sku", "sku").kind(CellKind::Id),
            Column::new("qty", "quantity").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("expires", "expires_at").kind(CellKind::Age),
            Column::new("age", "created_at").kind(CellKind::Age),
            Column::new("reference", "reference").wide(),
            Column::new("created", "created_at")
                .kind(CellKind::Time)
                .wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl Tabular for Drift {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("sku", "sku").kind(CellKind::Id),
            Column::new("check", "check"),
            Column::new("expected", "expected"),
            Column::new("found", "found"),
            Column::new("fixed", "fixed"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.sku.clone()
    }
}

/// `inventory get --history -o json`: the stock as without `--history`,
/// with its movements beside its fields, so `.on_hand` reads the same either way.
#[derive(Serialize)]
struct StockHistory<'a> {
    #[serde(flatten)]
    stock: &'a Stock,
    movements: &'a Page<Movement>,
}

/// The outcome of a reconcile: Ok when consistent, else the drift as a conflict (exit 5).
fn reconcile_outcome(report: &ReconcileReport) -> Result<(), CliError> {
    let found = report.drift.len();
    let fixed = report.drift.iter().filter(|d| d.fixed).count();
    if report.consistent && found == 0 {
        eprintln!(
            "consistent: {} SKUs and {} reservations checked",
            report.skus_checked, report.reservations_checked
        );
        return Ok(());
    }
    let problems = format!("{found} problem{}", if found == 1 { "" } else { "s" });
    if fixed == found {
        eprintln!(
            "fixed {problems} in {} SKUs and {} reservations checked: the counts on hand were kept \
             and the differences booked to the ledger; reserved counts now match the reservations",
            report.skus_checked, report.reservations_checked
        );
        return Ok(());
    }
    let fixed_note = match fixed {
        0 => "none fixed; run again with --fix to repair".to_owned(),
        n => format!("{n} fixed"),
    };
    Err(CliError::Conflict(format!(
        "inventory drift: {problems} in {} SKUs and {} reservations checked; {fixed_note}",
        report.skus_checked, report.reservations_checked
    )))
}

impl InventoryCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            InventoryCommand::List(args) => {
                let page =
                    stock_list(&client, args.low, args.search, args.sort, &args.page).await?;
                output.list(&page, &page.items)?;
                more_hint(&output, &page, "SKUs");
                Ok(())
            }
            InventoryCommand::Low(page_args) => {
                let page = stock_list(&client, true, None, None, &page_args).await?;
                output.list(&page, &page.items)?;
                more_hint(&output, &page, "SKUs");
                Ok(())
            }
            InventoryCommand::Get {
                sku,
                history,
                limit,
            } => {
                let stock: Stock = client.get(&format!("/api/inventory/{sku}")).send().await?;
                if !history {
                    return output.one(&stock);
                }
                let movements: Page<Movement> = client
                    .get(&format!("/api/inventory/{sku}/movements"))
                    .query("limit", limit.to_string())
                    .send()
                    .await?;
                match output.format() {
                    Format::Table => {
                        output.one(&stock)?;
                        eprintln!("\nmovements, newest first:");
                        output.list(&movements, &movements.items)?;
                        more_hint(&output, &movements, "movements");
                        Ok(())
                    }
                    Format::Json => output.list(
                        &StockHistory {
                            stock: &stock,
                            movements: &movements,
                        },
                        &movements.items,
                    ),
                    Format::Ndjson | Format::Csv | Format::Id => {
                        output.list(&movements, &movements.items)
                    }
                }
            }
            InventoryCommand::Set {
                sku,
                on_hand,
                reason,
                low_stock,
            } => {
                let stock: Stock = client
                    .put(&format!("/api/inventory/{sku}"))
                    .json(&SetStock {
                        on_hand,
                        reason,
                        low_stock_threshold: low_stock,
                    })?
                    .send()
                    .await?;
                output.one(&stock)
            }
            InventoryCommand::Adjust { sku, delta, reason } => {
                let stock: Stock = client
                    .post(&format!("/api/inventory/{sku}/adjustments"))
                    .json(&AdjustStock { delta, reason })?
                    .send()
                    .await?;
                output.one(&stock)
            }
            InventoryCommand::Reservations(args) => {
                let page = if args.page.all {
                    all_pages(|limit, offset| reservations_page(&client, &args, limit, offset))
                        .await?
                } else {
                    reservations_page(&client, &args, args.page.limit, args.page.offset).await?
                };
                output.list(&page, &page.items)?;
                more_hint(&output, &page, "reservations");
                Ok(())
            }
            InventoryCommand::Reserve {
                sku,
                quantity,
                ttl,
                reference,
            } => {
                let reservation: Reservation = client
                    .post(&format!("/api/inventory/{sku}/reservations"))
                    .json(&ReserveRequest {
                        quantity,
                        ttl_seconds: ttl,
                        reference,
                    })?
                    .send()
                    .await?;
                output.one(&reservation)
            }
            InventoryCommand::Release { id } => {
                let reservation: Reservation = client
                    .post(&format!("/api/inventory/reservations/{id}/release"))
                    .send()
                    .await?;
                output.one(&reservation)
            }
            InventoryCommand::Commit { id } => {
                let reservation: Reservation = client
                    .post(&format!("/api/inventory/reservations/{id}/commit"))
                    .send()
                    .await?;
                output.one(&reservation)
            }
            InventoryCommand::Reconcile { fix } => {
                let report: ReconcileReport = client
                    .post("/api/inventory/reconcile")
                    .json(&ReconcileRequest { fix })?
                    .send()
                    .await?;
                output.list(&report, &report.drift)?;
                reconcile_outcome(&report)
            }
        }
    }
}

async fn stock_list(
    client: &ApiClient,
    low: bool,
    search: Option<String>,
    sort: Option<String>,
    page: &PageArgs,
) -> Result<Page<Stock>, CliError> {
    let fetch = |limit: u32, offset: u64| {
        client
            .get("/api/inventory")
            .query_opt("low", low.then_some("true"))
            .query_opt("q", search.as_deref())
            .query_opt("sort", sort.as_deref())
            .query("limit", limit.to_string())
            .query("offset", offset.to_string())
            .send::<Page<Stock>>()
    };
    if page.all {
        all_pages(fetch).await
    } else {
        fetch(page.limit, page.offset).await
    }
}

async fn reservations_page(
    client: &ApiClient,
    args: &ReservationsArgs,
    limit: u32,
    offset: u64,
) -> Result<Page<Reservation>, CliError> {
    client
        .get("/api/inventory/reservations")
        .query_opt("sku", args.sku.as_deref())
        .query_opt("status", args.status)
        .query_opt("reference", args.reference.as_deref())
        .query("limit", limit.to_string())
        .query("offset", offset.to_string())
        .send()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;

    fn stock(sku: &str, on_hand: i64, reserved: i64, threshold: i64) -> Stock {
        serde_json::from_value(serde_json::json!({
            "sku": sku,
            "on_hand": on_hand,
            "reserved": reserved,
            "available": on_hand - reserved,
            "low_stock_threshold": threshold,
            "updated_at": "2026-11-23T14:05:09Z"
        }))
        .expect("stock")
    }

    #[test]
    fn deltas_need_their_sign() {
        assert_eq!(parse_delta("+5"), Ok(5));
        assert_eq!(parse_delta("-3"), Ok(-3));
        for bad in [
            "5",
            "+0",
            "-0",
            "+",
            "-",
            "+5.5",
            "++5",
            "+x",
            "",
            "+99999999999999999999",
        ] {
            assert!(parse_delta(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn durations_are_seconds_or_have_a_unit() {
        assert_eq!(parse_duration("900"), Ok(900));
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        for bad in ["", "0", "0m", "15x", "m", "-5", "1.5h", "15 m"] {
            assert!(parse_duration(bad).is_err(), "{bad} was accepted");
        }
        assert!(parse_reason("  ").is_err());
        assert!(parse_reservation_id("res_01JDQ6Z5R3K8V2N4M7P9T0W1XY").is_ok());
        assert!(parse_reservation_id("prd_01JDQ6Z5R3K8V2N4M7P9T0W1XY").is_err());
    }

    #[test]
    fn the_adjust_command_takes_signed_numbers_before_and_after_the_flags() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            crate::Cli::try_parse_from(["shop", "inventory", "adjust"].iter().chain(args))
        };
        for (args, expected) in [
            (&["CHAIR-01", "--reason", "r", "--", "+5"][..], 5),
            (&["CHAIR-01", "--reason", "r", "--", "-3"][..], -3),
            (&["CHAIR-01", "-3", "--reason", "r"][..], -3),
            (&["CHAIR-01", "+7", "--reason", "r"][..], 7),
        ] {
            let cli = parse(args).unwrap_or_else(|err| panic!("{args:?}: {err}"));
            let crate::Command::Remote(crate::RemoteCommand::Inventory(InventoryCommand::Adjust {
                delta,
                ..
            })) = cli.command
            else {
                panic!("{args:?} is not an adjust");
            };
            assert_eq!(delta, expected, "{args:?}");
        }
        let err = parse(&["CHAIR-01", "5", "--reason", "r"]).expect_err("no sign");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("sign"), "{err}");
        let Ok(crate::Cli {
            command: crate::Command::Remote(crate::RemoteCommand::Inventory(lower)),
            ..
        }) = parse(&["chair-01", "+5", "--reason", "r"])
        else {
            panic!("a lower-case SKU is taken as upper case")
        };
        assert!(format!("{lower:?}").contains("CHAIR-01"), "{lower:?}");
    }

    #[test]
    fn a_stock_table_marks_low_skus_and_ids_are_skus() {
        let items = vec![
            stock("LAMP-02", 3, 1, 5),
            stock("CHAIR-01", 40, 2, 10),
            stock("DESK-03", 2, 2, 1),
        ];
        let table = Output::render_for_test(Format::Table, |o| o.list(&(), &items));
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].contains("ON HAND") && lines[0].contains("AVAILABLE"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("LAMP-02") && lines[1].ends_with("LOW"),
            "{table}"
        );
        assert!(!lines[2].contains("LOW"), "{table}");
        assert!(
            lines[3].starts_with("DESK-03") && lines[3].ends_with("OUT"),
            "nothing available is told apart from low: {table}"
        );
        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &items));
        assert_eq!(ids, "LAMP-02\nCHAIR-01\nDESK-03\n");
        let csv_text = Output::render_for_test(Format::Csv, |o| o.list(&(), &items));
        assert!(
            csv_text.starts_with(
                "sku,name,on_hand,reserved,available,low_stock_threshold,updated_at\n"
            ),
            "{csv_text}"
        );
        assert!(
            !csv_text.contains("LOW") && !csv_text.contains("OUT"),
            "display fields stay out of CSV: {csv_text}"
        );
    }

    #[test]
    fn a_movement_shows_what_changed() {
        let movement: Movement = serde_json::from_value(serde_json::json!({
            "id": 7, "sku": "CHAIR-01", "kind": "adjust",
            "on_hand_before": 10, "on_hand_after": 7,
            "reserved_before": 2, "reserved_after": 2,
            "reason": "damaged", "actor": "kim@example.com",
            "at": "2026-11-23T14:05:09Z"
        }))
        .expect("movement");
        let table = Output::render_for_test(Format::Table, |o| {
            o.list(&(), std::slice::from_ref(&movement))
        });
        assert!(table.contains("10 → 7 (-3)"), "{table}");
        assert!(table.contains("2026-11-23 14:05:09"), "{table}");
        assert_eq!(change(2, 2), "2");
        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &[movement]));
        assert_eq!(ids, "7\n");
    }

    #[test]
    fn reservations_list_by_id() {
        let reservation: Reservation = serde_json::from_value(serde_json::json!({
            "id": "res_01JDQ6Z5R3K8V2N4M7P9T0W1XY", "sku": "CHAIR-01", "quantity": 2,
            "status": "active", "expires_at": "2026-11-23T14:20:09Z",
            "reference": "order-1042", "created_at": "2026-11-23T14:05:09Z"
        }))
        .expect("reservation");
        let table = Output::render_for_test(Format::Table, |o| {
            o.list(&(), std::slice::from_ref(&reservation))
        });
        assert!(
            table.contains("active") && table.contains("res_01JDQ6Z5R3K8V2N4M7P9T0W1XY"),
            "{table}"
        );
        let wide = Output::render_sized_for_test(Format::Table, None, true, |o| {
            o.list(&(), std::slice::from_ref(&reservation))
        });
        assert!(
            wide.contains("order-1042"),
            "the reference is in -o wide: {wide}"
        );
        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &[reservation]));
        assert_eq!(ids, "res_01JDQ6Z5R3K8V2N4M7P9T0W1XY\n");
    }

    #[test]
    fn drift_is_a_conflict_until_it_is_fixed() {
        let mut report = ReconcileReport {
            consistent: true,
            skus_checked: 3,
            reservations_checked: 2,
            drift: vec![],
        };
        assert!(reconcile_outcome(&report).is_ok());
        report.consistent = false;
        report.drift.push(Drift {
            sku: "CHAIR-01".into(),
            check: "reserved_matches_reservations".into(),
            expected: 2,
            found: 5,
            fixed: true,
        });
        assert!(reconcile_outcome(&report).is_ok(), "all fixed: exit 0");
        report.drift.push(Drift {
            sku: "LAMP-02".into(),
            check: "ledger_matches_on_hand".into(),
            expected: 4,
            found: 3,
            fixed: false,
        });
        let err = reconcile_outcome(&report).expect_err("drift left");
        assert_eq!(err.exit_code(), 5);
        assert!(
            err.to_string().contains("2 problems") && err.to_string().contains("1 fixed"),
            "{err}"
        );
        let table = Output::render_for_test(Format::Table, |o| o.list(&report, &report.drift));
        assert!(table.contains("reserved_matches_reservations"), "{table}");
    }
}
