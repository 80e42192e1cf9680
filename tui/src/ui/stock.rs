//! Stock: the lowest available SKUs first with low stock marked, active
//! reservations, and (when there is room) the recent movements and a
//! sparkline of how much stock is moving.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use super::{Theme, clock, placeholder, put, rows, spark};
use crate::app::{App, Area, Load};

/// Draws the area; returns how many SKU rows it had room for.
pub fn draw(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme, wide: bool) -> usize {
    match app.stock.load {
        Load::Waiting => {
            placeholder(buf, rect, "loading…", theme);
            return 0;
        }
        Load::Missing => {
            placeholder(buf, rect, "no data yet (no inventory API)", theme);
            return 0;
        }
        Load::Ready => {}
    }
    let mut lines = rows(rect);
    let Some(summary) = lines.next() else {
        return 0;
    };
    let low = app.stock.items.iter().filter(|s| s.is_low()).count();
    let reservations = app
        .stock
        .active_reservations
        .map_or_else(|| "?".to_owned(), |n| n.to_string());
    // Past the cap the list is the lowest SKUs only, and says so.
    let skus = if (app.stock.items.len() as u64) < app.stock.total {
        format!(
            "lowest {} of {} SKUs",
            app.stock.items.len(),
            app.stock.total
        )
    } else {
        format!("{} SKUs", app.stock.total)
    };
    let text = format!("{skus} · {low} low · {reservations} reserved");
    let low_style = if low > 0 {
        theme.low_stock()
    } else {
        theme.plain()
    };
    buf.set_line(
        summary.x,
        summary.y,
        &Line::from(vec![Span::styled(text.clone(), low_style)]),
        summary.width,
    );
    if wide {
        let label = "moves/10s ";
        let used = text.chars().count() as u16 + 2;
        let labelled = used + label.len() as u16;
        if summary.width > labelled + 10 {
            let at = Rect {
                x: summary.x + used,
                width: label.len() as u16,
                ..summary
            };
            put(buf, at, label, theme.muted());
            let chart = Rect {
                x: summary.x + labelled,
                width: summary.width - labelled,
                ..summary
            };
            let values = app.stock.activity.values(app.now, chart.width as usize);
            spark(buf, chart, &values, theme);
        }
    }
    let rest = Rect {
        y: rect.y + 1,
        height: rect.height.saturating_sub(1),
        ..rect
    };
    let (list, side) = if wide && rest.width >= 90 {
        let [list, side] =
            Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(rest);
        (list, Some(side))
    } else if wide && rest.height >= 14 {
        let [list, side] = Layout::vertical([Constraint::Fill(3), Constraint::Fill(2)]).areas(rest);
        (list, Some(side))
    } else {
        (rest, None)
    };
    if let Some(side) = side {
        draw_movements(buf, side, app, theme);
    }
    draw_list(buf, list, app, theme, wide)
}

fn draw_list(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme, wide: bool) -> usize {
    let mut lines = rows(rect);
    let Some(top) = lines.next() else {
        return 0;
    };
    let heading = if wide {
        format!(
            "  {:<20} {:>9} {:>8} {:>9} {:>6}",
            "sku", "available", "on hand", "reserved", "low at"
        )
    } else {
        format!("  {:<14} {:>6} {:>6} {:>6}", "sku", "avail", "hand", "rsvd")
    };
    put(buf, top, &heading, theme.heading());
    let mut any = false;
    let first = app.scroll(Area::Stock);
    let selected = (app.focus == Area::Stock).then(|| app.selected(Area::Stock));
    for (at, (row, stock)) in lines.zip(app.stock_rows().skip(first)).enumerate() {
        any = true;
        if selected == Some(first + at) {
            buf.set_style(row, theme.selected());
        }
        let low = stock.is_low();
        let mark = if low { "! " } else { "  " };
        let text = if wide {
            format!(
                "{mark}{:<20} {:>9} {:>8} {:>9} {:>6}",
                cut(&stock.sku, 20),
                stock.available,
                stock.on_hand,
                stock.reserved,
                stock.low_stock_threshold
            )
        } else {
            format!(
                "{mark}{:<14} {:>6} {:>6} {:>6}",
                cut(&stock.sku, 14),
                stock.available,
                stock.on_hand,
                stock.reserved
            )
        };
        put(
            buf,
            row,
            &text,
            if low {
                theme.low_stock()
            } else {
                theme.plain()
            },
        );
    }
    if !any {
        let empty = Rect {
            y: rect.y + 1,
            height: rect.height.saturating_sub(1),
            ..rect
        };
        placeholder(buf, empty, "no SKUs", theme);
    }
    rect.height.saturating_sub(1) as usize
}

fn draw_movements(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme) {
    let mut lines = rows(rect);
    let Some(top) = lines.next() else {
        return;
    };
    put(buf, top, " recent movements", theme.heading());
    if app.stock.movements.is_empty() {
        if let Some(row) = lines.next() {
            put(buf, row, " none since the dashboard started", theme.muted());
        }
        return;
    }
    for (row, movement) in lines.zip(app.stock.movements.newest()) {
        // On hand as the CLI's ledger writes it (`25 → 24 (-1)`: a sale is
        // negative); a reservation only moves units between available and
        // reserved, so it says how many and what is left available.
        let quantity = match (
            movement.on_hand,
            movement.on_hand_delta,
            movement.reserved_units,
        ) {
            (Some(after), Some(delta), _) if delta != 0 => {
                format!(" on hand {} → {after} ({delta:+})", after - delta)
            }
            (_, _, Some(1)) => " 1 unit".to_owned(),
            (_, _, Some(units)) => format!(" {units} units"),
            _ => String::new(),
        };
        let available = movement
            .available
            .map_or_else(String::new, |a| format!(", {a} available"));
        let reason = movement
            .reason
            .as_ref()
            .map_or_else(String::new, |r| format!(" ({r})"));
        let line = Line::from(vec![
            Span::styled(format!(" {} ", clock(movement.at)), theme.muted()),
            Span::raw(format!(
                "{} {}{quantity}{available}{reason}",
                movement.sku, movement.what
            )),
        ]);
        buf.set_line(row.x, row.y, &line, row.width);
    }
}

/// At most `width` characters, with an ellipsis when cut.
pub fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}
