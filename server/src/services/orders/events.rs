//! The events of the money path, built inside the store's transactions so
//! each is logged with the change it describes.
//!
//! Order events carry the order itself (without its history), which is what
//! the dashboard's feed, the confirmation emails and the search service's
//! co-purchase counts read. Payment events carry the order's number and
//! customer, so a refund email can be written from the event alone.

use shop_wire::cart::Cart;
use shop_wire::events::{CartEvent, EventData, MakeEvent, PaymentEvent};
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

fn cart_event(kind: MakeEvent<CartEvent>, cart: &Cart) -> NewEvent {
    NewEvent::now(kind(cart.into()))
}

fn order_event(kind: MakeEvent<Order>, order: &Order) -> NewEvent {
    NewEvent::now(EventData::order(kind, order))
}

fn payment_event(
    kind: MakeEvent<PaymentEvent>,
    payment: &Payment,
    order: &Order,
    refund: Option<&Refund>,
) -> NewEvent {
    NewEvent::now(kind(PaymentEvent::new(payment, order, refund)))
}

/// A paid order of one unit of each SKU, for tests of the events' readers.
#[cfg(test)]
pub fn sample_order(customer_email: &str, skus: &[&str]) -> Order {
    use shop_wire::orders::{OrderItem, OrderStatus};
    let at = crate::store::now();
    let items: Vec<OrderItem> = skus
        .iter()
        .map(|sku| OrderItem {
            sku: (*sku).to_owned(),
            name: format!("Thing {sku}"),
            quantity: 1,
            unit_price_cents: 100,
            line_total_cents: 100,
        })
        .collect();
    Order {
        id: shop_wire::OrderId::generate(),
        number: "ORD-001001".to_owned(),
        status: OrderStatus::Paid,
        financial_status: shop_wire::orders::FinancialStatus::Paid,
        item_count: items.len() as i64,
        total_cents: 100 * items.len() as i64,
        items,
        refunded_cents: 0,
        currency: shop_wire::money::Currency::USD,
        customer_email: customer_email.to_owned(),
        user_id: None,
        payment_id: None,
        cart_id: None,
        payment_error: None,
        tracking_number: None,
        fulfillment_status: shop_wire::orders::FulfillmentStatus::Unfulfilled,
        fulfillments: Vec::new(),
        pricing: Default::default(),
        history: Vec::new(),
        created_at: at,
        updated_at: at,
    }
}
