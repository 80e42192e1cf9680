//! What is drawn on top of the grid: a form, a confirmation, an order's or
//! a notification's details, a SKU's ledger, search results (the areas they belong to write
//! their lines). The `:` line is drawn by the status line instead.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};

use super::Theme;
use crate::actions::Form;
use crate::app::App;
use crate::area::{notifications, search, stock};
use crate::interact::Overlay;

pub fn draw(buf: &mut Buffer, body: Rect, app: &App, overlay: &Overlay, theme: Theme) {
    let (title, lines, footer) = match overlay {
        Overlay::CommandLine(_) => return,
        Overlay::Form(form) => (
            form.title(),
            form_lines(form, theme),
            "Enter next field / confirm · Tab next field · Esc cancel",
        ),
        Overlay::Confirm(command) => (
            "Confirm".to_owned(),
            command
                .describe()
                .into_iter()
                .map(|line| Line::raw(format!(" {line}")))
                .collect(),
            "y do it · n or Esc cancel",
        ),
        Overlay::Order(id) => (
            "Order".to_owned(),
            app.orders.details(id, theme),
            "Esc closes · the order moves on live",
        ),
        Overlay::Ledger { sku, movements } => (
            format!("Ledger of {sku}, newest first"),
            stock::ledger_lines(movements, theme),
            "Esc closes",
        ),
        Overlay::Notification(notification) => (
            format!("Notification {}", notification.id),
            notifications::details_lines(notification, theme),
            "Esc closes · R on its row sends it again",
        ),
        Overlay::Search(results) => (
            format!(
                "Search \"{}\": {} found ({})",
                results.query, results.total, results.matching
            ),
            search::results_lines(results, theme),
            "Esc closes",
        ),
    };
    let width = body.width.min(100);
    // Long lines wrap: the window grows with them, so the footer (what the
    // keys do) is never pushed out of it.
    let inner = width.saturating_sub(2) as usize;
    let rows: usize = lines
        .iter()
        .map(|line| {
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            wrapped_rows(&text, inner)
        })
        .sum();
    let height = (rows as u16).saturating_add(4).min(body.height);
    let rect = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + (body.height - height) / 2,
        width,
        height,
    };
    Clear.render(rect, buf);
    let mut lines = lines;
    lines.push(Line::raw(""));
    lines.push(Line::styled(format!(" {footer}"), theme.muted()));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(Span::styled(format!(" {title} "), theme.heading())),
        )
        .render(rect, buf);
}

fn form_lines(form: &Form, theme: Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = form
        .labels()
        .iter()
        .zip(&form.values)
        .enumerate()
        .map(|(at, (label, value))| {
            let typing = at == form.at;
            Line::from(vec![
                Span::styled(
                    format!(" {label}: "),
                    if typing {
                        theme.heading()
                    } else {
                        theme.muted()
                    },
                ),
                Span::raw(format!("{value}{}", if typing { "▏" } else { "" })),
            ])
        })
        .collect();
    if let Some(error) = &form.error {
        lines.push(Line::styled(format!(" {error}"), theme.bad()));
    }
    lines
}

/// Rows a line takes when wrapped at spaces to `width`, as the paragraph's
/// wrapping does: a word that does not fit starts a new row, and a word
/// longer than a row is broken.
fn wrapped_rows(text: &str, width: usize) -> usize {
    if width == 0 {
        return 1;
    }
    let (mut rows, mut column) = (1, 0);
    for word in text.split(' ') {
        let mut length = word.chars().count();
        let needed = if column == 0 {
            length
        } else {
            column + 1 + length
        };
        if needed <= width {
            column = needed;
            continue;
        }
        if column > 0 {
            rows += 1;
        }
        while length > width {
            rows += 1;
            length -= width;
        }
        column = length;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_rows_count_like_word_wrapping() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows(" short line", 20), 1);
        assert_eq!(wrapped_rows("aaaa bbbb cccc", 9), 2);
        assert_eq!(wrapped_rows("aaaa bbbb cccc", 4), 3);
        assert_eq!(wrapped_rows("abcdefghijkl", 5), 3);
    }

    #[test]
    fn a_confirmation_that_wraps_still_shows_its_keys() {
        let mut app = crate::sample::normal(crate::sample::noon());
        let order = crate::actions::OrderTarget {
            customer: "someone.with.a.very.long.address@example.com".repeat(2),
            ..app.orders.selected().expect("an order")
        };
        app.overlay = Some(Overlay::Confirm(crate::actions::Command::Cancel { order }));
        let area = Rect::new(0, 0, 60, 20);
        let mut buf = Buffer::empty(area);
        draw(
            &mut buf,
            area,
            &app,
            app.overlay.as_ref().expect("open"),
            Theme::new(false),
        );
        let screen: String = buf.content.iter().map(|cell| cell.symbol()).collect();
        assert!(screen.contains("y do it"), "{screen}");
    }
}
