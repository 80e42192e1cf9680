//! The dashboard's state, and every way it changes: data from the feed,
//! actions from the keyboard, and the passing of time.
//!
//! Pure: no I/O and no clock of its own (the caller passes `now`), so tests
//! build any screen they like and render it. Every list is bounded (the
//! feeds keep the last [`FEED_CAP`] entries, sparklines [`SERIES_CAP`]
//! points, query counts [`QUERY_CAP`] distinct queries), so a dashboard left
//! open all day uses the same memory at night as in the morning.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::Value;
use shop_wire::inventory::Stock;
use shop_wire::{Event, HealthStatus, SystemHealth};
use time::OffsetDateTime;

use crate::actions::Request;
use crate::event::{Section, StockPage, Update};
pub use crate::interact::Overlay;
use crate::keymap::{Action, Mode};
use crate::metrics::Rates;

/// Entries kept in each live feed (orders, order transitions, queries, stock movements).
pub const FEED_CAP: usize = 1000;
/// Points kept per sparkline.
pub const SERIES_CAP: usize = 120;
/// Distinct queries counted for the top lists; past it the rarest are forgotten.
pub const QUERY_CAP: usize = 5000;
/// SKUs kept in the stock list: the lowest available ones. The feed pages
/// through the whole inventory up to this many; past it the list says it
/// shows the lowest of how many.
pub const STOCK_CAP: usize = 10_000;
/// How long a problem stays in the status line after it last happened.
pub const PROBLEM_SHOWN: time::Duration = time::Duration::seconds(30);
pub use shop_wire::health::SERVICES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    Health,
    Stock,
    Orders,
    Search,
}

impl Area {
    /// Tab order, which is also reading order in the 2x2 grid.
    pub const ALL: [Area; 4] = [Area::Health, Area::Stock, Area::Orders, Area::Search];

    pub fn index(self) -> usize {
        match self {
            Area::Health => 0,
            Area::Stock => 1,
            Area::Orders => 2,
            Area::Search => 3,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Area::Health => "Services",
            Area::Stock => "Stock",
            Area::Orders => "Orders",
            Area::Search => "Search",
        }
    }

    fn step(self, by: isize) -> Area {
        let at = (self.index() as isize + by).rem_euclid(4) as usize;
        Area::ALL[at]
    }

    /// The neighbour in the 2x2 grid (Health Stock / Orders Search); the
    /// edges wrap, so every arrow always moves somewhere.
    fn towards(self, direction: Direction) -> Area {
        let (row, col) = (self.index() / 2, self.index() % 2);
        let (row, col) = match direction {
            Direction::Up | Direction::Down => (1 - row, col),
            Direction::Left | Direction::Right => (row, 1 - col),
        };
        Area::ALL[row * 2 + col]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Left,
    Right,
}

/// Whether the server answers, as the last poll or stream saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    Connecting,
    Up,
    Down {
        reason: String,
        since: OffsetDateTime,
    },
}

/// Where a part of the server's data stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Not asked yet, or no answer yet.
    Waiting,
    /// The server has no such route yet (404): "no data yet".
    Missing,
    Ready,
}

/// A bounded queue: the oldest entry goes when a new one comes past the cap.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Ring {
            items: VecDeque::with_capacity(cap.min(64)),
            cap,
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// Newest first.
    pub fn newest(&self) -> impl Iterator<Item = &T> {
        self.items.iter().rev()
    }
}

/// Counts per fixed time bucket (e.g. revenue per minute), for sparklines
/// that must show quiet periods as zeros rather than skip them.
#[derive(Debug, Clone)]
pub struct Series {
    bucket_seconds: i64,
    buckets: Ring<(i64, u64)>,
}

impl Series {
    pub fn new(bucket_seconds: i64) -> Self {
        Series {
            bucket_seconds,
            buckets: Ring::new(SERIES_CAP),
        }
    }

    pub fn add(&mut self, at: OffsetDateTime, amount: u64) {
        let bucket = at.unix_timestamp().div_euclid(self.bucket_seconds);
        match self.buckets.items.back_mut() {
            Some((last, total)) if *last == bucket => *total += amount,
            Some((last, _)) if *last > bucket => {
                // Late: add it where it belongs if that bucket is still kept.
                if let Some((_, total)) = self.buckets.items.iter_mut().find(|(b, _)| *b == bucket)
                {
                    *total += amount;
                }
            }
            _ => self.buckets.push((bucket, amount)),
        }
    }

    /// The last `n` buckets up to `now`, oldest first, zeros where nothing happened.
    pub fn values(&self, now: OffsetDateTime, n: usize) -> Vec<u64> {
        let current = now.unix_timestamp().div_euclid(self.bucket_seconds);
        let first = current - n as i64 + 1;
        let mut values = vec![0; n];
        for &(bucket, total) in self.buckets.iter() {
            if bucket >= first && bucket <= current {
                values[(bucket - first) as usize] = total;
            }
        }
        values
    }
}

/// One service's row: its health and its recent traffic.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub name: &'static str,
    pub status: Option<HealthStatus>,
    /// A failing check's message, when the service is not ok.
    pub note: Option<String>,
    pub rates: Option<Rates>,
    /// Requests per second × 10 per poll, for the sparkline (which takes integers).
    pub rps_series: Ring<u64>,
}

/// A change of stock as an event reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct MovementLine {
    pub at: OffsetDateTime,
    pub sku: String,
    /// The event's last part: `adjusted`, `reserved`, `low_stock`...
    pub what: String,
    /// On hand after the change, and by how much it changed (negative for a
    /// sale), as the CLI's ledger shows it: `25 → 24 (-1)`.
    pub on_hand: Option<i64>,
    pub on_hand_delta: Option<i64>,
    /// Units a reservation held, released or committed (always positive).
    pub reserved_units: Option<i64>,
    pub available: Option<i64>,
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
}

/// An order as far as the dashboard knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub id: String,
    pub number: String,
    pub status: String,
    pub total_cents: Option<i64>,
    pub currency: String,
    pub customer: Option<String>,
    /// `2× DASH-1, 1× TEA-01`, when the data had the items.
    pub items: Option<String>,
    /// The payment as its last event said: `card captured`, `card refunded`.
    pub payment: Option<String>,
    pub tracking: Option<String>,
    pub at: OffsetDateTime,
}

/// A new order or a transition, as the live feed shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedLine {
    pub at: OffsetDateTime,
    /// The order's id, to act on it.
    pub order_id: String,
    pub number: String,
    pub status: String,
    /// The order's total; for a refund, the amount refunded, negative.
    pub total_cents: Option<i64>,
    pub currency: String,
    pub customer: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OrdersView {
    pub load: Load,
    /// Newest first, at most [`FEED_CAP`].
    pub orders: VecDeque<OrderRow>,
    pub feed: Ring<FeedLine>,
    /// Paid today (UTC), per currency.
    pub revenue_today: BTreeMap<String, i64>,
    revenue_day: time::Date,
    /// Revenue per minute, in minor units.
    pub revenue: Series,
}

/// One search as a `search.query` event reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLine {
    pub at: OffsetDateTime,
    pub query: String,
    pub results: Option<u64>,
    pub latency_ms: Option<f64>,
    pub cache_hit: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct SearchView {
    pub stream: Ring<QueryLine>,
    counts: HashMap<String, u64>,
    zero_counts: HashMap<String, u64>,
    pub cache_hits: u64,
    /// Queries whose event said whether the cache answered.
    pub cache_known: u64,
    /// Most frequent first, recomputed on tick when stale.
    pub top: Vec<(String, u64)>,
    pub zero: Vec<(String, u64)>,
    /// The top lists came from `GET /api/search/analytics`, not the stream.
    pub from_server: bool,
    stale: bool,
    /// Queries per 10 s.
    pub volume: Series,
}

/// The last event seen, for the status line.
#[derive(Debug, Clone, PartialEq)]
pub struct LastEvent {
    pub id: u64,
    pub kind: String,
    pub at: OffsetDateTime,
    pub summary: String,
}

#[derive(Debug, Clone)]
pub struct App {
    pub now: OffsetDateTime,
    /// The server's address, for the header.
    pub url: String,
    pub focus: Area,
    pub zoomed: bool,
    pub help: bool,
    /// Typing a filter for the focused area.
    pub filtering: bool,
    pub(crate) filters: [String; 4],
    scroll: [usize; 4],
    /// The selected row of each area's list (what the action keys act on).
    pub(crate) cursor: [usize; 4],
    /// How many rows of each area's list the last frame showed, so that
    /// scrolling stops with the last row at the bottom, not at the top.
    viewport: [usize; 4],
    pub server: Server,
    pub version: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub services: Vec<ServiceView>,
    pub stock: StockView,
    pub orders: OrdersView,
    pub search: SearchView,
    pub events_seen: u64,
    pub last_event: Option<LastEvent>,
    /// An error that is not about reachability, and when it last happened;
    /// the status line shows it for [`PROBLEM_SHOWN`].
    pub problem: Option<(String, OffsetDateTime)>,
    pub should_quit: bool,
    /// The user pressed `r`; the loop passes it on to the feed.
    pub refresh_requested: bool,
    /// `--readonly`: every action that changes the shop is refused.
    pub readonly: bool,
    /// A form, confirmation or view on top of the grid.
    pub overlay: Option<Overlay>,
    /// Confirmed commands and lookups for the loop to hand to the feed.
    pub requests: Vec<Request>,
    /// What the last command did, and when; shown like a problem.
    pub notice: Option<(String, OffsetDateTime)>,
    /// `:stock low`: only the SKUs at or below their threshold.
    pub stock_low_only: bool,
}

impl App {
    pub fn new(now: OffsetDateTime) -> Self {
        App {
            now,
            url: String::new(),
            focus: Area::Health,
            zoomed: false,
            help: false,
            filtering: false,
            filters: Default::default(),
            scroll: [0; 4],
            cursor: [0; 4],
            viewport: [1; 4],
            server: Server::Connecting,
            version: None,
            uptime_seconds: None,
            services: SERVICES
                .iter()
                .map(|name| ServiceView {
                    name,
                    status: None,
                    note: None,
                    rates: None,
                    rps_series: Ring::new(SERIES_CAP),
                })
                .collect(),
            stock: StockView {
                load: Load::Waiting,
                items: Vec::new(),
                total: 0,
                active_reservations: None,
                movements: Ring::new(FEED_CAP),
                activity: Series::new(10),
            },
            orders: OrdersView {
                load: Load::Waiting,
                orders: VecDeque::new(),
                feed: Ring::new(FEED_CAP),
                revenue_today: BTreeMap::new(),
                revenue_day: now.date(),
                revenue: Series::new(60),
            },
            search: SearchView {
                stream: Ring::new(FEED_CAP),
                counts: HashMap::new(),
                zero_counts: HashMap::new(),
                cache_hits: 0,
                cache_known: 0,
                top: Vec::new(),
                zero: Vec::new(),
                from_server: false,
                stale: false,
                volume: Series::new(10),
            },
            events_seen: 0,
            last_event: None,
            problem: None,
            should_quit: false,
            refresh_requested: false,
            readonly: false,
            overlay: None,
            requests: Vec::new(),
            notice: None,
            stock_low_only: false,
        }
    }

    /// How keys are read right now.
    pub fn mode(&self) -> Mode {
        if self.help {
            Mode::Help
        } else if let Some(overlay) = &self.overlay {
            match overlay {
                Overlay::Form(_) | Overlay::CommandLine(_) => Mode::Typing,
                Overlay::Confirm(_) => Mode::Confirming,
                _ => Mode::Viewing,
            }
        } else if self.filtering {
            Mode::Filtering
        } else {
            Mode::Normal {
                zoomed: self.zoomed,
            }
        }
    }

    pub fn filter(&self, area: Area) -> &str {
        &self.filters[area.index()]
    }

    /// The first row shown: the list never scrolls past its last page, even
    /// when it shrank (a filter, fresh data) since the user scrolled.
    pub fn scroll(&self, area: Area) -> usize {
        self.scroll[area.index()].min(self.last_page(area))
    }

    fn last_page(&self, area: Area) -> usize {
        self.rows(area)
            .saturating_sub(self.viewport[area.index()].max(1))
    }

    /// What the last frame had room for, per area: `rows[i]` list rows for [`Area::ALL`]`[i]`.
    pub fn fit(&mut self, rows: [usize; 4]) {
        self.viewport = rows;
    }

    /// The last command's result, if recent.
    pub fn current_notice(&self) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|(_, at)| self.now - *at < PROBLEM_SHOWN)
            .map(|(notice, _)| notice.as_str())
    }

    /// The problem to show now, if a recent one.
    pub fn current_problem(&self) -> Option<&str> {
        self.problem
            .as_ref()
            .filter(|(_, at)| self.now - *at < PROBLEM_SHOWN)
            .map(|(problem, _)| problem.as_str())
    }

    /// Whether the server ever answered this dashboard.
    pub fn has_data(&self) -> bool {
        self.version.is_some() || self.events_seen > 0
    }

    pub fn is_down(&self) -> bool {
        matches!(self.server, Server::Down { .. })
    }

    /// Time moved on: roll the day's revenue over and refresh derived lists.
    pub fn tick(&mut self, now: OffsetDateTime) {
        self.now = now;
        if now.date() != self.orders.revenue_day {
            self.orders.revenue_day = now.date();
            self.orders.revenue_today.clear();
        }
        self.search.refresh_top();
    }

    pub fn act(&mut self, action: Action) {
        match action {
            Action::Quit => self.should_quit = true,
            Action::FocusNext => self.focus = self.focus.step(1),
            Action::FocusPrev => self.focus = self.focus.step(-1),
            Action::Focus(direction) => self.focus = self.focus.towards(direction),
            Action::ToggleZoom => self.zoomed = !self.zoomed,
            Action::Unzoom => self.zoomed = false,
            Action::ToggleHelp => self.help = !self.help,
            Action::StartFilter => self.filtering = true,
            Action::FilterChar(c) => {
                self.filters[self.focus.index()].push(c);
                self.scroll[self.focus.index()] = 0;
            }
            Action::FilterBackspace => {
                self.filters[self.focus.index()].pop();
            }
            Action::FilterDone => self.filtering = false,
            Action::FilterCancel => {
                self.filtering = false;
                self.filters[self.focus.index()].clear();
            }
            Action::Refresh => self.refresh_requested = true,
            Action::Scroll(by) => self.move_cursor(i64::from(by)),
            Action::ScrollTop => self.move_cursor(i64::MIN / 2),
            Action::ScrollBottom => self.move_cursor(i64::MAX / 2),
            Action::Verb(verb) => self.verb(verb),
            Action::StartCommand => self.overlay = Some(Overlay::CommandLine(String::new())),
            Action::Type(_)
            | Action::TypeBackspace
            | Action::NextField
            | Action::Submit
            | Action::Confirm
            | Action::Dismiss => self.overlay_key(action),
        }
    }

    /// Scrolls one area's list; it stops at the top and at the last row.
    /// The mouse wheel: the view moves, and the selection stays in it.
    pub fn scroll_area(&mut self, area: Area, by: i32) {
        let last = self.last_page(area) as i64;
        let at = self.scroll(area) as i64;
        let top = (at + i64::from(by)).clamp(0, last) as usize;
        self.scroll[area.index()] = top;
        let shown = self.viewport[area.index()].max(1);
        let cursor = &mut self.cursor[area.index()];
        *cursor = (*cursor).clamp(top, top + shown - 1);
    }

    /// The selected row, within the list after its filter.
    pub fn selected(&self, area: Area) -> usize {
        self.cursor[area.index()].min(self.rows(area).saturating_sub(1))
    }

    /// Moves the selection of the focused list; the view follows it, and
    /// stops with the last row at the bottom.
    fn move_cursor(&mut self, by: i64) {
        let area = self.focus;
        let i = area.index();
        let last = self.rows(area).saturating_sub(1) as i64;
        let cursor = (self.selected(area) as i64)
            .saturating_add(by)
            .clamp(0, last) as usize;
        self.cursor[i] = cursor;
        let shown = self.viewport[i].max(1);
        let top = self.scroll(area);
        if cursor < top {
            self.scroll[i] = cursor;
        } else if cursor >= top + shown {
            self.scroll[i] = cursor + 1 - shown;
        }
    }

    /// How many rows the area's main list has, after its filter.
    pub(crate) fn rows(&self, area: Area) -> usize {
        match area {
            Area::Health => self.services.len(),
            Area::Stock => self.stock_rows().count(),
            Area::Orders => self.feed_rows().count(),
            Area::Search => self.query_rows().count(),
        }
    }

    /// The stock list after the filter (a SKU substring, case-insensitive)
    /// and `:stock low`.
    pub fn stock_rows(&self) -> impl Iterator<Item = &Stock> {
        let filter = self.filter(Area::Stock).to_lowercase();
        let low_only = self.stock_low_only;
        self.stock.items.iter().filter(move |s| {
            (!low_only || s.is_low())
                && (filter.is_empty() || s.sku.to_lowercase().contains(&filter))
        })
    }

    /// The order feed, newest first, after the filter (number, status or
    /// customer email).
    pub fn feed_rows(&self) -> impl Iterator<Item = &FeedLine> {
        let filter = self.filter(Area::Orders).to_lowercase();
        self.orders.feed.newest().filter(move |line| {
            filter.is_empty()
                || line.number.to_lowercase().contains(&filter)
                || line.status.contains(&filter)
                || line
                    .customer
                    .as_ref()
                    .is_some_and(|email| email.to_lowercase().contains(&filter))
        })
    }

    /// What the dashboard knows of an order, by id.
    pub fn order(&self, id: &str) -> Option<&OrderRow> {
        self.orders.orders.iter().find(|o| o.id == id)
    }

    /// The query stream, newest first, after the filter.
    pub fn query_rows(&self) -> impl Iterator<Item = &QueryLine> {
        let filter = self.filter(Area::Search).to_lowercase();
        self.search
            .stream
            .newest()
            .filter(move |line| filter.is_empty() || line.query.to_lowercase().contains(&filter))
    }

    /// The services after the filter (a name substring).
    pub fn service_rows(&self) -> impl Iterator<Item = &ServiceView> {
        let filter = self.filter(Area::Health).to_lowercase();
        self.services
            .iter()
            .filter(move |s| filter.is_empty() || s.name.contains(&filter))
    }

    /// Orders per status among the kept orders, in lifecycle order.
    pub fn order_counts(&self) -> Vec<(&'static str, usize)> {
        const STATUSES: [&str; 5] = ["pending", "paid", "shipped", "delivered", "cancelled"];
        STATUSES
            .iter()
            .map(|status| {
                let count = self
                    .orders
                    .orders
                    .iter()
                    .filter(|o| o.status == *status)
                    .count();
                (*status, count)
            })
            .collect()
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Health(health) => self.apply_health(health),
            Update::Rates(rates) => {
                for service in &mut self.services {
                    let rate = rates.get(service.name).copied().unwrap_or_default();
                    service
                        .rps_series
                        .push((rate.requests_per_second * 10.0).round() as u64);
                    service.rates = Some(rate);
                }
            }
            Update::Stock(Section::Missing) => {
                if self.stock.load != Load::Ready || self.stock.items.is_empty() {
                    self.stock.load = Load::Missing;
                }
            }
            Update::Stock(Section::Ready(StockPage { items, total })) => {
                self.stock.load = Load::Ready;
                self.stock.items = items;
                self.stock.total = total;
                self.sort_stock();
            }
            Update::Reservations(Section::Ready(count)) => {
                self.stock.active_reservations = Some(count);
            }
            Update::Reservations(Section::Missing) => self.stock.active_reservations = None,
            Update::Orders(Section::Missing) => {
                if self.orders.orders.is_empty() {
                    self.orders.load = Load::Missing;
                }
            }
            Update::Orders(Section::Ready(orders)) => {
                self.orders.load = Load::Ready;
                for order in &orders {
                    if let Some(row) = order_row(order, None, self.now) {
                        self.upsert_order(row);
                    }
                }
            }
            Update::SearchAnalytics(Section::Ready(analytics)) => {
                self.search.apply_analytics(&analytics);
            }
            Update::SearchAnalytics(Section::Missing) => self.search.from_server = false,
            Update::Event(event) => self.apply_event(&event),
            Update::Reachable => {
                self.server = Server::Up;
            }
            Update::Unreachable(reason) => {
                let since = match &self.server {
                    Server::Down { since, .. } => *since,
                    _ => self.now,
                };
                self.server = Server::Down { reason, since };
            }
            Update::Problem(problem) => self.problem = Some((problem, self.now)),
            Update::Outcome(Ok(done)) => self.notice = Some((done, self.now)),
            Update::Outcome(Err(refused)) => self.problem = Some((refused, self.now)),
            Update::Ledger { sku, movements } => {
                self.overlay = Some(Overlay::Ledger { sku, movements });
            }
            Update::SearchResults(results) => self.overlay = Some(Overlay::Search(results)),
        }
    }

    fn apply_health(&mut self, health: SystemHealth) {
        self.server = Server::Up;
        self.version = Some(health.version);
        self.uptime_seconds = Some(health.uptime_seconds);
        for service in &mut self.services {
            let report = health.services.iter().find(|s| s.service == service.name);
            service.status = report.map(|r| r.status);
            service.note = report.and_then(|r| {
                r.checks
                    .iter()
                    .find(|(_, check)| check.status != HealthStatus::Ok)
                    .map(|(name, check)| match &check.message {
                        Some(message) => format!("{name}: {message}"),
                        None => name.clone(),
                    })
            });
        }
    }

    fn apply_event(&mut self, event: &Event) {
        self.events_seen += 1;
        self.last_event = Some(LastEvent {
            id: event.id,
            kind: event.kind.clone(),
            at: event.occurred_at,
            summary: summarize(&event.data),
        });
        let (family, what) = event.kind.split_once('.').unwrap_or((&event.kind, ""));
        match family {
            "inventory" => self.apply_stock_event(event, what),
            "order" => self.apply_order_event(event, what),
            "payment" => self.apply_payment_event(event, what),
            "search" if what == "query" => self.search.apply_query(event),
            _ => {}
        }
    }

    fn apply_stock_event(&mut self, event: &Event, what: &str) {
        let data = &event.data;
        let sku = text(data, "sku");
        self.stock.activity.add(event.occurred_at, 1);
        if let Some(sku) = &sku {
            self.stock.movements.push(MovementLine {
                at: event.occurred_at,
                sku: sku.clone(),
                what: what.to_owned(),
                on_hand: int(data, "on_hand"),
                on_hand_delta: int(data, "delta"),
                reserved_units: int(data, "quantity"),
                available: int(data, "available"),
                reason: text(data, "reason"),
            });
        }
        let (Some(sku), Some(on_hand), Some(reserved), Some(available)) = (
            sku,
            int(data, "on_hand"),
            int(data, "reserved"),
            int(data, "available"),
        ) else {
            return;
        };
        let threshold = int(data, "low_stock_threshold");
        self.stock.load = Load::Ready;
        match self.stock.items.iter_mut().find(|s| s.sku == sku) {
            Some(stock) => {
                stock.on_hand = on_hand;
                stock.reserved = reserved;
                stock.available = available;
                if let Some(threshold) = threshold {
                    stock.low_stock_threshold = threshold;
                }
                stock.updated_at = event.occurred_at;
            }
            None => {
                self.stock.total += 1;
                self.stock.items.push(Stock {
                    sku,
                    on_hand,
                    reserved,
                    available,
                    low_stock_threshold: threshold.unwrap_or(0),
                    updated_at: event.occurred_at,
                });
            }
        }
        self.sort_stock();
    }

    fn sort_stock(&mut self) {
        self.stock
            .items
            .sort_by(|a, b| a.available.cmp(&b.available).then(a.sku.cmp(&b.sku)));
        self.stock.items.truncate(STOCK_CAP);
    }

    fn apply_order_event(&mut self, event: &Event, what: &str) {
        let status = if what == "created" { "pending" } else { what };
        let Some(row) = order_row(&event.data, Some(status), event.occurred_at) else {
            return;
        };
        self.orders.load = Load::Ready;
        self.orders.feed.push(FeedLine {
            at: event.occurred_at,
            order_id: row.id.clone(),
            number: row.number.clone(),
            status: if what == "created" {
                "new".to_owned()
            } else {
                what.to_owned()
            },
            total_cents: row.total_cents,
            currency: row.currency.clone(),
            customer: row.customer.clone(),
        });
        if what == "paid"
            && let Some(total) = row.total_cents
        {
            if event.occurred_at.date() == self.orders.revenue_day {
                *self
                    .orders
                    .revenue_today
                    .entry(row.currency.clone())
                    .or_default() += total;
            }
            self.orders
                .revenue
                .add(event.occurred_at, total.max(0).unsigned_abs());
        }
        self.upsert_order(row);
    }

    /// A payment's news goes to its order's row; a refund also joins the
    /// feed with the amount given back (it does not move the order's status).
    fn apply_payment_event(&mut self, event: &Event, what: &str) {
        let data = &event.data;
        let (Some(order_id), Some(number)) = (text(data, "order_id"), text(data, "number")) else {
            return;
        };
        let method = text(data, "method").unwrap_or_else(|| "payment".to_owned());
        if let Some(order) = self.orders.orders.iter_mut().find(|o| o.id == order_id) {
            order.payment = Some(format!("{method} {what}"));
        }
        if what != "refunded" {
            return;
        }
        self.orders.load = Load::Ready;
        self.orders.feed.push(FeedLine {
            at: event.occurred_at,
            order_id,
            number,
            status: "refunded".to_owned(),
            total_cents: int(data, "amount_cents").map(|amount| -amount),
            currency: text(data, "currency").unwrap_or_else(|| "USD".to_owned()),
            customer: text(data, "customer_email"),
        });
    }

    /// Adds an order or updates the one with its id; the newest stay.
    fn upsert_order(&mut self, row: OrderRow) {
        let orders = &mut self.orders.orders;
        if let Some(known) = orders.iter_mut().find(|o| o.id == row.id) {
            known.status = row.status;
            known.total_cents = row.total_cents.or(known.total_cents);
            known.customer = row.customer.or(known.customer.take());
            known.items = row.items.or(known.items.take());
            known.payment = row.payment.or(known.payment.take());
            known.tracking = row.tracking.or(known.tracking.take());
            return;
        }
        let at = orders
            .iter()
            .position(|o| o.at <= row.at)
            .unwrap_or(orders.len());
        orders.insert(at, row);
        orders.truncate(FEED_CAP);
    }
}

impl SearchView {
    fn apply_query(&mut self, event: &Event) {
        let data = &event.data;
        let Some(query) = text(data, "query").or_else(|| text(data, "q")) else {
            return;
        };
        let results = uint(data, "result_count")
            .or_else(|| uint(data, "total"))
            .or_else(|| {
                data.get("results")
                    .and_then(Value::as_array)
                    .map(|r| r.len() as u64)
            });
        let cache_hit = data.get("cache_hit").and_then(Value::as_bool);
        let latency_ms = data.get("latency_ms").and_then(Value::as_f64);
        self.volume.add(event.occurred_at, 1);
        if let Some(hit) = cache_hit {
            self.cache_known += 1;
            self.cache_hits += u64::from(hit);
        }
        let key = query.trim().to_lowercase();
        bump(&mut self.counts, &key);
        if results == Some(0) {
            bump(&mut self.zero_counts, &key);
        }
        self.stale = true;
        self.stream.push(QueryLine {
            at: event.occurred_at,
            query,
            results,
            latency_ms,
            cache_hit,
        });
    }

    /// The server's analytics, when it has them, replace the lists counted
    /// from the stream (they cover more than this dashboard has seen).
    fn apply_analytics(&mut self, analytics: &Value) {
        let list = |names: &[&str]| -> Option<Vec<(String, u64)>> {
            let items = names
                .iter()
                .find_map(|name| analytics.get(*name).and_then(Value::as_array))?;
            Some(
                items
                    .iter()
                    .filter_map(|item| {
                        let query =
                            text(item, "query").or_else(|| item.as_str().map(str::to_owned))?;
                        Some((query, uint(item, "count").unwrap_or(0)))
                    })
                    .collect(),
            )
        };
        if let Some(top) = list(&["top_queries", "top"]) {
            self.top = top;
            self.zero = list(&["zero_result_queries", "zero_results", "zero"]).unwrap_or_default();
            self.from_server = true;
        }
    }

    fn refresh_top(&mut self) {
        if !self.stale || self.from_server {
            return;
        }
        self.stale = false;
        self.top = ranked(&self.counts);
        self.zero = ranked(&self.zero_counts);
    }

    /// Share of queries the cache answered, when the events said.
    pub fn hit_ratio(&self) -> Option<f64> {
        (self.cache_known > 0).then(|| self.cache_hits as f64 / self.cache_known as f64)
    }

    pub fn total_queries(&self) -> u64 {
        self.counts.values().sum()
    }
}

fn bump(counts: &mut HashMap<String, u64>, key: &str) {
    if let Some(count) = counts.get_mut(key) {
        *count += 1;
        return;
    }
    if counts.len() >= QUERY_CAP {
        // Forget the one-offs; what is popular has a count above one.
        counts.retain(|_, count| *count > 1);
        if counts.len() >= QUERY_CAP {
            return;
        }
    }
    counts.insert(key.to_owned(), 1);
}

/// The ten most frequent, ties by name so the screen does not flicker.
fn ranked(counts: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = counts.iter().map(|(q, c)| (q.clone(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(10);
    all
}

/// An order from an event's data or a list item. Event data may be the
/// order itself or wrap it in `order`; anything missing stays unknown.
fn order_row(data: &Value, status: Option<&str>, at: OffsetDateTime) -> Option<OrderRow> {
    let order = data.get("order").filter(|o| o.is_object()).unwrap_or(data);
    let id = text(order, "id").or_else(|| text(data, "order_id"))?;
    let number = text(order, "number")
        .or_else(|| uint(order, "number").map(|n| n.to_string()))
        .unwrap_or_else(|| id.clone());
    let status = text(order, "status")
        .filter(|_| status.is_none())
        .or_else(|| status.map(str::to_owned))
        .unwrap_or_else(|| "pending".to_owned());
    let created = text(order, "created_at").and_then(|t| {
        OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
    });
    let items = order.get("items").and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(|item| {
                Some(format!(
                    "{}× {}",
                    int(item, "quantity")?,
                    text(item, "sku")?
                ))
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    Some(OrderRow {
        id,
        number,
        status,
        total_cents: int(order, "total_cents"),
        currency: text(order, "currency").unwrap_or_else(|| "USD".to_owned()),
        customer: text(order, "customer_email"),
        items: items.filter(|items| !items.is_empty()),
        payment: None,
        tracking: text(order, "tracking_number"),
        at: created.unwrap_or(at),
    })
}

/// A few words about an event for the status line: the first of its data's
/// telling fields that is there.
fn summarize(data: &Value) -> String {
    const FIELDS: [&str; 8] = [
        "email",
        "sku",
        "number",
        "query",
        "recipient",
        "name",
        "id",
        "user_id",
    ];
    FIELDS
        .iter()
        .find_map(|field| text(data, field))
        .unwrap_or_default()
}

fn text(data: &Value, field: &str) -> Option<String> {
    data.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn int(data: &Value, field: &str) -> Option<i64> {
    data.get(field).and_then(Value::as_i64)
}

fn uint(data: &Value, field: &str) -> Option<u64> {
    data.get(field).and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sample;

    fn event(id: u64, kind: &str, at: OffsetDateTime, data: Value) -> Update {
        Update::Event(Event {
            id,
            kind: kind.to_owned(),
            occurred_at: at,
            data,
        })
    }

    #[test]
    fn tab_and_arrows_move_the_focus_around_the_grid() {
        let mut app = App::new(sample::noon());
        assert_eq!(app.focus, Area::Health);
        app.act(Action::FocusNext);
        assert_eq!(app.focus, Area::Stock);
        app.act(Action::FocusPrev);
        app.act(Action::FocusPrev);
        assert_eq!(app.focus, Area::Search, "Shift-Tab wraps");
        app.act(Action::Focus(Direction::Up));
        assert_eq!(app.focus, Area::Stock);
        app.act(Action::Focus(Direction::Left));
        assert_eq!(app.focus, Area::Health);
        app.act(Action::Focus(Direction::Down));
        assert_eq!(app.focus, Area::Orders);
    }

    #[test]
    fn zoom_help_and_quit() {
        let mut app = App::new(sample::noon());
        app.act(Action::ToggleZoom);
        assert!(app.zoomed);
        assert_eq!(app.mode(), Mode::Normal { zoomed: true });
        app.act(Action::Unzoom);
        assert!(!app.zoomed);
        app.act(Action::ToggleHelp);
        assert_eq!(app.mode(), Mode::Help);
        app.act(Action::ToggleHelp);
        app.act(Action::Refresh);
        assert!(app.refresh_requested);
        app.act(Action::Quit);
        assert!(app.should_quit);
    }

    #[test]
    fn a_filter_applies_to_the_focused_list_only() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::FocusNext);
        app.act(Action::StartFilter);
        assert_eq!(app.mode(), Mode::Filtering);
        for c in "sku-0042".chars() {
            app.act(Action::FilterChar(c));
        }
        app.act(Action::FilterDone);
        let skus: Vec<&str> = app.stock_rows().map(|s| s.sku.as_str()).collect();
        assert_eq!(skus, ["SKU-0042"]);
        assert!(app.feed_rows().count() > 1, "other areas are not filtered");
        app.act(Action::StartFilter);
        app.act(Action::FilterBackspace);
        assert_eq!(app.filter(Area::Stock), "sku-004");
        app.act(Action::FilterCancel);
        assert_eq!(app.filter(Area::Stock), "");
        assert_eq!(app.stock_rows().count(), app.stock.items.len());
    }

    #[test]
    fn scrolling_stops_at_both_ends() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::FocusNext);
        app.act(Action::Scroll(-5));
        assert_eq!(app.scroll(Area::Stock), 0);
        app.act(Action::Scroll(1000));
        assert_eq!(app.scroll(Area::Stock), app.stock.items.len() - 1);
        app.act(Action::ScrollTop);
        assert_eq!(app.scroll(Area::Stock), 0);
        app.scroll_area(Area::Orders, 3);
        assert_eq!(app.scroll(Area::Orders), 3);
    }

    #[test]
    fn the_order_filter_matches_customer_emails() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::Focus(Direction::Down));
        app.act(Action::StartFilter);
        for c in "C21@EXAMPLE".chars() {
            app.act(Action::FilterChar(c));
        }
        let numbers: Vec<&str> = app.feed_rows().map(|l| l.number.as_str()).collect();
        assert!(!numbers.is_empty());
        assert!(numbers.iter().all(|n| *n == "ORD-001021"), "{numbers:?}");
    }

    #[test]
    fn a_refund_joins_the_order_feed_with_the_amount_given_back() {
        let now = sample::noon();
        let mut app = App::new(now);
        let order = json!({"id": "ord_1", "number": "ORD-000001", "total_cents": 2500,
                           "currency": "USD", "customer_email": "a@example.com"});
        app.apply(event(1, "order.created", now, order));
        let refund = json!({"order_id": "ord_1", "number": "ORD-000001", "method": "card",
                            "currency": "USD", "amount_cents": 1000, "customer_email": "a@example.com"});
        app.apply(event(2, "payment.refunded", now, refund));
        let newest = app.feed_rows().next().expect("a feed line");
        assert_eq!(newest.status, "refunded");
        assert_eq!(newest.total_cents, Some(-1000));
        assert_eq!(newest.number, "ORD-000001");
        let order = app.order("ord_1").expect("the order");
        assert_eq!(order.status, "pending", "a refund does not move the status");
        assert_eq!(order.payment.as_deref(), Some("card refunded"));
    }

    #[test]
    fn g_and_shift_g_go_to_the_first_and_last_page_and_no_further() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::FocusNext);
        // The last frame showed 10 rows of the stock list.
        app.fit([9, 10, 10, 10]);
        let skus = app.stock_rows().count();
        app.act(Action::ScrollBottom);
        assert_eq!(
            app.scroll(Area::Stock),
            skus - 10,
            "the last row at the bottom"
        );
        app.act(Action::Scroll(10));
        assert_eq!(
            app.scroll(Area::Stock),
            skus - 10,
            "PgDn stops at the last page"
        );
        assert_eq!(app.selected(Area::Stock), skus - 1);
        app.act(Action::Scroll(-10));
        assert_eq!(app.selected(Area::Stock), skus - 11);
        assert_eq!(
            app.scroll(Area::Stock),
            skus - 11,
            "the view follows the selection"
        );
        app.act(Action::ScrollTop);
        assert_eq!((app.scroll(Area::Stock), app.selected(Area::Stock)), (0, 0));
    }

    #[test]
    fn a_sale_is_a_negative_change_of_stock_on_hand() {
        let now = sample::noon();
        let mut app = App::new(now);
        // What the server sends when a reservation of 1 becomes a sale.
        let committed = json!({"sku": "MUG-01", "kind": "commit", "on_hand": 24, "reserved": 0,
                               "available": 24, "low_stock_threshold": 5, "delta": -1, "quantity": 1});
        app.apply(event(1, "inventory.committed", now, committed));
        let movement = app.stock.movements.newest().next().expect("a movement");
        assert_eq!(movement.on_hand, Some(24));
        assert_eq!(movement.on_hand_delta, Some(-1));
        assert_eq!(movement.reserved_units, Some(1));
    }

    #[test]
    fn stock_events_update_the_list_lowest_first() {
        let now = sample::noon();
        let mut app = App::new(now);
        assert_eq!(app.stock.load, Load::Waiting);
        app.apply(Update::Stock(Section::Missing));
        assert_eq!(app.stock.load, Load::Missing);
        let stock = |sku: &str, available| {
            json!({"sku": sku, "on_hand": available, "reserved": 0, "available": available,
                   "low_stock_threshold": 3, "reason": "delivery", "delta": 5})
        };
        app.apply(event(1, "inventory.adjusted", now, stock("B", 10)));
        app.apply(event(2, "inventory.adjusted", now, stock("A", 20)));
        assert_eq!(
            app.stock.load,
            Load::Ready,
            "an event proves the inventory exists"
        );
        app.apply(event(3, "inventory.reserved", now, stock("A", 2)));
        let skus: Vec<&str> = app.stock.items.iter().map(|s| s.sku.as_str()).collect();
        assert_eq!(skus, ["A", "B"]);
        assert!(app.stock.items[0].is_low());
        assert_eq!(app.stock.movements.len(), 3);
        let latest = app.stock.movements.newest().next().expect("a movement");
        assert_eq!(latest.what, "reserved");
        assert_eq!(latest.reason.as_deref(), Some("delivery"));
    }

    #[test]
    fn orders_feed_counts_and_revenue_today() {
        let now = sample::noon();
        let mut app = App::new(now);
        let order = |id: &str, total: i64| json!({"id": id, "number": id.to_uppercase(), "total_cents": total, "currency": "USD"});
        let yesterday = now - time::Duration::days(1);
        app.apply(event(1, "order.created", yesterday, order("o1", 500)));
        app.apply(event(2, "order.paid", yesterday, order("o1", 500)));
        app.apply(event(3, "order.created", now, order("o2", 1999)));
        app.apply(event(4, "order.paid", now, order("o2", 1999)));
        app.apply(event(5, "order.created", now, order("o3", 100)));
        // The data may wrap the order, and lack fields.
        app.apply(event(
            6,
            "order.shipped",
            now,
            json!({"order": {"id": "o1"}}),
        ));
        assert_eq!(app.orders.load, Load::Ready);
        assert_eq!(app.orders.feed.len(), 6);
        assert_eq!(app.orders.revenue_today.get("USD"), Some(&1999));
        let counts: BTreeMap<&str, usize> = app.order_counts().into_iter().collect();
        assert_eq!(counts["pending"], 1);
        assert_eq!(counts["paid"], 1);
        assert_eq!(counts["shipped"], 1);
        assert_eq!(app.orders.orders.len(), 3);
        // Midnight: a new day's revenue starts at zero.
        app.tick(now + time::Duration::days(1));
        assert!(app.orders.revenue_today.is_empty());
    }

    #[test]
    fn searches_feed_top_and_zero_result_lists() {
        let now = sample::noon();
        let mut app = App::new(now);
        let query = |q: &str, n: u64, hit: bool| json!({"query": q, "result_count": n, "latency_ms": 2.5, "cache_hit": hit});
        app.apply(event(1, "search.query", now, query("Boots", 4, false)));
        app.apply(event(2, "search.query", now, query("boots", 4, true)));
        app.apply(event(3, "search.query", now, query("zzz", 0, false)));
        app.apply(event(
            4,
            "search.query",
            now,
            json!({"query": "hat", "results": [1, 2]}),
        ));
        app.tick(now);
        assert_eq!(app.search.top[0], ("boots".to_owned(), 2));
        assert_eq!(app.search.zero, vec![("zzz".to_owned(), 1)]);
        assert_eq!(app.search.hit_ratio(), Some(1.0 / 3.0));
        let hat = app.query_rows().next().expect("newest first");
        assert_eq!((hat.query.as_str(), hat.results), ("hat", Some(2)));
        // The server's own analytics win when it has them.
        app.apply(Update::SearchAnalytics(Section::Ready(json!({
            "top_queries": [{"query": "socks", "count": 90}],
            "zero_result_queries": [],
        }))));
        app.tick(now);
        assert_eq!(app.search.top, vec![("socks".to_owned(), 90)]);
        assert!(app.search.from_server);
    }

    #[test]
    fn the_server_going_away_keeps_the_data_and_coming_back_clears_the_alarm() {
        let now = sample::noon();
        let mut app = sample::normal(now);
        let skus = app.stock.items.len();
        app.apply(Update::Unreachable("refused".into()));
        app.tick(now + time::Duration::seconds(5));
        app.apply(Update::Unreachable("refused again".into()));
        let Server::Down { since, reason } = &app.server else {
            panic!("down: {:?}", app.server);
        };
        assert_eq!(*since, now, "down since the first failure");
        assert_eq!(reason, "refused again");
        assert_eq!(app.stock.items.len(), skus, "the last data stays");
        app.apply(Update::Reachable);
        assert_eq!(app.server, Server::Up);
    }

    #[test]
    fn every_list_is_bounded() {
        let now = sample::noon();
        let mut app = App::new(now);
        for i in 0..(FEED_CAP as u64 + 50) {
            let data = json!({"id": format!("o{i}"), "number": i.to_string(), "total_cents": 1});
            app.apply(event(i, "order.created", now, data));
            app.apply(event(
                i,
                "search.query",
                now,
                json!({"query": format!("q{i}")}),
            ));
        }
        assert_eq!(app.orders.feed.len(), FEED_CAP);
        assert_eq!(app.orders.orders.len(), FEED_CAP);
        assert_eq!(app.search.stream.len(), FEED_CAP);
        let mut counts = HashMap::new();
        for i in 0..(QUERY_CAP + 10) {
            bump(&mut counts, &format!("q{i}"));
        }
        assert!(counts.len() <= QUERY_CAP);
        let mut rates = BTreeMap::new();
        rates.insert("users".to_owned(), Rates::default());
        for _ in 0..(SERIES_CAP + 5) {
            app.apply(Update::Rates(rates.clone()));
        }
        assert_eq!(app.services[0].rps_series.len(), SERIES_CAP);
    }

    #[test]
    fn series_fill_quiet_buckets_with_zeros() {
        let start = sample::noon();
        let mut series = Series::new(60);
        series.add(start, 5);
        series.add(start + time::Duration::seconds(30), 1);
        series.add(start + time::Duration::minutes(2), 7);
        let values = series.values(start + time::Duration::minutes(3), 4);
        assert_eq!(values, vec![6, 0, 7, 0]);
    }

    #[test]
    fn problems_fade_from_the_status_line() {
        let now = sample::noon();
        let mut app = App::new(now);
        app.apply(Update::Problem("403".into()));
        assert_eq!(app.current_problem(), Some("403"));
        app.tick(now + PROBLEM_SHOWN);
        assert_eq!(app.current_problem(), None);
    }

    #[test]
    fn unknown_events_only_move_the_status_line() {
        let now = sample::noon();
        let mut app = App::new(now);
        app.apply(event(
            7,
            "user.registered",
            now,
            json!({"email": "a@example.com"}),
        ));
        assert_eq!(app.events_seen, 1);
        let last = app.last_event.as_ref().expect("last event");
        assert_eq!((last.id, last.summary.as_str()), (7, "a@example.com"));
        assert!(app.orders.feed.is_empty() && app.stock.movements.is_empty());
    }
}
