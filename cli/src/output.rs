//! The one way commands print results.
//!
//! A command hands over serde values; the format decides how they look:
//! `table` (fitted to the terminal's width whether or not it is coloured:
//! only free text gives way, cut with `…` on one line, while keys, ids,
//! money, statuses and times stay whole; coloured only on a terminal without
//! `NO_COLOR`), `wide` (the table with the columns kept for it, such as ids),
//! `json` (the server's document, pretty), `ndjson` (one
//! compact object per line, flushed per line so pipelines stream), `csv` (a
//! header of field names, nested values as JSON) and `id` (one id per line).
//! A table is the default on a terminal, NDJSON when piped. Times in tables
//! are local (the `TZ` variable, else the system's zone) and say which zone;
//! lists show how long ago something happened as an AGE, as kubectl does.

use std::io::{self, IsTerminal, Write};

use comfy_table::{Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table, presets};
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::error::CliError;

/// What `-o` takes: the formats, plus `wide`, a table with more columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputArg {
    /// An aligned table fitted to the terminal (the default on a terminal).
    Table,
    /// The table with more columns: ids, and times beside ages.
    Wide,
    /// The server's JSON document, pretty-printed.
    Json,
    /// One JSON object per line (the default when piped).
    Ndjson,
    /// Comma-separated values with a header row of field names.
    Csv,
    /// Only ids, one per line.
    Id,
}

impl OutputArg {
    /// The format, and whether a table shows its wide columns.
    fn format(self) -> (Format, bool) {
        match self {
            OutputArg::Table => (Format::Table, false),
            OutputArg::Wide => (Format::Table, true),
            OutputArg::Json => (Format::Json, false),
            OutputArg::Ndjson => (Format::Ndjson, false),
            OutputArg::Csv => (Format::Csv, false),
            OutputArg::Id => (Format::Id, false),
        }
    }
}

/// How records are written; `-o wide` is a table with its wide columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An aligned table (the default on a terminal).
    Table,
    /// The server's JSON document, pretty-printed.
    Json,
    /// One JSON object per line (the default when piped).
    Ndjson,
    /// Comma-separated values with a header row of field names.
    Csv,
    /// Only ids, one per line.
    Id,
}

/// How a record shows up as a table row: its columns and its id.
pub trait Tabular: Serialize {
    /// The columns of a table of many records; a single record shows every field.
    fn columns() -> &'static [Column];
    /// What `-o id` prints.
    fn id(&self) -> String;
    /// Fields computed for people, shown in tables only (a price written as
    /// `19.99 USD`); JSON, NDJSON and CSV carry the record as the server sent it.
    fn display_fields(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// One table column: a header and the field (a dotted path into the record's JSON) it shows.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub header: &'static str,
    pub field: &'static str,
    pub kind: CellKind,
    /// Shown only with `-o wide` (ids beside the numbers people read).
    pub wide: bool,
}

impl Column {
    pub const fn new(header: &'static str, field: &'static str) -> Self {
        Column {
            header,
            field,
            kind: CellKind::Text,
            wide: false,
        }
    }

    pub const fn kind(self, kind: CellKind) -> Self {
        Column { kind, ..self }
    }

    /// Only in `-o wide`.
    pub const fn wide(self) -> Self {
        Column { wide: true, ..self }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Free text (names, reasons, emails), cut with `…` when the table must
    /// shrink to fit the terminal.
    Text,
    /// What a row is known by, or a figure: SKUs, order numbers, ids, money,
    /// counts. Never cut: a half id is no use to copy, a half price a lie.
    Id,
    /// `ok`/`degraded`/`down` and the like, coloured by meaning.
    Status,
    /// An RFC 3339 timestamp, shown to the second in local time.
    Time,
    /// An RFC 3339 timestamp shown as how long ago it was (`5m`, `3d`), or
    /// how long until it comes (`in 4m`), as kubectl's AGE.
    Age,
}

/// The narrowest a free-text column gets; below it a word is unreadable.
const MIN_TEXT_WIDTH: usize = 8;
/// Spaces between two columns.
const GAP: usize = 2;

pub struct Output {
    format: Format,
    /// `-o wide`: tables show their wide columns.
    wide: bool,
    color: bool,
    /// The terminal's width, which tables fit; none when not on a terminal.
    width: Option<usize>,
    /// Where times are shown: `TZ`, else the system's zone.
    zone: jiff::tz::TimeZone,
    out: Box<dyn Write>,
    /// The CSV columns, fixed by the first record written (and its header row).
    csv_header: Option<Vec<String>>,
}

impl Output {
    /// `format` when one was asked for, else a table on a terminal and NDJSON
    /// in a pipe. Colour and fitting are independent: `--no-color` keeps a
    /// table fitted to the terminal.
    pub fn stdout(format: Option<OutputArg>, no_color: bool) -> Self {
        let terminal = io::stdout().is_terminal();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let (format, wide) = match format {
            Some(arg) => arg.format(),
            None if terminal => (Format::Table, false),
            None => (Format::Ndjson, false),
        };
        // Off a terminal, a table is as wide as its content unless COLUMNS says otherwise.
        let width = terminal_size::terminal_size_of(io::stdout())
            .map(|(terminal_size::Width(width), _)| usize::from(width))
            .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
            .filter(|&width| width > 0);
        Output {
            format,
            wide,
            color: use_color(terminal, no_color, no_color_env),
            width,
            zone: jiff::tz::TimeZone::system(),
            out: Box::new(io::BufWriter::new(io::stdout())),
            csv_header: None,
        }
    }

    #[cfg(test)]
    fn to_buffer(format: Format, buffer: impl Write + 'static) -> Self {
        Output {
            format,
            wide: false,
            color: false,
            width: None,
            zone: jiff::tz::TimeZone::UTC,
            out: Box::new(buffer),
            csv_header: None,
        }
    }

    /// The same output fitted to a terminal `width` columns wide, as `-o wide` when `wide`.
    #[cfg(test)]
    pub(crate) fn sized(mut self, width: Option<usize>, wide: bool) -> Self {
        self.width = width;
        self.wide = wide;
        self
    }

    /// Whether records print as a table (`-o table` or `-o wide`), for the
    /// notes a person reads under one.
    pub fn is_table(&self) -> bool {
        self.format == Format::Table
    }

    /// What `write` prints in `format`, as text: for other modules' tests of their records.
    #[cfg(test)]
    pub(crate) fn render_for_test(
        format: Format,
        write: impl FnOnce(&mut Output) -> Result<(), CliError>,
    ) -> String {
        Self::render_sized_for_test(format, None, false, write)
    }

    /// What `write` prints as a table on a terminal `width` columns wide (`-o wide` when `wide`).
    #[cfg(test)]
    pub(crate) fn render_sized_for_test(
        format: Format,
        width: Option<usize>,
        wide: bool,
        write: impl FnOnce(&mut Output) -> Result<(), CliError>,
    ) -> String {
        let buffer = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                self.0.borrow_mut().write(bytes)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut output = Output::to_buffer(format, Shared(buffer.clone())).sized(width, wide);
        write(&mut output).expect("rendered");
        drop(output);
        String::from_utf8(buffer.take()).expect("utf-8")
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Many records. `document` is what `-o json` prints: the server's whole
    /// answer (e.g. the page envelope with its total), of which `items` are the records.
    pub fn list<T: Tabular>(
        &mut self,
        document: &impl Serialize,
        items: &[T],
    ) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(document)?,
            Format::Table => {
                if !items.is_empty() {
                    let table = self.table(items)?;
                    self.write_table(table)?;
                }
            }
            Format::Ndjson | Format::Csv | Format::Id => {
                for item in items {
                    self.record(item)?;
                }
            }
        }
        self.out.flush()?;
        Ok(())
    }

    /// One record: a table shows every field, one per row, long values
    /// wrapped to the terminal's width.
    pub fn one<T: Tabular>(&mut self, item: &T) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(item)?,
            Format::Table => {
                let value = detail_value(item)?;
                let now = jiff::Timestamp::now();
                let mut table = self.new_table();
                if let Value::Object(fields) = &value {
                    for (name, field) in fields {
                        let kind = T::columns()
                            .iter()
                            .find(|c| c.field == name)
                            .map_or(CellKind::Text, |c| c.kind);
                        let text = if name.ends_with("_at") {
                            field
                                .as_str()
                                .and_then(|at| detail_time(at, now, &self.zone))
                                .unwrap_or_else(|| plain(field))
                        } else {
                            plain(field)
                        };
                        table.add_row(vec![
                            self.header_cell(&name.replace('_', " ")),
                            self.cell(text, kind),
                        ]);
                    }
                }
                if let Some(width) = self.width {
                    table
                        .set_content_arrangement(ContentArrangement::Dynamic)
                        .set_width(u16::try_from(width).unwrap_or(u16::MAX));
                    if let Some(names) = table.column_mut(0) {
                        names.set_constraint(ColumnConstraint::ContentWidth);
                    }
                }
                self.write_table(table)?;
            }
            Format::Ndjson | Format::Csv | Format::Id => self.record(item)?,
        }
        self.out.flush()?;
        Ok(())
    }

    /// One record of a stream that may never end: written and flushed at once,
    /// so `shop events --follow | jq` sees each event as it happens. A table
    /// cannot be aligned before the stream ends, so a stream prints NDJSON
    /// where a table would be the default.
    pub fn stream<T: Tabular>(&mut self, item: &T) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(item)?,
            Format::Table | Format::Ndjson | Format::Csv | Format::Id => self.record(item)?,
        }
        self.out.flush()?;
        Ok(())
    }

    /// A record as one NDJSON line, CSV row or id line.
    fn record<T: Tabular>(&mut self, item: &T) -> Result<(), CliError> {
        match self.format {
            Format::Id => writeln!(self.out, "{}", item.id())?,
            Format::Csv => {
                let value = to_value(item)?;
                let Value::Object(fields) = &value else {
                    return Err(CliError::Other("a CSV record must be an object".into()));
                };
                let mut writer = csv::Writer::from_writer(Vec::new());
                let header = match &self.csv_header {
                    Some(header) => header.clone(),
                    None => {
                        let header: Vec<String> = fields.keys().cloned().collect();
                        writer.write_record(&header).map_err(csv_error)?;
                        self.csv_header = Some(header.clone());
                        header
                    }
                };
                writer
                    .write_record(
                        header
                            .iter()
                            .map(|name| plain(fields.get(name).unwrap_or(&Value::Null)))
                            .map(|cell| shop_wire::csv_cell::guard(&cell).into_owned()),
                    )
                    .map_err(csv_error)?;
                let bytes = writer
                    .into_inner()
                    .map_err(|err| CliError::Other(format!("cannot write CSV: {}", err.error())))?;
                self.out.write_all(&bytes)?;
            }
            Format::Ndjson | Format::Table | Format::Json => {
                serde_json::to_writer(&mut self.out, item).map_err(json_error)?;
                writeln!(self.out)?;
            }
        }
        Ok(())
    }

    fn json(&mut self, document: &impl Serialize) -> Result<(), CliError> {
        serde_json::to_writer_pretty(&mut self.out, document).map_err(json_error)?;
        writeln!(self.out)?;
        Ok(())
    }

    fn table<T: Tabular>(&self, items: &[T]) -> Result<Table, CliError> {
        let columns: Vec<&Column> = T::columns()
            .iter()
            .filter(|column| self.wide || !column.wide)
            .collect();
        let now = jiff::Timestamp::now();
        let zone = self.zone.to_offset_info(now).abbreviation().to_owned();
        let headers: Vec<String> = columns
            .iter()
            .map(|column| match column.kind {
                CellKind::Time => format!("{} ({zone})", column.header).to_uppercase(),
                CellKind::Age if column.header.is_empty() => "AGE".to_owned(),
                _ => column.header.to_uppercase(),
            })
            .collect();
        let mut rows = Vec::with_capacity(items.len());
        for item in items {
            let value = display_value(item)?;
            rows.push(
                columns
                    .iter()
                    .map(|column| {
                        let field = lookup(&value, column.field).unwrap_or(&Value::Null);
                        cell_text(field, column.kind, now, &self.zone)
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let natural: Vec<usize> = (0..columns.len())
            .map(|index| {
                rows.iter()
                    .map(|row| row[index].width())
                    .chain([headers[index].width()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let shrinkable: Vec<bool> = columns
            .iter()
            .map(|column| column.kind == CellKind::Text)
            .collect();
        let widths = fit_widths(&natural, &shrinkable, self.width);
        let mut table = self.new_table();
        table.set_header(
            headers
                .iter()
                .zip(&widths)
                .map(|(header, &width)| self.header_cell(&cut(header, width))),
        );
        for row in rows {
            table.add_row(
                row.into_iter()
                    .zip(&widths)
                    .zip(&columns)
                    .map(|((text, &width), column)| self.cell(cut(&text, width), column.kind)),
            );
        }
        Ok(table)
    }

    fn new_table(&self) -> Table {
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        if self.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table
    }

    /// Writes a table with two spaces between columns and none at the edges
    /// (trailing padding would push a fitted line past the terminal's edge).
    fn write_table(&mut self, mut table: Table) -> Result<(), CliError> {
        let last = table.column_count().saturating_sub(1);
        for (index, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if index == last { 0 } else { GAP as u16 }));
        }
        for line in table.lines() {
            writeln!(self.out, "{}", line.trim_end())?;
        }
        Ok(())
    }

    fn header_cell(&self, text: &str) -> Cell {
        let cell = Cell::new(text.to_uppercase());
        if self.color {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }

    fn cell(&self, text: String, kind: CellKind) -> Cell {
        let cell = Cell::new(&text);
        if !self.color || kind != CellKind::Status {
            return cell;
        }
        match text.as_str() {
            "ok" | "sent" | "paid" | "delivered" | "active" | "succeeded" => cell.fg(Color::Green),
            "degraded" | "pending" | "queued" | "sending" | "failed" | "LOW" => {
                cell.fg(Color::Yellow)
            }
            "down" | "dead" | "cancelled" | "declined" | "OUT" => cell.fg(Color::Red),
            "partially_refunded" | "refunded" | "voided" => cell.fg(Color::Magenta),
            _ => cell,
        }
    }
}

/// A table cell's text: times local, ages relative, on one line.
fn cell_text(value: &Value, kind: CellKind, now: jiff::Timestamp, zone: &TimeZone) -> String {
    let at = || {
        value
            .as_str()
            .and_then(|text| text.parse::<jiff::Timestamp>().ok())
    };
    match kind {
        CellKind::Time => at().map_or_else(|| plain(value), |at| local_time(at, zone, false)),
        CellKind::Age => at().map_or_else(|| plain(value), |at| age(at, now)),
        CellKind::Text | CellKind::Id | CellKind::Status => plain(value)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    }
}

/// Column widths that fit a terminal `limit` columns wide: only free-text
/// columns give way, the widest first, never below [`MIN_TEXT_WIDTH`]. What
/// cannot fit even so is left to the terminal to wrap.
fn fit_widths(natural: &[usize], shrinkable: &[bool], limit: Option<usize>) -> Vec<usize> {
    let mut widths = natural.to_vec();
    let Some(limit) = limit else {
        return widths;
    };
    let gaps = GAP * widths.len().saturating_sub(1);
    let mut total: usize = widths.iter().sum::<usize>() + gaps;
    while total > limit {
        let widest = (0..widths.len())
            .filter(|&index| shrinkable[index] && widths[index] > MIN_TEXT_WIDTH)
            .max_by_key(|&index| (widths[index], std::cmp::Reverse(index)));
        let Some(index) = widest else { break };
        widths[index] -= 1;
        total -= 1;
    }
    widths
}

/// `text` cut to `width` terminal columns, ending in `…` when cut.
fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut kept = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        kept.push(c);
        used += w;
    }
    kept.push('…');
    kept
}

/// `2026-11-23 15:05:09` in `zone` (the local one: `TZ`, else the
/// system's), with the zone's abbreviation when `with_zone`.
fn local_time(at: jiff::Timestamp, zone: &TimeZone, with_zone: bool) -> String {
    let zoned = at.to_zoned_datetime(zone.clone());
    let format = if with_zone {
        "%Y-%m-%d %H:%M:%S %Z"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    zoned.strftime(format).to_string()
}

/// A time in a detail view: local, with its zone and how long ago.
fn detail_time(text: &str, now: jiff::Timestamp, zone: &TimeZone) -> Option<String> {
    let at = text.parse::<jiff::Timestamp>().ok()?;
    let age = age(at, now);
    let relative = if age.starts_with("in ") {
        age
    } else {
        format!("{age} ago")
    };
    Some(format!("{} ({relative})", local_time(at, zone, true)))
}

/// How long ago `at` was, as kubectl's AGE: `42s`, `5m`, `3h`, `12d`, `2y`;
/// a time to come is `in 5m`.
fn age(at: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let seconds = now.as_second() - at.as_second();
    let span = seconds.unsigned_abs();
    let text = match span {
        0..120 => format!("{span}s"),
        120..7_200 => format!("{}m", span / 60),
        7_200..172_800 => format!("{}h", span / 3_600),
        172_800..63_072_000 => format!("{}d", span / 86_400),
        _ => format!("{}y", span / 31_536_000),
    };
    if seconds < 0 {
        format!("in {text}")
    } else {
        text
    }
}

/// Colours only for a person at a terminal who has not asked for none
/// (`--no-color`, or `NO_COLOR` set to anything but empty, per no-color.org).
fn use_color(terminal: bool, no_color_flag: bool, no_color_env: bool) -> bool {
    terminal && !no_color_flag && !no_color_env
}

/// A JSON value as a table or CSV cell: strings bare, null empty, nested values as compact JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, key| value.get(key))
}

/// A record as a table shows it: its fields plus its computed display fields.
fn display_value<T: Tabular>(item: &T) -> Result<Value, CliError> {
    let mut value = to_value(item)?;
    if let Value::Object(fields) = &mut value {
        for (name, text) in item.display_fields() {
            fields.insert(name.to_owned(), Value::String(text));
        }
    }
    Ok(value)
}

/// A record as a detail view shows it: a display field takes the place of
/// the raw field it writes for people (`price` for `price_cents`), so an
/// amount shows once, as money.
fn detail_value<T: Tabular>(item: &T) -> Result<Value, CliError> {
    let value = to_value(item)?;
    let Value::Object(fields) = value else {
        return Ok(value);
    };
    let mut display: Vec<(&'static str, String)> = item.display_fields();
    let mut shown = serde_json::Map::new();
    for (name, field) in fields {
        let replaced = name
            .strip_suffix("_cents")
            .and_then(|base| display.iter().position(|(shown, _)| *shown == base));
        match replaced {
            Some(index) => {
                let (shown_name, text) = display.remove(index);
                shown.insert(shown_name.to_owned(), Value::String(text));
            }
            None => {
                shown.insert(name, field);
            }
        }
    }
    for (name, text) in display {
        shown.insert(name.to_owned(), Value::String(text));
    }
    Ok(Value::Object(shown))
}

fn to_value(item: &impl Serialize) -> Result<Value, CliError> {
    serde_json::to_value(item).map_err(json_error)
}

fn json_error(err: serde_json::Error) -> CliError {
    if err.is_io() {
        CliError::Io(err.into())
    } else {
        CliError::Other(format!("cannot encode the output: {err}"))
    }
}

fn csv_error(err: csv::Error) -> CliError {
    CliError::Other(format!("cannot write CSV: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("buffer").write(bytes)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("buffer").clone()).expect("utf-8")
        }
    }

    #[derive(Serialize)]
    struct Thing {
        id: String,
        name: String,
        status: String,
        tags: Vec<String>,
        at: String,
    }

    impl Tabular for Thing {
        fn columns() -> &'static [Column] {
            const COLUMNS: &[Column] = &[
                Column::new("id", "id"),
                Column::new("name", "name"),
                Column::new("status", "status").kind(CellKind::Status),
                Column::new("at", "at").kind(CellKind::Time),
            ];
            COLUMNS
        }
        fn id(&self) -> String {
            self.id.clone()
        }
    }

    fn things() -> Vec<Thing> {
        vec![
            Thing {
                id: "t_1".into(),
                name: "Chair, \"oak\"".into(),
                status: "ok".into(),
                tags: vec!["a".into()],
                at: "2026-11-23T14:05:09.123Z".into(),
            },
            Thing {
                id: "t_2".into(),
                name: "Desk\nwide".into(),
                status: "down".into(),
                tags: vec![],
                at: "2026-11-24T00:00:00Z".into(),
            },
        ]
    }

    fn render(format: Format, write: impl FnOnce(&mut Output)) -> String {
        let buffer = SharedBuffer::default();
        let mut output = Output::to_buffer(format, buffer.clone());
        write(&mut output);
        buffer.text()
    }

    #[test]
    fn a_table_has_the_columns_and_local_times() {
        let text = render(Format::Table, |o| o.list(&(), &things()).expect("list"));
        let lines: Vec<_> = text.lines().collect();
        assert!(lines[0].starts_with("ID"), "{text}");
        assert!(lines[0].contains("STATUS"), "{text}");
        assert!(text.contains("2026-11-23 14:05:09"), "{text}");
        assert!(!text.contains("tags"), "only the declared columns: {text}");
        assert!(
            !text.contains('\u{1b}'),
            "no colour without a terminal: {text:?}"
        );
    }

    #[test]
    fn ndjson_csv_and_ids_round_trip() {
        let ndjson = render(Format::Ndjson, |o| o.list(&(), &things()).expect("list"));
        let parsed: Vec<Value> = ndjson
            .lines()
            .map(|line| serde_json::from_str(line).expect("json line"))
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1]["name"], "Desk\nwide");

        let csv_text = render(Format::Csv, |o| o.list(&(), &things()).expect("list"));
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, ["id", "name", "status", "tags", "at"]);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(&rows[0][1], "Chair, \"oak\"");
        assert_eq!(&rows[0][3], r#"["a"]"#);
        assert_eq!(&rows[1][1], "Desk\nwide");

        let ids = render(Format::Id, |o| o.list(&(), &things()).expect("list"));
        assert_eq!(ids, "t_1\nt_2\n");
    }

    #[test]
    fn json_prints_the_whole_document() {
        let items = things();
        let text = render(Format::Json, |o| {
            o.list(&serde_json::json!({"items": [], "total": 7}), &items)
                .expect("list")
        });
        let value: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["total"], 7);
    }

    #[test]
    fn one_record_shows_every_field() {
        let text = render(Format::Table, |o| o.one(&things()[0]).expect("one"));
        assert!(text.contains("TAGS"), "{text}");
        assert!(text.contains(r#"["a"]"#), "{text}");
    }

    #[test]
    fn colour_needs_a_terminal_and_no_opt_out() {
        assert!(use_color(true, false, false));
        assert!(!use_color(false, false, false), "piped");
        assert!(!use_color(true, true, false), "--no-color");
        assert!(!use_color(true, false, true), "NO_COLOR");
    }

    /// The sample things with a long name, as a table on a terminal `width` columns wide.
    fn fitted(width: usize, wide: bool) -> String {
        let buffer = SharedBuffer::default();
        let mut output = Output::to_buffer(Format::Table, buffer.clone()).sized(Some(width), wide);
        let mut long = things();
        long[0].name = "A very long product name that goes on and on, past any column".into();
        output.list(&(), &long).expect("list");
        drop(output);
        buffer.text()
    }

    #[test]
    fn a_table_fits_the_terminal_by_cutting_text_never_ids_or_times() {
        let text = fitted(60, false);
        for line in text.lines() {
            assert!(
                line.width() <= 60,
                "{} columns: {line:?}\n{text}",
                line.width()
            );
        }
        let first = text.lines().nth(1).expect("a row");
        assert!(
            first.contains("A very long") && first.contains('…'),
            "{text}"
        );
        assert!(
            first.contains("t_1") && first.contains("2026-11-23 14:05:09"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3, "one line per row: {text}");
        assert!(
            text.contains("Desk wide"),
            "a line break stays on its row: {text}"
        );
        // Too narrow for everything: text stops at a readable width, and
        // what is left is the terminal's to wrap; nothing is dropped.
        let narrow = fitted(20, false);
        assert!(
            narrow.contains("t_1") && narrow.contains("A very …"),
            "{narrow}"
        );
    }

    #[test]
    fn wide_columns_show_only_in_wide() {
        #[derive(Serialize)]
        struct Row {
            key: &'static str,
            id: &'static str,
        }
        impl Tabular for Row {
            fn columns() -> &'static [Column] {
                const COLUMNS: &[Column] = &[
                    Column::new("key", "key").kind(CellKind::Id),
                    Column::new("id", "id").kind(CellKind::Id).wide(),
                ];
                COLUMNS
            }
            fn id(&self) -> String {
                self.id.to_owned()
            }
        }
        let rows = [Row {
            key: "ORD-001001",
            id: "ord_1",
        }];
        let narrow = render(Format::Table, |o| o.list(&(), &rows).expect("list"));
        assert!(
            !narrow.contains("ord_1") && narrow.contains("ORD-001001"),
            "{narrow}"
        );
        let buffer = SharedBuffer::default();
        let mut output = Output::to_buffer(Format::Table, buffer.clone()).sized(None, true);
        output.list(&(), &rows).expect("list");
        drop(output);
        assert!(buffer.text().contains("ord_1"), "{}", buffer.text());
        assert_eq!(OutputArg::Wide.format(), (Format::Table, true));
    }

    #[test]
    fn times_are_local_and_say_their_zone_and_ages_are_relative() {
        let at: jiff::Timestamp = "2026-11-23T14:05:09Z".parse().expect("time");
        let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("zone");
        assert_eq!(local_time(at, &berlin, true), "2026-11-23 15:05:09 CET");
        assert_eq!(local_time(at, &TimeZone::UTC, false), "2026-11-23 14:05:09");
        let later = |seconds: i64| {
            at.checked_add(jiff::SignedDuration::from_secs(seconds))
                .expect("time")
        };
        assert_eq!(age(at, later(42)), "42s");
        assert_eq!(age(at, later(300)), "5m");
        assert_eq!(age(at, later(3 * 3_600)), "3h");
        assert_eq!(age(at, later(12 * 86_400)), "12d");
        assert_eq!(age(later(240), at), "in 4m");
        assert_eq!(
            detail_time("2026-11-23T14:05:09Z", later(300), &berlin).as_deref(),
            Some("2026-11-23 15:05:09 CET (5m ago)")
        );
        let text = render(Format::Table, |o| o.list(&(), &things()).expect("list"));
        assert!(
            text.lines().next().expect("header").contains("AT (UTC)"),
            "{text}"
        );
    }

    #[test]
    fn a_detail_view_shows_money_once() {
        #[derive(Serialize)]
        struct Refund {
            id: &'static str,
            amount_cents: i64,
            currency: &'static str,
        }
        impl Tabular for Refund {
            fn columns() -> &'static [Column] {
                &[]
            }
            fn id(&self) -> String {
                self.id.to_owned()
            }
            fn display_fields(&self) -> Vec<(&'static str, String)> {
                vec![("amount", "14.50 USD".to_owned())]
            }
        }
        let refund = Refund {
            id: "ref_1",
            amount_cents: 1450,
            currency: "USD",
        };
        let text = render(Format::Table, |o| o.one(&refund).expect("one"));
        assert!(
            text.contains("14.50 USD") && !text.contains("1450"),
            "{text}"
        );
        assert!(!text.contains("AMOUNT CENTS"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with("AMOUNT"),
            "in the raw field's place: {text}"
        );
    }

    #[test]
    fn a_stream_writes_the_csv_header_once() {
        let text = render(Format::Csv, |o| {
            for thing in things() {
                o.stream(&thing).expect("stream");
            }
        });
        assert_eq!(text.matches("id,name").count(), 1, "{text}");
    }
}
