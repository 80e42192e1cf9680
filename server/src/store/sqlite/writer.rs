//! The single writer: one thread, one connection, group commit.
//!
//! SQLite takes one writer at a time, and a commit costs far more than the
//! few statements of a typical change (it writes every dirty page to the
//! WAL). So the writer thread takes every change that is waiting, up to
//! [`MAX_GROUP`], runs each inside a savepoint of one `BEGIN IMMEDIATE`
//! transaction, and commits once: a change that fails rolls back to its own
//! savepoint and leaves the others alone, and no caller hears "done" before
//! the commit that made its change durable. Under one request at a time a
//! group is one change and nothing is different.
//!
//! The writer also announces what it committed: the events each change
//! appends are gathered as it runs, dropped with it if it rolls back, and
//! handed to the store's [`CommitFeed`] after the group's commit and before
//! any of its callers hears "done". One thread commits, so the feed sees
//! events in id order.
//!
//! The announcing (each event's wire shape, the feed's observers, then the
//! answers to the callers) runs on a thread of its own, one group after
//! another in commit order, while the writer goes on with the next group:
//! on the writer's thread it was a sixth of the time under checkout load,
//! and the writer's time is what bounds the shop's write rate.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::store::{CommitFeed, NewEvent, StoreError, StoreResult};

/// The most changes one commit carries.
const MAX_GROUP: usize = 64;

/// Runs a statement from the connection's cache: savepoints are taken and
/// released around every change, and parsing them each time was an eighth
/// of the writer's time under checkout load.
fn run_cached(tx: &Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute([]).map(|_| ())
}

thread_local! {
    /// Statements the writer thread has run, counted by SQLite's trace hook
    /// (a plain function, so it cannot hold the writer's own counter).
    static STATEMENTS: Cell<u64> = const { Cell::new(0) };
}

fn count_statement(_: TraceEvent<'_>) {
    STATEMENTS.with(|count| count.set(count.get() + 1));
}

thread_local! {
    /// The events the running change has appended, with their ids; `None`
    /// outside a change, i.e. on any thread but the writer's.
    static APPENDED: RefCell<Option<Vec<Appended>>> = const { RefCell::new(None) };
}

/// An event in the log: its id and what was appended.
type Appended = (u64, NewEvent);

/// Keeps events a change just appended, to be announced after its commit.
/// Fails outside the writer, where nothing would ever announce them.
pub(super) fn appended(events: Vec<Appended>) -> StoreResult<()> {
    APPENDED.with(|appended| match appended.borrow_mut().as_mut() {
        Some(pending) => {
            pending.extend(events);
            Ok(())
        }
        None => Err(StoreError::Backend(
            "events can only be appended by the database writer".into(),
        )),
    })
}

/// Runs one change with a fresh list of appended events, and returns them.
fn gathering<T>(change: impl FnOnce() -> T) -> (T, Vec<Appended>) {
    APPENDED.with(|appended| *appended.borrow_mut() = Some(Vec::new()));
    let outcome = change();
    let events = APPENDED.with(|appended| appended.borrow_mut().take().unwrap_or_default());
    (outcome, events)
}

/// How a group's commit ended, told to every change in it.
#[derive(Clone)]
enum Commit {
    Done,
    Failed { busy: bool, message: String },
}

impl Commit {
    fn error(&self) -> Option<StoreError> {
        match self {
            Commit::Done => None,
            Commit::Failed { busy: true, .. } => Some(StoreError::Busy),
            Commit::Failed { message, .. } => Some(StoreError::Backend(message.clone().into())),
        }
    }
}

fn failed(err: &rusqlite::Error) -> Commit {
    let busy = matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    Commit::Failed {
        busy,
        message: err.to_string(),
    }
}

/// Answers a change's caller once its group's commit is known.
type Finish = Box<dyn FnOnce(Commit) + Send>;

/// What running a change left to do once its group's commit is known.
struct Ran {
    /// The change failed and was rolled back (to its savepoint, in a group).
    failed: bool,
    /// Its savepoint could not be rolled back: the whole group must be.
    poisoned: bool,
    finish: Finish,
}

/// A group's outcome, for the announcer: the events it committed (none if
/// it did not) and its callers to answer after them.
struct Announcement {
    commit: Commit,
    events: Vec<Appended>,
    finishes: Vec<Finish>,
}

/// The writer's way to the announcing thread.
struct Announcer {
    sender: mpsc::Sender<Announcement>,
    feed: CommitFeed,
}

impl Announcer {
    fn send(&self, announcement: Announcement) {
        // The announcing thread stops only if it panicked (an observer's
        // panic is caught before); the writer then announces on its own
        // thread rather than leave callers waiting or caches stale.
        if let Err(mpsc::SendError(announcement)) = self.sender.send(announcement) {
            announcement.announce(&self.feed);
        }
    }
}

impl Announcement {
    /// Announces the events (if committed), then answers every caller.
    fn announce(self, feed: &CommitFeed) {
        if matches!(self.commit, Commit::Done) {
            feed.committed(
                self.events
                    .into_iter()
                    .map(|(id, event)| event.logged(id))
                    .collect(),
            );
        }
        for finish in self.finishes {
            finish(self.commit.clone());
        }
    }
}

/// A change: runs in the given transaction (inside a savepoint when it
/// shares the commit), or, given none, reports that it could not run.
type Job = Box<dyn FnOnce(Option<(&Transaction<'_>, bool)>) -> Option<Ran> + Send>;

/// A change waiting for the writer, and whether it must commit alone.
struct Queued {
    job: Job,
    alone: bool,
}

/// What a health check learns of the writer without giving it work: a
/// check polled every second by a load balancer must neither queue behind
/// the changes it watches nor cost the one writer a transaction.
pub(super) enum Liveness {
    /// Waiting for changes.
    Idle,
    /// Inside one group's transaction for this long.
    Busy(Duration),
    /// The thread has ended: no change will ever run.
    Stopped,
}

/// The writer thread's side of [`Liveness`].
struct Pulse {
    origin: Instant,
    /// Microseconds from `origin` to the start of the running group, plus
    /// one; 0 while idle.
    busy_since: AtomicU64,
    stopped: AtomicBool,
}

impl Pulse {
    fn busy(&self) {
        let since = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.busy_since
            .store(since.saturating_add(1), Ordering::Relaxed);
    }

    fn idle(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }

    fn liveness(&self) -> Liveness {
        if self.stopped.load(Ordering::Relaxed) {
            return Liveness::Stopped;
        }
        match self.busy_since.load(Ordering::Relaxed) {
            0 => Liveness::Idle,
            since => Liveness::Busy(
                self.origin
                    .elapsed()
                    .saturating_sub(Duration::from_micros(since - 1)),
            ),
        }
    }
}

/// Marks the writer stopped when its thread ends, by return or by panic.
struct Stops(Arc<Pulse>);

impl Drop for Stops {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}

#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Queued>,
    pulse: Arc<Pulse>,
    /// Statements run so far, savepoints and commits included: what a change
    /// costs the one writer is what bounds the shop's write rate. Tests read
    /// it; a running server reads `shop_store_writer_statements_total`.
    #[cfg(test)]
    statements: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer thread on `conn`, announcing committed events on
    /// `feed` and catching up with the WAL checkpointer when it sets
    /// `catch_up` (see [`super::catch_up`]); it ends when every `Writer`
    /// clone is dropped.
    pub(super) fn start(
        conn: Connection,
        feed: CommitFeed,
        catch_up: Arc<AtomicBool>,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Queued>();
        let statements = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&statements);
        conn.trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(count_statement));
        let (sender, announcements) = mpsc::channel::<Announcement>();
        let announcer = Announcer {
            sender,
            feed: feed.clone(),
        };
        std::thread::Builder::new()
            .name("sqlite-announce".to_owned())
            .spawn(move || {
                for announcement in announcements {
                    announcement.announce(&feed);
                }
            })?;
        let pulse = Arc::new(Pulse {
            origin: Instant::now(),
            busy_since: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let stops = Stops(Arc::clone(&pulse));
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                run(conn, &queue, &counted, &announcer, &catch_up, &stops.0);
                drop(stops);
            })?;
        Ok(Writer {
            jobs,
            pulse,
            #[cfg(test)]
            statements,
        })
    }

    /// How many statements the writer has run since it started.
    #[cfg(test)]
    pub(super) fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Whether the writer is idle, busy (and since when) or gone; asks nothing of it.
    pub(super) fn liveness(&self) -> Liveness {
        self.pulse.liveness()
    }

    /// Runs `work` in a write transaction and returns once it is committed.
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(work, false).await
    }

    /// Like [`Writer::write`], in a transaction of its own: for big changes
    /// (an import batch), which a savepoint would slow down (SQLite journals
    /// every page a savepoint's change touches) and which would make the
    /// small changes sharing their commit wait.
    pub(super) async fn write_alone<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(work, true).await
    }

    async fn submit<T, F>(&self, work: F, alone: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<StoreResult<T>>();
        // Who is making the change: read on the caller's task, where the
        // request's scope is, and set on the writer's thread while it runs.
        let context = crate::store::audit::current();
        let job: Job = Box::new(move |tx| {
            let Some((tx, shared)) = tx else {
                let _ = reply.send(Err(StoreError::Backend(
                    "the write transaction could not begin".into(),
                )));
                return None;
            };
            if shared && let Err(err) = run_cached(tx, "SAVEPOINT change") {
                let _ = reply.send(Err(err.into()));
                return Some(Ran {
                    failed: true,
                    poisoned: true,
                    finish: Box::new(|_| {}),
                });
            }
            match super::audit::with_context(context, || work(tx)) {
                Ok(value) => {
                    let released = !shared || run_cached(tx, "RELEASE change").is_ok();
                    Some(Ran {
                        failed: !released,
                        poisoned: !released,
                        finish: Box::new(move |commit: Commit| {
                            let outcome = match commit.error() {
                                None if released => Ok(value),
                                None => {
                                    Err(StoreError::Backend("releasing a savepoint failed".into()))
                                }
                                Some(err) => Err(err),
                            };
                            let _ = reply.send(outcome);
                        }),
                    })
                }
                Err(err) => {
                    let poisoned = shared
                        && (run_cached(tx, "ROLLBACK TO change").is_err()
                            || run_cached(tx, "RELEASE change").is_err());
                    let _ = reply.send(Err(err));
                    Some(Ran {
                        failed: true,
                        poisoned,
                        finish: Box::new(|_| {}),
                    })
                }
            }
        });
        self.jobs
            .send(Queued { job, alone })
            .map_err(|_| StoreError::Backend("the database writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the database writer dropped a change".into()))?
    }
}

fn run(
    mut conn: Connection,
    queue: &mpsc::Receiver<Queued>,
    statements: &AtomicU64,
    announcer: &Announcer,
    catch_up: &AtomicBool,
    pulse: &Pulse,
) {
    let mut next: Option<Queued> = None;
    loop {
        let first = match next.take() {
            Some(queued) => queued,
            None => match queue.recv() {
                Ok(queued) => queued,
                Err(_) => return,
            },
        };
        pulse.busy();
        let alone = first.alone;
        let mut group = vec![first.job];
        while !alone && group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(queued) if queued.alone => {
                    next = Some(queued);
                    break;
                }
                Ok(queued) => group.push(queued.job),
                Err(_) => break,
            }
        }
        if catch_up.swap(false, Ordering::Relaxed) {
            super::catch_up(&conn);
        }
        let shared = group.len() > 1;
        let changes = group.len() as u64;
        let started = Instant::now();
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(err) => {
                tracing::error!(error = %err, "cannot begin a write transaction");
                for job in group {
                    job(None);
                }
                pulse.idle();
                continue;
            }
        };
        let mut ran = Vec::with_capacity(group.len());
        let mut events = Vec::new();
        for job in group {
            // A panicking change must not take the writer down with it: its
            // caller hears an error (its reply is dropped) and, since its
            // half-done writes cannot be trusted, the whole group rolls back.
            let (outcome, appended) = gathering(|| {
                std::panic::catch_unwind(AssertUnwindSafe(|| job(Some((&tx, shared)))))
            });
            match outcome {
                Ok(Some(outcome)) => {
                    // A failed change rolled its events back with it.
                    if !outcome.failed {
                        events.extend(appended);
                    }
                    ran.push(outcome);
                }
                Ok(None) => {}
                Err(_) => {
                    tracing::error!("a database change panicked; its group is rolled back");
                    ran.push(Ran {
                        failed: true,
                        poisoned: true,
                        finish: Box::new(|_| {}),
                    });
                }
            }
        }
        let poisoned = ran.iter().any(|r| r.poisoned);
        // Alone in its group, a failed change rolls back the whole transaction.
        let all_failed = ran.iter().all(|r| r.failed);
        let commit = if poisoned || all_failed {
            match tx.rollback() {
                Ok(()) => Commit::Failed {
                    busy: false,
                    message: "the change was rolled back".to_owned(),
                },
                Err(err) => failed(&err),
            }
        } else {
            match tx.commit() {
                Ok(()) => Commit::Done,
                Err(err) => failed(&err),
            }
        };
        if poisoned {
            tracing::error!("a savepoint could not be rolled back; the whole group was");
        }
        let ran_statements = STATEMENTS.with(|count| count.replace(0));
        statements.fetch_add(ran_statements, Ordering::Relaxed);
        metrics::counter!("shop_store_writer_statements_total").increment(ran_statements);
        metrics::counter!("shop_store_writer_changes_total").increment(changes);
        // Begin to commit: the sum over time is how busy the one writer is.
        metrics::histogram!("shop_store_writer_transaction_seconds")
            .record(started.elapsed().as_secs_f64());
        let announcement = Announcement {
            commit,
            events,
            finishes: ran.into_iter().map(|outcome| outcome.finish).collect(),
        };
        pulse.idle();
        announcer.send(announcement);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_that_panics_fails_alone_and_the_writer_goes_on() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (n INTEGER)")
            .expect("schema");
        let writer = Writer::start(conn, CommitFeed::default(), Arc::default()).expect("writer");
        let panicked = writer
            .write(|tx| -> StoreResult<()> {
                tx.execute("INSERT INTO t (n) VALUES (1)", [])?;
                panic!("a bug in a change");
            })
            .await;
        assert!(panicked.is_err());
        let count = writer
            .write(|tx| Ok(tx.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))?))
            .await
            .expect("the writer still works");
        assert_eq!(count, 0, "the panicking change's insert was rolled back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn changes_share_commits_and_a_failing_one_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("writer.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY);")
            .expect("schema");
        let writer = Writer::start(conn, CommitFeed::default(), Arc::default()).expect("writer");
        let tasks: Vec<_> = (0..300_i64)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .write(move |tx| {
                            tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                            if n % 3 == 0 {
                                return Err(StoreError::Busy);
                            }
                            Ok(n)
                        })
                        .await
                })
            })
            .collect();
        let mut kept = Vec::new();
        for (n, task) in tasks.into_iter().enumerate() {
            match task.await.expect("task") {
                Ok(value) => kept.push(value),
                Err(StoreError::Busy) => assert_eq!(n % 3, 0),
                Err(other) => panic!("change {n}: {other}"),
            }
        }
        assert_eq!(kept.len(), 200);
        let check = Connection::open(&path).expect("open");
        let (count, failed): (i64, i64) = check
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE n % 3 = 0) FROM t",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("count");
        assert_eq!(
            (count, failed),
            (200, 0),
            "every acknowledged change is stored, no failed one is"
        );
    }
}
