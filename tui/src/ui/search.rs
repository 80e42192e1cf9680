//! Search: the live query stream, the top and zero-result queries, the
//! cache hit ratio, and (when there is room) query volume as a sparkline.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use super::stock::cut;
use super::{Theme, clock, placeholder, put, rows, spark};
use crate::app::{App, Area};

/// Draws the area; returns how many stream rows it had room for.
pub fn draw(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme, wide: bool) -> usize {
    let search = &app.search;
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
            &search.volume.values(app.now, chart.width as usize),
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
        draw_stream(buf, stream, app, theme, true);
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
        draw_stream(buf, stream, app, theme, false);
        stream.height as usize
    }
}

fn draw_stream(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme, wide: bool) {
    let query_width = if wide { 20 } else { 14 };
    for (row, query) in rows(rect).zip(app.query_rows().skip(app.scroll(Area::Search))) {
        let results = query
            .results
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        let latency = query
            .latency_ms
            .map_or_else(String::new, |ms| format!(" {ms:.0}ms"));
        let cache = match query.cache_hit {
            Some(true) if wide => " cached",
            _ => "",
        };
        let results_style = if query.results == Some(0) {
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
