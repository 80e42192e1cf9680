//! The storage interface of the notification queue, its templates and deliveries.

use async_trait::async_trait;

use shop_wire::notifications::{
    Channel, Delivery, Notification, NotificationAnalytics, NotificationId, NotificationStatus,
    Priority, Rendered, Template,
};
use std::collections::BTreeMap;
use time::OffsetDateTime;

use super::{CursorMove, NewEvent, StoreResult};

#[derive(Clone, Debug, Default)]
pub struct NotificationQuery {
    pub status: Option<NotificationStatus>,
    pub channel: Option<Channel>,
    pub template: Option<String>,
    pub recipient: Option<String>,
    pub priority: Option<Priority>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryQuery {
    pub channel: Option<Channel>,
    pub recipient: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

/// How one delivery attempt ended, as the queue records it.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    Sent,
    /// A transient failure: back to the queue (status `failed`) until `retry_at`.
    Retry {
        error: String,
        retry_at: OffsetDateTime,
    },
    /// Permanent, or out of attempts: status `dead`. `permanent` says which.
    Dead {
        error: String,
        permanent: bool,
    },
}

/// The end of one attempt on a claimed notification, written with its events
/// (and, for a local sink, its delivery record) in one transaction.
#[derive(Clone, Debug)]
pub struct Completion {
    pub id: NotificationId,
    pub attempt: u32,
    pub finished_at: OffsetDateTime,
    pub duration_ms: u64,
    pub rendered: Option<Rendered>,
    pub outcome: AttemptOutcome,
    /// What a local sink delivered; its `seq` is assigned by the store.
    pub delivery: Option<Delivery>,
    pub events: Vec<NewEvent>,
}

#[derive(Clone, Debug)]
pub enum Requeue {
    Requeued(Box<Notification>),
    NotFound,
    /// Refused: the notification is in this state.
    WrongState(NotificationStatus),
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Inserts notifications, each with its events. One whose (event, template,
    /// recipient) is already queued (a reaction seen before) is skipped with its
    /// events. When `cursor` is given, that consumer's event cursor moves in
    /// the same transaction, or nothing is written (see [`CursorMove`]).
    /// Returns how many were queued.
    async fn enqueue_notifications(
        &self,
        items: Vec<(Notification, Vec<NewEvent>)>,
        cursor: Option<CursorMove>,
    ) -> StoreResult<u64>;
    /// How many notifications of `template` were queued since `since`, only
    /// those whose variable `var.0` is `var.1` when given.
    async fn count_notifications_since(
        &self,
        template: &str,
        var: Option<(&'static str, String)>,
        since: OffsetDateTime,
    ) -> StoreResult<u64>;
    /// One notification with its variables, rendered content and attempt history.
    async fn notification(&self, id: &NotificationId) -> StoreResult<Option<Notification>>;
    /// Newest first.
    async fn list_notifications(
        &self,
        query: &NotificationQuery,
    ) -> StoreResult<(Vec<Notification>, u64)>;
    /// Claims due notifications (`queued` or `failed`, `send_at <= now`), up to
    /// a limit per channel, highest priority first and FIFO within one: each is
    /// set `sending` with a lease until `lease_until` and its attempt counted.
    async fn claim_notifications(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limits: Vec<(Channel, u32)>,
    ) -> StoreResult<Vec<Notification>>;
    /// Records finished attempts. A notification no longer `sending` (its lease
    /// was taken back) is left alone, and its events and delivery are dropped.
    /// Returns how many were recorded.
    async fn complete_attempts(&self, completions: Vec<Completion>) -> StoreResult<u64>;
    /// Puts `sending` notifications whose lease expired before `now` back in the
    /// queue (a crash mid-send); returns how many.
    async fn release_expired_leases(&self, now: OffsetDateTime) -> StoreResult<u64>;
    /// Queues a notification again (attempts reset) if it is in one of `from`.
    async fn requeue_notification(
        &self,
        id: &NotificationId,
        from: &[NotificationStatus],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Requeue>;
    /// Waiting notifications (`queued` or `failed`) by priority.
    async fn queue_depth(&self) -> StoreResult<BTreeMap<Priority, u64>>;
    async fn notification_analytics(&self) -> StoreResult<NotificationAnalytics>;
    /// What the local sinks recorded, newest first.
    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<(Vec<Delivery>, u64)>;
    /// Creates or replaces a user-defined template; true when it was new.
    async fn save_template(&self, template: &Template) -> StoreResult<bool>;
    async fn stored_template(&self, name: &str, channel: Channel) -> StoreResult<Option<Template>>;
    async fn stored_templates(&self) -> StoreResult<Vec<Template>>;
    /// How far `consumer` has read the event log.
    async fn event_cursor(&self, consumer: &str) -> StoreResult<u64>;
}
