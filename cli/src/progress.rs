//! Progress for long work (imports, exports, fixtures, order batches) on stderr.
//!
//! A bar is drawn only for a person watching: stderr is a terminal and `-q`
//! was not given. Otherwise every bar is `ProgressBar::hidden()`, so the
//! commands update it the same way either way and a pipe or a log never
//! fills with redraw escapes.

use std::io::IsTerminal;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// How often a bar redraws on its own, so the rate and ETA move while a
/// server is slow to take bytes.
const TICK: Duration = Duration::from_millis(120);
/// Bytes read from a file per chunk of an upload.
const CHUNK: usize = 256 * 1024;

/// Whether progress should be shown: stderr is a terminal and `-q` is off.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A bar of bytes sent or received: with a total, how far, how fast and how
/// long to go; without one (stdin, an export), a spinner with the count and rate.
pub fn bytes(show: bool, total: Option<u64>, message: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(len) => ProgressBar::new(len).with_style(style(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )),
        None => ProgressBar::new_spinner().with_style(style(
            "{spinner} {msg} {bytes} {binary_bytes_per_sec} {elapsed}",
        )),
    };
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(TICK);
    bar
}

/// A bar of things done out of a known number (users created).
pub fn count(show: bool, total: u64, message: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total).with_style(style("{msg} [{bar:30}] {pos}/{len}"));
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(TICK);
    bar
}

/// A spinner of things done when their number is not known ahead (orders
/// read from stdin): how many, how fast, and a message that can change.
pub fn items(show: bool, message: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar =
        ProgressBar::new_spinner().with_style(style("{spinner} {pos} {msg} {per_sec} {elapsed}"));
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(TICK);
    bar
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A request body streamed from `reader` in chunks, never held whole in
/// memory, that moves `bar` as each chunk goes out.
pub fn upload_body(
    reader: impl AsyncRead + Send + Unpin + 'static,
    bar: ProgressBar,
) -> reqwest::Body {
    reqwest::Body::wrap_stream(counted_chunks(reader, bar))
}

/// The chunks of `reader`, each counted on `bar` as it is taken. Once the
/// last is taken the bar turns into a spinner saying that the server is
/// still at work (it answers only when it has read the whole body), rather
/// than showing a transfer rate that sinks while nothing is being sent.
fn counted_chunks(
    reader: impl AsyncRead + Send + Unpin + 'static,
    bar: ProgressBar,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    async_stream::stream! {
        let mut chunks = ReaderStream::with_capacity(reader, CHUNK);
        let mut sent = 0;
        while let Some(chunk) = chunks.next().await {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                bar.inc(bytes.len() as u64);
            }
            yield chunk;
        }
        bar.set_style(style("{spinner} {msg} {elapsed}"));
        bar.set_message(format!("sent {}; waiting for the server", HumanBytes(sent)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_hidden_unless_wanted() {
        assert!(bytes(false, Some(10), "importing").is_hidden());
        assert!(bytes(false, None, "exporting").is_hidden());
        assert!(count(false, 3, "users").is_hidden());
        assert!(items(false, "orders").is_hidden());
        assert!(!wanted(true), "-q never shows progress");
    }

    #[tokio::test]
    async fn an_upload_counts_every_byte_then_waits_for_the_server() {
        use futures::TryStreamExt;
        let bar = ProgressBar::hidden();
        let data = vec![7u8; 3 * CHUNK + 5];
        let sent: Vec<u8> = counted_chunks(std::io::Cursor::new(data.clone()), bar.clone())
            .map_ok(|bytes| bytes.to_vec())
            .try_concat()
            .await
            .expect("read");
        assert_eq!(sent, data);
        assert_eq!(bar.position(), data.len() as u64);
        assert!(
            bar.message().contains("waiting for the server"),
            "{}",
            bar.message()
        );
    }
}
