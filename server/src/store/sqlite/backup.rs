//! `shop db backup`: a consistent copy of a live SQLite database, taken with
//! SQLite's online backup API from a process of its own.
//!
//! The copy is one snapshot. The backup API restarts from the first page
//! whenever another connection commits between two of its steps, which
//! under a steady checkout load would be forever; so the source connection
//! opens a read transaction first and every step reads inside it. Under WAL
//! that snapshot does not hold off the server's writer (it only keeps the
//! WAL from being restarted until the copy ends).
//!
//! The copy is written to a temporary file beside the target and renamed
//! into place once complete, so the target is never half a database.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// Pages copied per step, between two progress reports.
const PAGES_PER_STEP: i32 = 2048;
/// How long a step waits for a lock before it is retried (the server's
/// writer may hold one for a commit).
const LOCKED_PAUSE: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} does not exist (is it the server's --db?)")]
    NoDatabase(PathBuf),
    #[error("{0} is not a shop database")]
    NotShop(PathBuf),
    #[error("{0} exists; pass --force to replace it")]
    TargetExists(PathBuf),
    #[error("{path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("the copy in {path} does not read back whole: {found}")]
    Damaged { path: PathBuf, found: String },
    #[error("backing up {path}: {reason}")]
    Sqlite {
        path: PathBuf,
        reason: rusqlite::Error,
    },
}

/// What a finished backup copied.
#[derive(Clone, Copy, Debug)]
pub struct BackupDone {
    pub pages: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Copies the shop database at `source` to `target`, calling `progress`
/// with (pages copied, pages in all) after each step. An existing `target`
/// is replaced only when `replace` is set.
pub fn backup(
    source: &Path,
    target: &Path,
    replace: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<BackupDone, BackupError> {
    let started = Instant::now();
    if !source.exists() {
        return Err(BackupError::NoDatabase(source.to_owned()));
    }
    if target.exists() && !replace {
        return Err(BackupError::TargetExists(target.to_owned()));
    }
    let sqlite = |path: &Path| {
        let path = path.to_owned();
        move |reason| BackupError::Sqlite { path, reason }
    };
    // Read-write without create: a read-only connection cannot take part
    // in the WAL's shared index when the server is not running.
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(source))?;
    super::wait_when_busy(&from).map_err(sqlite(source))?;
    // The snapshot: a read transaction that every step reads inside.
    from.execute_batch("BEGIN").map_err(sqlite(source))?;
    let version: i64 = from
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite(source))?;
    if version == 0 {
        return Err(BackupError::NotShop(source.to_owned()));
    }
    let dir = target
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |reason| BackupError::Io { path, reason }
    };
    let partial = tempfile::Builder::new()
        .prefix(".shop-backup-")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let mut to = Connection::open(partial.path()).map_err(sqlite(partial.path()))?;
    let (pages, page_size) = {
        let copy = Backup::new(&from, &mut to).map_err(sqlite(source))?;
        loop {
            let step = copy.step(PAGES_PER_STEP).map_err(sqlite(source))?;
            let left = copy.progress();
            let all = u64::try_from(left.pagecount).unwrap_or(0);
            let done = all.saturating_sub(u64::try_from(left.remaining).unwrap_or(0));
            progress(done, all);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                _ => std::thread::sleep(LOCKED_PAUSE),
            }
        }
        let page_size: i64 = from
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(sqlite(source))?;
        let page_size = u64::try_from(page_size).unwrap_or(0);
        (
            u64::try_from(copy.progress().pagecount).unwrap_or(0),
            page_size,
        )
    };
    from.execute_batch("COMMIT").map_err(sqlite(source))?;
    // A copy that does not read back whole is not a backup.
    let check: String = to
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(sqlite(partial.path()))?;
    if check != "ok" {
        return Err(BackupError::Damaged {
            path: partial.path().to_owned(),
            found: check,
        });
    }
    to.close().map_err(|(_, reason)| BackupError::Sqlite {
        path: partial.path().to_owned(),
        reason,
    })?;
    partial.as_file().sync_all().map_err(io(partial.path()))?;
    let placed = if replace {
        partial.persist(target).map_err(|err| err.error)
    } else {
        // Refused even if the target appeared while the copy ran.
        partial.persist_noclobber(target).map_err(|err| err.error)
    };
    placed.map_err(|reason| match reason.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::TargetExists(target.to_owned()),
        _ => BackupError::Io {
            path: target.to_owned(),
            reason,
        },
    })?;
    Ok(BackupDone {
        pages,
        bytes: pages * page_size,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreResult;
    use crate::store::sqlite::tests::store;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_under_steady_writes_finishes_as_one_snapshot() {
        let (dir, store) = store();
        // Enough pages for several steps, so that writes land between them.
        store
            .write(|tx| {
                tx.execute_batch(
                    "CREATE TABLE ballast (data BLOB);
                     CREATE TABLE ledger (n INTEGER PRIMARY KEY);
                     CREATE TABLE tally (total INTEGER);
                     INSERT INTO tally VALUES (0);",
                )?;
                for _ in 0..6 * PAGES_PER_STEP {
                    tx.execute("INSERT INTO ballast VALUES (zeroblob(1500))", [])?;
                }
                Ok(())
            })
            .await
            .expect("ballast");
        // Each change adds a row and counts it, in one transaction.
        let stop = Arc::new(AtomicBool::new(false));
        let writes = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut done = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    store
                        .write(|tx| -> StoreResult<()> {
                            tx.execute("INSERT INTO ledger DEFAULT VALUES", [])?;
                            tx.execute("UPDATE tally SET total = total + 1", [])?;
                            Ok(())
                        })
                        .await
                        .expect("a change");
                    done += 1;
                }
                done
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (source, target) = (dir.path().join("shop.db"), dir.path().join("copy.db"));
        let copied = {
            let target = target.clone();
            tokio::task::spawn_blocking(move || {
                let mut reports = Vec::new();
                let copied = backup(&source, &target, false, |done, all| {
                    reports.push((done, all))
                })
                .expect("backup");
                (copied, reports)
            })
        };
        let (copied, reports) = tokio::time::timeout(Duration::from_secs(60), copied)
            .await
            .expect("the backup finished while writes went on")
            .expect("task");
        stop.store(true, Ordering::Relaxed);
        let changes = writes.await.expect("writer task");
        assert!(reports.len() >= 6, "one report a step: {reports:?}");
        assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0), "{reports:?}");
        let last = reports.last().expect("a report");
        assert_eq!(last.0, last.1, "ends at every page");
        assert_eq!(copied.pages, last.1);

        let copy = Connection::open(&target).expect("open the copy");
        let (rows, total): (i64, i64) = copy
            .query_row(
                "SELECT (SELECT count(*) FROM ledger), (SELECT total FROM tally)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("read the copy");
        assert_eq!(rows, total, "the copy is one snapshot");
        assert!(rows > 0 && (rows as u64) < changes, "{rows} of {changes}");
        let version: i64 = copy
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("version");
        assert!(version > 0, "the copy is a shop database");
        assert!(
            std::fs::read_dir(dir.path())
                .expect("dir")
                .all(|entry| !entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".shop-backup-")),
            "no temporary file is left"
        );
    }

    #[test]
    fn a_backup_replaces_a_file_only_when_told_and_copies_only_shop_databases() {
        let (dir, _store) = store();
        let source = dir.path().join("shop.db");
        let target = dir.path().join("copy.db");
        std::fs::write(&target, b"keep me").expect("an existing file");
        let refused = backup(&source, &target, false, |_, _| {}).expect_err("exists");
        assert!(matches!(refused, BackupError::TargetExists(_)), "{refused}");
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
        backup(&source, &target, true, |_, _| {}).expect("replaced when told");
        assert_ne!(std::fs::read(&target).expect("read"), b"keep me");

        let missing = backup(
            &dir.path().join("nope.db"),
            &dir.path().join("x.db"),
            false,
            |_, _| {},
        );
        assert!(matches!(missing, Err(BackupError::NoDatabase(_))));
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .expect("create")
            .execute_batch("CREATE TABLE t (n INTEGER)")
            .expect("not a shop database");
        let foreign = backup(&other, &dir.path().join("y.db"), false, |_, _| {});
        assert!(matches!(foreign, Err(BackupError::NotShop(_))));
        assert!(!dir.path().join("y.db").exists());
    }
}
