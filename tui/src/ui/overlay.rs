//! What is drawn on top of the grid: a form, a confirmation, an order's
//! details, a SKU's ledger, search results (the areas they belong to write
//! their lines). The `:` line is drawn by the status line instead.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};

use super::Theme;
use crate::actions::Form;
use crate::app::App;
use crate::area::{search, stock};
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
    let height = (lines.len() as u16 + 4).min(body.height);
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
