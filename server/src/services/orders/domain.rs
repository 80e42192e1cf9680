//! The order workflow: validate -> hold stock -> charge -> commit the stock
//! and mark paid in one transaction -> `order.paid`.
//!
//! The order is recorded `pending` with its payment `processing` before the
//! provider is called, so whatever happens next there is a record to finish
//! from: a decline is recorded and the stock stays held until the order is
//! paid another way, cancelled, or its time runs out; a provider that does
//! not answer leaves the payment `processing` for the recovery worker, which
//! asks the provider what became of it. Money is never taken without an
//! order: a charge that succeeds for an order that can no longer be
//! fulfilled is refunded at once.

use serde_json::json;
use shop_wire::Page;
use shop_wire::orders::{
    FinancialStatus, FulfillmentId, FulfillmentItem, NewOrder, Order, OrderAnalytics, OrderId,
    OrderStatus, ShipOrder,
};
use shop_wire::payments::{PaymentMethod, Refund, RefundRequest};

use crate::auth::AuthUser;
use crate::services::cart::domain::{check_line, limits as cart_limits, not_active, refusal_error};
use crate::services::cart::rules::PriceChange;
use crate::services::error::{DomainError, DomainResult};
use crate::services::optional_note;
use crate::services::payments::domain as payments;
use crate::services::pricing::address_book;
use crate::services::pricing::domain::{self as pricing, Asked};
use crate::services::users::domain::{get_user, normalize_email};
use crate::services::users::rules as user_rules;
use crate::state::AppState;
use crate::store::{
    BeginPayment, OrderCreate, OrderDraft, OrderKey, OrderQuery, OrderSource, ShipOutcome,
    ShipmentDraft, TransitionOutcome, TransitionRequest, now,
};

use super::events::COMMERCE_EVENTS;
use super::fulfilment::{self, ShipRefusal};

/// The most lines one order may have.
const MAX_LINES: usize = 100;

/// Parses `ord_...` or an order number (`ORD-001042`, `1042`).
pub fn order_key(raw: &str) -> Option<OrderKey> {
    if let Ok(id) = raw.parse::<OrderId>() {
        return Some(OrderKey::Id(id));
    }
    let digits = raw
        .strip_prefix("ORD-")
        .or_else(|| raw.strip_prefix("ord-"))
        .unwrap_or(raw);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(OrderKey::Number)
}

fn not_found(raw: &str) -> DomainError {
    DomainError::not_found(format!("order {raw}"))
}

/// An order the caller may see: a customer's own, or any for staff. Someone
/// else's order is "not found", so order numbers cannot be probed.
pub async fn get(state: &AppState, caller: &AuthUser, raw: &str) -> DomainResult<Order> {
    let key = order_key(raw).ok_or_else(|| not_found(raw))?;
    let order = state
        .store
        .order(&key)
        .await?
        .ok_or_else(|| not_found(raw))?;
    if caller.role.is_staff() || owns(state, caller, &order).await? {
        Ok(order)
    } else {
        Err(not_found(raw))
    }
}

async fn owns(state: &AppState, caller: &AuthUser, order: &Order) -> DomainResult<bool> {
    if order.user_id.as_ref() == Some(&caller.user_id) {
        return Ok(true);
    }
    let user = get_user(state, &caller.user_id).await?;
    Ok(user_rules::guest_orders_email(&user)
        .is_some_and(|email| email.eq_ignore_ascii_case(&order.customer_email)))
}

/// A customer's list is narrowed to their own orders.
pub async fn list(
    state: &AppState,
    caller: &AuthUser,
    mut query: OrderQuery,
) -> DomainResult<Page<Order>> {
    if !caller.role.is_staff() {
        let user = get_user(state, &caller.user_id).await?;
        let email = user_rules::guest_orders_email(&user).map(str::to_owned);
        query.owner = Some((caller.user_id.clone(), email));
    }
    let (items, total) = state.store.list_orders(&query).await?;
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

pub async fn analytics(state: &AppState) -> DomainResult<OrderAnalytics> {
    Ok(state.store.order_analytics().await?)
}

/// The checkout. Answers the order (paid, or pending for a bank transfer or
/// without payment), or an error; a declined payment is 402 and leaves the
/// order pending. A repeat with the same `Idempotency-Key` answers the first
/// order and charges nothing.
pub async fn create(
    state: &AppState,
    caller: &AuthUser,
    request: NewOrder,
    idempotency_key: Option<&str>,
) -> DomainResult<(Order, bool)> {
    let user = get_user(state, &caller.user_id).await?;
    let customer_email = match &request.customer_email {
        Some(email) => {
            let email = normalize_email("customer_email", email)?;
            if !caller.role.is_staff() && !email.eq_ignore_ascii_case(&user.email) {
                return Err(DomainError::forbidden(
                    "customers order for themselves; leave customer_email out",
                ));
            }
            email
        }
        None => user.email.clone(),
    };
    let source = match (&request.cart_id, request.items.is_empty()) {
        (Some(_), false) => {
            return Err(DomainError::validation(
                "items",
                "give either cart_id or items, not both",
            ));
        }
        (None, true) => {
            return Err(DomainError::validation(
                "items",
                "order at least one item, or give a cart_id",
            ));
        }
        (Some(cart), true) => OrderSource::Cart(cart.clone()),
        (None, false) => {
            if request.items.len() > MAX_LINES {
                return Err(DomainError::validation(
                    "items",
                    format!("an order has at most {MAX_LINES} lines"),
                ));
            }
            OrderSource::Items(
                request
                    .items
                    .iter()
                    .map(|line| check_line(&line.sku, line.quantity, false))
                    .collect::<DomainResult<_>>()?,
            )
        }
    };
    let mut skus: Vec<String> = match &source {
        OrderSource::Items(items) => items.iter().map(|item| item.sku.clone()).collect(),
        OrderSource::Cart(_) => Vec::new(),
    };
    let mut cart_checkout = None;
    if let OrderSource::Cart(cart) = &source {
        // A cart is checked out by its owner (or staff); anyone else does not see it.
        let record = state.store.cart(cart).await?;
        let visible = record.as_ref().is_some_and(|r| {
            caller.role.is_staff() || r.cart.user_id.as_ref() == Some(&caller.user_id)
        });
        if !visible {
            return Err(DomainError::not_found(format!("cart {cart}")));
        }
        if let Some(record) = record {
            skus = record.cart.items.into_iter().map(|item| item.sku).collect();
            cart_checkout = Some(record.cart.checkout);
        }
    }
    let asked = Asked {
        shipping_address: request.shipping_address.clone(),
        destination: None,
        billing_address: request.billing_address.clone(),
        shipping_method: request.shipping_method.clone(),
        discount_codes: request.discount_codes.clone(),
    };
    let saved = [
        request.shipping_address_id.clone(),
        request.billing_address_id.clone(),
    ];
    let asked = address_book::complete(state, &caller.user_id, asked, saved, cart_checkout).await?;
    let cart = request.cart_id.clone();
    let checkout = pricing::checkout(state, asked, skus, cart, &customer_email).await?;
    let charge = request
        .payment
        .as_ref()
        .map(|method| payments::prepare(state, method))
        .transpose()?;
    let draft = OrderDraft {
        id: OrderId::generate(),
        // Staff ordering for a customer do not own the order: it is the
        // customer's, found by its email once their address is verified.
        user_id: customer_email
            .eq_ignore_ascii_case(&user.email)
            .then(|| caller.user_id.clone()),
        customer_email,
        source,
        // Scoped to the caller, as the gateway's replay is.
        idempotency_key: idempotency_key.map(|key| format!("{}:{key}", caller.user_id)),
        pay_by: payments::pay_by(state),
        payment: charge.as_ref().map(|c| c.draft.clone()),
        actor: user.email.clone(),
        limits: cart_limits(state),
        // Staff placing orders for customers are not held to a customer's cap.
        max_unpaid: (!caller.role.is_staff()).then_some(state.config.commerce.max_unpaid_orders),
        checkout,
    };
    let (order, payment) = match state.store.create_order(draft, COMMERCE_EVENTS).await? {
        OrderCreate::Created { order, payment, .. } => {
            metrics::counter!("shop_orders_created_total").increment(1);
            (*order, payment)
        }
        OrderCreate::Existing(order) => return Ok((*order, false)),
        OrderCreate::Refused(refusal) => return Err(refusal_error(refusal)),
        OrderCreate::MixedCurrencies => {
            return Err(DomainError::conflict(
                "currency_mismatch",
                "the items are priced in different currencies; order them separately",
            ));
        }
        OrderCreate::CartNotFound => {
            return Err(DomainError::not_found(format!(
                "cart {}",
                request.cart_id.map(|c| c.to_string()).unwrap_or_default()
            )));
        }
        OrderCreate::CartNotActive(status) => {
            let cart = request.cart_id.map(|c| c.to_string()).unwrap_or_default();
            return Err(not_active(&cart, status));
        }
        OrderCreate::CartEmpty => {
            return Err(DomainError::conflict(
                "cart_empty",
                "the cart has no items to order",
            ));
        }
        OrderCreate::TooManyUnpaid(max) => {
            return Err(DomainError::Conflict {
                code: "too_many_unpaid_orders",
                message: format!(
                    "you have {max} unpaid orders; pay or cancel one before ordering again"
                ),
                details: json!({ "max_unpaid_orders": max }),
            });
        }
        OrderCreate::PricesChanged(changes) => return Err(prices_changed(&changes)),
        OrderCreate::Unpriceable(unpriced) => return Err(pricing::unpriced_error(unpriced)),
        OrderCreate::DiscountUsedUp(refusal) => return Err(pricing::used_up_error(refusal)),
    };
    match (charge, payment) {
        (Some(charge), Some(payment)) => {
            let order = payments::charge(state, &order, &payment, charge, &user.email).await?;
            Ok((order, true))
        }
        _ => Ok((order, true)),
    }
}

/// The answer to a checkout whose cart's prices changed: nothing was
/// ordered, the cart now shows today's prices, and each change is named.
fn prices_changed(changes: &[PriceChange]) -> DomainError {
    let said: Vec<String> = changes
        .iter()
        .map(|c| format!("{} from {} to {}", c.sku, c.was_cents, c.now_cents))
        .collect();
    DomainError::Conflict {
        code: "price_changed",
        message: format!(
            "prices changed since they were added to the cart ({}, in minor units); the cart \
             now has the new prices: check it and order again",
            said.join("; ")
        ),
        details: json!({
            "changes": changes
                .iter()
                .map(|c| json!({ "sku": c.sku, "was_cents": c.was_cents, "now_cents": c.now_cents }))
                .collect::<Vec<_>>()
        }),
    }
}

/// Pays a pending order (after a decline, or an order placed without payment).
pub async fn pay(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    method: PaymentMethod,
) -> DomainResult<Order> {
    let order = get(state, caller, raw).await?;
    let charge = payments::prepare(state, &method)?;
    let actor = get_user(state, &caller.user_id).await?.email;
    let started = state
        .store
        .begin_payment(
            &order.id,
            charge.draft.clone(),
            payments::pay_by(state),
            actor.clone(),
            COMMERCE_EVENTS,
        )
        .await?;
    match started {
        BeginPayment::Started { order, payment, .. } => {
            payments::charge(state, &order, &payment, charge, &actor).await
        }
        BeginPayment::NotFound => Err(not_found(raw)),
        BeginPayment::WrongStatus(status) => Err(illegal(&order, status, OrderStatus::Paid)),
        BeginPayment::InFlight(payment) => Err(DomainError::Conflict {
            code: "payment_in_progress",
            message: format!(
                "payment {} of {} is {}; wait for it to finish",
                payment.id, order.number, payment.status
            ),
            details: json!({ "payment_id": payment.id, "status": payment.status }),
        }),
        BeginPayment::StockGone(refusal) => Err(refusal_error(refusal)),
    }
}

fn illegal(order: &Order, from: OrderStatus, to: OrderStatus) -> DomainError {
    let allowed: Vec<&str> = from.next().iter().map(|s| s.as_str()).collect();
    let message = if allowed.is_empty() {
        format!(
            "{} is {from}, which is final; it cannot become {to}",
            order.number
        )
    } else {
        format!(
            "{} is {from}; it cannot become {to} (allowed: {})",
            order.number,
            allowed.join(", ")
        )
    };
    DomainError::Conflict {
        code: "illegal_transition",
        message,
        details: json!({ "from": from, "to": to, "allowed": allowed }),
    }
}

/// Moves an order along its state machine: ship and deliver (staff), cancel
/// (staff, or the customer while it is pending). Cancelling a paid order
/// refunds what is left of its payment and restocks, in that order.
pub async fn transition(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    to: OrderStatus,
    note: Option<String>,
    tracking_number: Option<String>,
) -> DomainResult<Order> {
    let order = get(state, caller, raw).await?;
    let note = optional_note("note", note)?;
    let tracking_number = optional_note("tracking_number", tracking_number)?;
    let customer_may = to == OrderStatus::Cancelled && order.status == OrderStatus::Pending;
    if !caller.role.is_staff() && !customer_may {
        return Err(DomainError::forbidden(
            "only staff ship, deliver, or cancel a paid order",
        ));
    }
    let actor = get_user(state, &caller.user_id).await?.email;
    let request = TransitionRequest {
        to,
        actor: actor.clone(),
        note: note.clone(),
        tracking_number,
    };
    match state
        .store
        .transition_order(&order.id, request, COMMERCE_EVENTS)
        .await?
    {
        TransitionOutcome::Done(order) => Ok(*order),
        TransitionOutcome::NotFound => Err(not_found(raw)),
        TransitionOutcome::Illegal { from } => Err(illegal(&order, from, to)),
        TransitionOutcome::PaymentInFlight => Err(DomainError::conflict(
            "payment_in_progress",
            format!(
                "a payment of {} is being taken right now; try again in a moment",
                order.number
            ),
        )),
        TransitionOutcome::Refunded => Err(refunded(&order, to)),
        TransitionOutcome::PartlyShipped => Err(DomainError::Conflict {
            code: "order_partially_shipped",
            message: format!(
                "some of {} has shipped, so it is not cancelled; refund what will not ship, \
                 or take the shipped items back as a return",
                order.number
            ),
            details: json!({ "fulfillment_status": order.fulfillment_status }),
        }),
        TransitionOutcome::NeedsRefund { payment_id } => {
            let refund = RefundRequest {
                amount_cents: None,
                reason: note.or_else(|| Some("order cancelled".to_owned())),
            };
            payments::refund(state, &actor, &payment_id, refund, true).await?;
            get(state, caller, raw).await
        }
    }
}

fn refunded(order: &Order, to: OrderStatus) -> DomainError {
    DomainError::Conflict {
        code: "order_refunded",
        message: format!(
            "{} was refunded in full, so it is not shipped; cancel it to restock its items",
            order.number
        ),
        details: json!({ "financial_status": FinancialStatus::Refunded, "to": to }),
    }
}

/// The most characters of a carrier's name, a tracking number and a tracking URL.
const MAX_CARRIER: usize = 40;
const MAX_TRACKING: usize = 100;
const MAX_TRACKING_URL: usize = 500;

/// A carrier name or tracking number: trimmed, not blank, short, one line.
fn shipping_text(field: &str, text: Option<String>, max: usize) -> DomainResult<Option<String>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(DomainError::validation(
            field,
            format!("must be 1 to {max} characters on one line"),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// What `POST /api/orders/{id}/ship` asks, checked: the lines of a partial
/// shipment each name a SKU and at least one unit.
fn shipment_items(
    items: Option<Vec<FulfillmentItem>>,
) -> DomainResult<Option<Vec<FulfillmentItem>>> {
    let Some(items) = items else {
        return Ok(None);
    };
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(DomainError::validation(
            "items",
            format!("give 1 to {MAX_LINES} items, or leave items out to ship everything left"),
        ));
    }
    items
        .into_iter()
        .map(|item| {
            check_line(&item.sku, item.quantity, false).map(|line| FulfillmentItem {
                sku: line.sku,
                quantity: line.quantity,
            })
        })
        .collect::<DomainResult<Vec<_>>>()
        .map(Some)
}

/// Ships (part of) a paid order (staff): the items asked for, or all that
/// is left. The tracking URL is the one given, or the carrier's template
/// filled with the tracking number.
pub async fn ship(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    request: ShipOrder,
) -> DomainResult<Order> {
    let order = get(state, caller, raw).await?;
    if !caller.role.is_staff() {
        return Err(DomainError::forbidden("only staff ship orders"));
    }
    let note = optional_note("note", request.note)?;
    let carrier = shipping_text("carrier", request.carrier, MAX_CARRIER)?;
    let tracking_number = shipping_text("tracking_number", request.tracking_number, MAX_TRACKING)?;
    let given_url = shipping_text("tracking_url", request.tracking_url, MAX_TRACKING_URL)?;
    if let Some(url) = &given_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(DomainError::validation(
            "tracking_url",
            "must be an http:// or https:// URL",
        ));
    }
    let items = shipment_items(request.items)?;
    let tracking_url = fulfilment::tracking_url(
        &state.config.carriers,
        carrier.as_deref(),
        tracking_number.as_deref(),
        given_url.as_deref(),
    );
    let draft = ShipmentDraft {
        id: FulfillmentId::generate(),
        items,
        carrier,
        tracking_number,
        tracking_url,
        actor: get_user(state, &caller.user_id).await?.email,
        note,
    };
    match state
        .store
        .ship_order(&order.id, draft, COMMERCE_EVENTS)
        .await?
    {
        ShipOutcome::Shipped(order) => Ok(*order),
        ShipOutcome::NotFound => Err(not_found(raw)),
        ShipOutcome::Refused(ShipRefusal::Illegal { from }) => {
            Err(illegal(&order, from, OrderStatus::Shipped))
        }
        ShipOutcome::Refused(ShipRefusal::Refunded) => Err(refunded(&order, OrderStatus::Shipped)),
        ShipOutcome::Refused(ShipRefusal::NotInOrder { sku }) => Err(DomainError::rejected(
            "not_in_order",
            "items",
            format!("{} has no line of {sku}", order.number),
        )),
        ShipOutcome::Refused(ShipRefusal::Exceeds { sku, asked, left }) => {
            Err(DomainError::Conflict {
                code: "ship_exceeds_remaining",
                message: format!(
                    "{asked} of {sku} asked to ship, but only {left} of it is left to ship in {}",
                    order.number
                ),
                details: json!({ "sku": sku, "asked": asked, "left": left }),
            })
        }
    }
}

/// Refunds (part of) a paid order's payment (staff).
pub async fn refund(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    request: RefundRequest,
) -> DomainResult<Refund> {
    let order = get(state, caller, raw).await?;
    let Some(payment) = &order.payment_id else {
        return Err(DomainError::conflict(
            "not_refundable",
            format!("{} has no payment to refund", order.number),
        ));
    };
    let actor = get_user(state, &caller.user_id).await?.email;
    payments::refund(state, &actor, payment, request, false).await
}

/// Cancels pending orders whose time to pay ran out, releasing their stock.
pub async fn sweep(state: &AppState) -> anyhow::Result<u64> {
    const BATCH: u32 = 200;
    let mut expired = 0;
    loop {
        let count = state
            .store
            .expire_orders(now(), BATCH, COMMERCE_EVENTS)
            .await?;
        expired += count;
        if count < u64::from(BATCH) {
            return Ok(expired);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    #[test]
    fn orders_are_named_by_id_or_number() {
        let id = OrderId::generate();
        assert_eq!(order_key(id.as_str()), Some(OrderKey::Id(id)));
        assert_eq!(order_key("ORD-001042"), Some(OrderKey::Number(1042)));
        assert_eq!(order_key("1042"), Some(OrderKey::Number(1042)));
        assert_eq!(order_key("ORD-"), None);
        assert_eq!(order_key("ORD-12x"), None);
        assert_eq!(order_key("99999999999999999999"), None);
    }

    #[test]
    fn an_illegal_transition_lists_the_allowed_ones() {
        let order = Order {
            id: OrderId::generate(),
            number: "ORD-001001".to_owned(),
            status: OrderStatus::Delivered,
            financial_status: shop_wire::orders::FinancialStatus::Paid,
            items: Vec::new(),
            item_count: 0,
            total_cents: 100,
            refunded_cents: 0,
            currency: shop_wire::money::Currency::USD,
            customer_email: "a@example.com".to_owned(),
            user_id: None,
            payment_id: None,
            cart_id: None,
            payment_error: None,
            tracking_number: None,
            fulfillment_status: shop_wire::orders::FulfillmentStatus::Unfulfilled,
            fulfillments: Vec::new(),
            pricing: Default::default(),
            history: Vec::new(),
            created_at: now(),
            updated_at: now(),
        };
        let err = illegal(&order, OrderStatus::Paid, OrderStatus::Delivered);
        assert!(
            err.to_string().contains("allowed: shipped, cancelled"),
            "{err}"
        );
        assert_eq!(AppError::from(err).code(), "illegal_transition");
        let err = illegal(&order, OrderStatus::Delivered, OrderStatus::Paid);
        assert!(err.to_string().contains("final"), "{err}");
    }
}
