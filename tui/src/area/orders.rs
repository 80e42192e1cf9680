//! Orders: revenue today with a sparkline, counts by status, and the live
//! feed of new orders, transitions and refunds. On the selected order, `s`
//! ships it, `c` cancels it, `f` refunds it and `d` opens its details.

use std::collections::{BTreeMap, VecDeque};

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use shop_wire::OrderId;
use shop_wire::events::{EventData, PaymentEvent};
use shop_wire::money::Currency;
use shop_wire::orders::{Order, OrderAnalytics, OrderStatus};
use time::OffsetDateTime;

use super::{Act, ListState, Load, Panel, View, matches};
use crate::actions::{Command, Form, FormKind, OrderTarget};
use crate::app::FEED_CAP;
use crate::interact::Overlay;
use crate::keymap::Verb;
use crate::ring::{Ring, Series};
use crate::ui::{Theme, clock, cut, money, placeholder, put, rows, spark};

/// An order as far as the dashboard knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub id: OrderId,
    pub number: String,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub currency: Currency,
    pub customer: String,
    /// `2× DASH-1, 1× TEA-01`.
    pub items: String,
    /// The payment as its last event said: `card captured`, `card refunded`.
    pub payment: Option<String>,
    pub tracking: Option<String>,
    /// When it was placed.
    pub at: OffsetDateTime,
}

impl OrderRow {
    fn new(order: &Order) -> OrderRow {
        let items = order
            .items
            .iter()
            .map(|item| format!("{}× {}", item.quantity, item.sku))
            .collect::<Vec<_>>()
            .join(", ");
        OrderRow {
            id: order.id.clone(),
            number: order.number.clone(),
            status: order.status,
            total_cents: order.total_cents,
            currency: order.currency,
            customer: order.customer_email.clone(),
            items,
            payment: None,
            tracking: order.tracking_number.clone(),
            at: order.created_at,
        }
    }
}

/// What a feed line says happened to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Placed.
    New,
    /// Moved to this status.
    Became(OrderStatus),
    /// Money went back to the customer; the status does not move.
    Refunded,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::New => "new",
            Step::Became(status) => status.as_str(),
            Step::Refunded => "refunded",
        }
    }
}

/// A new order, a transition or a refund, as the live feed shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedLine {
    pub at: OffsetDateTime,
    /// The order's id, to act on it.
    pub order_id: OrderId,
    pub number: String,
    pub step: Step,
    /// The order's total; for a refund, the amount refunded, negative.
    pub total_cents: i64,
    pub currency: Currency,
    pub customer: String,
}

#[derive(Debug, Clone)]
pub struct OrdersView {
    pub load: Load,
    /// Newest first, at most [`FEED_CAP`].
    pub orders: VecDeque<OrderRow>,
    pub feed: Ring<FeedLine>,
    /// Net revenue of the orders placed today (UTC), per currency code, as
    /// `/api/orders/analytics` counts it; events move it between polls.
    pub revenue_today: BTreeMap<&'static str, i64>,
    revenue_day: time::Date,
    /// Revenue per minute, in minor units.
    pub revenue: Series,
    /// Returns waiting on the shop, once `/api/returns` answered.
    pub open_returns: Option<u64>,
    list: ListState,
}

impl OrdersView {
    pub fn new(now: OffsetDateTime) -> Self {
        OrdersView {
            load: Load::Waiting,
            orders: VecDeque::new(),
            feed: Ring::new(FEED_CAP),
            revenue_today: BTreeMap::new(),
            revenue_day: now.date(),
            revenue: Series::new(60),
            open_returns: None,
            list: ListState::default(),
        }
    }

    /// `GET /api/orders` answered: the latest orders, newest first.
    pub fn apply_list(&mut self, orders: &[Order]) {
        self.load = Load::Ready;
        for order in orders {
            self.upsert(OrderRow::new(order));
        }
    }

    /// `GET /api/orders/analytics` answered: today's net revenue is the
    /// server's, which counts refunds and cancellations the feed may not have seen.
    pub fn apply_analytics(&mut self, analytics: &OrderAnalytics) {
        let today = self.revenue_day.to_string();
        self.revenue_today = analytics
            .revenue_by_day
            .iter()
            .filter(|day| day.day == today)
            .map(|day| (day.currency.code(), day.revenue_cents))
            .collect();
    }

    /// The orders route answered 404; orders already shown stay.
    pub fn apply_missing(&mut self) {
        if self.orders.is_empty() {
            self.load = Load::Missing;
        }
    }

    /// Midnight (UTC): a new day's revenue starts at zero.
    pub fn tick(&mut self, now: OffsetDateTime) {
        if now.date() != self.revenue_day {
            self.revenue_day = now.date();
            self.revenue_today.clear();
        }
    }

    /// The order feed, newest first, after the filter (number, status or
    /// customer email).
    pub fn rows(&self) -> impl Iterator<Item = &FeedLine> {
        let needle = self.list.needle();
        self.feed.newest().filter(move |line| {
            matches(
                &needle,
                [
                    line.number.as_str(),
                    line.step.as_str(),
                    line.customer.as_str(),
                ],
            )
        })
    }

    /// What the dashboard knows of an order, by id.
    pub fn order(&self, id: &OrderId) -> Option<&OrderRow> {
        self.orders.iter().find(|o| o.id == *id)
    }

    /// Orders per status among the kept orders, in lifecycle order.
    pub fn counts(&self) -> Vec<(OrderStatus, usize)> {
        OrderStatus::ALL
            .iter()
            .map(|status| {
                let count = self.orders.iter().filter(|o| o.status == *status).count();
                (*status, count)
            })
            .collect()
    }

    /// The order of the selected feed line, with its current status.
    pub fn selected(&self) -> Option<OrderTarget> {
        let at = self.list.selected(self.row_count());
        let line = self.rows().nth(at)?;
        let order = self.order(&line.order_id);
        let status = order.map_or(
            match line.step {
                Step::New => OrderStatus::Pending,
                Step::Became(status) => status,
                // Only a paid order has money to give back; the server checks again.
                Step::Refunded => OrderStatus::Paid,
            },
            |o| o.status,
        );
        Some(OrderTarget {
            id: line.order_id.clone(),
            number: line.number.clone(),
            status,
            total_cents: order.map_or(line.total_cents, |o| o.total_cents),
            currency: line.currency,
            customer: line.customer.clone(),
        })
    }

    fn order_event(&mut self, at: OffsetDateTime, order: &Order, step: Step) {
        self.load = Load::Ready;
        self.feed.push(FeedLine {
            at,
            order_id: order.id.clone(),
            number: order.number.clone(),
            step,
            total_cents: order.total_cents,
            currency: order.currency,
            customer: order.customer_email.clone(),
        });
        if step == Step::Became(OrderStatus::Paid) {
            // Revenue counts on the day the order was placed, as the server's analytics do.
            if order.created_at.date() == self.revenue_day {
                *self.revenue_today.entry(order.currency.code()).or_default() += order.total_cents;
            }
            self.revenue
                .add(at, order.total_cents.max(0).unsigned_abs());
        }
        self.upsert(OrderRow::new(order));
    }

    /// A payment's news goes to its order's row: `card captured`.
    fn payment_event(&mut self, payment: &PaymentEvent, what: &str) {
        if let Some(order) = self.orders.iter_mut().find(|o| o.id == payment.order_id) {
            order.payment = Some(format!("{} {what}", payment.method.as_str()));
        }
    }

    /// A refund joins the feed with the amount given back; it does not move
    /// the order's status.
    fn refund_event(&mut self, at: OffsetDateTime, payment: &PaymentEvent) {
        self.load = Load::Ready;
        let placed_today = self
            .order(&payment.order_id)
            .is_some_and(|order| order.at.date() == self.revenue_day);
        if placed_today {
            *self
                .revenue_today
                .entry(payment.currency.code())
                .or_default() -= payment.amount_cents;
        }
        self.feed.push(FeedLine {
            at,
            order_id: payment.order_id.clone(),
            number: payment.number.clone(),
            step: Step::Refunded,
            total_cents: -payment.amount_cents,
            currency: payment.currency,
            customer: payment.customer_email.clone(),
        });
    }

    /// Adds an order or updates the one with its id; the newest stay.
    fn upsert(&mut self, row: OrderRow) {
        if let Some(known) = self.orders.iter_mut().find(|o| o.id == row.id) {
            known.status = row.status;
            known.total_cents = row.total_cents;
            known.customer = row.customer;
            if !row.items.is_empty() {
                known.items = row.items;
            }
            known.payment = row.payment.or(known.payment.take());
            known.tracking = row.tracking.or(known.tracking.take());
            return;
        }
        let at = self
            .orders
            .iter()
            .position(|o| o.at <= row.at)
            .unwrap_or(self.orders.len());
        self.orders.insert(at, row);
        self.orders.truncate(FEED_CAP);
    }

    /// An order's details, for the view `d` opens: drawn from live state,
    /// so they move on while open.
    pub fn details(&self, id: &OrderId, theme: Theme) -> Vec<Line<'static>> {
        let Some(order) = self.order(id) else {
            return vec![Line::styled(" not among the orders kept", theme.muted())];
        };
        let field = |name: &str, value: Option<&str>| {
            Line::from(vec![
                Span::styled(format!(" {name:<10} "), theme.heading()),
                Span::raw(value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()),
            ])
        };
        let total = money(order.total_cents, order.currency.code());
        let mut lines = vec![
            field("number", Some(&order.number)),
            field("status", Some(order.status.as_str())),
            field("total", Some(&total)),
            field("customer", Some(&order.customer)),
            field("items", Some(&order.items)),
            field("payment", order.payment.as_deref()),
            field("tracking", order.tracking.as_deref()),
            field("id", Some(order.id.as_str())),
            Line::styled(" seen on the feed:", theme.heading()),
        ];
        let mut seen: Vec<_> = self
            .feed
            .iter()
            .filter(|line| line.order_id == *id)
            .collect();
        seen.reverse();
        lines.extend(seen.into_iter().map(|line| {
            let amount = money(line.total_cents, line.currency.code());
            Line::raw(format!(
                "   {} {:<10} {amount}",
                clock(line.at),
                line.step.as_str()
            ))
        }));
        lines
    }
}

impl Panel for OrdersView {
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
        if !matches!(
            verb,
            Verb::Ship | Verb::Cancel | Verb::Refund | Verb::Details
        ) {
            return None;
        }
        let Some(order) = self.selected() else {
            return Some(Act::Refuse("no order selected".to_owned()));
        };
        if let Some(why) = not_allowed(verb, &order) {
            return Some(Act::Refuse(why));
        }
        Some(Act::Open(match verb {
            Verb::Ship => Overlay::Form(Form::new(FormKind::Ship(order))),
            Verb::Refund => Overlay::Form(Form::new(FormKind::Refund(order))),
            Verb::Cancel => Overlay::Confirm(Command::Cancel { order }),
            _ => Overlay::Order(order.id),
        }))
    }

    fn event(&mut self, at: OffsetDateTime, data: &EventData) {
        match data {
            EventData::OrderCreated(order) => self.order_event(at, order, Step::New),
            EventData::OrderPaid(order)
            | EventData::OrderShipped(order)
            | EventData::OrderDelivered(order)
            | EventData::OrderCancelled(order) => {
                // The step the event names; the order itself says where it is now.
                let step = match data {
                    EventData::OrderPaid(_) => OrderStatus::Paid,
                    EventData::OrderShipped(_) => OrderStatus::Shipped,
                    EventData::OrderDelivered(_) => OrderStatus::Delivered,
                    _ => OrderStatus::Cancelled,
                };
                self.order_event(at, order, Step::Became(step));
            }
            // A succeeded payment took the money: "captured", as providers say.
            EventData::PaymentSucceeded(p) => self.payment_event(p, "captured"),
            EventData::PaymentPending(p) => self.payment_event(p, "pending"),
            EventData::PaymentFailed(p) => self.payment_event(p, "failed"),
            EventData::PaymentRefundFailed(p) => self.payment_event(p, "refund failed"),
            EventData::PaymentRefunded(p) => {
                self.payment_event(p, "refunded");
                self.refund_event(at, p);
            }
            _ => {}
        }
    }
}

/// Why the server would refuse this move of this order, said before asking
/// anything (the server checks again: the status may move meanwhile).
fn not_allowed(verb: Verb, order: &OrderTarget) -> Option<String> {
    let status = order.status;
    let allowed = match verb {
        Verb::Ship => status.can_become(OrderStatus::Shipped),
        Verb::Cancel => status.can_become(OrderStatus::Cancelled),
        // Only a paid-for order has a payment to give back.
        Verb::Refund => status != OrderStatus::Pending && status != OrderStatus::Cancelled,
        _ => true,
    };
    (!allowed).then(|| {
        let next: Vec<&str> = status.next().iter().map(|s| s.as_str()).collect();
        let next = if next.is_empty() {
            "nothing".to_owned()
        } else {
            next.join(" or ")
        };
        format!("{} is {status}: it can become {next}", order.number)
    })
}

/// Draws the area; returns how many feed rows it had room for.
fn draw(buf: &mut Buffer, rect: Rect, orders: &OrdersView, view: &View, theme: Theme) -> usize {
    let wide = view.wide;
    match orders.load {
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
    let revenue = if orders.revenue_today.is_empty() {
        "0".to_owned()
    } else {
        orders
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
        let values = orders.revenue.values(view.now, chart.width as usize);
        spark(buf, chart, &values, theme);
    }
    let Some(counts_row) = lines.next() else {
        return 0;
    };
    let mut counts = Vec::new();
    // Open returns wait for someone to act, so they come first and are
    // never the part a narrow terminal cuts off.
    if let Some(open) = orders.open_returns {
        let name = if wide { "returns open " } else { "rtn " };
        counts.push(Span::styled(name, theme.muted()));
        counts.push(Span::styled(format!("{open}  "), theme.heading()));
    }
    for (status, count) in orders.counts() {
        let name = if wide { status.as_str() } else { short(status) };
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
    let count = orders.row_count();
    let first = orders.list.scroll(count);
    let shown: Vec<&FeedLine> = orders
        .rows()
        .skip(first)
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
    let details = view.zoomed && rect.width >= 110;
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
    let selected = view.focused.then(|| orders.list.selected(count));
    for (at, (row, line)) in list_rows.zip(shown).enumerate() {
        if selected == Some(first + at) {
            buf.set_style(row, theme.selected());
        }
        let amount = {
            let amount = money(line.total_cents, line.currency.code());
            if wide {
                amount
            } else {
                // Condensed, the currency is left to the revenue line.
                amount.split(' ').next().unwrap_or_default().to_owned()
            }
        };
        let status_style = match line.step {
            Step::Became(OrderStatus::Cancelled) | Step::Refunded => theme.bad(),
            Step::Became(OrderStatus::Paid | OrderStatus::Delivered) => theme.good(),
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
            Span::styled(format!("{:<9} ", line.step.as_str()), status_style),
            Span::styled(format!("{amount:>amount_width$}"), theme.money()),
        ];
        if details {
            let order = orders.order(&line.order_id);
            let field = |get: fn(&OrderRow) -> Option<&str>| {
                order
                    .and_then(get)
                    .filter(|v| !v.is_empty())
                    .unwrap_or("-")
                    .to_owned()
            };
            let customer = if line.customer.is_empty() {
                "-"
            } else {
                &line.customer
            };
            spans.push(Span::raw(format!("  {:<28}", cut(customer, 28))));
            spans.push(Span::raw(format!(
                " {:<30}",
                cut(&field(|o| Some(o.items.as_str())), 30)
            )));
            spans.push(Span::styled(
                format!(" {:<18}", cut(&field(|o| o.payment.as_deref()), 18)),
                theme.muted(),
            ));
            spans.push(Span::raw(format!(" {}", field(|o| o.tracking.as_deref()))));
        }
        buf.set_line(row.x, row.y, &Line::from(spans), row.width);
    }
    list.height as usize
}

fn short(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pend",
        OrderStatus::Shipped => "ship",
        OrderStatus::Delivered => "dlvd",
        OrderStatus::Cancelled => "cncl",
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::event::{Section, Update};
    use crate::keymap::Action;
    use crate::sample;
    use shop_wire::orders::DayRevenue;

    fn apply(app: &mut App, id: u64, at: OffsetDateTime, data: EventData) {
        app.apply(Update::Event(sample::event(id, at, data)));
    }

    fn with_status(order: &Order, status: OrderStatus) -> Order {
        Order {
            status,
            ..order.clone()
        }
    }

    #[test]
    fn orders_feed_counts_and_revenue_today() {
        let now = sample::noon();
        let mut app = App::new(now);
        let yesterday = now - time::Duration::days(1);
        let o1 = sample::order(1, yesterday);
        let o2 = sample::order(2, now);
        let o3 = sample::order(3, now);
        apply(&mut app, 1, yesterday, EventData::OrderCreated(o1.clone()));
        let paid = with_status(&o1, OrderStatus::Paid);
        apply(&mut app, 2, yesterday, EventData::OrderPaid(paid));
        apply(&mut app, 3, now, EventData::OrderCreated(o2.clone()));
        let paid = with_status(&o2, OrderStatus::Paid);
        apply(&mut app, 4, now, EventData::OrderPaid(paid));
        apply(&mut app, 5, now, EventData::OrderCreated(o3));
        let shipped = with_status(&o1, OrderStatus::Shipped);
        apply(&mut app, 6, now, EventData::OrderShipped(shipped));
        assert_eq!(app.orders.load, Load::Ready);
        assert_eq!(app.orders.feed.len(), 6);
        assert_eq!(app.orders.revenue_today.get("USD"), Some(&o2.total_cents));
        let counts: BTreeMap<OrderStatus, usize> = app.orders.counts().into_iter().collect();
        assert_eq!(counts[&OrderStatus::Pending], 1);
        assert_eq!(counts[&OrderStatus::Paid], 1);
        assert_eq!(counts[&OrderStatus::Shipped], 1);
        assert_eq!(app.orders.orders.len(), 3);
        let steps: Vec<&str> = app.orders.rows().map(|l| l.step.as_str()).collect();
        assert_eq!(steps, ["shipped", "new", "paid", "new", "paid", "new"]);
        // The server's figure replaces the running one: it knows every refund.
        let analytics = OrderAnalytics {
            revenue_by_day: vec![
                DayRevenue {
                    day: yesterday.date().to_string(),
                    currency: o1.currency,
                    orders: 1,
                    revenue_cents: 7,
                },
                DayRevenue {
                    day: now.date().to_string(),
                    currency: o2.currency,
                    orders: 1,
                    revenue_cents: 42,
                },
            ],
            ..OrderAnalytics::default()
        };
        app.apply(Update::OrderAnalytics(Section::Ready(analytics)));
        assert_eq!(app.orders.revenue_today.get("USD"), Some(&42));
        // Midnight: a new day's revenue starts at zero.
        app.tick(now + time::Duration::days(1));
        assert!(app.orders.revenue_today.is_empty());
    }

    #[test]
    fn a_refund_joins_the_order_feed_with_the_amount_given_back() {
        let now = sample::noon();
        let mut app = App::new(now);
        let order = Order {
            total_cents: 2500,
            ..sample::order(1, now)
        };
        apply(&mut app, 1, now, EventData::OrderCreated(order.clone()));
        let refund = PaymentEvent {
            amount_cents: 1000,
            ..sample::payment(&order, 1, true)
        };
        apply(&mut app, 2, now, EventData::PaymentRefunded(refund));
        let newest = app.orders.rows().next().expect("a feed line");
        assert_eq!(newest.step, Step::Refunded);
        assert_eq!(newest.total_cents, -1000);
        assert_eq!(
            app.orders.revenue_today.get("USD"),
            Some(&-1000),
            "a refund of an order placed today lowers today's net revenue"
        );
        assert_eq!(newest.number, order.number);
        let known = app.orders.order(&order.id).expect("the order");
        assert_eq!(
            known.status,
            OrderStatus::Pending,
            "a refund does not move the status"
        );
        assert_eq!(known.payment.as_deref(), Some("card refunded"));
    }

    #[test]
    fn a_succeeded_payment_reads_as_captured_on_its_order() {
        let now = sample::noon();
        let mut app = App::new(now);
        let order = sample::order(4, now);
        apply(&mut app, 1, now, EventData::OrderCreated(order.clone()));
        let payment = sample::payment(&order, 4, false);
        apply(&mut app, 2, now, EventData::PaymentSucceeded(payment));
        let known = app.orders.order(&order.id).expect("the order");
        assert_eq!(known.payment.as_deref(), Some("card captured"));
        assert_eq!(app.orders.feed.len(), 1, "a payment alone is no feed line");
    }

    #[test]
    fn the_polled_list_adds_orders_and_keeps_what_events_said() {
        let now = sample::noon();
        let mut app = App::new(now);
        let order = sample::order(5, now - time::Duration::minutes(1));
        apply(&mut app, 1, now, EventData::OrderCreated(order.clone()));
        let payment = sample::payment(&order, 5, false);
        apply(&mut app, 2, now, EventData::PaymentSucceeded(payment));
        let shipped = Order {
            status: OrderStatus::Shipped,
            tracking_number: Some("1Z999".into()),
            ..order.clone()
        };
        let other = sample::order(6, now);
        app.apply(Update::Orders(Section::Ready(vec![other.clone(), shipped])));
        let known = app.orders.order(&order.id).expect("the order");
        assert_eq!(known.status, OrderStatus::Shipped);
        assert_eq!(known.tracking.as_deref(), Some("1Z999"));
        assert_eq!(
            known.payment.as_deref(),
            Some("card captured"),
            "the list says nothing of payments"
        );
        let numbers: Vec<&str> = app
            .orders
            .orders
            .iter()
            .map(|o| o.number.as_str())
            .collect();
        assert_eq!(
            numbers,
            [other.number.as_str(), order.number.as_str()],
            "newest first"
        );
        assert_eq!(
            known.items, "3× SKU-0005",
            "items as the dashboard writes them"
        );
    }

    #[test]
    fn the_order_filter_matches_customer_emails() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::Focus(crate::app::Direction::Down));
        app.act(Action::StartFilter);
        for c in "C21@EXAMPLE".chars() {
            app.act(Action::FilterChar(c));
        }
        let numbers: Vec<&str> = app.orders.rows().map(|l| l.number.as_str()).collect();
        assert!(!numbers.is_empty());
        assert!(numbers.iter().all(|n| *n == "ORD-001021"), "{numbers:?}");
    }

    #[test]
    fn only_moves_the_server_allows_are_offered() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::Focus(crate::app::Direction::Down));
        let delivered = app.orders.selected().expect("an order");
        assert_eq!(delivered.status, OrderStatus::Delivered);
        for verb in [Verb::Ship, Verb::Cancel, Verb::Refund] {
            let act = app.orders.verb(verb);
            if verb == Verb::Refund {
                assert!(matches!(act, Some(Act::Open(Overlay::Form(_)))), "{act:?}");
            } else {
                assert!(matches!(act, Some(Act::Refuse(_))), "{verb:?}: {act:?}");
            }
        }
        assert!(
            app.orders.verb(Verb::Adjust).is_none(),
            "not an order's action"
        );
        assert!(matches!(
            app.orders.verb(Verb::Details),
            Some(Act::Open(Overlay::Order(id))) if id == delivered.id
        ));
    }
}
