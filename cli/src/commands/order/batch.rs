//! `shop order create -`: one order per NDJSON line of stdin, one result per
//! line on stdout.
//!
//! Lines are sent `--concurrency` at a time but answered in input order
//! (`buffered`, not `buffer_unordered`), so result N always belongs to input
//! line N and a pipeline can be re-joined with its input. A line that fails
//! (a declined card, no stock, not JSON at all) is reported on its own
//! result line and the batch goes on; only a failure that every later line
//! would share, an unreachable server or an ended login, stops it: no new
//! lines are sent, those in flight are finished and reported. The exit code
//! is that of the first failed line.
//!
//! The runner takes its input stream, its request function and its writer
//! as arguments, so its ordering, concurrency and exit-code rules are tested
//! without a server.

use std::future::{Future, ready};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use shop_wire::orders::{NewOrder, Order};
use tokio::io::AsyncBufReadExt;

use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Column, Format, Output, Tabular};
use crate::progress;

/// One input line's outcome: `{"line":N,"ok":true,"order":{...}}` or
/// `{"line":N,"ok":false,"status":402,"error":{...}}`.
#[derive(Debug, Serialize)]
pub struct LineResult {
    /// The line's number in the input, from 1, blank lines counted.
    pub line: u64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// The HTTP status of a failure the server answered; absent for a line
    /// never sent (not JSON) or a server that could not be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<LineError>,
}

/// The server's error body for the line, or one made here in its shape.
#[derive(Debug, Serialize)]
pub struct LineError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl Tabular for LineResult {
    fn columns() -> &'static [Column] {
        &[]
    }

    /// The created order's id; nothing for a failed line.
    fn id(&self) -> String {
        self.order
            .as_ref()
            .map(|order| order.id.to_string())
            .unwrap_or_default()
    }
}

/// A line's result, the error behind a failure (for the exit code), and
/// whether it ends the batch.
pub(super) struct Done {
    result: LineResult,
    error: Option<CliError>,
    fatal: bool,
}

impl Done {
    pub(super) fn success(line: u64, order: Order) -> Self {
        Done {
            result: LineResult {
                line,
                ok: true,
                order: Some(order),
                status: None,
                error: None,
            },
            error: None,
            fatal: false,
        }
    }

    /// A line that is not an order: reported, never sent, exit 1 like any refused input.
    fn invalid(line: u64, err: &serde_json::Error) -> Self {
        let code = match err.classify() {
            serde_json::error::Category::Data => "invalid_order",
            _ => "invalid_json",
        };
        let message = match code {
            "invalid_order" => format!("not an order: {err}"),
            _ => format!("not valid JSON: {err}"),
        };
        Done::failure(
            line,
            code,
            None,
            message.clone(),
            CliError::Other(message),
            false,
        )
    }

    /// A row of `order ship --from-file` that is not a shipment: reported, never sent.
    pub(super) fn invalid_row(line: u64, message: String) -> Self {
        Done::failure(
            line,
            "invalid_row",
            None,
            message.clone(),
            CliError::Other(message),
            false,
        )
    }

    pub(super) fn failed(line: u64, err: CliError) -> Self {
        match &err {
            CliError::Api(api) => {
                let detail = api.detail.clone();
                let result = LineResult {
                    line,
                    ok: false,
                    order: None,
                    status: Some(api.status),
                    error: Some(LineError {
                        code: detail.code,
                        message: detail.message,
                        request_id: Some(detail.request_id).filter(|id| !id.is_empty()),
                        details: detail.details,
                    }),
                };
                // A token that expired mid-batch fails every later line alike.
                let fatal = api.status == 401;
                Done {
                    result,
                    error: Some(err),
                    fatal,
                }
            }
            CliError::Unreachable { .. } => {
                Done::failure(line, "unreachable", None, err.to_string(), err, true)
            }
            CliError::Auth(_) => {
                Done::failure(line, "unauthenticated", None, err.to_string(), err, true)
            }
            _ => Done::failure(line, "client_error", None, err.to_string(), err, false),
        }
    }

    fn failure(
        line: u64,
        code: &str,
        status: Option<u16>,
        message: String,
        error: CliError,
        fatal: bool,
    ) -> Self {
        Done {
            result: LineResult {
                line,
                ok: false,
                order: None,
                status,
                error: Some(LineError {
                    code: code.to_owned(),
                    message,
                    request_id: None,
                    details: Value::Null,
                }),
            },
            error: Some(error),
            fatal,
        }
    }
}

/// What a batch did, and the error it ends with.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Lines with a result (blank lines have none).
    pub results: u64,
    pub failed: u64,
    /// The first failed line (in input order) and why it failed.
    pub first_failure: Option<(u64, CliError)>,
    /// Set when a fatal failure stopped the batch: the last line that was sent.
    pub stopped_after: Option<u64>,
}

impl Outcome {
    /// Counts one line's result after `write` wrote it; answers whether
    /// its failure ends the batch.
    pub(super) fn record(
        &mut self,
        done: Done,
        write: impl FnOnce(&LineResult) -> Result<(), CliError>,
    ) -> Result<bool, CliError> {
        self.results += 1;
        write(&done.result)?;
        if let Some(err) = done.error {
            self.failed += 1;
            if self.first_failure.is_none() {
                self.first_failure = Some((done.result.line, err));
            }
        }
        Ok(done.fatal)
    }

    /// Ok when every line succeeded; else the first failure, with its exit
    /// code, restated to say how many failed.
    pub fn into_result(self) -> Result<(), CliError> {
        let Some((line, err)) = self.first_failure else {
            return Ok(());
        };
        let mut summary = format!(
            "{} of {} orders failed; the first, line {line}",
            self.failed, self.results
        );
        if let Some(last) = self.stopped_after {
            summary.push_str(&format!(
                " (stopped: lines after {last} were not sent; with an --idempotency-key, \
                 the same input can be run again safely: lines already done are replayed, not repeated)"
            ));
        }
        Err(restate(err, &summary))
    }
}

/// The same error (so the same exit code), its message led by `summary`.
fn restate(err: CliError, summary: &str) -> CliError {
    let with = |message: &str| format!("{summary}: {message}");
    match err {
        CliError::Api(mut api) => {
            api.detail.message = with(&api.detail.message);
            CliError::Api(api)
        }
        CliError::Unreachable { url, reason } => CliError::Unreachable {
            url,
            reason: format!("{reason}; {summary}"),
        },
        CliError::Usage(message) => CliError::Usage(with(&message)),
        CliError::Unhealthy(message) => CliError::Unhealthy(with(&message)),
        CliError::Auth(message) => CliError::Auth(with(&message)),
        CliError::NotFound(message) => CliError::NotFound(with(&message)),
        CliError::Conflict(message) => CliError::Conflict(with(&message)),
        CliError::Io(err) => CliError::Other(with(&err.to_string())),
        CliError::Other(message) => CliError::Other(with(&message)),
    }
}

/// Sends each non-blank line of `lines` as an order through `send`, at most
/// `concurrency` at once, and hands each result to `write` in input order.
/// `send` gets the line number (for its idempotency key) and the order.
/// An error reading the input or from `write` (a closed stdout) ends the
/// batch at once.
pub async fn run_batch<L, S, Fut, W>(
    lines: L,
    concurrency: usize,
    send: S,
    mut write: W,
) -> Result<Outcome, CliError>
where
    L: Stream<Item = std::io::Result<Vec<u8>>>,
    S: Fn(u64, NewOrder) -> Fut,
    Fut: Future<Output = Result<Order, CliError>>,
    W: FnMut(&LineResult) -> Result<(), CliError>,
{
    let stop = AtomicBool::new(false);
    let last_started = AtomicU64::new(0);
    let (stop, last_started, send) = (&stop, &last_started, &send);
    let results = lines
        .enumerate()
        .take_while(|_| ready(!stop.load(Ordering::SeqCst)))
        .filter_map(|(index, read)| {
            let line = index as u64 + 1;
            ready(match read {
                Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => None,
                read => Some((line, read)),
            })
        })
        .map(|(line, read)| async move {
            let bytes = read
                .map_err(|err| CliError::Other(format!("reading line {line} of stdin: {err}")))?;
            let order: NewOrder = match serde_json::from_slice(&bytes) {
                Ok(order) => order,
                Err(err) => return Ok(Done::invalid(line, &err)),
            };
            last_started.fetch_max(line, Ordering::SeqCst);
            let done = match send(line, order).await {
                Ok(order) => Done::success(line, order),
                Err(err) => Done::failed(line, err),
            };
            if done.fatal {
                stop.store(true, Ordering::SeqCst);
            }
            Ok::<Done, CliError>(done)
        })
        .buffered(concurrency.max(1));
    let mut results = std::pin::pin!(results);
    let mut outcome = Outcome::default();
    while let Some(done) = results.next().await {
        outcome.record(done?, &mut write)?;
    }
    if stop.load(Ordering::SeqCst) {
        outcome.stopped_after = Some(last_started.load(Ordering::SeqCst));
    }
    Ok(outcome)
}

/// Whether a batch (`command`) prints only the ids of the orders it
/// `did`, or a result per line; its results are NDJSON or ids, never one
/// JSON document or CSV.
pub(super) fn ids_only(output: &Output, command: &str, did: &str) -> Result<bool, CliError> {
    match output.format() {
        Format::Id => Ok(true),
        Format::Ndjson | Format::Table => Ok(false),
        Format::Json | Format::Csv => Err(CliError::Usage(format!(
            "`{command}` writes one NDJSON result per input line; \
             use -o ndjson (the default), or -q for the {did} orders' ids"
        ))),
    }
}

/// stdin as lines of bytes (each checked as JSON later, so a line that is
/// not UTF-8 is one bad line, not the end of the batch).
fn stdin_lines() -> impl Stream<Item = std::io::Result<Vec<u8>>> {
    async_stream::stream! {
        let mut reader = tokio::io::BufReader::new(tokio::io::stdin());
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) => break,
                Ok(_) => yield Ok(line),
                Err(err) => {
                    yield Err(err);
                    break;
                }
            }
        }
    }
}

/// `shop order create -`.
pub async fn run(
    context: &Context,
    client: &ApiClient,
    output: &mut Output,
    concurrency: usize,
) -> Result<(), CliError> {
    let ids_only = ids_only(output, "order create -", "created")?;
    if std::io::stdin().is_terminal() {
        eprintln!("reading orders from stdin, one JSON object per line; end with Ctrl-D");
    }
    let key = context.global.idempotency_key.clone();
    let send = |line: u64, order: NewOrder| {
        let mut call = client.post("/api/orders");
        if let Some(key) = &key {
            call = call.idempotency_key(format!("{key}-{line}"));
        }
        async move { call.json(&order)?.send::<Order>().await }
    };
    let bar = progress::items(progress::wanted(context.global.quiet), "orders");
    let mut failed = 0u64;
    let write = |result: &LineResult| {
        bar.inc(1);
        if !result.ok {
            failed += 1;
            bar.set_message(format!("orders, {failed} failed"));
        }
        match (&result.order, &result.error) {
            (Some(order), _) if ids_only => output.stream(order),
            (None, Some(error)) if ids_only => {
                bar.suspend(|| {
                    eprintln!("line {}: {} ({})", result.line, error.message, error.code);
                });
                Ok(())
            }
            _ => output.stream(result),
        }
    };
    let outcome = run_batch(stdin_lines(), concurrency, send, write).await;
    bar.finish_and_clear();
    outcome?.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use shop_wire::ErrorDetail;
    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    fn order(line: u64) -> Order {
        serde_json::from_value(serde_json::json!({
            "id": "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "number": format!("ORD-{line:06}"),
            "status": "paid",
            "financial_status": "paid",
            "items": [],
            "item_count": 1,
            "total_cents": 1999,
            "refunded_cents": 0,
            "currency": "USD",
            "customer_email": "kim@example.com",
            "user_id": null,
            "payment_id": null,
            "cart_id": null,
            "payment_error": null,
            "tracking_number": null,
            "created_at": "2026-11-23T14:05:09Z",
            "updated_at": "2026-11-23T14:05:09Z"
        }))
        .expect("an order")
    }

    fn api(status: u16, code: &str) -> CliError {
        CliError::Api(Box::new(ApiError {
            status,
            detail: ErrorDetail {
                code: code.into(),
                message: format!("{code} happened"),
                request_id: "req-1".into(),
                details: serde_json::json!({"order_number": "ORD-000002"}),
            },
        }))
    }

    fn input(lines: &[&str]) -> impl Stream<Item = std::io::Result<Vec<u8>>> {
        let lines: Vec<std::io::Result<Vec<u8>>> = lines
            .iter()
            .map(|line| Ok(format!("{line}\n").into_bytes()))
            .collect();
        futures::stream::iter(lines)
    }

    const ORDER: &str = r#"{"items":[{"sku":"CHAIR-01","quantity":1}]}"#;

    /// Runs a batch and returns its NDJSON output and outcome.
    async fn batch<S, Fut>(lines: &[&str], concurrency: usize, send: S) -> (Vec<Value>, Outcome)
    where
        S: Fn(u64, NewOrder) -> Fut,
        Fut: Future<Output = Result<Order, CliError>>,
    {
        let written = RefCell::new(Vec::new());
        let outcome = run_batch(input(lines), concurrency, send, |result| {
            written
                .borrow_mut()
                .push(serde_json::to_value(result).expect("json"));
            Ok(())
        })
        .await
        .expect("the batch runs");
        (written.into_inner(), outcome)
    }

    #[tokio::test]
    async fn results_come_in_input_order_with_bounded_concurrency() {
        let in_flight = Cell::new(0usize);
        let most = Cell::new(0usize);
        let lines = vec![ORDER; 20];
        let (results, outcome) = batch(&lines, 4, |line, _| {
            let (in_flight, most) = (&in_flight, &most);
            async move {
                in_flight.set(in_flight.get() + 1);
                most.set(most.get().max(in_flight.get()));
                // Early lines take longest, so they finish last.
                tokio::time::sleep(Duration::from_millis(2 * (21 - line))).await;
                in_flight.set(in_flight.get() - 1);
                Ok(order(line))
            }
        })
        .await;
        let numbers: Vec<u64> = results
            .iter()
            .map(|r| r["line"].as_u64().expect("line"))
            .collect();
        assert_eq!(numbers, (1..=20).collect::<Vec<_>>());
        assert!(results.iter().all(|r| r["ok"] == true));
        assert_eq!(results[4]["order"]["number"], "ORD-000005");
        assert_eq!(
            most.get(),
            4,
            "at most --concurrency at once, and that many"
        );
        assert_eq!(outcome.results, 20);
        assert!(outcome.into_result().is_ok());
    }

    #[tokio::test]
    async fn bad_lines_are_reported_unsent_and_the_batch_goes_on() {
        let sent = RefCell::new(Vec::new());
        let lines = [
            ORDER,
            "",
            "{not json",
            r#"{"items":[],"coupon":"X"}"#,
            "   ",
            ORDER,
            "\u{1}\u{ff}",
        ];
        let (results, outcome) = batch(&lines, 8, |line, _| {
            sent.borrow_mut().push(line);
            ready(if line == 6 {
                Err(api(402, "card_declined"))
            } else {
                Ok(order(line))
            })
        })
        .await;
        assert_eq!(*sent.borrow(), [1, 6], "only orders are sent");
        let summary: Vec<(u64, bool, Option<&str>)> = results
            .iter()
            .map(|r| {
                (
                    r["line"].as_u64().expect("line"),
                    r["ok"] == true,
                    r["error"]["code"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, true, None),
                (3, false, Some("invalid_json")),
                (4, false, Some("invalid_order")),
                (6, false, Some("card_declined")),
                (7, false, Some("invalid_json")),
            ],
            "blank lines have no result, line numbers count them"
        );
        assert!(results[1].get("status").is_none(), "never sent: no status");
        assert_eq!(results[3]["status"], 402);
        assert_eq!(results[3]["error"]["details"]["order_number"], "ORD-000002");
        assert_eq!(results[3]["error"]["request_id"], "req-1");
        assert!(results[0].get("error").is_none());

        let err = outcome.into_result().expect_err("lines failed");
        assert_eq!(
            err.exit_code(),
            1,
            "the first failure, line 3, was bad input"
        );
        assert!(
            err.to_string()
                .starts_with("4 of 5 orders failed; the first, line 3: not valid JSON"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_exit_code_is_the_first_failed_lines_in_input_order() {
        let lines = [ORDER, ORDER, ORDER, ORDER];
        // Line 3 (409) fails first in time, line 2 (402) first in the input.
        let (_, outcome) = batch(&lines, 4, |line, _| async move {
            match line {
                2 => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Err(api(402, "card_declined"))
                }
                3 => Err(api(409, "insufficient_stock")),
                _ => Ok(order(line)),
            }
        })
        .await;
        assert_eq!(outcome.failed, 2);
        let err = outcome.into_result().expect_err("failed");
        assert_eq!(err.exit_code(), 7);
        assert!(
            err.to_string()
                .starts_with("2 of 4 orders failed; the first, line 2: card_declined"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_stops_the_batch_after_the_lines_in_flight() {
        let sent = RefCell::new(Vec::new());
        let lines = vec![ORDER; 50];
        let (results, outcome) = batch(&lines, 3, |line, _| {
            sent.borrow_mut().push(line);
            async move {
                if line >= 5 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Err(CliError::Unreachable {
                        url: "http://127.0.0.1:9".into(),
                        reason: "Connection refused".into(),
                    })
                } else {
                    Ok(order(line))
                }
            }
        })
        .await;
        let sent = sent.into_inner();
        assert!(sent.len() < 10, "stopped early: {sent:?}");
        assert_eq!(results.len(), sent.len(), "every sent line has its result");
        assert_eq!(results[4]["error"]["code"], "unreachable");
        let last = *sent.last().expect("some sent");
        assert_eq!(outcome.stopped_after, Some(last));
        let err = outcome.into_result().expect_err("failed");
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.to_string()
                .contains(&format!("lines after {last} were not sent")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_closed_stdout_ends_the_batch_with_its_error() {
        let calls = Cell::new(0);
        let outcome = run_batch(
            input(&[ORDER, ORDER]),
            1,
            |line, _| {
                calls.set(calls.get() + 1);
                ready(Ok(order(line)))
            },
            |_| {
                Err(CliError::Io(std::io::Error::from(
                    std::io::ErrorKind::BrokenPipe,
                )))
            },
        )
        .await;
        assert!(outcome.expect_err("write failed").is_broken_pipe());
    }

    #[tokio::test]
    async fn an_empty_input_is_success() {
        let (results, outcome) = batch(&["", "  "], 8, |line, _| {
            ready(Ok::<_, CliError>(order(line)))
        })
        .await;
        assert!(results.is_empty());
        assert!(outcome.into_result().is_ok());
    }

    #[test]
    fn results_print_as_ndjson_lines_and_ids() {
        let results = [
            Done::success(1, order(1)).result,
            Done::failed(2, api(409, "insufficient_stock")).result,
        ];
        let ndjson = Output::render_for_test(Format::Ndjson, |o| {
            results.iter().try_for_each(|r| o.stream(r))
        });
        let lines: Vec<Value> = ndjson
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines[0]["ok"], true);
        assert_eq!(lines[1]["status"], 409);
        let ids = Output::render_for_test(Format::Id, |o| o.stream(&results[0]));
        assert_eq!(ids, "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY\n");
    }
}
