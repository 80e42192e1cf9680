//! What is drawn on top of the grid: a form, a confirmation, an order's
//! details, a SKU's ledger, search results. The `:` line is drawn by the
//! status line instead.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};

use super::{Theme, clock, money};
use crate::actions::Form;
use crate::app::App;
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
            order_lines(app, id, theme),
            "Esc closes · the order moves on live",
        ),
        Overlay::Ledger { sku, movements } => {
            let mut lines = vec![Line::styled(
                format!(
                    " {:<9} {:<10} {:<20} {:<10} {}",
                    "time", "kind", "on hand", "reserved", "reason · actor"
                ),
                theme.heading(),
            )];
            lines.extend(movements.iter().map(|m| {
                let reserved = if m.reserved_before == m.reserved_after {
                    m.reserved_after.to_string()
                } else {
                    format!("{} → {}", m.reserved_before, m.reserved_after)
                };
                let who = [m.reason.as_deref(), m.actor.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · ");
                Line::raw(format!(
                    " {:<9} {:<10} {:<20} {:<10} {who}",
                    clock(m.at),
                    m.kind.as_str(),
                    change(m.on_hand_before, m.on_hand_after),
                    reserved
                ))
            }));
            if movements.is_empty() {
                lines.push(Line::styled(" no movements", theme.muted()));
            }
            (
                format!("Ledger of {sku}, newest first"),
                lines,
                "Esc closes",
            )
        }
        Overlay::Search(results) => {
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
                    super::stock::cut(&product.name, 36),
                    money(product.price_cents, product.currency.code()),
                    hit.available
                ))
            }));
            (
                format!(
                    "Search \"{}\": {} found ({})",
                    results.query, results.total, results.matching
                ),
                lines,
                "Esc closes",
            )
        }
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

fn order_lines(app: &App, id: &str, theme: Theme) -> Vec<Line<'static>> {
    let Some(order) = app.order(id) else {
        return vec![Line::styled(" not among the orders kept", theme.muted())];
    };
    let field = |name: &str, value: Option<&String>| {
        Line::from(vec![
            Span::styled(format!(" {name:<10} "), theme.heading()),
            Span::raw(value.map_or("-", String::as_str).to_owned()),
        ])
    };
    let total = order.total_cents.map(|cents| money(cents, &order.currency));
    let mut lines = vec![
        field("number", Some(&order.number)),
        field("status", Some(&order.status)),
        field("total", total.as_ref()),
        field("customer", order.customer.as_ref()),
        field("items", order.items.as_ref()),
        field("payment", order.payment.as_ref()),
        field("tracking", order.tracking.as_ref()),
        field("id", Some(&order.id)),
        Line::styled(" seen on the feed:", theme.heading()),
    ];
    let mut seen: Vec<_> = app
        .orders
        .feed
        .iter()
        .filter(|line| line.order_id == id)
        .collect();
    seen.reverse();
    lines.extend(seen.into_iter().map(|line| {
        let amount = line
            .total_cents
            .map_or_else(String::new, |cents| money(cents, &line.currency));
        Line::raw(format!(
            "   {} {:<10} {amount}",
            clock(line.at),
            line.status
        ))
    }));
    lines
}

/// `10 → 15 (+5)`, or just `10` when nothing changed, as the CLI's ledger.
fn change(before: i64, after: i64) -> String {
    if before == after {
        after.to_string()
    } else {
        format!("{before} → {after} ({:+})", after - before)
    }
}
