//! What a checkout costs the one writer, in statements: the number the
//! checkout's throughput follows, kept from growing back unnoticed.

use shop_wire::payments::{MethodKind, PaymentId};
use shop_wire::products::ProductRequest;
use shop_wire::{OrderId, UserId};

use crate::services::orders::events::COMMERCE_EVENTS;
use crate::store::sqlite::tests::store;
use crate::store::{
    CatalogStore, ChargeResult, InitialStock, OrderCreate, OrderDraft, OrderSource, OrderStore,
    PaymentDone, PaymentDraft, PaymentStore, ReserveItem, now,
};

/// The most statements one checkout of one line (order, hold, payment
/// recorded; then the charge's success with the stock committed) may cost,
/// savepoints, events, ledger and audit entries included. The audit log
/// adds one `INSERT` to each of the checkout's two changes (32 before it).
const MOST_STATEMENTS_PER_CHECKOUT: u64 = 34;

#[tokio::test]
async fn a_checkout_costs_the_writer_a_bounded_number_of_statements() {
    let (_dir, store) = store();
    let (product, _, _) = crate::services::products::domain::product_from(ProductRequest {
        sku: "MUG-1".to_owned(),
        name: "Mug".to_owned(),
        price_cents: 1200,
        active: true,
        ..ProductRequest::default()
    })
    .expect("valid product");
    let stock = InitialStock {
        on_hand: 100,
        low_stock_threshold: 0,
    };
    store
        .insert_product(&product, stock, None, Vec::new())
        .await
        .expect("product");
    let mut costs = Vec::new();
    for _ in 0..3 {
        let before = store.writer_statements();
        let payment = PaymentId::generate();
        let draft = OrderDraft {
            id: OrderId::generate(),
            customer_email: "ada@example.com".to_owned(),
            user_id: Some(UserId::generate()),
            source: OrderSource::Items(vec![ReserveItem {
                sku: "MUG-1".to_owned(),
                quantity: 1,
            }]),
            idempotency_key: None,
            pay_by: now() + time::Duration::minutes(30),
            payment: Some(PaymentDraft {
                id: payment.clone(),
                method: MethodKind::Card,
                provider: "simulated",
                card_brand: Some("visa".to_owned()),
                card_last4: Some("4242".to_owned()),
            }),
            actor: "ada@example.com".to_owned(),
            limits: crate::services::cart::rules::QuantityLimits {
                per_line: 100,
                per_cart: 500,
            },
            max_unpaid: None,
            checkout: crate::store::contract::checkout_of(&store, "MUG-1").await,
        };
        let created = store
            .create_order(draft, COMMERCE_EVENTS)
            .await
            .expect("order");
        assert!(
            matches!(created, OrderCreate::Created { .. }),
            "{created:?}"
        );
        let result = ChargeResult::Succeeded {
            provider_ref: "sim_1".to_owned(),
            card_brand: None,
            card_last4: None,
        };
        let done = store
            .complete_payment(
                &payment,
                result,
                "ada@example.com".to_owned(),
                COMMERCE_EVENTS,
            )
            .await
            .expect("payment");
        assert!(matches!(done, PaymentDone::Paid { .. }), "{done:?}");
        costs.push(store.writer_statements() - before);
    }
    eprintln!("statements per checkout: {costs:?}");
    for cost in costs {
        assert!(
            cost <= MOST_STATEMENTS_PER_CHECKOUT,
            "a checkout ran {cost} statements on the writer"
        );
    }
}
