//! A PostgreSQL for the tests: `SHOP_TEST_DATABASE_URL` when set, otherwise
//! a throwaway cluster this test process starts on first use and that dies
//! with it. Each caller gets a database of its own.
//!
//! The throwaway cluster: `initdb` and `pg_ctl` from PATH or from
//! `/usr/lib/postgresql/*/bin` (where Debian's `postgresql` puts them), on a
//! temp dir and a free port, run as `postgres` when the tests run as root
//! (PostgreSQL refuses root), without fsync (the tests never survive a power
//! cut). A watchdog shell stops it and removes its directory once this
//! process has exited, since a test process ends without running the
//! destructors of statics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
#[cfg(test)]
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};

#[cfg(test)]
use super::PgStore;
#[cfg(test)]
use crate::config::Durability;

const URL_VAR: &str = "SHOP_TEST_DATABASE_URL";

/// A database of one test, dropped with this guard.
pub struct TestDatabase {
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // The guard is dropped inside the test's runtime, which cannot
        // block on itself: the drop runs on a thread of its own.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(async {
                let mut admin = PgConnection::connect(admin_url()).await?;
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .map(drop)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// A fresh, empty database; its URL.
pub async fn database() -> (TestDatabase, String) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let name = format!(
        "shop_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = PgConnection::connect(admin_url())
        .await
        .expect("connect to the test cluster");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let options: PgConnectOptions = admin_url().parse().expect("the test URL parses");
    let url = options.database(&name).to_url_lossy().to_string();
    (TestDatabase { name }, url)
}

/// A fresh store on a fresh database, for the contract suite.
#[cfg(test)]
pub(crate) async fn open() -> (TestDatabase, Arc<PgStore>) {
    let (database, url) = database().await;
    let store = PgStore::connect(&url, Durability::Process)
        .await
        .expect("open the store");
    (database, Arc::new(store))
}

/// The URL of a database on the test server that can create others.
fn admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var(URL_VAR) {
        Ok(url) => url,
        Err(_) => start_cluster().unwrap_or_else(|why| {
            panic!(
                "the PostgreSQL tests need a server: {why}. Install Debian's `postgresql` \
                 (apt-get install postgresql), or run `bash .ci/run`, or set {URL_VAR}"
            )
        }),
    })
}

/// Where `initdb` and `pg_ctl` are: PATH first, then the newest of
/// `/usr/lib/postgresql/*/bin`.
fn binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()));
    on_path.or_else(|| {
        let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        installed.sort();
        installed.pop().map(|(_, bin)| bin)
    })
}

/// Starts a cluster; the URL of its `postgres` database.
fn start_cluster() -> Result<String, String> {
    let bin =
        binaries().ok_or("no initdb on PATH nor under /usr/lib/postgresql/*/bin".to_owned())?;
    let dir = tempfile::Builder::new()
        .prefix("shop-test-pg")
        .tempdir()
        .map_err(|err| format!("temp dir: {err}"))?
        .keep();
    let as_root = output(Command::new("id").arg("-u"))? == "0";
    if as_root {
        let uid = output(Command::new("id").args(["-u", "postgres"]))?;
        let uid = uid
            .parse()
            .map_err(|_| format!("no postgres user: {uid}"))?;
        std::os::unix::fs::chown(&dir, Some(uid), None)
            .map_err(|err| format!("chown {}: {err}", dir.display()))?;
    }
    let run = |tool: &str| {
        let mut command = if as_root {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(bin.join(tool));
            runuser
        } else {
            Command::new(bin.join(tool))
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let data = dir.join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| format!("a free port: {err}"))?
        .port();
    succeed(
        run("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "shop", "--no-sync"]),
    )?;
    watch(&dir, &data, &run("pg_ctl"))?;
    succeed(
        run("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                dir.display()
            ))
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "start"]),
    )?;
    Ok(format!("postgres://shop@127.0.0.1:{port}/postgres"))
}

/// Leaves a shell behind that waits for this process to exit, then stops the
/// cluster at `data` with `pg_ctl` (run as `pg_ctl` is) and removes `dir`.
fn watch(dir: &Path, data: &Path, pg_ctl: &Command) -> Result<(), String> {
    let mut stop: Vec<String> = std::iter::once(pg_ctl.get_program())
        .chain(pg_ctl.get_args())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    stop.extend(["-D".to_owned(), data.display().to_string()]);
    stop.extend(["-m", "immediate", "stop"].map(str::to_owned));
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop}; rm -rf '{dir}'",
        pid = std::process::id(),
        stop = stop
            .iter()
            .map(|arg| format!("'{arg}'"))
            .collect::<Vec<_>>()
            .join(" "),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|err| format!("the cluster's watchdog: {err}"))
}

fn succeed(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|err| format!("{command:?}: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|err| format!("{command:?}: {err}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
