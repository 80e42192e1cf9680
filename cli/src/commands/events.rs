//! `shop events`: the event log (a table on a terminal, NDJSON when piped),
//! then with --follow new events live, one NDJSON line each.

use futures::StreamExt;
use shop_wire::{Event, Page};

use crate::client::{ApiClient, FollowItem};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

/// The server's largest page of the event log.
const PAGE: u32 = 1000;

/// The closing help text is [`after_help`], set where the command tree is tuned.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// After the log, keep printing new events as they happen (Ctrl-C stops).
    #[arg(short, long)]
    follow: bool,

    /// Only these event types: a name (`order.paid`) or a prefix ending in `*` (`order.*`, `*` for all); repeat or separate with commas.
    #[arg(short = 't', long = "type", value_name = "PATTERN", value_delimiter = ',',
          value_parser = parse_type_pattern)]
    types: Vec<String>,

    /// Start after this event id [default: the start of the log].
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "tail",
        allow_negative_numbers = true
    )]
    after: Option<u64>,

    /// Only the last N events of the log (0: none, with --follow only new ones).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    tail: Option<u64>,
}

impl Tabular for Event {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("type", "type").kind(CellKind::Id),
            Column::new("occurred", "occurred_at").kind(CellKind::Time),
            Column::new("data", "data"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// The help's closing text: how the output looks, every event type, examples.
pub fn after_help() -> String {
    let mut names: Vec<&str> = shop_wire::events::EventKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    names.sort_unstable();
    let mut types = String::new();
    let mut line = String::from(" ");
    for name in names {
        if line.len() + name.len() + 1 > 90 {
            types.push_str(&line);
            types.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(name);
    }
    types.push_str(&line);
    format!(
        "\
On a terminal the log is a table; piped, or with --follow (a table cannot be aligned
before a stream ends), each event is one NDJSON line `{{id,type,occurred_at,data}}`.
-o json|ndjson|csv|id choose for yourself.

Event types (--type takes these, or a prefix with `*`):
{types}

Examples:
  shop events --type 'order.*' | jq .data      # what happened to orders so far
  shop events --tail 0 --follow                 # only new events, as they happen
  shop events --after 1200 --follow --type user.registered,order.paid"
    )
}

fn parse_type_pattern(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('*').unwrap_or(text);
    let valid = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
        && (!name.is_empty() || text.ends_with('*'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an event type pattern (like `order.paid` or `order.*`)"
        ))
    }
}

impl EventsArgs {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let types = (!self.types.is_empty()).then(|| self.types.join(","));
        if !self.follow && output.format() == Format::Table {
            // A table that ends can be aligned: collect the log, then print it.
            let mut events = Vec::new();
            self.read_log(&client, types.as_deref(), |event| {
                events.push(event.clone());
                Ok(())
            })
            .await?;
            return output.list(&events, &events);
        }
        let last = self
            .read_log(&client, types.as_deref(), |event| output.stream(event))
            .await?;
        if !self.follow {
            return Ok(());
        }
        let mut events = std::pin::pin!(client.follow_events(last, types));
        while let Some(item) = events.next().await {
            match item? {
                FollowItem::Event(event) => output.stream(&event)?,
                FollowItem::Reconnecting { reason, delay } => eprintln!(
                    "shop: the event stream dropped ({reason}); reconnecting in {:.1} s",
                    delay.as_secs_f64()
                ),
                FollowItem::Resumed => eprintln!("shop: the event stream is back"),
            }
        }
        Ok(())
    }

    /// Reads the log (all of it, after --after, or its last --tail events)
    /// and returns the id to follow from: the last event read or skipped.
    async fn read_log(
        &self,
        client: &ApiClient,
        types: Option<&str>,
        mut each: impl FnMut(&Event) -> Result<(), CliError>,
    ) -> Result<u64, CliError> {
        let after = self.after.unwrap_or(0);
        let fetch = |offset: u64, limit: u32| async move {
            client
                .get("/api/events/log")
                .query("after", after.to_string())
                .query_opt("type", types)
                .query("limit", limit.to_string())
                .query("offset", offset.to_string())
                .send::<Page<Event>>()
                .await
        };
        let mut offset = match self.tail {
            Some(tail) => fetch(0, 1).await?.total.saturating_sub(tail),
            None => 0,
        };
        // The newest event before the first one printed: where a follow starts
        // when the log has nothing to print (e.g. --tail 0).
        let mut last = match offset {
            0 => after,
            skipped => fetch(skipped - 1, 1)
                .await?
                .items
                .last()
                .map_or(after, |event| event.id),
        };
        loop {
            let page = fetch(offset, PAGE).await?;
            for event in &page.items {
                each(event)?;
                last = event.id;
            }
            offset += page.items.len() as u64;
            if page.items.len() < PAGE as usize {
                return Ok(last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_help_says_how_it_prints_and_lists_every_type() {
        let help = super::after_help();
        assert!(
            help.contains("table") && help.contains("--follow"),
            "{help}"
        );
        for kind in shop_wire::events::EventKind::ALL {
            assert!(
                help.contains(kind.as_str()),
                "{} missing: {help}",
                kind.as_str()
            );
        }
    }

    use super::*;

    #[test]
    fn type_patterns_are_checked() {
        for good in ["order.paid", "order.*", "*", "user.registered"] {
            assert!(parse_type_pattern(good).is_ok(), "{good}");
        }
        for bad in ["", "Order.paid", "order paid", "or*der", "order.paid;drop"] {
            assert!(parse_type_pattern(bad).is_err(), "{bad}");
        }
    }
}
