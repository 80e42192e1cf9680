//! Orders: revenue today with a sparkline, counts by status, and the live
//! feed of new orders and transitions.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::stock::cut;
use super::{Theme, clock, money, placeholder, put, rows, spark};
use crate::app::{App, Area, FeedLine, Load, OrderRow};

/// Draws the area; returns how many feed rows it had room for.
pub fn draw(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme, wide: bool) -> usize {
    match app.orders.load {
        Load::Waiting => {
            placeholder(buf, rect, "waiting for orders…", theme);
            return 0;
        }
        Load::Missing => {
            placeholder(buf, rect, "no data yet (no orders API)", theme);
            return 0;
        }
        Load::Ready => {}
    }
    let mut lines = rows(rect);
    let Some(revenue_row) = lines.next() else {
        return 0;
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
        return 0;
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
    let list = Rect {
        y: rect.y + 2,
        height: rect.height.saturating_sub(2),
        ..rect
    };
    let shown: Vec<&FeedLine> = app
        .feed_rows()
        .skip(app.scroll(Area::Orders))
        .take(list.height as usize)
        .collect();
    if shown.is_empty() && list.height > 1 {
        placeholder(buf, list, "no orders yet", theme);
    }
    // The order number identifies the row: it is never cut, and the amount
    // takes what is left.
    let number_width = shown
        .iter()
        .map(|line| line.number.chars().count())
        .max()
        .unwrap_or(0);
    let details = app.zoomed && rect.width >= 110;
    let mut list_rows = rows(list);
    if details {
        let Some(heading) = list_rows.next() else {
            return 0;
        };
        let text = format!(
            "{:<9}{:<number_width$} {:<9} {:>14}  {:<28} {:<30} {:<18} {}",
            "time", "order", "status", "amount", "customer", "items", "payment", "tracking"
        );
        put(buf, heading, &text, theme.heading());
    }
    let first = app.scroll(Area::Orders);
    let selected = (app.focus == Area::Orders).then(|| app.selected(Area::Orders));
    for (at, (row, line)) in list_rows.zip(shown).enumerate() {
        if selected == Some(first + at) {
            buf.set_style(row, theme.selected());
        }
        let amount = line.total_cents.map_or_else(String::new, |t| {
            let amount = money(t, &line.currency);
            if wide {
                amount
            } else {
                // Condensed, the currency is left to the revenue line.
                amount.split(' ').next().unwrap_or_default().to_owned()
            }
        });
        let status_style = match line.status.as_str() {
            "cancelled" | "refunded" => theme.bad(),
            "paid" | "delivered" => theme.good(),
            _ => theme.plain(),
        };
        let at = if wide {
            clock(line.at)
        } else {
            clock(line.at)[..5].to_owned()
        };
        let amount_width = if wide { 14 } else { 10 };
        let mut spans = vec![
            Span::styled(format!("{at} "), theme.muted()),
            Span::styled(format!("{:<number_width$} ", line.number), theme.heading()),
            Span::styled(format!("{:<9} ", line.status), status_style),
            Span::styled(format!("{amount:>amount_width$}"), theme.money()),
        ];
        if details {
            let order = app.order(&line.order_id);
            let field = |get: fn(&OrderRow) -> Option<&String>| {
                order.and_then(get).map_or("-", String::as_str).to_owned()
            };
            let customer = line.customer.as_deref().unwrap_or("-");
            spans.push(Span::raw(format!("  {:<28}", cut(customer, 28))));
            spans.push(Span::raw(format!(
                " {:<30}",
                cut(&field(|o| o.items.as_ref()), 30)
            )));
            spans.push(Span::styled(
                format!(" {:<18}", cut(&field(|o| o.payment.as_ref()), 18)),
                theme.muted(),
            ));
            spans.push(Span::raw(format!(" {}", field(|o| o.tracking.as_ref()))));
        }
        buf.set_line(row.x, row.y, &Line::from(spans), row.width);
    }
    list.height as usize
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
