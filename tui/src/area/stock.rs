//! Stock: the lowest available SKUs first with low stock marked, active
//! reservations, and (when there is room) the recent movements and a
//! sparkline of how much stock is moving. On the selected SKU, `a` adjusts
//! its stock and `d` or `l` opens its ledger.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use shop_wire::events::EventData;
use shop_wire::inventory::{Movement, Stock};
use time::OffsetDateTime;

use super::{Act, ListState, Load, Panel, View, matches};
use crate::actions::{Form, FormKind, Lookup, Request, SkuTarget};
use crate::app::FEED_CAP;
use crate::event::StockPage;
use crate::interact::Overlay;
use crate::keymap::Verb;
use crate::ring::{Ring, Series};
use crate::ui::{Theme, clock, cut, placeholder, put, rows, spark};

/// SKUs kept in the stock list: the lowest available ones. The feed pages
/// through the whole inventory up to this many; past it the list says it
/// shows the lowest of how many.
pub const STOCK_CAP: usize = 10_000;

/// A change of stock as an event reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct MovementLine {
    pub at: OffsetDateTime,
    pub sku: String,
    /// The event's action: `adjusted`, `reserved`, `low_stock`...
    pub what: &'static str,
    /// On hand after the change, and by how much it changed (negative for a
    /// sale), as the CLI's ledger shows it: `25 → 24 (-1)`.
    pub on_hand: i64,
    pub on_hand_delta: Option<i64>,
    /// Units a reservation held, released or committed (always positive).
    pub reserved_units: Option<i64>,
    pub available: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StockView {
    pub load: Load,
    /// Lowest available first.
    pub items: Vec<Stock>,
    pub total: u64,
    pub active_reservations: Option<u64>,
    pub movements: Ring<MovementLine>,
    /// Stock events per 10 s.
    pub activity: Series,
    /// `:stock low`: only the SKUs at or below their threshold.
    pub low_only: bool,
    list: ListState,
}

impl Default for StockView {
    fn default() -> Self {
        StockView {
            load: Load::Waiting,
            items: Vec::new(),
            total: 0,
            active_reservations: None,
            movements: Ring::new(FEED_CAP),
            activity: Series::new(10),
            low_only: false,
            list: ListState::default(),
        }
    }
}

impl StockView {
    pub fn apply_page(&mut self, page: StockPage) {
        self.load = Load::Ready;
        self.items = page.items;
        self.total = page.total;
        self.sort();
    }

    /// The inventory route answered 404; data already shown stays.
    pub fn apply_missing(&mut self) {
        if self.load != Load::Ready || self.items.is_empty() {
            self.load = Load::Missing;
        }
    }

    /// The stock list after the filter (a SKU substring, case-insensitive)
    /// and `:stock low`.
    pub fn rows(&self) -> impl Iterator<Item = &Stock> {
        let needle = self.list.needle();
        let low_only = self.low_only;
        self.items
            .iter()
            .filter(move |s| (!low_only || s.is_low()) && matches(&needle, [s.sku.as_str()]))
    }

    /// The SKU of the selected row.
    pub fn selected(&self) -> Option<SkuTarget> {
        let at = self.list.selected(self.row_count());
        let stock = self.rows().nth(at)?;
        Some(SkuTarget {
            sku: stock.sku.clone(),
            on_hand: stock.on_hand,
            available: stock.available,
        })
    }

    fn sort(&mut self) {
        self.items
            .sort_by(|a, b| a.available.cmp(&b.available).then(a.sku.cmp(&b.sku)));
        self.items.truncate(STOCK_CAP);
    }

    /// The stock after a change, as the event says it is now.
    fn set(&mut self, at: OffsetDateTime, level: Level<'_>) {
        self.load = Load::Ready;
        match self.items.iter_mut().find(|s| s.sku == level.sku) {
            Some(stock) => {
                stock.on_hand = level.on_hand;
                stock.reserved = level.reserved;
                stock.available = level.available;
                stock.low_stock_threshold = level.threshold;
                stock.updated_at = at;
            }
            None => {
                self.total += 1;
                self.items.push(Stock {
                    sku: level.sku.to_owned(),
                    name: None,
                    on_hand: level.on_hand,
                    reserved: level.reserved,
                    available: level.available,
                    low_stock_threshold: level.threshold,
                    updated_at: at,
                });
            }
        }
        self.sort();
    }
}

/// The stock of one SKU as an event tells it.
struct Level<'a> {
    sku: &'a str,
    on_hand: i64,
    reserved: i64,
    available: i64,
    threshold: i64,
}

impl Panel for StockView {
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

    fn verb(&self, verb: Verb) -> Option<Act> {
        let act = match (verb, self.selected()) {
            (Verb::Adjust | Verb::Details, None) => Act::Refuse("no SKU selected".to_owned()),
            (Verb::Adjust, Some(stock)) => {
                Act::Open(Overlay::Form(Form::new(FormKind::Adjust(stock))))
            }
            (Verb::Details, Some(stock)) => {
                Act::Ask(Request::Fetch(Lookup::Ledger { sku: stock.sku }))
            }
            _ => return None,
        };
        Some(act)
    }

    fn event(&mut self, at: OffsetDateTime, data: &EventData) {
        let (level, line) = match data {
            EventData::InventoryAdjusted(e)
            | EventData::InventoryReserved(e)
            | EventData::InventoryReleased(e)
            | EventData::InventoryCommitted(e)
            | EventData::InventoryExpired(e)
            | EventData::InventoryReconciled(e) => (
                Level {
                    sku: &e.sku,
                    on_hand: e.on_hand,
                    reserved: e.reserved,
                    available: e.available,
                    threshold: e.low_stock_threshold,
                },
                MovementLine {
                    at,
                    sku: e.sku.clone(),
                    what: data.kind().action(),
                    on_hand: e.on_hand,
                    on_hand_delta: Some(e.delta),
                    reserved_units: e.reservation.as_ref().map(|r| r.quantity),
                    available: e.available,
                    reason: e.reason.clone(),
                },
            ),
            EventData::InventoryLowStock(e) => (
                Level {
                    sku: &e.sku,
                    on_hand: e.on_hand,
                    reserved: e.reserved,
                    available: e.available,
                    threshold: e.low_stock_threshold,
                },
                MovementLine {
                    at,
                    sku: e.sku.clone(),
                    what: data.kind().action(),
                    on_hand: e.on_hand,
                    on_hand_delta: None,
                    reserved_units: None,
                    available: e.available,
                    reason: None,
                },
            ),
            _ => return,
        };
        self.activity.add(at, 1);
        self.movements.push(line);
        self.set(at, level);
    }
}

/// A SKU's ledger, newest first, for the view `d` opens.
pub fn ledger_lines(movements: &[Movement], theme: Theme) -> Vec<Line<'static>> {
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

/// Draws the area; returns how many SKU rows it had room for.
fn draw(buf: &mut Buffer, rect: Rect, stock: &StockView, view: &View, theme: Theme) -> usize {
    let wide = view.wide;
    match stock.load {
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
    let low = stock.items.iter().filter(|s| s.is_low()).count();
    let reservations = stock
        .active_reservations
        .map_or_else(|| "?".to_owned(), |n| n.to_string());
    // Past the cap the list is the lowest SKUs only, and says so.
    let skus = if (stock.items.len() as u64) < stock.total {
        format!("lowest {} of {} SKUs", stock.items.len(), stock.total)
    } else {
        format!("{} SKUs", stock.total)
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
            let values = stock.activity.values(view.now, chart.width as usize);
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
        draw_movements(buf, side, stock, theme);
    }
    draw_list(buf, list, stock, view, theme)
}

fn draw_list(
    buf: &mut Buffer,
    rect: Rect,
    view_of: &StockView,
    view: &View,
    theme: Theme,
) -> usize {
    let wide = view.wide;
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
    let count = view_of.row_count();
    let first = view_of.list.scroll(count);
    let selected = view.focused.then(|| view_of.list.selected(count));
    for (at, (row, stock)) in lines.zip(view_of.rows().skip(first)).enumerate() {
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

fn draw_movements(buf: &mut Buffer, rect: Rect, stock: &StockView, theme: Theme) {
    let mut lines = rows(rect);
    let Some(top) = lines.next() else {
        return;
    };
    put(buf, top, " recent movements", theme.heading());
    if stock.movements.is_empty() {
        if let Some(row) = lines.next() {
            put(buf, row, " none since the dashboard started", theme.muted());
        }
        return;
    }
    for (row, movement) in lines.zip(stock.movements.newest()) {
        // On hand as the CLI's ledger writes it (`25 → 24 (-1)`: a sale is
        // negative); a reservation only moves units between available and
        // reserved, so it says how many and what is left available.
        let after = movement.on_hand;
        let quantity = match (movement.on_hand_delta, movement.reserved_units) {
            (Some(delta), _) if delta != 0 => {
                format!(" on hand {} → {after} ({delta:+})", after - delta)
            }
            (_, Some(1)) => " 1 unit".to_owned(),
            (_, Some(units)) => format!(" {units} units"),
            _ => String::new(),
        };
        let available = format!(", {} available", movement.available);
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

#[cfg(test)]
mod tests {
    use shop_wire::events::{LowStockEvent, ReservationPart, StockEvent};
    use shop_wire::inventory::MovementKind;

    use super::*;
    use crate::sample;

    fn stock_event(sku: &str, kind: MovementKind, available: i64, delta: i64) -> StockEvent {
        StockEvent {
            sku: sku.to_owned(),
            kind,
            on_hand: available,
            reserved: 0,
            available,
            low_stock_threshold: 3,
            delta,
            reason: Some("delivery".to_owned()),
            actor: None,
            reservation: None,
        }
    }

    #[test]
    fn a_sale_is_a_negative_change_of_stock_on_hand() {
        let now = sample::noon();
        let mut stock = StockView::default();
        // What the server sends when a reservation of 1 becomes a sale.
        let committed = StockEvent {
            reason: None,
            reservation: Some(ReservationPart {
                reservation_id: sample::id_of("res", 1),
                quantity: 1,
                reference: None,
            }),
            ..stock_event("MUG-01", MovementKind::Commit, 24, -1)
        };
        stock.event(now, &EventData::InventoryCommitted(committed));
        let movement = stock.movements.newest().next().expect("a movement");
        assert_eq!(movement.what, "committed");
        assert_eq!(movement.on_hand, 24);
        assert_eq!(movement.on_hand_delta, Some(-1));
        assert_eq!(movement.reserved_units, Some(1));
    }

    #[test]
    fn stock_events_update_the_list_lowest_first() {
        let now = sample::noon();
        let mut stock = StockView::default();
        assert_eq!(stock.load, Load::Waiting);
        stock.apply_missing();
        assert_eq!(stock.load, Load::Missing);
        let adjusted = |sku, available| {
            EventData::InventoryAdjusted(stock_event(sku, MovementKind::Adjust, available, 5))
        };
        stock.event(now, &adjusted("B", 10));
        stock.event(now, &adjusted("A", 20));
        assert_eq!(
            stock.load,
            Load::Ready,
            "an event proves the inventory exists"
        );
        let reserved = EventData::InventoryReserved(stock_event("A", MovementKind::Reserve, 2, 0));
        stock.event(now, &reserved);
        let skus: Vec<&str> = stock.items.iter().map(|s| s.sku.as_str()).collect();
        assert_eq!(skus, ["A", "B"]);
        assert!(stock.items[0].is_low());
        assert_eq!(stock.total, 2);
        assert_eq!(stock.movements.len(), 3);
        let latest = stock.movements.newest().next().expect("a movement");
        assert_eq!(latest.what, "reserved");
        assert_eq!(latest.reason.as_deref(), Some("delivery"));
    }

    #[test]
    fn a_low_stock_alarm_is_a_movement_without_a_change() {
        let now = sample::noon();
        let mut stock = StockView::default();
        let low = LowStockEvent {
            sku: "TEA-01".into(),
            on_hand: 2,
            reserved: 0,
            available: 2,
            threshold: 3,
            low_stock_threshold: 3,
        };
        stock.event(now, &EventData::InventoryLowStock(low));
        let line = stock.movements.newest().next().expect("a movement");
        assert_eq!((line.what, line.on_hand_delta), ("low_stock", None));
        assert!(stock.items[0].is_low());
    }

    #[test]
    fn the_selected_sku_is_adjusted_or_its_ledger_asked_for() {
        let mut stock = StockView::default();
        assert!(matches!(stock.verb(Verb::Adjust), Some(Act::Refuse(_))));
        stock.apply_page(StockPage {
            items: sample::normal(sample::noon()).stock.items,
            total: 41,
        });
        let first = stock.items[0].sku.clone();
        assert!(matches!(
            stock.verb(Verb::Adjust),
            Some(Act::Open(Overlay::Form(_)))
        ));
        assert!(matches!(
            stock.verb(Verb::Details),
            Some(Act::Ask(Request::Fetch(Lookup::Ledger { sku }))) if sku == first
        ));
        assert!(stock.verb(Verb::Ship).is_none());
    }
}
