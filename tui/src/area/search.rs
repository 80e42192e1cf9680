//! Search: the live query stream, the top and zero-result queries, the
//! cache hit ratio, and (when there is room) query volume as a sparkline.

use std::collections::HashMap;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use shop_wire::events::{EventData, SearchQueryEvent};
use shop_wire::search::{QueryCount, SearchAnalytics, SearchResponse};
use time::OffsetDateTime;

use super::{ListState, Panel, View, matches};
use crate::app::FEED_CAP;
use crate::ring::{Ring, Series};
use crate::ui::{Theme, clock, cut, money, placeholder, put, rows, spark};

/// Distinct queries counted for the top lists; past it the rarest are forgotten.
pub const QUERY_CAP: usize = 5000;

/// One search as a `search.query` event reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLine {
    pub at: OffsetDateTime,
    pub query: String,
    pub results: u64,
    pub latency_ms: f64,
    pub cache_hit: bool,
}

#[derive(Debug, Clone)]
pub struct SearchView {
    pub stream: Ring<QueryLine>,
    counts: HashMap<String, u64>,
    zero_counts: HashMap<String, u64>,
    pub cache_hits: u64,
    /// Queries whose event said whether the cache answered.
    pub cache_known: u64,
    /// Most frequent first, recomputed on tick when stale.
    pub top: Vec<(String, u64)>,
    pub zero: Vec<(String, u64)>,
    /// The top lists came from `GET /api/search/analytics`, not the stream.
    pub from_server: bool,
    stale: bool,
    /// Queries per 10 s.
    pub volume: Series,
    list: ListState,
}

impl Default for SearchView {
    fn default() -> Self {
        SearchView {
            stream: Ring::new(FEED_CAP),
            counts: HashMap::new(),
            zero_counts: HashMap::new(),
            cache_hits: 0,
            cache_known: 0,
            top: Vec::new(),
            zero: Vec::new(),
            from_server: false,
            stale: false,
            volume: Series::new(10),
            list: ListState::default(),
        }
    }
}

impl SearchView {
    fn apply_query(&mut self, at: OffsetDateTime, event: &SearchQueryEvent) {
        self.volume.add(at, 1);
        self.cache_known += 1;
        self.cache_hits += u64::from(event.cache_hit);
        let key = event.query.trim().to_lowercase();
        bump(&mut self.counts, &key);
        if event.result_count == 0 {
            bump(&mut self.zero_counts, &key);
        }
        self.stale = true;
        self.stream.push(QueryLine {
            at,
            query: event.query.clone(),
            results: event.result_count,
            latency_ms: event.latency_ms,
            cache_hit: event.cache_hit,
        });
    }

    /// The server's analytics, when it has them, replace the lists counted
    /// from the stream (they cover more than this dashboard has seen).
    pub fn apply_analytics(&mut self, analytics: &SearchAnalytics) {
        let list = |counts: &[QueryCount]| -> Vec<(String, u64)> {
            counts.iter().map(|c| (c.query.clone(), c.count)).collect()
        };
        self.top = list(&analytics.top_queries);
        self.zero = list(&analytics.zero_result_queries);
        self.from_server = true;
    }

    /// The analytics route answered 404: count from the stream again.
    pub fn apply_missing(&mut self) {
        self.from_server = false;
    }

    /// Recounts the top lists from the stream when it moved on.
    pub fn tick(&mut self) {
        if !self.stale || self.from_server {
            return;
        }
        self.stale = false;
        self.top = ranked(&self.counts);
        self.zero = ranked(&self.zero_counts);
    }

    /// Share of queries the cache answered, when the events said.
    pub fn hit_ratio(&self) -> Option<f64> {
        (self.cache_known > 0).then(|| self.cache_hits as f64 / self.cache_known as f64)
    }

    pub fn total_queries(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The query stream, newest first, after the filter.
    pub fn rows(&self) -> impl Iterator<Item = &QueryLine> {
        let needle = self.list.needle();
        self.stream
            .newest()
            .filter(move |line| matches(&needle, [line.query.as_str()]))
    }
}

impl Panel for SearchView {
    fn list(&self) -> &ListState {
        &self.list
    }

    fn list_mut(&mut self) -> &mut ListState {
        &mut self.list
    }

    fn row_count(&self) -> usize {
        self.rows().count()
    }

    fn draw(&self, buf: &mut Buffer, rect: Rect, view: &View, theme: Theme) -> usize {
        draw(buf, rect, self, view, theme)
    }

    fn event(&mut self, at: OffsetDateTime, data: &EventData) {
        if let EventData::SearchQuery(query) = data {
            self.apply_query(at, query);
        }
    }
}

pub(crate) fn bump(counts: &mut HashMap<String, u64>, key: &str) {
    if let Some(count) = counts.get_mut(key) {
        *count += 1;
        return;
    }
    if counts.len() >= QUERY_CAP {
        // Forget the one-offs; what is popular has a count above one.
        counts.retain(|_, count| *count > 1);
        if counts.len() >= QUERY_CAP {
            return;
        }
    }
    counts.insert(key.to_owned(), 1);
}

/// The ten most frequent, ties by name so the screen does not flicker.
fn ranked(counts: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = counts.iter().map(|(q, c)| (q.clone(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(10);
    all
}

/// A product search's results, for the view `:search` opens.
pub fn results_lines(results: &SearchResponse, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        format!(
            " {:>4}  {:<16} {:<36} {:>14} {:>9}",
            "#", "sku", "name", "price", "available"
        ),
        theme.heading(),
    )];
    lines.extend(results.items.iter().map(|hit| {
        let product = &hit.product;
        Line::raw(format!(
            " {:>4}  {:<16} {:<36} {:>14} {:>9}",
            hit.rank,
            product.sku,
            cut(&product.name, 36),
            money(product.price_cents, product.currency.code()),
            hit.available
        ))
    }));
    lines
}

/// Draws the area; returns how many stream rows it had room for.
fn draw(buf: &mut Buffer, rect: Rect, search: &SearchView, view: &View, theme: Theme) -> usize {
    let wide = view.wide;
    if search.stream.is_empty() && search.top.is_empty() {
        placeholder(buf, rect, "no searches yet", theme);
        return 0;
    }
    let mut lines = rows(rect);
    let Some(summary) = lines.next() else {
        return 0;
    };
    let ratio = search
        .hit_ratio()
        .map_or_else(|| "?".to_owned(), |r| format!("{:.0}%", r * 100.0));
    let text = if wide {
        format!(
            "cache hits {ratio} · {} queries · {} zero-result",
            search.total_queries(),
            search.zero.len()
        )
    } else {
        format!(
            "hits {ratio} · {} queries · {} zero",
            search.total_queries(),
            search.zero.len()
        )
    };
    put(buf, summary, &text, theme.plain());
    let used = text.chars().count() as u16 + 2;
    if wide && summary.width > used + 8 {
        let chart = Rect {
            x: summary.x + used,
            width: summary.width - used,
            ..summary
        };
        spark(
            buf,
            chart,
            &search.volume.values(view.now, chart.width as usize),
            theme,
        );
    }
    let rest = Rect {
        y: rect.y + 1,
        height: rect.height.saturating_sub(1),
        ..rect
    };
    if wide {
        let [stream, side] =
            Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(rest);
        let [top, zero] = Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(side);
        draw_stream(buf, stream, search, theme, true);
        draw_ranking(buf, top, " top queries", &search.top, theme);
        draw_ranking(buf, zero, " zero results", &search.zero, theme);
        stream.height as usize
    } else {
        let mut lines = rows(rest);
        for (label, list) in [("top", &search.top), ("zero", &search.zero)] {
            let Some(row) = lines.next() else {
                return 0;
            };
            let items: Vec<String> = list.iter().map(|(q, n)| format!("{q} {n}")).collect();
            let line = Line::from(vec![
                Span::styled(format!("{label}: "), theme.heading()),
                Span::raw(items.join(", ")),
            ]);
            buf.set_line(row.x, row.y, &line, row.width);
        }
        let stream = Rect {
            y: rest.y + 2,
            height: rest.height.saturating_sub(2),
            ..rest
        };
        draw_stream(buf, stream, search, theme, false);
        stream.height as usize
    }
}

fn draw_stream(buf: &mut Buffer, rect: Rect, search: &SearchView, theme: Theme, wide: bool) {
    let query_width = if wide { 20 } else { 14 };
    let first = search.list.scroll(search.row_count());
    for (row, query) in rows(rect).zip(search.rows().skip(first)) {
        let results = query.results.to_string();
        let latency = format!(" {:.0}ms", query.latency_ms);
        let cache = if query.cache_hit && wide {
            " cached"
        } else {
            ""
        };
        let results_style = if query.results == 0 {
            theme.warn()
        } else {
            theme.plain()
        };
        let line = Line::from(vec![
            Span::styled(format!("{} ", clock(query.at)), theme.muted()),
            Span::raw(format!("{:<query_width$} ", cut(&query.query, query_width))),
            Span::styled(format!("{results:>4}"), results_style),
            Span::styled(format!("{latency}{cache}"), theme.muted()),
        ]);
        buf.set_line(row.x, row.y, &line, row.width);
    }
}

fn draw_ranking(buf: &mut Buffer, rect: Rect, title: &str, list: &[(String, u64)], theme: Theme) {
    let mut lines = rows(rect);
    let Some(top) = lines.next() else {
        return;
    };
    put(buf, top, title, theme.heading());
    for (row, (query, count)) in lines.zip(list) {
        put(buf, row, &format!(" {count:>5}  {query}"), theme.plain());
    }
}

#[cfg(test)]
mod tests {
    use shop_wire::search::QueryCount;

    use super::*;
    use crate::sample;

    fn query(q: &str, results: u64, hit: bool) -> EventData {
        EventData::SearchQuery(SearchQueryEvent {
            query: q.to_owned(),
            normalized: q.to_lowercase(),
            filters: serde_json::Value::Object(Default::default()),
            result_count: results,
            latency_ms: 2.5,
            cache_hit: hit,
        })
    }

    #[test]
    fn searches_feed_top_and_zero_result_lists() {
        let now = sample::noon();
        let mut search = SearchView::default();
        search.event(now, &query("Boots", 4, false));
        search.event(now, &query("boots", 4, true));
        search.event(now, &query("zzz", 0, false));
        search.event(now, &query("hat", 2, false));
        search.tick();
        assert_eq!(search.top[0], ("boots".to_owned(), 2));
        assert_eq!(search.zero, vec![("zzz".to_owned(), 1)]);
        assert_eq!(search.hit_ratio(), Some(1.0 / 4.0));
        let hat = search.rows().next().expect("newest first");
        assert_eq!((hat.query.as_str(), hat.results), ("hat", 2));
        // The server's own analytics win when it has them.
        let analytics = SearchAnalytics {
            since: now,
            total_queries: 90,
            zero_result_total: 0,
            cache_hits: 0,
            avg_latency_ms: 1.0,
            top_queries: vec![QueryCount {
                query: "socks".into(),
                count: 90,
            }],
            zero_result_queries: Vec::new(),
            volume: Vec::new(),
        };
        search.apply_analytics(&analytics);
        search.tick();
        assert_eq!(search.top, vec![("socks".to_owned(), 90)]);
        assert!(search.from_server);
        search.apply_missing();
        search.event(now, &query("boots", 1, false));
        search.tick();
        assert_eq!(search.top[0], ("boots".to_owned(), 3), "counted again");
    }

    #[test]
    fn the_stream_and_the_counts_are_bounded() {
        let now = sample::noon();
        let mut search = SearchView::default();
        for i in 0..(FEED_CAP + 50) {
            search.event(now, &query(&format!("q{i}"), 1, false));
        }
        assert_eq!(search.stream.len(), FEED_CAP);
        let mut counts = HashMap::new();
        for i in 0..(QUERY_CAP + 10) {
            bump(&mut counts, &format!("q{i}"));
        }
        assert!(counts.len() <= QUERY_CAP);
    }
}
