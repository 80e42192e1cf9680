//! Bulk import: a JSON array, NDJSON or CSV body streamed through a parser
//! into batched upserts by SKU.
//!
//! The body is never held in memory: a blocking task parses it as it
//! arrives and hands rows over in batches through a channel of two, so a
//! 1 GB file costs a few batches of memory, and parsing overlaps the
//! database writes. Every row is checked on its own; a bad row is reported
//! with its line and reason and the good rows still land. Each batch is one
//! transaction; a dry run does the same work and rolls every batch back.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Body;
use futures::TryStreamExt;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;
use shop_wire::money::{Currency, parse_amount};
use shop_wire::products::{DataFormat, ImportRowError, ImportSummary, ProductRequest, StockImport};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::domain::{product_events, product_from};
use crate::auth::AuthUser;
use crate::services::actor;
use crate::services::error::{DomainError, DomainResult};
use crate::services::inventory::domain::stock_events;
use crate::state::AppState;
use crate::store::{ExistingStock, ImportOutcome, ImportRow};

/// Rejected rows listed in a summary; `failed` counts the rest.
const MAX_REPORTED_ERRORS: usize = 1_000;
/// An NDJSON line longer than this is refused without being buffered whole.
const MAX_LINE: usize = 1024 * 1024;

/// A row as read from the file: a request to check, or why it could not be read.
enum ParsedRow {
    Request { line: u64, request: ProductRequest },
    Unreadable(ImportRowError),
}

/// The file cannot be read as the format at all (not one row in it could be).
struct Unreadable {
    line: u64,
    reason: String,
}

/// Hands parsed rows to the writer in batches.
struct Batcher {
    size: usize,
    batch: Vec<ParsedRow>,
    sender: mpsc::Sender<Vec<ParsedRow>>,
    rows: u64,
}

impl Batcher {
    /// False once the receiver is gone (the request was abandoned): stop parsing.
    fn push(&mut self, row: ParsedRow) -> bool {
        self.rows += 1;
        self.batch.push(row);
        if self.batch.len() >= self.size {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
        self.sender.blocking_send(batch).is_ok()
    }

    /// A failure to read further: a row error when rows came before it, else the whole file's.
    fn abort(&mut self, unreadable: Unreadable) -> Result<(), Unreadable> {
        if self.rows == 0 {
            return Err(unreadable);
        }
        self.push(ParsedRow::Unreadable(ImportRowError {
            line: unreadable.line,
            sku: None,
            field: None,
            reason: unreadable.reason,
        }));
        Ok(())
    }
}

fn row_error(line: u64, sku: Option<String>, field: Option<String>, reason: String) -> ParsedRow {
    ParsedRow::Unreadable(ImportRowError {
        line,
        sku,
        field,
        reason,
    })
}

/// Reads one JSON object into a request, naming the field that is wrong.
fn request_from_json(line: u64, text: &str) -> ParsedRow {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, ProductRequest>(&mut deserializer) {
        Ok(request) => ParsedRow::Request { line, request },
        Err(err) => {
            let field = err.path().to_string();
            let sku = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("sku").and_then(|s| s.as_str()).map(str::to_owned));
            let field = (field != ".").then_some(field);
            row_error(line, sku, field, err.into_inner().to_string())
        }
    }
}

/// One line of at most `max` bytes (without its newline), or `None` at the end.
/// A longer line is skipped to its end and reported as `Err(length)`.
fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let mut length = 0usize;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(read_any.then_some(if length > max { Err(length) } else { Ok(()) }));
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        length += chunk.len();
        if length <= max {
            buf.extend_from_slice(chunk);
        }
        let consumed = done.unwrap_or(chunk.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(if length > max { Err(length) } else { Ok(()) }));
        }
    }
}

fn parse_ndjson(reader: impl Read, batcher: &mut Batcher) -> Result<(), Unreadable> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        line += 1;
        let read = read_line(&mut reader, &mut buf, MAX_LINE).map_err(|err| Unreadable {
            line,
            reason: format!("reading the upload failed: {err}"),
        });
        let row = match read {
            Err(unreadable) => return batcher.abort(unreadable),
            Ok(None) => return Ok(()),
            Ok(Some(Err(length))) => row_error(
                line,
                None,
                None,
                format!("the line is {length} bytes, more than the {MAX_LINE} a product may take"),
            ),
            Ok(Some(Ok(()))) => match std::str::from_utf8(&buf) {
                Err(_) => row_error(line, None, None, "the line is not valid UTF-8".to_owned()),
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => request_from_json(line, text.trim_end_matches('\r')),
            },
        };
        if !batcher.push(row) {
            return Ok(());
        }
    }
}

/// Counts the newlines the JSON parser has consumed, to put line numbers on array elements.
struct LineCounter<R> {
    inner: R,
    newlines: Arc<AtomicU64>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let newlines = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.newlines.fetch_add(newlines, Ordering::Relaxed);
        Ok(n)
    }
}

/// Walks a top-level JSON array element by element, never holding more than one.
struct ArrayRows<'a> {
    batcher: &'a mut Batcher,
    newlines: Arc<AtomicU64>,
}

impl<'de> DeserializeSeed<'de> for ArrayRows<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArrayRows<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of products")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            let text = raw.get();
            // The parser stops right after the element, so the count is the element's last line.
            let end = self.newlines.load(Ordering::Relaxed) + 1;
            let line = end - text.matches('\n').count() as u64;
            if !self.batcher.push(request_from_json(line, text)) {
                break;
            }
        }
        Ok(())
    }
}

fn parse_json_array(reader: impl Read, batcher: &mut Batcher) -> Result<(), Unreadable> {
    let newlines = Arc::new(AtomicU64::new(0));
    let counted = LineCounter {
        inner: BufReader::with_capacity(256 * 1024, reader),
        newlines: newlines.clone(),
    };
    let mut deserializer = serde_json::Deserializer::from_reader(counted);
    let rows = ArrayRows {
        batcher: &mut *batcher,
        newlines,
    };
    match rows
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
    {
        Ok(()) => Ok(()),
        Err(err) => batcher.abort(Unreadable {
            line: err.line() as u64,
            reason: format!("the file stops being a JSON array of products here: {err}"),
        }),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CsvColumn {
    Sku,
    Name,
    Description,
    Category,
    PriceCents,
    Price,
    Currency,
    Attributes,
    Images,
    Active,
    Stock,
    LowStockThreshold,
    WeightGrams,
    TaxCategory,
}

impl CsvColumn {
    const ALL: [(&'static str, CsvColumn); 14] = [
        ("sku", CsvColumn::Sku),
        ("name", CsvColumn::Name),
        ("description", CsvColumn::Description),
        ("category", CsvColumn::Category),
        ("price_cents", CsvColumn::PriceCents),
        ("price", CsvColumn::Price),
        ("currency", CsvColumn::Currency),
        ("attributes", CsvColumn::Attributes),
        ("images", CsvColumn::Images),
        ("active", CsvColumn::Active),
        ("stock", CsvColumn::Stock),
        ("low_stock_threshold", CsvColumn::LowStockThreshold),
        ("weight_grams", CsvColumn::WeightGrams),
        ("tax_category", CsvColumn::TaxCategory),
    ];
}

/// Maps the header to columns, refusing unknown, repeated or missing ones.
fn csv_columns(header: &csv::StringRecord) -> Result<Vec<CsvColumn>, String> {
    let mut columns = Vec::new();
    for name in header {
        let name = name.trim().trim_start_matches('\u{feff}').to_lowercase();
        let column = CsvColumn::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, column)| *column)
            .ok_or_else(|| {
                let known: Vec<&str> = CsvColumn::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown column `{name}` (expected {})", known.join(", "))
            })?;
        if columns.contains(&column) {
            return Err(format!("the column `{name}` appears twice"));
        }
        columns.push(column);
    }
    for required in [CsvColumn::Sku, CsvColumn::Name] {
        if !columns.contains(&required) {
            return Err(format!(
                "the header has no `{}` column",
                CsvColumn::ALL
                    .iter()
                    .find(|(_, c)| *c == required)
                    .map_or("", |(n, _)| *n)
            ));
        }
    }
    if !columns.contains(&CsvColumn::PriceCents) && !columns.contains(&CsvColumn::Price) {
        return Err("the header needs a `price_cents` or a `price` column".to_owned());
    }
    Ok(columns)
}

/// One CSV record as a request; `Err((field, reason))` names the bad cell.
fn csv_request(
    columns: &[CsvColumn],
    record: &csv::StringRecord,
) -> Result<ProductRequest, (String, String)> {
    let mut cells: BTreeMap<&'static str, &str> = BTreeMap::new();
    for (column, value) in columns.iter().zip(record.iter()) {
        let name = CsvColumn::ALL
            .iter()
            .find(|(_, c)| c == column)
            .map_or("", |(n, _)| *n);
        // Our own export guards formula cells with a `'`; read them back as they were.
        cells.insert(name, shop_wire::csv_cell::unguard(value));
    }
    let cell = |name: &str| cells.get(name).copied().unwrap_or("");
    let bad = |field: &str, reason: String| (field.to_owned(), reason);
    let currency: Currency = match cell("currency").trim() {
        "" => Currency::default(),
        code => code.parse().map_err(|e| bad("currency", e))?,
    };
    let price_cents = match (cells.get("price_cents"), cells.get("price")) {
        (Some(cents), _) if !cents.trim().is_empty() => {
            cents.trim().parse::<i64>().map_err(|_| {
                bad(
                    "price_cents",
                    format!("`{cents}` is not a whole number of minor units"),
                )
            })?
        }
        (_, Some(price)) if !price.trim().is_empty() => {
            parse_amount(price, currency).map_err(|e| bad("price", e))?
        }
        _ => return Err(bad("price_cents", "is empty".to_owned())),
    };
    let number = |name: &str| -> Result<Option<i64>, (String, String)> {
        match cell(name).trim() {
            "" => Ok(None),
            text => text
                .parse()
                .map(Some)
                .map_err(|_| bad(name, format!("`{text}` is not a whole number"))),
        }
    };
    let attributes = match cell("attributes").trim() {
        "" => BTreeMap::new(),
        text => serde_json::from_str(text).map_err(|_| {
            bad(
                "attributes",
                "must be a JSON object of strings, e.g. {\"colour\":\"red\"}".to_owned(),
            )
        })?,
    };
    let images = match cell("images").trim() {
        "" => Vec::new(),
        text => serde_json::from_str(text).map_err(|_| {
            bad(
                "images",
                "must be a JSON array of URLs, e.g. [\"https://...\"]".to_owned(),
            )
        })?,
    };
    let active = match cell("active").trim().to_lowercase().as_str() {
        "" | "true" | "yes" | "1" => true,
        "false" | "no" | "0" => false,
        other => return Err(bad("active", format!("`{other}` is not true or false"))),
    };
    let category = Some(cell("category").to_owned()).filter(|c| !c.trim().is_empty());
    Ok(ProductRequest {
        sku: cell("sku").trim().to_owned(),
        name: cell("name").to_owned(),
        description: cell("description").to_owned(),
        category,
        price_cents,
        currency,
        attributes,
        images,
        active,
        stock: number("stock")?,
        low_stock_threshold: number("low_stock_threshold")?,
        weight_grams: number("weight_grams")?,
        tax_category: Some(cell("tax_category").trim().to_owned()).filter(|c| !c.is_empty()),
        requires_shipping: None,
    })
}

fn parse_csv(reader: impl Read, batcher: &mut Batcher) -> Result<(), Unreadable> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(reader);
    let mut record = csv::StringRecord::new();
    let header = match csv.read_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => {
            return Err(Unreadable {
                line: 1,
                reason: "the file is empty: a CSV import starts with a header row".to_owned(),
            });
        }
        Err(err) => {
            return Err(Unreadable {
                line: 1,
                reason: format!("the header row cannot be read: {err}"),
            });
        }
    };
    let columns = csv_columns(&header).map_err(|reason| Unreadable { line: 1, reason })?;
    loop {
        let row = match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
                    continue;
                }
                // The SKU names the row for the user wherever its cell is there
                // to read, even when the row has too few or too many fields.
                let sku = record
                    .get(
                        columns
                            .iter()
                            .position(|c| *c == CsvColumn::Sku)
                            .unwrap_or(0),
                    )
                    .map(|sku| sku.trim().to_owned())
                    .filter(|sku| !sku.is_empty());
                if record.len() != columns.len() {
                    row_error(
                        line,
                        sku,
                        None,
                        format!(
                            "the row has {} fields but the header has {}",
                            record.len(),
                            columns.len()
                        ),
                    )
                } else {
                    match csv_request(&columns, &record) {
                        Ok(request) => ParsedRow::Request { line, request },
                        Err((field, reason)) => row_error(line, sku, Some(field), reason),
                    }
                }
            }
            Err(err) => {
                let line = err.position().map_or(0, csv::Position::line);
                match err.kind() {
                    csv::ErrorKind::Utf8 { .. } => {
                        row_error(line, None, None, "the row is not valid UTF-8".to_owned())
                    }
                    _ => {
                        return batcher.abort(Unreadable {
                            line,
                            reason: format!("the CSV cannot be read further: {err}"),
                        });
                    }
                }
            }
        };
        if !batcher.push(row) {
            return Ok(());
        }
    }
}

fn parse(format: DataFormat, reader: impl Read, batcher: &mut Batcher) -> Result<(), Unreadable> {
    let outcome = match format {
        DataFormat::Ndjson => parse_ndjson(reader, batcher),
        DataFormat::Json => parse_json_array(reader, batcher),
        DataFormat::Csv => parse_csv(reader, batcher),
    };
    batcher.flush();
    outcome
}

/// Adds up what happened to the rows, keeping the first errors, and holds
/// the search index's updates of the batches committed so far.
pub struct Tally(pub ImportSummary, Vec<tokio::task::JoinHandle<()>>);

impl Tally {
    pub fn new(summary: ImportSummary) -> Self {
        Tally(summary, Vec::new())
    }

    /// The summary, once the search index has every committed batch: an
    /// import answers only when its products can be found.
    pub async fn finish(mut self) -> DomainResult<ImportSummary> {
        for update in self.1.drain(..) {
            update.await.map_err(DomainError::internal)?;
        }
        Ok(self.0)
    }

    pub fn fail(&mut self, error: ImportRowError) {
        self.0.rows += 1;
        self.0.failed += 1;
        if self.0.errors.len() < MAX_REPORTED_ERRORS {
            self.0.errors.push(error);
        }
    }
}

/// What a row's `stock` does to a product that already exists. Only the
/// user's explicit `set` or `add` touches it: stock moves with sales, so a
/// file's count is stale for every product sold since it was written.
pub fn existing_stock(mode: StockImport, stock: Option<i64>) -> ExistingStock {
    match (mode, stock) {
        (StockImport::Ignore, _) | (_, None) => ExistingStock::Keep,
        (StockImport::Set, Some(on_hand)) => ExistingStock::Set(on_hand),
        (StockImport::Add, Some(0)) => ExistingStock::Keep,
        (StockImport::Add, Some(delivered)) => ExistingStock::Add(delivered),
    }
}

/// Checks a row on its own and makes it an upsert, or the error that rejects it.
pub fn checked_row(
    line: u64,
    request: ProductRequest,
    mode: StockImport,
) -> Result<ImportRow, ImportRowError> {
    let sku = request.sku.clone();
    match product_from(request) {
        Ok((product, stock, low_stock_threshold)) => Ok(ImportRow {
            line,
            product,
            stock,
            existing_stock: existing_stock(mode, stock),
            low_stock_threshold,
        }),
        Err(problems) => {
            let (field, reason) = problems.first().unwrap_or(("", "invalid"));
            Err(ImportRowError {
                line,
                sku: Some(sku),
                field: Some(field.to_owned()),
                reason: reason.to_owned(),
            })
        }
    }
}

/// Upserts one batch of checked rows in one transaction and counts the outcomes.
pub async fn upsert(
    state: &AppState,
    rows: Vec<ImportRow>,
    actor: Option<String>,
    dry_run: bool,
    tally: &mut Tally,
) -> DomainResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let threshold = state.config.inventory.low_stock_threshold;
    let keys: Vec<(u64, String)> = rows
        .iter()
        .map(|r| (r.line, r.product.sku.clone()))
        .collect();
    let (outcomes, logged) = state
        .store
        .import_products(
            rows,
            threshold,
            actor,
            dry_run,
            (product_events, stock_events),
        )
        .await?;
    if !logged.is_empty() {
        // The index reads the batch back and ranks it while the writer takes
        // the next batch: done in line, it halved the import's throughput.
        let (indexer, changed) = (
            state.clone(),
            crate::services::search::domain::changed_products(&logged),
        );
        tally.1.push(tokio::spawn(async move {
            crate::services::search::domain::catalog_changed(&indexer, changed).await;
        }));
    }
    for ((line, sku), outcome) in keys.into_iter().zip(outcomes) {
        match outcome {
            ImportOutcome::Created => tally.0.created += 1,
            ImportOutcome::Updated => tally.0.updated += 1,
            ImportOutcome::Unchanged => tally.0.unchanged += 1,
            ImportOutcome::Failed(reason) => {
                tally.fail(ImportRowError {
                    line,
                    sku: Some(sku),
                    field: None,
                    reason,
                });
                continue;
            }
        }
        tally.0.rows += 1;
    }
    Ok(())
}

/// Imports `body` in `format`, upserting by SKU, and reports what happened.
pub async fn import(
    state: &AppState,
    caller: &AuthUser,
    format: DataFormat,
    (dry_run, stock): (bool, StockImport),
    body: Body,
) -> DomainResult<ImportSummary> {
    let started = Instant::now();
    let actor = actor(state, caller).await?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let (sender, mut batches) = mpsc::channel(2);
    let size = state.config.inventory.import_batch_size;
    let parser = tokio::task::spawn_blocking(move || {
        let mut batcher = Batcher {
            size,
            batch: Vec::with_capacity(size),
            sender,
            rows: 0,
        };
        parse(format, reader, &mut batcher)
    });

    let mut tally = Tally::new(ImportSummary {
        dry_run,
        ..ImportSummary::default()
    });
    while let Some(batch) = batches.recv().await {
        let mut rows = Vec::with_capacity(batch.len());
        for parsed in batch {
            let checked = match parsed {
                ParsedRow::Unreadable(error) => Err(error),
                ParsedRow::Request { line, request } => checked_row(line, request, stock),
            };
            match checked {
                Ok(row) => rows.push(row),
                Err(error) => tally.fail(error),
            }
        }
        upsert(state, rows, actor.clone(), dry_run, &mut tally).await?;
    }
    match parser.await.map_err(DomainError::internal)? {
        Ok(()) => {}
        Err(unreadable) => {
            return Err(DomainError::Invalid {
                code: "invalid_import",
                message: format!(
                    "line {}: {} (nothing was imported)",
                    unreadable.line, unreadable.reason
                ),
            });
        }
    }
    let mut summary = tally.finish().await?;
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(format: DataFormat, text: &str) -> (Result<(), Unreadable>, Vec<ParsedRow>) {
        let (sender, mut receiver) = mpsc::channel(1000);
        let mut batcher = Batcher {
            size: 2,
            batch: Vec::new(),
            sender,
            rows: 0,
        };
        let outcome = parse(format, text.as_bytes(), &mut batcher);
        drop(batcher);
        let mut rows = Vec::new();
        while let Ok(batch) = receiver.try_recv() {
            rows.extend(batch);
        }
        (outcome, rows)
    }

    fn summary(rows: &[ParsedRow]) -> Vec<String> {
        rows.iter()
            .map(|row| match row {
                ParsedRow::Request { line, request } => format!("{line} ok {}", request.sku),
                ParsedRow::Unreadable(e) => {
                    format!("{} bad {}", e.line, e.field.clone().unwrap_or_default())
                }
            })
            .collect()
    }

    #[test]
    fn csv_with_hostile_quoting_keeps_line_numbers_and_reports_bad_rows() {
        let text = "sku,name,description,price,currency,attributes\n\
            A-1,\"Chair, \"\"oak\"\"\",\"two\nlines\",19.99,USD,\"{\"\"colour\"\":\"\"red\"\"}\"\n\
            A-2,Café crème,,abc,USD,\n\
            A-3,Stool,,5,EUR,\n\
            A-4,short\n";
        let (outcome, rows) = parse_all(DataFormat::Csv, text);
        assert!(outcome.is_ok());
        assert_eq!(
            summary(&rows),
            ["2 ok A-1", "4 bad price", "5 ok A-3", "6 bad "]
        );
        let ParsedRow::Request { request, .. } = &rows[0] else {
            panic!("row 1 parses")
        };
        assert_eq!(request.name, "Chair, \"oak\"");
        assert_eq!(request.description, "two\nlines");
        assert_eq!(request.price_cents, 1999);
        assert_eq!(request.attributes["colour"], "red");
        let ParsedRow::Unreadable(short) = &rows[3] else {
            panic!("row 6 is too short")
        };
        assert_eq!(short.sku.as_deref(), Some("A-4"), "{}", short.reason);
        assert!(short.reason.contains("2 fields"), "{}", short.reason);
    }

    #[test]
    fn an_import_touches_existing_stock_only_when_asked() {
        assert_eq!(
            existing_stock(StockImport::Ignore, Some(1)),
            ExistingStock::Keep
        );
        assert_eq!(
            existing_stock(StockImport::default(), Some(7)),
            ExistingStock::Keep,
            "a re-import keeps what was sold since"
        );
        assert_eq!(
            existing_stock(StockImport::Set, Some(0)),
            ExistingStock::Set(0)
        );
        assert_eq!(existing_stock(StockImport::Set, None), ExistingStock::Keep);
        assert_eq!(
            existing_stock(StockImport::Add, Some(5)),
            ExistingStock::Add(5)
        );
        assert_eq!(
            existing_stock(StockImport::Add, Some(0)),
            ExistingStock::Keep
        );
    }

    #[test]
    fn a_csv_header_with_unknown_columns_is_refused_whole() {
        let (outcome, rows) = parse_all(DataFormat::Csv, "sku,name,price,colour\nA,B,1,red\n");
        let err = outcome.expect_err("refused");
        assert!(
            err.reason.contains("unknown column `colour`"),
            "{}",
            err.reason
        );
        assert!(rows.is_empty());
    }

    #[test]
    fn ndjson_rows_are_read_line_by_line_with_field_errors() {
        let text = "{\"sku\":\"A\",\"name\":\"a\",\"price_cents\":1}\n\n{\"sku\":\"B\",\"name\":\"b\",\"price_cents\":\"x\"}\nnot json\n{\"sku\":\"C\",\"name\":\"c\",\"price_cents\":3,\"colour\":1}";
        let (outcome, rows) = parse_all(DataFormat::Ndjson, text);
        assert!(outcome.is_ok());
        assert_eq!(
            summary(&rows),
            ["1 ok A", "3 bad price_cents", "4 bad ", "5 bad colour"]
        );
    }

    #[test]
    fn overlong_ndjson_lines_are_skipped_not_buffered() {
        let long = format!(
            "{{\"sku\":\"{}\"}}\n{{\"sku\":\"OK\",\"name\":\"n\",\"price_cents\":1}}\n",
            "X".repeat(MAX_LINE + 10)
        );
        let (_, rows) = parse_all(DataFormat::Ndjson, &long);
        assert_eq!(summary(&rows), ["1 bad ", "2 ok OK"]);
    }

    #[test]
    fn json_arrays_stream_elements_with_their_starting_line() {
        let text = "[\n  {\"sku\": \"A\", \"name\": \"a\", \"price_cents\": 1},\n  {\n    \"sku\": \"B\",\n    \"name\": 5\n  },\n  {\"sku\": \"C\", \"name\": \"c\", \"price_cents\": 2}\n]\n";
        let (outcome, rows) = parse_all(DataFormat::Json, text);
        assert!(outcome.is_ok());
        assert_eq!(summary(&rows), ["2 ok A", "3 bad name", "7 ok C"]);
    }

    #[test]
    fn a_truncated_json_array_keeps_the_rows_before_the_break() {
        let (outcome, rows) = parse_all(
            DataFormat::Json,
            "[{\"sku\":\"A\",\"name\":\"a\",\"price_cents\":1},\n{\"sku\":",
        );
        assert!(outcome.is_ok());
        assert_eq!(summary(&rows), ["1 ok A", "2 bad "]);
        let (outcome, _) = parse_all(DataFormat::Json, "{\"sku\":\"A\"}");
        assert!(outcome.is_err(), "not an array at all");
    }
}
