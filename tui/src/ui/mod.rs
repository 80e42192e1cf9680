//! Drawing the frame around the areas: the grid (or the zoomed area), the
//! header, the banner, the status line, help and what is open on top; each
//! area draws its own inside (see [`crate::area`]), and the helpers they
//! share live here. Nothing here changes state or does I/O; [`draw`]
//! returns where each area landed so the loop can tell which list the
//! mouse wheel is over.
//!
//! Each area picks its layout from the room it gets, not from the terminal
//! size: below [`WIDE`] columns it drops sparklines and secondary columns, so
//! the 2x2 grid at 80x24 stays readable and a zoomed area shows everything.

mod overlay;
pub mod theme;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Sparkline};
use time::OffsetDateTime;

use crate::app::{App, Area, Server};
use crate::area::View;
use crate::interact::{COMMANDS, Overlay};
use crate::keymap::HELP;
pub use theme::Theme;

/// Inner width from which an area shows its full layout.
pub const WIDE: u16 = 58;

/// Where the areas were drawn, in [`Area::ALL`] order; empty for hidden ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drawn {
    pub areas: [Rect; Area::COUNT],
    /// How many rows of each area's list were on screen.
    pub list_rows: [usize; Area::COUNT],
}

impl Drawn {
    /// The area under a screen position.
    pub fn hit(&self, column: u16, row: u16) -> Option<Area> {
        let position = ratatui::layout::Position::new(column, row);
        Area::ALL
            .into_iter()
            .find(|area| self.areas[area.index()].contains(position))
    }
}

pub fn draw(frame: &mut Frame, app: &App, theme: Theme) -> Drawn {
    let full = frame.area();
    let banner = u16::from(app.is_down());
    let [header, alarm, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(full);

    let mut drawn = Drawn::default();
    if app.zoomed {
        drawn.areas[app.focus.index()] = body;
    } else {
        let [top, bottom] =
            Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(body);
        let halves =
            |row| Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(row);
        let [a, b]: [Rect; 2] = halves(top);
        let [c, d]: [Rect; 2] = halves(bottom);
        for (area, rect) in Area::GRID.into_iter().zip([a, b, c, d]) {
            drawn.areas[area.index()] = rect;
        }
    }
    let buf = frame.buffer_mut();
    for area in Area::ALL {
        let rect = drawn.areas[area.index()];
        if rect.area() > 0 {
            drawn.list_rows[area.index()] = draw_area(buf, rect, app, area, theme);
        }
    }
    if app.is_down() {
        // The last data stays readable, but plainly not live.
        buf.set_style(body, theme.stale());
    }
    draw_header(buf, header, app, theme);
    draw_banner(buf, alarm, app, theme);
    draw_status(buf, status, app, theme);
    if let Some(open) = &app.overlay {
        overlay::draw(buf, body, app, open, theme);
    }
    if app.help {
        draw_help(buf, body, theme);
    }
    drawn
}

fn draw_area(buf: &mut Buffer, rect: Rect, app: &App, area: Area, theme: Theme) -> usize {
    let focused = app.focus == area;
    let filter = app.filter(area);
    let mut title = vec![Span::styled(format!(" {} ", area.title()), theme.heading())];
    if !filter.is_empty() || (focused && app.filtering) {
        title.push(Span::styled(format!("/{filter} "), theme.warn()));
    }
    let block = Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(theme.border(focused))
        .title(Line::from(title));
    let inner = block.inner(rect);
    ratatui::widgets::Widget::render(block, rect, buf);
    let view = View {
        now: app.now,
        focused,
        zoomed: app.zoomed,
        wide: inner.width >= WIDE,
    };
    app.panel(area).draw(buf, inner, &view, theme)
}

fn draw_header(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme) {
    buf.set_style(rect, theme.header());
    let host = app
        .url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let mut left = format!(" shop dashboard · {host}");
    if let Some(version) = &app.version {
        left.push_str(&format!(" · v{version}"));
    }
    if let Some(uptime) = app.uptime_seconds {
        left.push_str(&format!(" · up {}", duration(uptime)));
    }
    let state = match &app.server {
        Server::Connecting => "connecting",
        Server::Up => "● live",
        Server::Down { .. } => "✖ unreachable",
    };
    let right = format!("{state}  {} UTC ", clock(app.now));
    let width = right.chars().count() as u16;
    let room = if rect.width > width + 20 {
        let at = Rect {
            x: rect.right() - width,
            width,
            ..rect
        };
        put(buf, at, &right, theme.header());
        rect.width - width - 1
    } else {
        rect.width
    };
    put(
        buf,
        Rect {
            width: room,
            ..rect
        },
        &left,
        theme.header(),
    );
}

fn draw_banner(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme) {
    let Server::Down { reason, since } = &app.server else {
        return;
    };
    buf.set_style(rect, theme.alarm());
    let age = (app.now - *since).whole_seconds().max(0) as u64;
    // Greyed data is only worth mentioning when there is some.
    let greyed = if app.has_data() {
        "; last data greyed"
    } else {
        "; no data yet"
    };
    let text = format!(
        " ✖ server unreachable for {}, reconnecting{greyed} · {reason} ",
        duration(age)
    );
    put(buf, rect, &text, theme.alarm());
}

fn draw_status(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme) {
    if let Some(Overlay::CommandLine(line)) = &app.overlay {
        let text = format!(":{line}▏  Enter runs it, Esc drops it · {COMMANDS}");
        put(buf, rect, &text, theme.warn());
        return;
    }
    if app.filtering {
        let text = format!(
            " filter {}: {}▏  Enter keeps it, Esc clears it",
            app.focus.title().to_lowercase(),
            app.filter(app.focus)
        );
        put(buf, rect, &text, theme.warn());
        return;
    }
    // Key hints keep their place at the right; the news gets what is left.
    let hints = if rect.width >= 120 {
        "Tab area · Enter zoom · / filter · : command · ? help · q quit "
    } else {
        "? help · q quit "
    };
    let hints_width = hints.chars().count() as u16;
    let room = rect.width.saturating_sub(hints_width + 1);
    // What the user just did, or what went wrong, comes before the news:
    // on a narrow terminal the end of the line is what gets cut.
    let mut spans = Vec::new();
    if app.readonly {
        spans.push(Span::styled(" read-only ", theme.warn()));
    }
    if let Some(notice) = app.current_notice() {
        spans.push(Span::styled(format!(" ✔ {notice} ·"), theme.good()));
    }
    if let Some(problem) = app.current_problem() {
        spans.push(Span::styled(format!(" {problem} ·"), theme.warn()));
    }
    match &app.last_event {
        Some(last) => spans.push(Span::raw(format!(
            " events {} · last {} {} {} ",
            app.events_seen,
            clock(last.at),
            last.kind,
            last.summary
        ))),
        None => spans.push(Span::raw(" no events yet ")),
    }
    buf.set_line(rect.x, rect.y, &Line::from(spans), room);
    if rect.width > hints_width {
        let at = Rect {
            x: rect.right() - hints_width,
            width: hints_width,
            ..rect
        };
        put(buf, at, hints, theme.muted());
    }
}

fn draw_help(buf: &mut Buffer, body: Rect, theme: Theme) {
    let width = 70.min(body.width);
    let height = (HELP.len() as u16 + 4).min(body.height);
    let rect = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + (body.height - height) / 2,
        width,
        height,
    };
    ratatui::widgets::Widget::render(Clear, rect, buf);
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(key, meaning)| {
            Line::from(vec![
                Span::styled(format!(" {key:<18} "), theme.heading()),
                Span::raw(*meaning),
            ])
        })
        .collect();
    lines.push(Line::styled(" ? or Esc closes this help", theme.muted()));
    let help = Paragraph::new(lines).block(
        Block::bordered()
            .border_type(BorderType::Double)
            .title(" Keys "),
    );
    ratatui::widgets::Widget::render(help, rect, buf);
}

/// Writes text into a one-line rect, cut to its width.
pub(crate) fn put(buf: &mut Buffer, rect: Rect, text: &str, style: Style) {
    if rect.height > 0 {
        buf.set_stringn(rect.x, rect.y, text, rect.width as usize, style);
    }
}

/// Rows of a rect, one rect each, for row-by-row drawing.
pub(crate) fn rows(rect: Rect) -> impl Iterator<Item = Rect> {
    (rect.y..rect.bottom()).map(move |y| Rect {
        y,
        height: 1,
        ..rect
    })
}

/// A one-row sparkline of the last values that fit.
pub(crate) fn spark(buf: &mut Buffer, rect: Rect, values: &[u64], theme: Theme) {
    if rect.width == 0 || rect.height == 0 {
        return;
    }
    let from = values.len().saturating_sub(rect.width as usize);
    let line = Sparkline::default()
        .data(&values[from..])
        .style(theme.spark());
    ratatui::widgets::Widget::render(line, rect, buf);
}

pub fn clock(at: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

/// 59s, 12m05s, 3h02m, 4d07h.
pub fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// Minor units as a decimal in their currency: 1999 USD is `19.99 USD`.
pub fn money(minor: i64, currency: &str) -> String {
    match currency.parse::<shop_wire::money::Currency>() {
        Ok(parsed) => format!(
            "{} {}",
            shop_wire::money::format_amount(minor, parsed),
            parsed.code()
        ),
        Err(_) => format!("{minor} {currency}"),
    }
}

/// A rate with one decimal when small.
pub(crate) fn rate(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A line of muted text in the middle of an empty area.
pub(crate) fn placeholder(buf: &mut Buffer, rect: Rect, text: &str, theme: Theme) {
    if rect.height == 0 {
        return;
    }
    let y = rect.y + rect.height.saturating_sub(1) / 2;
    let width = text.chars().count() as u16;
    let x = rect.x + rect.width.saturating_sub(width) / 2;
    buf.set_stringn(x, y, text, rect.width as usize, theme.muted());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(725), "12m05s");
        assert_eq!(duration(3 * 3600 + 120), "3h02m");
        assert_eq!(duration(4 * 86_400 + 7 * 3600), "4d07h");
    }

    #[test]
    fn money_uses_the_currency_decimals() {
        assert_eq!(money(1999, "USD"), "19.99 USD");
        assert_eq!(money(500, "JPY"), "500 JPY");
        assert_eq!(money(7, "???"), "7 ???");
    }
}
