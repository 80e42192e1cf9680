//! Orders: revenue today with a sparkline, counts by status, and the live
//! feed of new orders and transitions.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::stock::cut;
use super::{Theme, clock, money, placeholder, rows, spark};
use crate::app::{App, Area, Load};

pub fn draw(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme, wide: bool) {
    match app.orders.load {
        Load::Waiting => return placeholder(buf, rect, "waiting for orders…", theme),
        Load::Missing => {
            return placeholder(buf, rect, "no data yet (no orders API)", theme);
        }
        Load::Ready => {}
    }
    let mut lines = rows(rect);
    let Some(revenue_row) = lines.next() else {
        return;
    };
    let revenue = if app.orders.revenue_today.is_empty() {
        "0".to_owned()
    } else {
        app.orders
            .revenue_today
            .iter()
            .map(|(currency, cents)| money(*cents, currency))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let line = Line::from(vec![
        Span::raw("revenue today "),
        Span::styled(revenue.clone(), theme.money()),
    ]);
    buf.set_line(revenue_row.x, revenue_row.y, &line, revenue_row.width);
    let used = 14 + revenue.chars().count() as u16 + 2;
    if revenue_row.width > used + 8 {
        let chart = Rect {
            x: revenue_row.x + used,
            width: revenue_row.width - used,
            ..revenue_row
        };
        let values = app.orders.revenue.values(app.now, chart.width as usize);
        spark(buf, chart, &values, theme);
    }
    let Some(counts_row) = lines.next() else {
        return;
    };
    let mut counts = Vec::new();
    for (status, count) in app.order_counts() {
        let name = if wide { status } else { short(status) };
        counts.push(Span::styled(format!("{name} "), theme.muted()));
        counts.push(Span::styled(format!("{count}  "), theme.heading()));
    }
    buf.set_line(
        counts_row.x,
        counts_row.y,
        &Line::from(counts),
        counts_row.width,
    );
    let mut any = false;
    for (row, line) in lines.zip(app.feed_rows().skip(app.scroll(Area::Orders))) {
        any = true;
        // Condensed, the currency is left to the revenue line to keep the amount whole.
        let total = line.total_cents.map_or_else(String::new, |t| {
            let amount = money(t, &line.currency);
            if wide {
                amount
            } else {
                amount.split(' ').next().unwrap_or_default().to_owned()
            }
        });
        let status_style = match line.status.as_str() {
            "cancelled" | "refunded" => theme.bad(),
            "paid" | "delivered" => theme.good(),
            _ => theme.plain(),
        };
        let (number_width, total_width) = if wide { (16, 14) } else { (7, 10) };
        let spans = vec![
            Span::styled(format!("{} ", clock(line.at)), theme.muted()),
            Span::raw(format!(
                "{:<number_width$} ",
                cut(&line.number, number_width)
            )),
            Span::styled(format!("{:<9} ", line.status), status_style),
            Span::raw(format!("{total:>total_width$}")),
        ];
        buf.set_line(row.x, row.y, &Line::from(spans), row.width);
    }
    if !any && rect.height > 3 {
        let empty = Rect {
            y: rect.y + 2,
            height: rect.height - 2,
            ..rect
        };
        placeholder(buf, empty, "no orders yet", theme);
    }
}

fn short(status: &str) -> &str {
    match status {
        "pending" => "pend",
        "shipped" => "ship",
        "delivered" => "dlvd",
        "cancelled" => "cncl",
        other => other,
    }
}
