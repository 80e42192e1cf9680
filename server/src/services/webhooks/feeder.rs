//! The feeder: follows the event log from the `webhooks` cursor and queues
//! a delivery per subscribed endpoint and event.
//!
//! The deliveries and the cursor move commit together, and each delivery
//! is unique per (endpoint, event), so an event read twice (after a crash,
//! from the log again) is queued once. One transaction per chunk of events
//! read, whatever the number of nodes: a second node's feeder finds the
//! deliveries already there.

use std::time::Duration;

use futures::StreamExt;
use shop_wire::Event;

use super::domain::plan;
use crate::state::AppState;
use crate::store::now;

pub const FEEDER: &str = "webhook_feeder";
/// The feeder's name in the store's event cursors.
pub const CURSOR: &str = "webhooks";
/// Events read per transaction at most.
const CHUNK: usize = 512;

pub fn spawn(state: &AppState) {
    let worker_state = state.clone();
    state
        .workers
        .spawn_periodic(FEEDER, Duration::from_secs(1), move || {
            let state = worker_state.clone();
            async move {
                tokio::select! {
                    result = follow(&state) => result,
                    () = state.shutdown.cancelled() => Ok(()),
                }
            }
        });
}

/// Follows the event log from the stored cursor for as long as it runs.
async fn follow(state: &AppState) -> anyhow::Result<()> {
    let cursor = state.store.event_cursor(CURSOR).await?;
    let mut stream = Box::pin(state.events.stream_after(cursor).ready_chunks(CHUNK));
    let mut unsaved = 0usize;
    while let Some(chunk) = stream.next().await {
        let events = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
        unsaved += events.len();
        if feed(state, &events, unsaved >= CHUNK).await? {
            unsaved = 0;
        }
    }
    Ok(())
}

/// Queues the deliveries `events` call for and moves the cursor past them
/// in one transaction. Events that call for nothing move the cursor only
/// now and then (`force`): rereading a few after a restart is harmless.
/// Returns whether the cursor was saved.
pub async fn feed(state: &AppState, events: &[Event], force: bool) -> anyhow::Result<bool> {
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(false);
    };
    let webhooks = state.store.active_webhooks().await?;
    let deliveries = plan(&webhooks, events, now());
    if deliveries.is_empty() && !force {
        return Ok(false);
    }
    let queued = state
        .store
        .enqueue_deliveries(deliveries, Some((CURSOR, last)))
        .await?;
    if queued > 0 {
        state.webhooks.wake();
    }
    Ok(true)
}
