//! The events of the money path, built inside the store's transactions so
//! each is logged with the change it describes.
//!
//! Order events carry the order itself (without its history), which is what
//! the dashboard's feed, the confirmation emails and the search service's
//! co-purchase counts read. Payment events carry the order's number and
//! customer, so a refund email can be written from the event alone.

use serde_json::{Value, json};
use shop_wire::cart::Cart;
use shop_wire::orders::Order;
use shop_wire::payments::{Payment, Refund};

use crate::services::inventory::domain::stock_events;
use crate::store::{CommerceEvents, NewEvent};

pub const COMMERCE_EVENTS: CommerceEvents = CommerceEvents {
    stock: stock_events,
    cart: cart_event,
    order: order_event,
    payment: payment_event,
};

fn cart_event(kind: &'static str, cart: &Cart) -> NewEvent {
    NewEvent::now(
        kind,
        json!({
            "id": cart.id,
            "user_id": cart.user_id,
            "status": cart.status,
            "item_count": cart.item_count,
            "subtotal_cents": cart.subtotal_cents,
            "currency": cart.currency,
            "version": cart.version,
        }),
    )
}

fn order_event(kind: &'static str, order: &Order) -> NewEvent {
    let mut data = serde_json::to_value(order).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut data {
        map.remove("history");
    }
    NewEvent::now(kind, data)
}

fn payment_event(
    kind: &'static str,
    payment: &Payment,
    order: &Order,
    refund: Option<&Refund>,
) -> NewEvent {
    let mut data = json!({
        "id": payment.id,
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "number": order.number,
        "customer_email": order.customer_email,
        "method": payment.method,
        "status": payment.status,
        "provider": payment.provider,
        "currency": payment.currency,
        "amount_cents": payment.amount_cents,
        "refunded_cents": payment.refunded_cents,
        "failure_code": payment.failure_code,
    });
    if let (Some(refund), Value::Object(map)) = (refund, &mut data) {
        // A refund email tells the refunded amount, not the payment's.
        map.insert("amount_cents".to_owned(), json!(refund.amount_cents));
        map.insert(
            "payment_amount_cents".to_owned(),
            json!(payment.amount_cents),
        );
        map.insert("refund_id".to_owned(), json!(refund.id));
        map.insert("refund_status".to_owned(), json!(refund.status));
        map.insert("reason".to_owned(), json!(refund.reason));
    }
    NewEvent::now(kind, data)
}
