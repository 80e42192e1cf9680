//! Purchases for recommendations and popularity: `order.paid` events read
//! from the durable event log with a cursor of our own, so every paid order
//! counts once (the counts and the cursor move in one transaction) and
//! orders paid while the server was down count when it is back.
//!
//! The cursor starts at the beginning of the log: unlike a notification, an
//! old order is still worth counting.

use std::time::Duration;

use futures::StreamExt;
use shop_wire::Event;

use crate::state::AppState;
use crate::store::ProductPopularity;

/// The consumer's name in the store's event cursors.
pub const CURSOR: &str = "search";
/// Events read per transaction at most.
const CHUNK: usize = 256;

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

/// The SKUs of a paid order's items (`data.items[].sku`).
pub fn order_skus(event: &Event) -> Option<Vec<String>> {
    if event.kind != "order.paid" {
        return None;
    }
    let items = event.data.get("items")?.as_array()?;
    let skus: Vec<String> = items
        .iter()
        .filter_map(|item| item.get("sku")?.as_str().map(str::to_owned))
        .collect();
    (!skus.is_empty()).then_some(skus)
}

/// Follows the event log from the stored cursor for as long as it runs.
async fn follow(state: &AppState) -> anyhow::Result<()> {
    let cursor = state.store.event_cursor(CURSOR).await?;
    let mut stream = Box::pin(state.events.stream_after(cursor).ready_chunks(CHUNK));
    let mut unsaved = 0usize;
    while let Some(chunk) = stream.next().await {
        let events = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
        let Some(last) = events.last().map(|e| e.id) else {
            continue;
        };
        unsaved += events.len();
        let orders: Vec<Vec<String>> = events.iter().filter_map(order_skus).collect();
        // Events that are not paid orders move the cursor only now and then:
        // rereading a few after a restart is harmless.
        if orders.is_empty() && unsaved < CHUNK {
            continue;
        }
        let counts = state.store.record_purchases(orders, (CURSOR, last)).await?;
        unsaved = 0;
        if !counts.is_empty() {
            let mut index = state.search.write();
            for c in &counts {
                index.set_popularity(&c.id, ProductPopularity::score(c.purchases, c.views));
            }
            drop(index);
            state.search.changed();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paid_orders_name_their_skus() {
        let event = |kind: &str, data| Event {
            id: 1,
            kind: kind.to_owned(),
            occurred_at: time::OffsetDateTime::now_utc(),
            data,
        };
        let paid = event(
            "order.paid",
            json!({"items": [{"sku": "MUG-1", "quantity": 2}, {"sku": "CUP-1"}, {"quantity": 1}]}),
        );
        assert_eq!(
            order_skus(&paid),
            Some(vec!["MUG-1".to_owned(), "CUP-1".to_owned()])
        );
        assert_eq!(
            order_skus(&event("order.created", json!({"items": [{"sku": "X"}]}))),
            None
        );
        assert_eq!(
            order_skus(&event("order.paid", json!({"items": "nope"}))),
            None
        );
    }
}
