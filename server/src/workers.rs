//! Background workers under a supervisor.
//!
//! A worker is a job run at a fixed interval (sweepers now, queue workers
//! later). If it panics, the supervisor marks it unhealthy, waits with
//! exponential backoff and starts it again; it counts as healthy once a run
//! succeeds. Health reports and `/metrics` show each worker's state. On
//! shutdown the supervisor lets running jobs finish and stops the loops.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use shop_wire::backoff::Backoff;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Waits between restarts of a worker that keeps panicking.
const RESTART_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerStatus {
    /// False from a panic until the restarted worker completes a run.
    pub healthy: bool,
    pub restarts: u64,
    pub last_error: Option<String>,
}

#[derive(Clone)]
pub struct Supervisor {
    workers: Arc<Mutex<BTreeMap<&'static str, WorkerStatus>>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Supervisor {
    pub fn new(shutdown: CancellationToken) -> Self {
        Supervisor {
            workers: Arc::default(),
            shutdown,
            tracker: TaskTracker::new(),
        }
    }

    /// Runs `job` every `every` (first run at once) until shutdown, restarting it after a panic.
    /// An `Err` from the job is logged and the worker stays healthy: errors are expected
    /// (a busy database), panics are bugs.
    pub fn spawn_periodic<F, Fut>(&self, name: &'static str, every: Duration, job: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.set(name, |s| {
            *s = WorkerStatus {
                healthy: true,
                restarts: 0,
                last_error: None,
            }
        });
        let supervisor = self.clone();
        let job = Arc::new(job);
        self.tracker.spawn(async move {
            let mut panics = 0;
            loop {
                let run = std::panic::AssertUnwindSafe(supervisor.run_loop(name, every, job.clone()))
                    .catch_unwind()
                    .await;
                let Err(panic) = run else { return };
                let message = panic_message(&panic);
                panics += 1;
                let backoff = RESTART_BACKOFF.delay(panics, rand::random());
                tracing::error!(worker = name, panic = %message, ?backoff, "worker panicked; restarting");
                supervisor.set(name, |s| {
                    s.healthy = false;
                    s.restarts += 1;
                    s.last_error = Some(message);
                });
                metrics::counter!("shop_worker_restarts_total", "worker" => name).increment(1);
                metrics::gauge!("shop_worker_up", "worker" => name).set(0.0);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = supervisor.shutdown.cancelled() => return,
                }
            }
        });
    }

    async fn run_loop<F, Fut>(&self, name: &'static str, every: Duration, job: Arc<F>)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            // A job that has started finishes even if shutdown begins meanwhile.
            match job().await {
                Ok(()) => self.set(name, |s| {
                    s.healthy = true;
                    s.last_error = None;
                }),
                Err(err) => tracing::warn!(
                    worker = name,
                    error = format!("{err:#}"),
                    "worker run failed"
                ),
            }
            metrics::gauge!("shop_worker_up", "worker" => name).set(1.0);
        }
    }

    fn set(&self, name: &'static str, change: impl FnOnce(&mut WorkerStatus)) {
        let mut workers = self
            .workers
            .lock()
            .expect("worker table lock is never poisoned");
        change(workers.entry(name).or_insert(WorkerStatus {
            healthy: true,
            restarts: 0,
            last_error: None,
        }));
    }

    pub fn status(&self, name: &str) -> Option<WorkerStatus> {
        self.workers
            .lock()
            .expect("worker table lock is never poisoned")
            .get(name)
            .cloned()
    }

    /// Stops every loop and waits for running jobs to finish.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_worker_is_degraded_then_restarted_and_healthy_again() {
        let supervisor = Supervisor::new(CancellationToken::new());
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        supervisor.spawn_periodic("flaky", Duration::from_secs(1), move || {
            let run = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(run != 1, "second run fails");
                Ok(())
            }
        });
        // Run 0 succeeds at once; run 1, a second later, panics.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let status = supervisor.status("flaky").expect("registered");
        assert!(!status.healthy, "{status:?}");
        assert_eq!(status.restarts, 1);
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("second run fails"))
        );
        // After the backoff the worker starts again, runs, and is healthy.
        tokio::time::sleep(RESTART_BACKOFF.nominal(1) + Duration::from_millis(100)).await;
        let status = supervisor.status("flaky").expect("registered");
        assert!(status.healthy, "{status:?}");
        assert!(runs.load(Ordering::SeqCst) >= 3);
        supervisor.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_waits_for_a_running_job() {
        let supervisor = Supervisor::new(CancellationToken::new());
        let finished = Arc::new(AtomicU32::new(0));
        let flag = finished.clone();
        supervisor.spawn_periodic("slow", Duration::from_secs(3600), move || {
            let flag = flag.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                flag.store(1, Ordering::SeqCst);
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        supervisor.shutdown().await;
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
