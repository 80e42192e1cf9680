//! The storage interface of outbound webhooks: endpoints, and the durable
//! queue of deliveries that is also their log.

use async_trait::async_trait;
use shop_wire::webhooks::{DeliveryStatus, Webhook, WebhookDelivery, WebhookDeliveryId, WebhookId};
use time::OffsetDateTime;

use super::{CursorMove, NewEvent, StoreResult};

/// An endpoint with its signing secrets, which only the dispatcher and the
/// answers to create and rotate see.
#[derive(Clone, Debug)]
pub struct WebhookRecord {
    /// Without `secret`.
    pub webhook: Webhook,
    pub secret: String,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<(String, OffsetDateTime)>,
}

#[derive(Clone, Debug, Default)]
pub struct WebhookDeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub limit: u32,
    pub offset: u64,
}

/// A delivery claimed for an attempt, with what the attempt needs.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    /// `attempts` already counts this attempt.
    pub delivery: WebhookDelivery,
    /// The claim's lease: the completion must name it.
    pub lease_until: OffsetDateTime,
    pub window_start: OffsetDateTime,
    pub webhook: Webhook,
    /// The current secret first, then the previous one while it still signs.
    pub secrets: Vec<String>,
    /// The event as the body of the POST: `{id,type,occurred_at,data}`.
    pub body: String,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryOutcome {
    Succeeded {
        status: u16,
    },
    /// Back to the queue as `failed`, due again at `at`.
    Retry {
        status: Option<u16>,
        error: String,
        at: OffsetDateTime,
    },
    Dead {
        status: Option<u16>,
        error: String,
    },
}

/// What an attempt's end means for its endpoint.
#[derive(Clone, Debug)]
pub enum EndpointEffect {
    /// It answered: it is not failing.
    Answered,
    /// It failed: failing from now, unless it was already.
    Failing,
    /// Disable it (if still active), appending `event` when that happens.
    Disable {
        reason: String,
        event: Box<NewEvent>,
    },
}

#[derive(Clone, Debug)]
pub struct DeliveryCompletion {
    pub id: WebhookDeliveryId,
    pub webhook_id: WebhookId,
    pub lease_until: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub duration_ms: u64,
    pub outcome: DeliveryOutcome,
    pub endpoint: EndpointEffect,
    pub events: Vec<NewEvent>,
}

/// Which deliveries a replay queues again.
#[derive(Clone, Debug)]
pub enum ReplaySelection {
    One(WebhookDeliveryId),
    /// Every `failed` or `dead` delivery created at or after this time.
    FailedSince(OffsetDateTime),
}

/// Builds the events of a replay from the ids it queued again.
pub type ReplayEvents = Box<dyn FnOnce(&[WebhookDeliveryId]) -> Vec<NewEvent> + Send>;

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn insert_webhook(
        &self,
        record: &WebhookRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<()>;
    async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<WebhookRecord>>;
    /// Oldest first.
    async fn list_webhooks(&self, limit: u32, offset: u64) -> StoreResult<(Vec<Webhook>, u64)>;
    /// Every active endpoint, for the feeder.
    async fn active_webhooks(&self) -> StoreResult<Vec<Webhook>>;
    /// Writes the endpoint's URL, patterns, description and status (an
    /// endpoint made active again is no longer failing); false when it is gone.
    async fn update_webhook(&self, webhook: &Webhook, events: Vec<NewEvent>) -> StoreResult<bool>;
    /// Makes `secret` the signing secret; the old one signs too until
    /// `previous_until`. None when the endpoint is gone.
    async fn rotate_webhook_secret(
        &self,
        id: &WebhookId,
        secret: String,
        previous_until: OffsetDateTime,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<Webhook>>;
    /// Removes the endpoint and its deliveries; false when it was not there.
    async fn delete_webhook(&self, id: &WebhookId, events: Vec<NewEvent>) -> StoreResult<bool>;
    /// Queues deliveries; one whose (endpoint, event) is already queued is
    /// skipped. When `cursor` is given, that consumer's event cursor moves in
    /// the same transaction, or nothing is written (see [`CursorMove`]).
    /// Returns how many were queued.
    async fn enqueue_deliveries(
        &self,
        deliveries: Vec<WebhookDelivery>,
        cursor: Option<CursorMove>,
    ) -> StoreResult<u64>;
    /// Claims up to `limit` due deliveries (`pending` or `failed`, due by
    /// `now`, unclaimed or with a lease that ran out) of active endpoints not
    /// in `excluded`, in event id order: each is leased until `lease_until`
    /// and its attempt counted. A lease that runs out (its worker died)
    /// makes the delivery claimable again.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        excluded: Vec<WebhookId>,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Gives claimed deliveries back unattempted (their attempt uncounted).
    async fn release_deliveries(
        &self,
        claims: Vec<(WebhookDeliveryId, OffsetDateTime)>,
    ) -> StoreResult<()>;
    /// Records finished attempts; one whose lease is no longer the one named
    /// (it ran out and another worker claimed it) is dropped with its events.
    /// Returns how many were recorded.
    async fn complete_deliveries(&self, completions: Vec<DeliveryCompletion>) -> StoreResult<u64>;
    /// An endpoint's deliveries, newest first.
    async fn webhook_deliveries(
        &self,
        webhook: &WebhookId,
        query: &WebhookDeliveryQuery,
    ) -> StoreResult<(Vec<WebhookDelivery>, u64)>;
    async fn webhook_delivery(
        &self,
        webhook: &WebhookId,
        id: &WebhookDeliveryId,
    ) -> StoreResult<Option<WebhookDelivery>>;
    /// Queues the selected deliveries of an endpoint again, due at `at`,
    /// attempts and retry window starting over; appends the events `make`
    /// builds from their ids when there were any. Returns them as the
    /// replay left them, before any dispatcher could claim one.
    async fn replay_deliveries(
        &self,
        webhook: &WebhookId,
        selection: ReplaySelection,
        at: OffsetDateTime,
        make: ReplayEvents,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    /// Logs `event` (a test event for the endpoint) if the endpoint exists
    /// and is active; returns its id, or None.
    async fn log_webhook_test(&self, id: &WebhookId, event: NewEvent) -> StoreResult<Option<u64>>;
    /// Deliveries waiting (`pending` or `failed`), over all endpoints.
    async fn webhook_backlog(&self) -> StoreResult<u64>;
}
