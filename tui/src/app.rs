//! The dashboard's state, and every way it changes: data from the feed,
//! actions from the keyboard, and the passing of time.
//!
//! `App` only routes: each area in [`crate::area`] owns its state, drawing
//! and action keys; here live what belongs to no area (focus, zoom, the
//! server's reachability, the status line, what is open on top) and the
//! dispatch of updates, keys and ticks to the areas.
//!
//! Pure: no I/O and no clock of its own (the caller passes `now`), so tests
//! build any screen they like and render it. Every list is bounded (the
//! feeds keep the last [`FEED_CAP`] entries), so a dashboard left open all
//! day uses the same memory at night as in the morning.

use shop_wire::events::{DecodeError, EventData};
use shop_wire::{Event, SystemHealth};
use time::OffsetDateTime;

use crate::actions::Request;
pub use crate::area::health::{ServiceView, Services};
pub use crate::area::notifications::{NotificationRow, NotificationsView};
pub use crate::area::orders::{FeedLine, OrderRow, OrdersView, Step};
pub use crate::area::search::{QUERY_CAP, QueryLine, SearchView};
pub use crate::area::stock::{MovementLine, STOCK_CAP, StockView};
use crate::area::{Act, Panel};
pub use crate::area::{Area, Direction, Load};
use crate::event::{Section, Update};
pub use crate::interact::Overlay;
use crate::keymap::{Action, Mode, Verb};
pub use crate::ring::SERIES_CAP;
pub use shop_wire::health::SERVICES;

/// Entries kept in each live feed (orders, order transitions, queries,
/// stock movements, notifications).
pub const FEED_CAP: usize = 1000;
/// How long a problem stays in the status line after it last happened.
pub const PROBLEM_SHOWN: time::Duration = time::Duration::seconds(30);

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
    /// The grid area to go back to when an area that only shows zoomed closes.
    back: Area,
    pub zoomed: bool,
    pub help: bool,
    /// Typing a filter for the focused area.
    pub filtering: bool,
    pub server: Server,
    pub version: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub services: Services,
    pub stock: StockView,
    pub orders: OrdersView,
    pub search: SearchView,
    pub notifications: NotificationsView,
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
}

impl App {
    pub fn new(now: OffsetDateTime) -> Self {
        App {
            now,
            url: String::new(),
            focus: Area::Health,
            back: Area::Health,
            zoomed: false,
            help: false,
            filtering: false,
            server: Server::Connecting,
            version: None,
            uptime_seconds: None,
            services: Services::default(),
            stock: StockView::default(),
            orders: OrdersView::new(now),
            search: SearchView::default(),
            notifications: NotificationsView::default(),
            events_seen: 0,
            last_event: None,
            problem: None,
            should_quit: false,
            refresh_requested: false,
            readonly: false,
            overlay: None,
            requests: Vec::new(),
            notice: None,
        }
    }

    pub fn panel(&self, area: Area) -> &dyn Panel {
        match area {
            Area::Health => &self.services,
            Area::Stock => &self.stock,
            Area::Orders => &self.orders,
            Area::Search => &self.search,
            Area::Notifications => &self.notifications,
        }
    }

    fn panel_mut(&mut self, area: Area) -> &mut dyn Panel {
        match area {
            Area::Health => &mut self.services,
            Area::Stock => &mut self.stock,
            Area::Orders => &mut self.orders,
            Area::Search => &mut self.search,
            Area::Notifications => &mut self.notifications,
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
        self.panel(area).list().filter()
    }

    /// The first row shown of an area's list.
    pub fn scroll(&self, area: Area) -> usize {
        let panel = self.panel(area);
        panel.list().scroll(panel.row_count())
    }

    /// The selected row of an area's list, after its filter.
    pub fn selected(&self, area: Area) -> usize {
        let panel = self.panel(area);
        panel.list().selected(panel.row_count())
    }

    /// What the last frame had room for: `rows[i]` list rows for [`Area::ALL`]`[i]`.
    pub fn fit(&mut self, rows: [usize; Area::COUNT]) {
        for area in Area::ALL {
            self.panel_mut(area).list_mut().fit(rows[area.index()]);
        }
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
        self.orders.tick(now);
        self.search.tick();
    }

    /// Shows an area full screen (`:orders`, `:notifications`).
    pub(crate) fn show(&mut self, area: Area) {
        self.focus_on(area);
        self.zoomed = true;
    }

    fn focus_on(&mut self, area: Area) {
        if Area::GRID.contains(&self.focus) {
            self.back = self.focus;
        }
        self.focus = area;
    }

    /// Back to the grid; an area that is not in it hands the focus back.
    fn unzoom(&mut self) {
        self.zoomed = false;
        if !Area::GRID.contains(&self.focus) {
            self.focus = self.back;
        }
    }

    pub fn act(&mut self, action: Action) {
        let focus = self.focus;
        match action {
            Action::Quit => self.should_quit = true,
            Action::FocusNext => self.focus_on(focus.step(1, self.zoomed)),
            Action::FocusPrev => self.focus_on(focus.step(-1, self.zoomed)),
            Action::Focus(direction) => self.focus_on(focus.towards(direction)),
            Action::ToggleZoom if self.zoomed => self.unzoom(),
            Action::ToggleZoom => self.zoomed = true,
            Action::Unzoom => self.unzoom(),
            Action::ToggleHelp => self.help = !self.help,
            Action::StartFilter => self.filtering = true,
            Action::FilterChar(c) => self.panel_mut(focus).list_mut().type_char(c),
            Action::FilterBackspace => self.panel_mut(focus).list_mut().backspace(),
            Action::FilterDone => self.filtering = false,
            Action::FilterCancel => {
                self.filtering = false;
                self.panel_mut(focus).list_mut().clear();
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

    /// An action key on the focused area's selected row: the area says
    /// what it leads to.
    fn verb(&mut self, verb: Verb) {
        if verb.changes() && self.readonly {
            return self.refuse("read-only (--readonly): actions are off");
        }
        match self.panel(self.focus).verb(verb) {
            Some(Act::Open(overlay)) => self.overlay = Some(overlay),
            Some(Act::Ask(request)) => self.requests.push(request),
            Some(Act::Refuse(why)) => self.refuse(&why),
            None => self.refuse(verb.where_to()),
        }
    }

    pub(crate) fn refuse(&mut self, why: &str) {
        self.problem = Some((why.to_owned(), self.now));
    }

    /// Scrolls one area's list; it stops at the top and at the last row.
    /// The mouse wheel: the view moves, and the selection stays in it.
    pub fn scroll_area(&mut self, area: Area, by: i32) {
        let panel = self.panel_mut(area);
        let rows = panel.row_count();
        panel.list_mut().scroll_by(by, rows);
    }

    /// Moves the selection of the focused list.
    fn move_cursor(&mut self, by: i64) {
        let panel = self.panel_mut(self.focus);
        let rows = panel.row_count();
        panel.list_mut().move_cursor(by, rows);
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Health(health) => self.apply_health(&health),
            Update::Rates(rates) => self.services.apply_rates(&rates),
            Update::Stock(Section::Missing) => self.stock.apply_missing(),
            Update::Stock(Section::Ready(page)) => self.stock.apply_page(page),
            Update::Reservations(Section::Ready(count)) => {
                self.stock.active_reservations = Some(count);
            }
            Update::Reservations(Section::Missing) => self.stock.active_reservations = None,
            Update::Orders(Section::Missing) => self.orders.apply_missing(),
            Update::Orders(Section::Ready(orders)) => self.orders.apply_list(&orders),
            Update::OpenReturns(Section::Ready(count)) => self.orders.open_returns = Some(count),
            Update::OpenReturns(Section::Missing) => self.orders.open_returns = None,
            Update::OrderAnalytics(Section::Ready(analytics)) => {
                self.orders.apply_analytics(&analytics);
            }
            Update::OrderAnalytics(Section::Missing) => {}
            Update::SearchAnalytics(Section::Ready(analytics)) => {
                self.search.apply_analytics(&analytics);
            }
            Update::SearchAnalytics(Section::Missing) => self.search.apply_missing(),
            Update::Notifications(Section::Ready(list)) => self.notifications.apply_list(&list),
            Update::Notifications(Section::Missing) => self.notifications.apply_missing(),
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
            Update::Notification(notification) => {
                self.overlay = Some(Overlay::Notification(notification));
            }
        }
    }

    fn apply_health(&mut self, health: &SystemHealth) {
        self.server = Server::Up;
        self.version = Some(health.version.clone());
        self.uptime_seconds = Some(health.uptime_seconds);
        self.services.apply_health(health);
    }

    /// Every event moves the status line; its typed payload goes to every
    /// area, each taking the kinds it shows. A kind this build does not
    /// know (a newer server) only moves the status line.
    fn apply_event(&mut self, event: &Event) {
        self.events_seen += 1;
        let data = event.decode();
        self.last_event = Some(LastEvent {
            id: event.id,
            kind: event.kind.clone(),
            at: event.occurred_at,
            summary: data.as_ref().map(summary).unwrap_or_default(),
        });
        let data = match data {
            Ok(data) => data,
            Err(DecodeError::UnknownKind(_)) => return,
            Err(err) => {
                // A kind both sides know, in a shape they disagree on.
                let problem = format!("event {} could not be read: {err}", event.id);
                return self.refuse(&problem);
            }
        };
        for area in Area::ALL {
            self.panel_mut(area).event(event.occurred_at, &data);
        }
    }
}

/// A few words about an event for the status line: who or what it is about.
fn summary(data: &EventData) -> String {
    let text = match data {
        EventData::UserRegistered(e)
        | EventData::UserEmailVerified(e)
        | EventData::UserPasswordResetRequested(e) => e.email.as_str(),
        EventData::UserLoggedIn(e) => e.user_id.as_str(),
        EventData::UserLoggedOut(e) | EventData::UserSessionRevoked(e) => e.user_id.as_str(),
        EventData::UserRoleChanged(e) => e.user_id.as_str(),
        EventData::UserPasswordChanged(e) => e.user_id.as_str(),
        EventData::UserUpdated(e) => e.user_id.as_str(),
        EventData::CartCreated(e)
        | EventData::CartUpdated(e)
        | EventData::CartMerged(e)
        | EventData::CartExpired(e)
        | EventData::CartCheckedOut(e) => e.id.as_str(),
        EventData::OrderCreated(o)
        | EventData::OrderPaid(o)
        | EventData::OrderShipped(o)
        | EventData::OrderPartiallyShipped(o)
        | EventData::OrderDelivered(o)
        | EventData::OrderCancelled(o) => o.number.as_str(),
        EventData::ReturnRequested(r)
        | EventData::ReturnApproved(r)
        | EventData::ReturnRejected(r)
        | EventData::ReturnReceived(r)
        | EventData::ReturnRefunded(r) => r.order_number.as_str(),
        EventData::InvoiceIssued(e) => e.number.as_str(),
        EventData::PaymentSucceeded(p)
        | EventData::PaymentPending(p)
        | EventData::PaymentFailed(p)
        | EventData::PaymentRefunded(p)
        | EventData::PaymentRefundFailed(p) => p.number.as_str(),
        EventData::InventoryAdjusted(e)
        | EventData::InventoryReserved(e)
        | EventData::InventoryReleased(e)
        | EventData::InventoryCommitted(e)
        | EventData::InventoryExpired(e)
        | EventData::InventoryReconciled(e) => e.sku.as_str(),
        EventData::InventoryLowStock(e) => e.sku.as_str(),
        EventData::ProductCreated(e)
        | EventData::ProductUpdated(e)
        | EventData::ProductArchived(e) => e.sku.as_str(),
        EventData::ProductDeleted(e) => e.sku.as_str(),
        EventData::NotificationQueued(e)
        | EventData::NotificationSent(e)
        | EventData::NotificationFailed(e)
        | EventData::NotificationDead(e) => e.recipient.as_str(),
        EventData::SearchQuery(e) => e.query.as_str(),
        EventData::KeyCreated(e) | EventData::KeyRevoked(e) => e.name.as_str(),
        EventData::WebhookCreated(e)
        | EventData::WebhookUpdated(e)
        | EventData::WebhookDeleted(e)
        | EventData::WebhookDisabled(e)
        | EventData::WebhookSecretRotated(e) => e.url.as_str(),
        EventData::WebhookTest(e) => e.webhook_id.as_str(),
        EventData::WebhookDeliveryDead(e) => e.webhook_id.as_str(),
        EventData::WebhookDeliveryReplayed(e) => e.webhook_id.as_str(),
        EventData::ShippingZoneCreated(z) | EventData::ShippingZoneDeleted(z) => z.name.as_str(),
        EventData::TaxRateCreated(r) | EventData::TaxRateDeleted(r) => r.name.as_str(),
        EventData::DiscountCreated(d) | EventData::DiscountDisabled(d) => {
            d.code.as_deref().unwrap_or("automatic promotion")
        }
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use shop_wire::events::UserEvent;
    use shop_wire::{Role, UserId};

    use super::*;
    use crate::sample;

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
    fn an_area_outside_the_grid_shows_zoomed_and_hands_the_focus_back() {
        let mut app = App::new(sample::noon());
        app.act(Action::Focus(Direction::Down));
        app.show(Area::Notifications);
        assert_eq!((app.focus, app.zoomed), (Area::Notifications, true));
        // Zoomed, Tab goes through every area, this one included.
        app.act(Action::FocusPrev);
        assert_eq!(app.focus, Area::Search);
        app.act(Action::FocusNext);
        assert_eq!(app.focus, Area::Notifications);
        app.act(Action::FocusNext);
        assert_eq!(app.focus, Area::Health);
        app.act(Action::FocusPrev);
        app.act(Action::Unzoom);
        assert_eq!(
            (app.focus, app.zoomed),
            (Area::Health, false),
            "back where the grid was left"
        );
        app.act(Action::FocusPrev);
        assert_eq!(app.focus, Area::Search, "the grid's Tab skips it");
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
        let skus: Vec<&str> = app.stock.rows().map(|s| s.sku.as_str()).collect();
        assert_eq!(skus, ["SKU-0042"]);
        assert!(
            app.orders.rows().count() > 1,
            "other areas are not filtered"
        );
        app.act(Action::StartFilter);
        app.act(Action::FilterBackspace);
        assert_eq!(app.filter(Area::Stock), "sku-004");
        app.act(Action::FilterCancel);
        assert_eq!(app.filter(Area::Stock), "");
        assert_eq!(app.stock.rows().count(), app.stock.items.len());
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
    fn g_and_shift_g_go_to_the_first_and_last_page_and_no_further() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::FocusNext);
        // The last frame showed 10 rows of the stock list.
        app.fit([9, 10, 10, 10, 0]);
        let skus = app.stock.rows().count();
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
    fn problems_fade_from_the_status_line() {
        let now = sample::noon();
        let mut app = App::new(now);
        app.apply(Update::Problem("403".into()));
        assert_eq!(app.current_problem(), Some("403"));
        app.tick(now + PROBLEM_SHOWN);
        assert_eq!(app.current_problem(), None);
    }

    #[test]
    fn events_no_area_shows_only_move_the_status_line() {
        let now = sample::noon();
        let mut app = App::new(now);
        let registered = UserEvent {
            user_id: UserId::generate(),
            email: "a@example.com".into(),
            name: "Ann".into(),
            role: Role::Customer,
        };
        let event = sample::event(7, now, EventData::UserRegistered(registered));
        app.apply(Update::Event(event));
        assert_eq!(app.events_seen, 1);
        let last = app.last_event.as_ref().expect("last event");
        assert_eq!((last.id, last.summary.as_str()), (7, "a@example.com"));
        assert!(app.orders.feed.is_empty() && app.stock.movements.is_empty());
        // A kind from a newer server: counted and shown, nothing else.
        let newer = Event {
            id: 8,
            kind: "order.teleported".into(),
            occurred_at: now,
            data: serde_json::json!({"number": "ORD-000001"}),
        };
        app.apply(Update::Event(newer));
        assert_eq!(app.events_seen, 2);
        assert_eq!(app.last_event.as_ref().map(|l| l.id), Some(8));
        assert!(app.orders.feed.is_empty());
        assert_eq!(app.current_problem(), None);
    }

    #[test]
    fn an_event_of_a_known_kind_in_another_shape_is_reported_not_guessed_at() {
        let now = sample::noon();
        let mut app = App::new(now);
        // The loose shape older dashboards read: an order without most of its fields.
        let loose = Event {
            id: 9,
            kind: EventData::OrderPaid(sample::order(1, now))
                .kind()
                .to_string(),
            occurred_at: now,
            data: serde_json::json!({"order": {"id": "o1"}}),
        };
        app.apply(Update::Event(loose));
        assert!(app.orders.feed.is_empty() && app.orders.orders.is_empty());
        let problem = app.current_problem().expect("a problem");
        assert!(
            problem.starts_with("event 9 could not be read"),
            "{problem}"
        );
    }

    #[test]
    fn every_feed_is_bounded() {
        let now = sample::noon();
        let mut app = App::new(now);
        for i in 0..(FEED_CAP + 50) {
            let order = EventData::OrderCreated(sample::order(i, now));
            app.apply(Update::Event(sample::event(i as u64, now, order)));
        }
        assert_eq!(app.orders.feed.len(), FEED_CAP);
        assert_eq!(app.orders.orders.len(), FEED_CAP);
        assert_eq!(app.events_seen, FEED_CAP as u64 + 50);
    }
}
