//! The background feed: everything the dashboard learns from the server,
//! sent to the UI loop as [`Update`]s over a channel, so that drawing and
//! keys never wait for the network.
//!
//! Two tasks share the API client:
//! - the poller asks `/health` and `/metrics` every refresh, and every few
//!   refreshes (or when the user presses `r`) the slower lists: stock,
//!   active reservations, orders, search analytics and notifications. Each
//!   answer is decoded as its wire type. A route answering 404
//!   is a part of the platform this server does not have yet ("no data
//!   yet"), never an error. A 401 means the access token expired: the
//!   poller gets a fresh one through the stored login, exactly as any other
//!   command would, and hands it to the follower.
//! - the follower first reads the tail of the event log (so the feeds are
//!   not empty on start), then follows `/api/events`, which resumes after
//!   the last event seen (`Last-Event-ID`) when the connection drops, so no
//!   event is lost or shown twice across a server restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use shop_cli::CliError;
use shop_cli::client::{ApiClient, FollowItem};
use shop_cli::context::{Context, Session};
use shop_wire::inventory::{Reservation, Stock};
use shop_wire::notifications::{Notification, NotificationStatus};
use shop_wire::orders::{Order, OrderAnalytics};
use shop_wire::search::SearchAnalytics;
use shop_wire::{Event, Page};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::actions::{self, Request};
use crate::area::stock::STOCK_CAP;
use crate::event::{AppEvent, Section, StockPage, Update};
use crate::metrics;

/// The slow lists are polled once every this many refreshes.
const SLOW_EVERY: u64 = 5;
/// Events read from the log on start.
const BACKFILL: u64 = 500;
/// The server's largest page; the stock list pages through the inventory
/// with it, up to the list's cap.
const PAGE: u64 = 500;
const ORDERS_LIMIT: &str = "200";
/// The latest notifications polled, and the dead ones (which wait for a
/// person to send them again) however old.
const NOTIFICATIONS_LIMIT: &str = "200";
const DEAD_LIMIT: &str = "100";
/// Wait between attempts to reach the event stream.
const RETRY: Duration = Duration::from_secs(1);
/// Refresh a stored login this long before it expires.
const REFRESH_MARGIN: time::Duration = time::Duration::seconds(60);

pub struct Feed {
    context: Context,
    client: ApiClient,
    expires_at: Option<OffsetDateTime>,
    clients: watch::Sender<ApiClient>,
    tx: mpsc::Sender<AppEvent>,
    previous: Option<(metrics::Scrape, Instant)>,
    /// The poller's own requests per service since the last scrape.
    own_requests: BTreeMap<String, f64>,
}

/// The services the poller's requests count under (the server names a
/// request's service by its path: `/api/<service>/...`, else `gateway`).
const SERVICE_GATEWAY: &str = "gateway";
const SERVICE_INVENTORY: &str = "inventory";
const SERVICE_ORDERS: &str = "orders";
const SERVICE_SEARCH: &str = "search";
const SERVICE_NOTIFICATIONS: &str = "notifications";

/// Runs the feed until the UI drops its receiver. `wake` asks for an
/// immediate full refresh; `requests` are the user's confirmed commands.
pub async fn run(
    context: Context,
    session: Session,
    refresh: Duration,
    tx: mpsc::Sender<AppEvent>,
    mut wake: mpsc::Receiver<()>,
    mut requests: mpsc::Receiver<Request>,
) {
    let (clients, followed) = watch::channel(session.client.clone());
    let follower = tokio::spawn(follow(followed, tx.clone()));
    let mut feed = Feed {
        context,
        client: session.client,
        expires_at: session.expires_at,
        clients,
        tx,
        previous: None,
        own_requests: BTreeMap::new(),
    };
    let mut interval = tokio::time::interval(refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // A poll that hangs must not freeze the picture: give up and say so.
    let limit = (refresh * 3).max(Duration::from_secs(5));
    let mut cycle = 0u64;
    loop {
        let full = tokio::select! {
            _ = interval.tick() => cycle.is_multiple_of(SLOW_EVERY),
            woken = wake.recv() => {
                if woken.is_none() {
                    break;
                }
                true
            }
            // A confirmed command or a lookup: answered before the next poll.
            Some(request) = requests.recv() => {
                feed.renew_if_expiring().await;
                let answer = actions::execute(&feed.client, request).await;
                feed.send(answer).await;
                continue;
            }
        };
        cycle += 1;
        if tokio::time::timeout(limit, feed.poll(full)).await.is_err() {
            let reason = format!("no answer within {} s", limit.as_secs());
            feed.send(Update::Unreachable(reason)).await;
        }
        if feed.tx.is_closed() {
            break;
        }
    }
    follower.abort();
}

impl Feed {
    async fn send(&self, update: Update) {
        // A closed channel means the UI is gone; the loop above then ends.
        let _ = self.tx.send(AppEvent::Data(update)).await;
    }

    async fn poll(&mut self, full: bool) {
        self.renew_if_expiring().await;
        self.own(SERVICE_GATEWAY);
        match self.client.get("/health").raw().await {
            Ok(response) => match response.bytes().await.map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(health)) => self.send(Update::Health(health)).await,
                _ => {
                    let problem = "the server's /health answer is not a health report";
                    self.send(Update::Problem(problem.to_owned())).await;
                }
            },
            Err(err) => {
                self.failed(err).await;
                // Nothing else will answer either; try again next refresh.
                return;
            }
        }
        self.poll_metrics().await;
        if !full {
            return;
        }
        let stock = self.stock_pages().await;
        if let Some(stock) = self.fetch(stock).await {
            self.send(Update::Stock(stock)).await;
        }
        self.own(SERVICE_INVENTORY);
        let reservations = self
            .client
            .get("/api/inventory/reservations")
            .query("status", "active")
            .query("limit", "1")
            .send::<Page<Reservation>>()
            .await;
        if let Some(reservations) = self.fetch(reservations).await {
            let count = reservations.map(|page| page.total);
            self.send(Update::Reservations(count)).await;
        }
        self.own(SERVICE_ORDERS);
        let orders = self
            .client
            .get("/api/orders")
            .query("limit", ORDERS_LIMIT)
            .send::<Page<Order>>()
            .await;
        if let Some(orders) = self.fetch(orders).await {
            self.send(Update::Orders(orders.map(|page| page.items)))
                .await;
        }
        let returns = self
            .client
            .get("/api/returns")
            .query("open", "true")
            .query("limit", "1")
            .send::<Page<shop_wire::returns::Return>>()
            .await;
        if let Some(returns) = self.fetch(returns).await {
            self.send(Update::OpenReturns(returns.map(|page| page.total)))
                .await;
        }
        let revenue = self
            .client
            .get("/api/orders/analytics")
            .send::<OrderAnalytics>()
            .await;
        if let Some(revenue) = self.fetch(revenue).await {
            self.send(Update::OrderAnalytics(revenue)).await;
        }
        self.own(SERVICE_SEARCH);
        let analytics = self
            .client
            .get("/api/search/analytics")
            .send::<SearchAnalytics>()
            .await;
        if let Some(analytics) = self.fetch(analytics).await {
            self.send(Update::SearchAnalytics(analytics)).await;
        }
        let notifications = self.notifications().await;
        if let Some(notifications) = self.fetch(notifications).await {
            self.send(Update::Notifications(notifications)).await;
        }
    }

    /// The latest notifications, then the dead ones.
    async fn notifications(&mut self) -> Result<Vec<Notification>, CliError> {
        self.own(SERVICE_NOTIFICATIONS);
        let latest = self
            .client
            .get("/api/notifications")
            .query("limit", NOTIFICATIONS_LIMIT)
            .send::<Page<Notification>>()
            .await?;
        self.own(SERVICE_NOTIFICATIONS);
        let dead = self
            .client
            .get("/api/notifications")
            .query("status", NotificationStatus::Dead.as_str())
            .query("limit", DEAD_LIMIT)
            .send::<Page<Notification>>()
            .await?;
        Ok(latest.items.into_iter().chain(dead.items).collect())
    }

    /// The whole inventory, lowest available first, a page at a time up to
    /// [`STOCK_CAP`] SKUs (past it, the lowest ones and the total).
    async fn stock_pages(&mut self) -> Result<StockPage, CliError> {
        let mut items: Vec<Stock> = Vec::new();
        loop {
            self.own(SERVICE_INVENTORY);
            let page = self
                .client
                .get("/api/inventory")
                .query("sort", "available")
                .query("limit", PAGE.to_string())
                .query("offset", items.len().to_string())
                .send::<Page<Stock>>()
                .await?;
            let last = page.items.len() < PAGE as usize;
            items.extend(page.items);
            if last || items.len() as u64 >= page.total || items.len() >= STOCK_CAP {
                items.truncate(STOCK_CAP);
                return Ok(StockPage {
                    items,
                    total: page.total,
                });
            }
        }
    }

    /// Counts one of the dashboard's own requests to a service, so that its
    /// polling is not shown as the service's traffic.
    fn own(&mut self, service: &'static str) {
        *self.own_requests.entry(service.to_owned()).or_default() += 1.0;
    }

    async fn poll_metrics(&mut self) {
        let text = match self.client.get("/metrics").response().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(err) => return self.failed(err).await,
        };
        let scrape = metrics::parse(&text);
        let now = Instant::now();
        // Everything this poller asked since the last scrape (that scrape
        // included) is in this one: the server counts a request once answered.
        let own = std::mem::take(&mut self.own_requests);
        self.own(SERVICE_GATEWAY);
        if let Some((previous, at)) = &self.previous {
            let seconds = now.duration_since(*at).as_secs_f64();
            let rates = metrics::rates(previous, &scrape, seconds, &own);
            self.send(Update::Rates(rates)).await;
        }
        self.previous = Some((scrape, now));
    }

    /// A list that may not exist on this server yet: its data, "missing"
    /// for a 404, or None (and the reason reported) when it failed.
    async fn fetch<T>(&mut self, result: Result<T, CliError>) -> Option<Section<T>> {
        match result {
            Ok(value) => Some(Section::Ready(value)),
            Err(CliError::Api(api)) if api.status == 404 => Some(Section::Missing),
            Err(err) => {
                self.failed(err).await;
                None
            }
        }
    }

    async fn failed(&mut self, err: CliError) {
        match err {
            CliError::Unreachable { reason, .. } => self.send(Update::Unreachable(reason)).await,
            CliError::Api(api) if api.status == 401 => {
                let problem =
                    "the server refused the token; renewing the login (else run `shop login`)";
                self.send(Update::Problem(problem.to_owned())).await;
                self.renew().await;
            }
            CliError::Api(api) if api.status == 403 => {
                let problem = "this login may not watch the shop: a staff or admin login is needed";
                self.send(Update::Problem(problem.to_owned())).await;
            }
            other => self.send(Update::Problem(other.to_string())).await,
        }
    }

    async fn renew_if_expiring(&mut self) {
        let expiring = self
            .expires_at
            .is_some_and(|at| at - OffsetDateTime::now_utc() < REFRESH_MARGIN);
        if expiring {
            self.renew().await;
        }
    }

    /// A fresh token, by the same rules as every command: the stored login
    /// is refreshed when it is about to expire; an explicit token is kept.
    async fn renew(&mut self) {
        match self.context.session().await {
            Ok(session) => {
                self.client = session.client.clone();
                self.expires_at = session.expires_at;
                let _ = self.clients.send(session.client);
            }
            Err(CliError::Unreachable { reason, .. }) => {
                self.send(Update::Unreachable(reason)).await;
            }
            Err(err) => self.send(Update::Problem(err.to_string())).await,
        }
    }
}

/// Reads the tail of the event log, then follows the live stream for as
/// long as the UI runs, reconnecting with a newer client when there is one.
async fn follow(mut clients: watch::Receiver<ApiClient>, tx: mpsc::Sender<AppEvent>) {
    let send = |update| {
        let tx = tx.clone();
        async move { tx.send(AppEvent::Data(update)).await.is_ok() }
    };
    let mut last: Option<u64> = None;
    loop {
        let client = clients.borrow_and_update().clone();
        let after = match last {
            Some(id) => id,
            None => match backfill(&client, &tx).await {
                Ok(id) => {
                    last = Some(id);
                    id
                }
                Err(_) => {
                    // The poller reports why; try again shortly.
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let mut events = std::pin::pin!(client.follow_events(after, None));
        loop {
            tokio::select! {
                item = events.next() => match item {
                    Some(Ok(FollowItem::Event(event))) => {
                        last = Some(event.id);
                        if !send(Update::Event(event)).await {
                            return;
                        }
                    }
                    // The health poll tells whether the server itself is
                    // away; a dropped stream alone is not worth an alarm.
                    Some(Ok(FollowItem::Reconnecting { .. })) => {}
                    Some(Ok(FollowItem::Resumed)) => {
                        if !send(Update::Reachable).await {
                            return;
                        }
                    }
                    // Refused (e.g. the token expired) or never connected:
                    // the poller reports and renews; start over after a pause.
                    Some(Err(_)) | None => break,
                },
                changed = clients.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Sends the last [`BACKFILL`] events of the log; returns the id to follow from.
async fn backfill(client: &ApiClient, tx: &mpsc::Sender<AppEvent>) -> Result<u64, CliError> {
    let page = |offset: u64, limit: u64| {
        client
            .get("/api/events/log")
            .query("offset", offset.to_string())
            .query("limit", limit.to_string())
            .send::<Page<Event>>()
    };
    let total = page(0, 1).await?.total;
    if total == 0 {
        return Ok(0);
    }
    let tail = page(total.saturating_sub(BACKFILL), BACKFILL).await?;
    let mut last = 0;
    for event in tail.items {
        last = event.id;
        if tx.send(AppEvent::Data(Update::Event(event))).await.is_err() {
            break;
        }
    }
    Ok(last)
}
