//! Domain events as they are stored in the event log and streamed to clients.
//!
//! Every kind of event is named once, in [`EventKind`], and carries one
//! payload type, gathered in [`EventData`]. Producers build an `EventData`;
//! consumers call [`Event::decode`] and match on the variant, never on
//! names or keys of loose JSON. On the wire an event stays
//! `{id,type,occurred_at,data:{...}}`: the envelope keeps `type` as text
//! and `data` as JSON so that a client older than the server still reads
//! the stream and skips the kinds it does not know.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cart::{Cart, CartStatus};
use crate::ids::{
    CartId, KeyId, NotificationId, OrderId, PaymentId, ProductId, RefundId, ReservationId,
    SessionId, UserId,
};
use crate::inventory::{Movement, MovementKind, Reservation, Stock};
use crate::money::Currency;
use crate::notifications::{Channel, Notification, Priority};
use crate::orders::Order;
use crate::payments::{MethodKind, Payment, PaymentStatus, Refund, RefundStatus};
use crate::pricing::{Discount, ShippingZone, TaxRate};
use crate::products::Product;
use crate::returns::Return;
use crate::users::{Role, User};
use crate::webhooks::{Webhook, WebhookDeliveryId, WebhookId, WebhookStatus};

/// One entry of the durable event log. `id` increases strictly, so a client
/// resumes a stream by sending the last id it saw as `Last-Event-ID`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: u64,
    /// Dotted type, e.g. `user.registered`: one of [`EventKind`]'s names.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The payload of [`EventData`] for this kind.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// A kind of event given as its payload's constructor, e.g.
/// `EventData::OrderPaid`: the kind and the payload type checked together.
pub type MakeEvent<P> = fn(P) -> EventData;

/// Why an event could not be read as its type.
#[derive(Debug)]
pub enum DecodeError {
    /// A type this build does not know (e.g. from a newer server).
    UnknownKind(String),
    /// The data does not have the fields of its type.
    Data(EventKind, serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownKind(kind) => write!(f, "unknown event type {kind:?}"),
            DecodeError::Data(kind, err) => write!(f, "bad data for a {kind} event: {err}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Event {
    /// The kind, when this build knows it.
    pub fn event_kind(&self) -> Option<EventKind> {
        self.kind.parse().ok()
    }

    /// The typed payload.
    pub fn decode(&self) -> Result<EventData, DecodeError> {
        let kind = self
            .event_kind()
            .ok_or_else(|| DecodeError::UnknownKind(self.kind.clone()))?;
        EventData::decode(kind, self.data.clone())
    }
}

/// Declares [`EventKind`] and [`EventData`] from one table, so that a kind's
/// name and its payload type are written once.
macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident($payload:ty) = $name:literal,)+) => {
        /// Every kind of event the platform logs.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $($(#[$doc])* $variant,)+
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];

            /// The dotted name used on the wire and in the log.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)+
                }
            }
        }

        /// An event's payload, one variant per kind.
        #[derive(Clone, Debug, PartialEq)]
        pub enum EventData {
            $($(#[$doc])* $variant($payload),)+
        }

        impl EventData {
            pub fn kind(&self) -> EventKind {
                match self {
                    $(EventData::$variant(_) => EventKind::$variant,)+
                }
            }

            /// The payload as the `data` of the wire shape.
            pub fn to_value(&self) -> serde_json::Value {
                let value = match self {
                    $(EventData::$variant(payload) => serde_json::to_value(payload),)+
                };
                value.expect("event payloads are plain structs with string keys")
            }

            /// The payload as the JSON text of the wire shape's `data`,
            /// written straight from the type (no [`serde_json::Value`] between).
            pub fn to_json(&self) -> String {
                let text = match self {
                    $(EventData::$variant(payload) => serde_json::to_string(payload),)+
                };
                text.expect("event payloads are plain structs with string keys")
            }

            /// Reads the payload of a `kind` event from its `data`.
            pub fn decode(kind: EventKind, data: serde_json::Value) -> Result<Self, DecodeError> {
                let decoded = match kind {
                    $(EventKind::$variant => serde_json::from_value(data).map(EventData::$variant),)+
                };
                decoded.map_err(|err| DecodeError::Data(kind, err))
            }
        }
    };
}

events! {
    UserRegistered(UserEvent) = "user.registered",
    UserLoggedIn(LoginEvent) = "user.logged_in",
    UserLoggedOut(SessionEvent) = "user.logged_out",
    UserSessionRevoked(SessionEvent) = "user.session_revoked",
    UserRoleChanged(RoleChangeEvent) = "user.role_changed",
    /// The password changed; every other session of the user ended with it.
    UserPasswordChanged(PasswordChangeEvent) = "user.password_changed",
    /// The name or the addresses changed.
    UserUpdated(ProfileUpdateEvent) = "user.updated",
    /// The owner proved the address theirs; guest orders for it join the account.
    UserEmailVerified(UserEvent) = "user.email_verified",
    /// Someone asked for a reset of this account's password: a reset email goes out.
    UserPasswordResetRequested(UserEvent) = "user.password_reset_requested",
    CartCreated(CartEvent) = "cart.created",
    CartUpdated(CartEvent) = "cart.updated",
    CartMerged(CartEvent) = "cart.merged",
    CartExpired(CartEvent) = "cart.expired",
    CartCheckedOut(CartEvent) = "cart.checked_out",
    OrderCreated(Order) = "order.created",
    OrderPaid(Order) = "order.paid",
    /// Everything left went out: the order is `shipped`. The shipment is
    /// the order's newest fulfilment ([`Order::latest_fulfillment`]).
    OrderShipped(Order) = "order.shipped",
    /// Some of the order went out and some is left; the order stays `paid`.
    /// The shipment is the order's newest fulfilment.
    OrderPartiallyShipped(Order) = "order.partially_shipped",
    OrderDelivered(Order) = "order.delivered",
    OrderCancelled(Order) = "order.cancelled",
    /// A customer or staff asked to send shipped units back.
    ReturnRequested(Return) = "return.requested",
    ReturnApproved(Return) = "return.approved",
    /// Its units may be returned again.
    ReturnRejected(Return) = "return.rejected",
    /// The units arrived; those restocked are back on hand.
    ReturnReceived(Return) = "return.received",
    /// Its refund of the order's payment went through.
    ReturnRefunded(Return) = "return.refunded",
    /// The order's invoice got its number, the next in the shop's sequence.
    InvoiceIssued(InvoiceEvent) = "invoice.issued",
    PaymentSucceeded(PaymentEvent) = "payment.succeeded",
    PaymentPending(PaymentEvent) = "payment.pending",
    PaymentFailed(PaymentEvent) = "payment.failed",
    PaymentRefunded(PaymentEvent) = "payment.refunded",
    PaymentRefundFailed(PaymentEvent) = "payment.refund_failed",
    InventoryAdjusted(StockEvent) = "inventory.adjusted",
    InventoryReserved(StockEvent) = "inventory.reserved",
    InventoryReleased(StockEvent) = "inventory.released",
    InventoryCommitted(StockEvent) = "inventory.committed",
    InventoryExpired(StockEvent) = "inventory.expired",
    InventoryReconciled(StockEvent) = "inventory.reconciled",
    /// Available stock fell to or below the SKU's threshold.
    InventoryLowStock(LowStockEvent) = "inventory.low_stock",
    ProductCreated(ProductEvent) = "product.created",
    ProductUpdated(ProductEvent) = "product.updated",
    ProductArchived(ProductEvent) = "product.archived",
    ProductDeleted(ProductDeletedEvent) = "product.deleted",
    NotificationQueued(NotificationEvent) = "notification.queued",
    NotificationSent(NotificationEvent) = "notification.sent",
    NotificationFailed(NotificationEvent) = "notification.failed",
    NotificationDead(NotificationEvent) = "notification.dead",
    SearchQuery(SearchQueryEvent) = "search.query",
    KeyCreated(KeyEvent) = "key.created",
    /// The key stopped working at once.
    KeyRevoked(KeyEvent) = "key.revoked",
    WebhookCreated(WebhookEvent) = "webhook.created",
    /// Its URL, patterns, description or status changed (by staff).
    WebhookUpdated(WebhookEvent) = "webhook.updated",
    WebhookDeleted(WebhookEvent) = "webhook.deleted",
    /// Disabled by the platform: it answered 410, or failed for the whole retry window.
    WebhookDisabled(WebhookEvent) = "webhook.disabled",
    WebhookSecretRotated(WebhookEvent) = "webhook.secret_rotated",
    /// A test delivery asked for by staff; only the endpoint it names receives it.
    WebhookTest(WebhookTestEvent) = "webhook.test",
    /// A delivery was given up (out of its retry window, or refused for good).
    WebhookDeliveryDead(WebhookDeliveryEvent) = "webhook.delivery_dead",
    /// Deliveries were queued again by staff.
    WebhookDeliveryReplayed(WebhookReplayEvent) = "webhook.delivery_replayed",
    ShippingZoneCreated(ShippingZone) = "shipping.zone_created",
    /// Its countries are shipped to by no zone any more.
    ShippingZoneDeleted(ShippingZone) = "shipping.zone_deleted",
    TaxRateCreated(TaxRate) = "tax.rate_created",
    TaxRateDeleted(TaxRate) = "tax.rate_deleted",
    DiscountCreated(Discount) = "discount.created",
    /// No order gets it any more; orders that have it keep it.
    DiscountDisabled(Discount) = "discount.disabled",
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown event type {s:?}"))
    }
}

impl EventKind {
    /// The part before the dot: `order` for `order.paid`.
    pub fn family(self) -> &'static str {
        let name = self.as_str();
        name.split_once('.').map_or(name, |(family, _)| family)
    }

    /// The part after the dot: `paid` for `order.paid`.
    pub fn action(self) -> &'static str {
        let name = self.as_str();
        name.split_once('.').map_or("", |(_, action)| action)
    }
}

impl EventData {
    /// An order event carries the order without its history.
    pub fn order(make: MakeEvent<Order>, order: &Order) -> EventData {
        make(Order {
            history: Vec::new(),
            ..order.clone()
        })
    }

    /// The order, for the kinds that carry one.
    pub fn as_order(&self) -> Option<&Order> {
        match self {
            EventData::OrderCreated(order)
            | EventData::OrderPaid(order)
            | EventData::OrderShipped(order)
            | EventData::OrderPartiallyShipped(order)
            | EventData::OrderDelivered(order)
            | EventData::OrderCancelled(order) => Some(order),
            _ => None,
        }
    }

    /// The stock level after the change, for the kinds that carry one.
    pub fn stock_level(&self) -> Option<(&str, i64)> {
        match self {
            EventData::InventoryAdjusted(e)
            | EventData::InventoryReserved(e)
            | EventData::InventoryReleased(e)
            | EventData::InventoryCommitted(e)
            | EventData::InventoryExpired(e)
            | EventData::InventoryReconciled(e) => Some((&e.sku, e.available)),
            EventData::InventoryLowStock(e) => Some((&e.sku, e.available)),
            _ => None,
        }
    }

    /// The product a product event names.
    pub fn product_id(&self) -> Option<&ProductId> {
        match self {
            EventData::ProductCreated(e)
            | EventData::ProductUpdated(e)
            | EventData::ProductArchived(e) => Some(&e.id),
            EventData::ProductDeleted(e) => Some(&e.id),
            _ => None,
        }
    }

    /// The customer the event is about, for the kinds that name one.
    pub fn customer_email(&self) -> Option<&str> {
        match self {
            EventData::UserRegistered(e)
            | EventData::UserEmailVerified(e)
            | EventData::UserPasswordResetRequested(e) => Some(&e.email),
            EventData::PaymentSucceeded(e)
            | EventData::PaymentPending(e)
            | EventData::PaymentFailed(e)
            | EventData::PaymentRefunded(e)
            | EventData::PaymentRefundFailed(e) => Some(&e.customer_email),
            EventData::ReturnRequested(r)
            | EventData::ReturnApproved(r)
            | EventData::ReturnRejected(r)
            | EventData::ReturnReceived(r)
            | EventData::ReturnRefunded(r) => Some(&r.customer_email),
            EventData::InvoiceIssued(e) => Some(&e.customer_email),
            other => other.as_order().map(|order| order.customer_email.as_str()),
        }
    }
}

/// `key.created` and `key.revoked`: never the secret nor its hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyEvent {
    pub id: KeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<crate::keys::Scope>,
    pub created_by: UserId,
}

impl From<&crate::keys::ApiKey> for KeyEvent {
    fn from(key: &crate::keys::ApiKey) -> Self {
        KeyEvent {
            id: key.id.clone(),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            scopes: key.scopes.clone(),
            created_by: key.created_by.clone(),
        }
    }
}

/// `user.registered`, `user.email_verified` and `user.password_reset_requested`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserEvent {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl From<&User> for UserEvent {
    fn from(user: &User) -> Self {
        UserEvent {
            user_id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
        }
    }
}

/// `user.logged_in`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LoginEvent {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub ip: Option<String>,
}

/// `user.logged_out` and `user.session_revoked`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionEvent {
    pub user_id: UserId,
    pub session_id: SessionId,
}

/// `user.role_changed`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoleChangeEvent {
    pub user_id: UserId,
    pub from: Role,
    pub to: Role,
    pub by: UserId,
}

/// `user.password_changed`: never the password or its hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PasswordChangeEvent {
    pub user_id: UserId,
    /// The session that made the change, which stays signed in.
    pub session_id: Option<SessionId>,
}

/// `user.updated`: which fields changed, and the new name; addresses are
/// personal, so only their count travels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProfileUpdateEvent {
    pub user_id: UserId,
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_count: Option<usize>,
}

/// `cart.*`: the cart without its lines.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CartEvent {
    pub id: CartId,
    pub user_id: Option<UserId>,
    pub status: CartStatus,
    pub item_count: i64,
    pub subtotal_cents: i64,
    pub currency: Currency,
    pub version: u64,
}

impl From<&Cart> for CartEvent {
    fn from(cart: &Cart) -> Self {
        CartEvent {
            id: cart.id.clone(),
            user_id: cart.user_id.clone(),
            status: cart.status,
            item_count: cart.item_count,
            subtotal_cents: cart.subtotal_cents,
            currency: cart.currency,
            version: cart.version,
        }
    }
}

/// `payment.*`: the payment with its order's number and customer, so a
/// refund email can be written from the event alone. In refund events
/// `amount_cents` is the refund's amount and `refund` says the rest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PaymentEvent {
    pub id: PaymentId,
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub number: String,
    pub customer_email: String,
    pub method: MethodKind,
    pub status: PaymentStatus,
    pub provider: String,
    pub currency: Currency,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub failure_code: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundPart>,
}

/// `invoice.issued`: the number an order's invoice keeps for good.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InvoiceEvent {
    pub order_id: OrderId,
    /// The order's number, e.g. `ORD-001042`.
    pub order_number: String,
    pub customer_email: String,
    /// The invoice's number, e.g. `INV-000042`.
    pub number: String,
    pub sequence: i64,
    pub currency: Currency,
    pub total_cents: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// The refund of a `payment.refunded` or `payment.refund_failed` event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RefundPart {
    pub payment_amount_cents: i64,
    pub refund_id: RefundId,
    pub refund_status: RefundStatus,
    pub reason: Option<String>,
}

impl PaymentEvent {
    pub fn new(payment: &Payment, order: &Order, refund: Option<&Refund>) -> Self {
        PaymentEvent {
            id: payment.id.clone(),
            payment_id: payment.id.clone(),
            order_id: payment.order_id.clone(),
            number: order.number.clone(),
            customer_email: order.customer_email.clone(),
            method: payment.method,
            status: payment.status,
            provider: payment.provider.clone(),
            currency: payment.currency,
            // A refund email tells the refunded amount, not the payment's.
            amount_cents: refund.map_or(payment.amount_cents, |r| r.amount_cents),
            refunded_cents: payment.refunded_cents,
            failure_code: payment.failure_code.clone(),
            refund: refund.map(|r| RefundPart {
                payment_amount_cents: payment.amount_cents,
                refund_id: r.id.clone(),
                refund_status: r.status,
                reason: r.reason.clone(),
            }),
        }
    }
}

/// `inventory.*` (but `low_stock`): the stock after the change and the movement.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StockEvent {
    pub sku: String,
    pub kind: MovementKind,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub low_stock_threshold: i64,
    pub delta: i64,
    pub reason: Option<String>,
    pub actor: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationPart>,
}

/// The reservation a stock change concerned.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReservationPart {
    pub reservation_id: ReservationId,
    pub quantity: i64,
    pub reference: Option<String>,
}

impl StockEvent {
    pub fn new(stock: &Stock, movement: &Movement, reservation: Option<&Reservation>) -> Self {
        StockEvent {
            sku: stock.sku.clone(),
            kind: movement.kind,
            on_hand: stock.on_hand,
            reserved: stock.reserved,
            available: stock.available,
            low_stock_threshold: stock.low_stock_threshold,
            delta: movement.on_hand_after - movement.on_hand_before,
            reason: movement.reason.clone(),
            actor: movement.actor.clone(),
            reservation: reservation.map(|r| ReservationPart {
                reservation_id: r.id.clone(),
                quantity: r.quantity,
                reference: r.reference.clone(),
            }),
        }
    }
}

/// `inventory.low_stock`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LowStockEvent {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub threshold: i64,
    pub low_stock_threshold: i64,
}

impl From<&Stock> for LowStockEvent {
    fn from(stock: &Stock) -> Self {
        LowStockEvent {
            sku: stock.sku.clone(),
            on_hand: stock.on_hand,
            reserved: stock.reserved,
            available: stock.available,
            threshold: stock.low_stock_threshold,
            low_stock_threshold: stock.low_stock_threshold,
        }
    }
}

/// `product.created`, `product.updated`, `product.archived`: enough to show
/// and route the change, not the description, attributes and images
/// (readers that need the whole product fetch it). An import logs one event
/// per row, and the full product doubled the bytes it wrote.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProductEvent {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub category: Option<String>,
    pub price_cents: i64,
    pub currency: Currency,
    pub active: bool,
    pub version: u64,
}

impl From<&Product> for ProductEvent {
    fn from(product: &Product) -> Self {
        ProductEvent {
            id: product.id.clone(),
            sku: product.sku.clone(),
            name: product.name.clone(),
            category: product.category.clone(),
            price_cents: product.price_cents,
            currency: product.currency,
            active: product.active,
            version: product.version,
        }
    }
}

/// `product.deleted`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProductDeletedEvent {
    pub id: ProductId,
    pub sku: String,
}

/// `notification.*`: a status change, without the variables (they may be personal).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NotificationEvent {
    pub id: NotificationId,
    pub channel: Channel,
    pub recipient: String,
    pub template: String,
    pub priority: Priority,
    pub attempts: u32,
    pub error: Option<String>,
    pub event_id: Option<u64>,
}

impl NotificationEvent {
    pub fn new(notification: &Notification, error: Option<&str>) -> Self {
        NotificationEvent {
            id: notification.id.clone(),
            channel: notification.channel,
            recipient: notification.recipient.clone(),
            template: notification.template.clone(),
            priority: notification.priority,
            attempts: notification.attempts,
            error: error.map(str::to_owned),
            event_id: notification.event_id,
        }
    }
}

/// `search.query`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SearchQueryEvent {
    /// As asked.
    pub query: String,
    /// Lower case, no accents, single spaces.
    pub normalized: String,
    pub filters: serde_json::Value,
    pub result_count: u64,
    pub latency_ms: f64,
    pub cache_hit: bool,
}

/// `webhook.*` about an endpoint: never its secret.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WebhookEvent {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub status: WebhookStatus,
    /// Why it was disabled, for `webhook.disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl WebhookEvent {
    pub fn new(webhook: &Webhook, reason: Option<&str>) -> Self {
        WebhookEvent {
            id: webhook.id.clone(),
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            status: webhook.status,
            reason: reason.map(str::to_owned),
        }
    }
}

/// `webhook.test`: the body a test delivery carries.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WebhookTestEvent {
    pub webhook_id: WebhookId,
    pub message: String,
}

/// `webhook.delivery_dead`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WebhookDeliveryEvent {
    pub id: WebhookDeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: u64,
    pub event_type: String,
    pub attempts: u32,
    pub error: Option<String>,
}

/// `webhook.delivery_replayed`: the deliveries queued again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WebhookReplayEvent {
    pub webhook_id: WebhookId,
    pub deliveries: Vec<WebhookDeliveryId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(*kind));
            assert_eq!(
                format!("{}.{}", kind.family(), kind.action()),
                kind.as_str()
            );
        }
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len(), "a name is used twice");
        assert!("order.eaten".parse::<EventKind>().is_err());
    }

    fn round_trip(data: EventData) -> serde_json::Value {
        let value = data.to_value();
        let event = Event {
            id: 7,
            kind: data.kind().as_str().to_owned(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            data: value.clone(),
        };
        let wire = serde_json::to_string(&event).expect("encode");
        let read: Event = serde_json::from_str(&wire).expect("decode the envelope");
        assert_eq!(read.decode().expect("decode the payload"), data);
        value
    }

    #[test]
    fn payloads_survive_the_wire_with_their_fields() {
        let user = round_trip(EventData::UserRegistered(UserEvent {
            user_id: UserId::generate(),
            email: "ada@example.com".to_owned(),
            name: "Ada".to_owned(),
            role: Role::Customer,
        }));
        assert_eq!(user["email"], "ada@example.com");
        let stock = Stock {
            sku: "TEE-1".to_owned(),
            name: None,
            on_hand: 10,
            reserved: 2,
            available: 8,
            low_stock_threshold: 3,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        let plain = round_trip(EventData::InventoryAdjusted(StockEvent {
            sku: stock.sku.clone(),
            kind: MovementKind::Adjust,
            on_hand: 10,
            reserved: 2,
            available: 8,
            low_stock_threshold: 3,
            delta: -2,
            reason: None,
            actor: Some("ada".to_owned()),
            reservation: None,
        }));
        assert_eq!(plain["delta"], -2);
        assert_eq!(plain["reason"], serde_json::Value::Null);
        assert!(plain.get("reservation_id").is_none());
        let held = round_trip(EventData::InventoryReserved(StockEvent {
            kind: MovementKind::Reserve,
            reservation: Some(ReservationPart {
                reservation_id: ReservationId::generate(),
                quantity: 2,
                reference: None,
            }),
            ..serde_json::from_value(plain).expect("stock event")
        }));
        assert_eq!(held["quantity"], 2);
        let low = round_trip(EventData::InventoryLowStock((&stock).into()));
        assert_eq!(low["threshold"], 3);
        assert_eq!(
            EventData::InventoryLowStock((&stock).into()).stock_level(),
            Some(("TEE-1", 8))
        );
    }

    #[test]
    fn unknown_kinds_and_bad_data_are_errors_not_panics() {
        let mut event = Event {
            id: 1,
            kind: "order.eaten".to_owned(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            data: serde_json::json!({}),
        };
        assert!(matches!(event.decode(), Err(DecodeError::UnknownKind(_))));
        event.kind = EventKind::OrderPaid.as_str().to_owned();
        assert!(matches!(
            event.decode(),
            Err(DecodeError::Data(EventKind::OrderPaid, _))
        ));
    }
}
