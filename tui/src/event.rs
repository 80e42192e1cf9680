//! The one event enum the UI loop selects over, and the data messages the
//! background feed sends into it.

use std::collections::BTreeMap;

use shop_wire::SystemHealth;
use shop_wire::inventory::Stock;
use shop_wire::notifications::Notification;
use shop_wire::orders::Order;
use shop_wire::search::SearchAnalytics;

use crate::metrics::Rates;

/// Everything that can make the dashboard change.
#[derive(Debug)]
pub enum AppEvent {
    /// A key, mouse or resize event from the terminal.
    Input(crossterm::event::Event),
    /// Time passed: ages and clocks on screen move on.
    Tick,
    /// News from the server, via the feed task.
    Data(Update),
    /// SIGTERM, SIGINT or SIGHUP: leave cleanly.
    Signal,
}

/// One piece of news from the feed task. Each replaces or extends one part
/// of the state; none of them blocks the UI.
#[derive(Debug)]
pub enum Update {
    /// `GET /health` answered (200 or 503: both carry the report).
    Health(SystemHealth),
    /// Per-service rates between the last two metric scrapes.
    Rates(BTreeMap<String, Rates>),
    /// The stock page, lowest available first.
    Stock(Section<StockPage>),
    /// How many reservations are active.
    Reservations(Section<u64>),
    /// The latest orders, newest first.
    Orders(Section<Vec<Order>>),
    /// How many returns wait on the shop (requested, approved or received).
    OpenReturns(Section<u64>),
    /// `GET /api/orders/analytics`: today's net revenue.
    OrderAnalytics(Section<shop_wire::orders::OrderAnalytics>),
    /// `GET /api/search/analytics`.
    SearchAnalytics(Section<SearchAnalytics>),
    /// The latest notifications, newest first, then the dead ones.
    Notifications(Section<Vec<Notification>>),
    /// One event from the log or the live stream, in order.
    Event(shop_wire::Event),
    /// The server could be reached again.
    Reachable,
    /// The server could not be reached; the reason, for the banner.
    Unreachable(String),
    /// Something answered with an error that is not about reachability
    /// (e.g. the login lacks the staff role); shown once in the status line.
    Problem(String),
    /// A confirmed command was answered: what it did, or why it was refused.
    Outcome(Result<String, String>),
    /// A SKU's ledger, newest first, as asked from the dashboard.
    Ledger {
        sku: String,
        movements: Vec<shop_wire::inventory::Movement>,
    },
    /// A notification's details, as asked from the dashboard.
    Notification(Box<Notification>),
    /// A product search asked with `:search`.
    SearchResults(shop_wire::search::SearchResponse),
}

/// A part of the server that may not exist yet: a route answering 404 is
/// "no data yet", not an error to shout about.
#[derive(Debug, Clone, PartialEq)]
pub enum Section<T> {
    Ready(T),
    Missing,
}

impl<T> Section<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Section<U> {
        match self {
            Section::Ready(value) => Section::Ready(f(value)),
            Section::Missing => Section::Missing,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StockPage {
    pub items: Vec<Stock>,
    /// SKUs the server has, of which `items` are the lowest.
    pub total: u64,
}
