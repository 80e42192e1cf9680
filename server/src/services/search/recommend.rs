//! Purchases for recommendations and popularity: `order.paid` events read
//! from the durable event log with a cursor of our own, so every paid order
//! counts once (the counts and the cursor move in one transaction) and
//! orders paid while the server was down count when it is back.
//!
//! The cursor starts at the beginning of the log: unlike a notification, an
//! old order is still worth counting.

use std::time::Duration;

use shop_wire::Event;
use shop_wire::events::{EventData, EventKind};

use crate::events::FOLLOW_CHUNK;
use crate::state::AppState;
use crate::store::{CursorMove, StoreError};

/// The consumer's name in the store's event cursors.
pub const CURSOR: &str = "search";

pub fn spawn(state: &AppState) {
    let worker_state = state.clone();
    state
        .workers
        .spawn_periodic(super::PURCHASES, Duration::from_secs(1), move || {
            let state = worker_state.clone();
            async move {
                tokio::select! {
                    result = follow(&state) => result,
                    () = state.shutdown.cancelled() => Ok(()),
                }
            }
        });
}

/// The SKUs of a paid order's items.
pub fn order_skus(event: &Event) -> Option<Vec<String>> {
    if event.event_kind() != Some(EventKind::OrderPaid) {
        return None;
    }
    let EventData::OrderPaid(order) = event.decode().ok()? else {
        return None;
    };
    let skus: Vec<String> = order.items.into_iter().map(|item| item.sku).collect();
    (!skus.is_empty()).then_some(skus)
}

/// Follows the event log from the stored cursor for as long as it runs.
///
/// Another node's counter may move the cursor first: then this run ends
/// without counting, and the next one reads on from where that one got, so
/// no order is counted twice.
async fn follow(state: &AppState) -> anyhow::Result<()> {
    let mut stored = state.store.event_cursor(CURSOR).await?;
    let mut follower = state.events.follow(stored, CURSOR);
    let mut unsaved = 0usize;
    while let Some(events) = follower.next().await {
        let events = events?;
        let Some(last) = events.last().map(|e| e.id) else {
            continue;
        };
        unsaved += events.len();
        let orders: Vec<Vec<String>> = events
            .iter()
            .filter_map(|event| order_skus(event))
            .collect();
        // Events that are not paid orders move the cursor only now and then:
        // rereading a few after a restart is harmless.
        if orders.is_empty() && unsaved < FOLLOW_CHUNK {
            continue;
        }
        let cursor = CursorMove {
            consumer: CURSOR,
            from: stored,
            to: last,
        };
        let counts = match state.store.record_purchases(orders, cursor).await {
            Ok(counts) => counts,
            Err(StoreError::CursorMoved { .. }) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        stored = last;
        unsaved = 0;
        state.search.set_popularity(&counts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::orders::events::sample_order;
    use crate::store::NewEvent;
    use serde_json::json;

    #[test]
    fn paid_orders_name_their_skus() {
        let event = |data: EventData| NewEvent::now(data).logged(1);
        let order = sample_order("c@example.com", &["MUG-1", "CUP-1"]);
        let paid = event(EventData::OrderPaid(order.clone()));
        assert_eq!(
            order_skus(&paid),
            Some(vec!["MUG-1".to_owned(), "CUP-1".to_owned()])
        );
        assert_eq!(order_skus(&event(EventData::OrderCreated(order))), None);
        let garbled = Event {
            data: json!({"items": "nope"}),
            ..paid
        };
        assert_eq!(order_skus(&garbled), None);
    }
}

#[cfg(test)]
mod store_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use shop_wire::events::UserEvent;
    use shop_wire::products::{Product, ProductRequest};

    use super::*;
    use crate::config::Config;
    use crate::services::orders::events::sample_order;
    use crate::services::products::domain::product_from;
    use crate::services::search::domain;
    use crate::store::sqlite::{Durability, SqliteStore};
    use crate::store::{InitialStock, NewEvent, Store};

    async fn add(store: &Arc<dyn Store>, sku: &str, category: &str) -> Product {
        let product = product_from(ProductRequest {
            sku: sku.to_owned(),
            name: format!("Thing {sku}"),
            category: Some(category.to_owned()),
            price_cents: 1000,
            active: true,
            ..ProductRequest::default()
        })
        .expect("valid")
        .0;
        store
            .insert_product(
                &product,
                InitialStock {
                    on_hand: 5,
                    low_stock_threshold: 0,
                },
                None,
                Vec::new(),
            )
            .await
            .expect("insert");
        product
    }

    fn skus(recommendations: &shop_wire::search::Recommendations) -> Vec<(String, String)> {
        recommendations
            .items
            .iter()
            .map(|r| (r.product.sku.clone(), r.reason.clone()))
            .collect()
    }

    #[tokio::test]
    async fn paid_orders_from_the_event_log_become_co_purchases() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("shop.db"), Durability::Process).expect("open"),
        );
        let state = AppState::new(
            Arc::new(Config::default()),
            store.clone(),
            &[7; 32],
            crate::services::payments::provider::Providers::from_config(&Default::default())
                .expect("the simulated provider"),
            std::time::Instant::now(),
            tokio_util::sync::CancellationToken::new(),
        );
        let mug = add(&store, "MUG-1", "kitchen/mugs").await;
        let saucer = add(&store, "SAUCER-1", "kitchen/plates").await;
        let kettle = add(&store, "KETTLE-1", "kitchen/kettles").await;
        let spoon = add(&store, "SPOON-1", "kitchen/cutlery").await;
        let other_mug = add(&store, "MUG-2", "kitchen/mugs").await;
        domain::build(&state).await.expect("build");

        // Before any order: the same category (nearest first), never the product itself.
        let before = domain::recommendations(&state, "MUG-1", 10)
            .await
            .expect("recommend");
        assert_eq!(before.items[0].product.sku, "MUG-2");
        assert!(
            before
                .items
                .iter()
                .all(|r| r.reason == "category" && r.product.id != mug.id)
        );

        let follower = {
            let state = state.clone();
            tokio::spawn(async move { follow(&state).await })
        };
        let order = |skus: &[&str]| {
            NewEvent::now(EventData::OrderPaid(sample_order("c@example.com", skus)))
        };
        let logged = store
            .append_events(vec![
                order(&["MUG-1", "SAUCER-1"]),
                order(&["MUG-1", "SAUCER-1", "KETTLE-1"]),
                order(&["MUG-1", "SPOON-1"]),
                NewEvent::now(EventData::UserRegistered(UserEvent {
                    user_id: shop_wire::UserId::generate(),
                    email: "a@example.com".to_owned(),
                    name: "A".to_owned(),
                    role: shop_wire::Role::Customer,
                })),
            ])
            .await
            .expect("append");
        // The last paid order's: events after it that call for nothing move
        // the cursor only now and then.
        let last = logged[2].id;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.event_cursor(CURSOR).await.expect("cursor") < last {
            assert!(
                std::time::Instant::now() < deadline,
                "the follower did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        follower.abort();

        let after = domain::recommendations(&state, &mug.id.to_string(), 10)
            .await
            .expect("recommend");
        let got = skus(&after);
        assert_eq!(
            got[0],
            ("SAUCER-1".to_owned(), "co_purchase".to_owned()),
            "{got:?}"
        );
        assert_eq!(after.items[0].co_purchases, 2);
        assert!(got.contains(&("KETTLE-1".to_owned(), "co_purchase".to_owned())));
        assert!(got.contains(&("SPOON-1".to_owned(), "co_purchase".to_owned())));
        assert!(
            got.iter().all(|(sku, _)| sku != "MUG-1"),
            "never itself: {got:?}"
        );
        assert!(
            got.contains(&("MUG-2".to_owned(), "category".to_owned())),
            "filled up by category"
        );

        // An archived product is never recommended, however often it was bought.
        let mut archived = saucer.clone();
        archived.active = false;
        archived.version += 1;
        store
            .update_product(&archived, saucer.version, Vec::new())
            .await
            .expect("archive");
        domain::catalog_changed(&state, vec![saucer.id.clone()]).await;
        let got = skus(
            &domain::recommendations(&state, "MUG-1", 10)
                .await
                .expect("recommend"),
        );
        assert!(got.iter().all(|(sku, _)| sku != "SAUCER-1"), "{got:?}");

        // Purchases make a product popular: it leads an empty query.
        let browse = state.search.read().search("", &Default::default(), 0, 10);
        assert_eq!(browse.hits[0].id, mug.id, "three purchases");
        let _ = (kettle, spoon, other_mug);
    }
}
