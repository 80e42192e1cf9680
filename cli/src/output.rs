//! The one way commands print results.
//!
//! A command hands over serde values; the format decides how they look:
//! `table` (comfy-table, fitted to the terminal, coloured only on a terminal
//! without `NO_COLOR`), `json` (the server's document, pretty), `ndjson` (one
//! compact object per line, flushed per line so pipelines stream), `csv` (a
//! header of field names, nested values as JSON) and `id` (one id per line).
//! A table is the default on a terminal, NDJSON when piped.

use std::io::{self, IsTerminal, Write};

use comfy_table::{
    Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table, Width, presets,
};
use serde::Serialize;
use serde_json::Value;

use crate::error::CliError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
}

impl Column {
    pub const fn new(header: &'static str, field: &'static str) -> Self {
        Column {
            header,
            field,
            kind: CellKind::Text,
        }
    }

    pub const fn kind(self, kind: CellKind) -> Self {
        Column { kind, ..self }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Free text, wrapped when the table must shrink to fit the terminal.
    Text,
    /// An identifier, never wrapped: a half id is no use to copy.
    Id,
    /// `ok`/`degraded`/`down` and the like, coloured by meaning.
    Status,
    /// An RFC 3339 timestamp, shown to the second in UTC.
    Time,
}

/// The narrowest a wrapped column gets; below it a word is unreadable.
const MIN_WRAPPED_WIDTH: u16 = 10;

pub struct Output {
    format: Format,
    color: bool,
    out: Box<dyn Write>,
    /// The CSV columns, fixed by the first record written (and its header row).
    csv_header: Option<Vec<String>>,
}

impl Output {
    /// `format` when one was asked for, else a table on a terminal and NDJSON in a pipe.
    pub fn stdout(format: Option<Format>, no_color: bool) -> Self {
        let terminal = io::stdout().is_terminal();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output {
            format: format.unwrap_or(if terminal {
                Format::Table
            } else {
                Format::Ndjson
            }),
            color: use_color(terminal, no_color, no_color_env),
            out: Box::new(io::BufWriter::new(io::stdout())),
            csv_header: None,
        }
    }

    #[cfg(test)]
    fn to_buffer(format: Format, buffer: impl Write + 'static) -> Self {
        Output {
            format,
            color: false,
            out: Box::new(buffer),
            csv_header: None,
        }
    }

    /// What `write` prints in `format`, as text: for other modules' tests of their records.
    #[cfg(test)]
    pub(crate) fn render_for_test(
        format: Format,
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
        let mut output = Output::to_buffer(format, Shared(buffer.clone()));
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

    /// One record: a table shows every field, one per row.
    pub fn one<T: Tabular>(&mut self, item: &T) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(item)?,
            Format::Table => {
                let value = display_value(item)?;
                let mut table = self.new_table();
                if let Value::Object(fields) = &value {
                    for (name, field) in fields {
                        let kind = T::columns()
                            .iter()
                            .find(|c| c.field == name)
                            .map_or(CellKind::Text, |c| c.kind);
                        let kind = if name.ends_with("_at") {
                            CellKind::Time
                        } else {
                            kind
                        };
                        table.add_row(vec![
                            self.header_cell(&name.replace('_', " ")),
                            self.cell(field, kind),
                        ]);
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
        let mut table = self.new_table();
        table.set_header(
            T::columns()
                .iter()
                .map(|column| self.header_cell(column.header)),
        );
        for item in items {
            let value = display_value(item)?;
            table.add_row(T::columns().iter().map(|column| {
                let field = lookup(&value, column.field).unwrap_or(&Value::Null);
                self.cell(field, column.kind)
            }));
        }
        // When the terminal is narrow, ids and statuses keep their width and
        // the rest wraps, but never below a readable width.
        for (index, column) in T::columns().iter().enumerate() {
            let constraint = match column.kind {
                CellKind::Id | CellKind::Status => ColumnConstraint::ContentWidth,
                CellKind::Text | CellKind::Time => {
                    ColumnConstraint::LowerBoundary(Width::Fixed(MIN_WRAPPED_WIDTH))
                }
            };
            if let Some(table_column) = table.column_mut(index) {
                table_column.set_constraint(constraint);
            }
        }
        Ok(table)
    }

    fn new_table(&self) -> Table {
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if self.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table
    }

    /// Writes a table with two spaces between columns and none at the edges.
    fn write_table(&mut self, mut table: Table) -> Result<(), CliError> {
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
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

    fn cell(&self, value: &Value, kind: CellKind) -> Cell {
        let text = match kind {
            CellKind::Time => value
                .as_str()
                .map(short_time)
                .unwrap_or_else(|| plain(value)),
            CellKind::Text | CellKind::Id | CellKind::Status => plain(value),
        };
        let cell = Cell::new(&text);
        if !self.color || kind != CellKind::Status {
            return cell;
        }
        match text.as_str() {
            "ok" | "sent" | "paid" | "delivered" | "active" | "succeeded" => cell.fg(Color::Green),
            "degraded" | "pending" | "queued" | "sending" | "failed" => cell.fg(Color::Yellow),
            "down" | "dead" | "cancelled" | "declined" | "LOW" => cell.fg(Color::Red),
            _ => cell,
        }
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

/// `2026-11-23T14:05:09.123Z` as `2026-11-23 14:05:09`.
fn short_time(text: &str) -> String {
    match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => {
            let at = at.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        }
        Err(_) => text.to_owned(),
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
    fn a_table_has_the_columns_and_short_times() {
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
