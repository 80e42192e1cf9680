//! `shop search`: ranked product search with filters, autocomplete
//! suggestions, and search analytics (staff).
//!
//! `shop search QUERY` prints rank, score, SKU, name, price and stock; the
//! facets and the total are in the JSON document (`-o json`). Prices are
//! decimals, like `shop product list`'s.

use serde::Serialize;
use shop_wire::money::Currency;
use shop_wire::search::{QueryCount, SearchAnalytics, SearchHit, SearchResponse, Suggestions};

use super::product::{Amount, parse_category, parse_price, price_text};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "\
Typos are forgiven (one in words of 5+ letters, two from 9), accents and case ignored;
the last word also matches as a prefix. An empty query browses, most popular first.
Several words are one query. To search for a first word `suggest` or `analytics`, write
`shop search -- suggest` (later words are always the query: `shop search oak suggest`).
Examples: shop search oak chair --max-price 200
          shop search chiar --category furniture -o json | jq .facets
          shop search suggest din"
)]
pub struct SearchArgs {
    #[command(subcommand)]
    command: Option<SearchCommand>,
    /// What to look for: every word, quoted or not (`shop search oak chair`).
    #[arg(required = true, num_args = 1.., value_name = "WORDS")]
    query: Vec<String>,
    /// Only this category and those below it, like furniture or furniture/chairs.
    #[arg(long, value_parser = parse_category)]
    category: Option<String>,
    /// Lowest price, a decimal like 19.99.
    #[arg(long, value_name = "AMOUNT", value_parser = parse_price)]
    min_price: Option<Amount>,
    /// Highest price, a decimal like 19.99.
    #[arg(long, value_name = "AMOUNT", value_parser = parse_price)]
    max_price: Option<Amount>,
    /// Only products with stock available.
    #[arg(long)]
    in_stock: bool,
    /// Results per page.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    /// Results to skip.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    offset: u64,
}

#[derive(Debug, clap::Subcommand)]
pub enum SearchCommand {
    /// Complete what has been typed, from product names and past searches, most popular first.
    #[command(after_help = "Example: shop search suggest 'oak d'")]
    Suggest {
        /// The beginning of a query.
        prefix: String,
        /// How many suggestions.
        #[arg(long, default_value_t = 10, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u32).range(1..=20))]
        limit: u32,
    },
    /// Top queries, queries that found nothing, and search volume (staff).
    #[command(after_help = "Example: shop search analytics --hours 168 -o json")]
    Analytics {
        /// The window, in hours back from now.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=8784))]
        hours: u32,
        /// Entries per list.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
    },
}

impl Tabular for SearchHit {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("#", "rank").kind(CellKind::Id),
            Column::new("score", "score").kind(CellKind::Id),
            Column::new("sku", "product.sku").kind(CellKind::Id),
            Column::new("name", "product.name"),
            Column::new("price", "price").kind(CellKind::Id),
            Column::new("stock", "available").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.product.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "price",
                price_text(self.product.price_cents, self.product.currency),
            ),
            ("score", format!("{:.2}", self.score)),
        ]
    }
}

/// One suggestion, as a record of its own for tables, NDJSON and CSV.
#[derive(Debug, Serialize)]
struct Suggestion {
    suggestion: String,
}

impl Tabular for Suggestion {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[Column::new("suggestion", "suggestion")];
        COLUMNS
    }

    fn id(&self) -> String {
        self.suggestion.clone()
    }
}

impl Tabular for QueryCount {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("query", "query"),
            Column::new("searches", "count"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.query.clone()
    }
}

impl Tabular for SearchAnalytics {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("since", "since").kind(CellKind::Time),
            Column::new("searches", "total_queries"),
            Column::new("zero results", "zero_result_total"),
            Column::new("cache hits", "cache_hits"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.since.to_string()
    }
}

/// The analytics' figures without their lists, which get tables of their own.
#[derive(Debug, Serialize)]
struct Totals {
    since: String,
    searches: u64,
    zero_results: u64,
    cache_hits: u64,
    avg_latency_ms: String,
}

impl Tabular for Totals {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("since", "since"),
            Column::new("searches", "searches"),
            Column::new("zero results", "zero_results"),
            Column::new("cache hits", "cache_hits"),
            Column::new("avg latency ms", "avg_latency_ms"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.since.clone()
    }
}

impl SearchArgs {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = match self.command {
            Some(SearchCommand::Analytics { .. }) => context.client().await?,
            _ => context.client_or_anonymous().await?,
        };
        let mut output = context.output();
        match self.command {
            Some(SearchCommand::Suggest { prefix, limit }) => {
                let answer: Suggestions = client
                    .get("/api/search/suggest")
                    .query("prefix", prefix)
                    .query("limit", limit.to_string())
                    .send()
                    .await?;
                let rows: Vec<Suggestion> = answer
                    .suggestions
                    .iter()
                    .map(|s| Suggestion {
                        suggestion: s.clone(),
                    })
                    .collect();
                output.list(&answer, &rows)
            }
            Some(SearchCommand::Analytics { hours, limit }) => {
                let analytics: SearchAnalytics = client
                    .get("/api/search/analytics")
                    .query("hours", hours.to_string())
                    .query("limit", limit.to_string())
                    .send()
                    .await?;
                if output.format() != Format::Table {
                    return output.one(&analytics);
                }
                output.one(&Totals {
                    since: analytics
                        .since
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    searches: analytics.total_queries,
                    zero_results: analytics.zero_result_total,
                    cache_hits: analytics.cache_hits,
                    avg_latency_ms: format!("{:.2}", analytics.avg_latency_ms),
                })?;
                for (title, list) in [
                    ("top queries", &analytics.top_queries),
                    ("queries that found nothing", &analytics.zero_result_queries),
                ] {
                    eprintln!("{title}:");
                    if list.is_empty() {
                        eprintln!("  (none)");
                    }
                    output.list(list, list)?;
                }
                Ok(())
            }
            None => {
                let cents = |amount: &Option<Amount>, flag: &str| {
                    amount
                        .as_ref()
                        .map(|a| a.minor_units(Currency::USD, flag))
                        .transpose()
                };
                let page: SearchResponse = client
                    .get("/api/search")
                    .query("q", self.query.join(" "))
                    .query_opt("category", self.category.as_deref())
                    .query_opt("min_price", cents(&self.min_price, "--min-price")?)
                    .query_opt("max_price", cents(&self.max_price, "--max-price")?)
                    .query_opt("in_stock", self.in_stock.then_some("true"))
                    .query("limit", self.limit.to_string())
                    .query("offset", self.offset.to_string())
                    .send()
                    .await?;
                output.list(&page, &page.items)?;
                let shown = page.offset + page.items.len() as u64;
                if output.format() == Format::Table {
                    if page.items.is_empty() {
                        eprintln!("no products match `{}`", page.query);
                    } else if shown < page.total {
                        eprintln!(
                            "{} of {} results; see more with --offset {shown}",
                            page.items.len(),
                            page.total
                        );
                    }
                }
                Ok(())
            }
        }
    }
}
