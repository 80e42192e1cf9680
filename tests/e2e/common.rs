//! A real `shop serve` for each test: the built binary, a temp database,
//! port 0, driven over HTTP.
//!
//! The suite is compiled twice: as `e2e` on SQLite, and as `e2e_postgres`
//! (`tests/e2e_postgres.rs`, the modules that hold no SQLite file in their
//! hands) on PostgreSQL, where each server gets a database of its own on a
//! throwaway cluster.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use shop_wire::users::TokenResponse;
use tokio::io::AsyncWriteExt;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "test-Admin-passphrase-2026";
pub const PASSWORD: &str = "violet-tundra-42-harbor";
/// The secret every server of a test on PostgreSQL signs tokens with, as
/// nodes sharing a database must.
pub const SHARED_JWT_SECRET: &str = "e2e-shared-secret-for-every-node-0123456789";

/// Whether this build of the suite runs its servers on PostgreSQL.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "e2e_postgres"
}

/// A database on the test cluster, dropped with the last server on it.
pub type SharedDatabase = Arc<(shop_server::postgres_testing::TestDatabase, String)>;

/// A fresh database on the test cluster, dropped with the guard, and its URL.
pub fn postgres_database() -> SharedDatabase {
    // The tests run inside a runtime, which cannot block on itself.
    std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(shop_server::postgres_testing::database())
    })
    .join()
    .map(Arc::new)
    .expect("create a test database")
}

pub struct TestServer {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    flags: Vec<String>,
    pub client: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    /// On PostgreSQL: the server's database and its URL.
    postgres: Option<SharedDatabase>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra environment, e.g. `("SHOP_RATE_LIMIT_IP", "5")`.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_full(env, &[])
    }

    /// Starts a server with extra environment and extra `shop serve` flags.
    pub fn start_full(env: &[(&str, &str)], flags: &[&str]) -> Self {
        Self::start_on(on_postgres().then(postgres_database), env, flags)
    }

    /// Starts a server on `database` (on PostgreSQL), as one node of
    /// several sharing it; on SQLite with `None`.
    pub fn start_on(
        database: Option<SharedDatabase>,
        env: &[(&str, &str)],
        flags: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut server = TestServer {
            child: None,
            url: String::new(),
            dir,
            env,
            client: reqwest::Client::new(),
            stderr: Arc::default(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            postgres: database,
        };
        server.spawn();
        server
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("shop.db")
    }

    /// The server's log: everything it wrote to stderr, where its log
    /// lines go with the listening line.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// What the server wrote to stdout: nothing, since its log is on stderr.
    pub fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("stdout.log")
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Runs `statement` on the server's database behind its back, as
    /// someone editing it by hand would, on either backend; the first
    /// column of its first row, if it returns one.
    pub fn sql(&self, statement: &str) -> Option<String> {
        match self.database_url() {
            Some(url) => {
                // psql refuses the driver's own parameters after `?`.
                let url = url.split('?').next().unwrap_or(url);
                let out = Command::new("psql")
                    .args([url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c"])
                    .arg(statement)
                    .output()
                    .expect("run psql");
                assert!(
                    out.status.success(),
                    "psql {statement}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8(out.stdout).expect("utf-8");
                text.lines().next().map(str::to_owned)
            }
            None => {
                let db = rusqlite::Connection::open(self.db()).expect("open db");
                db.busy_timeout(Duration::from_secs(5))
                    .expect("busy timeout");
                let mut query = db.prepare(statement).expect("prepare");
                let mut rows = query.query([]).expect("run");
                let row = rows.next().expect("read")?;
                let value: rusqlite::types::Value = row.get(0).expect("a column");
                Some(match value {
                    rusqlite::types::Value::Null => String::new(),
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Real(x) => x.to_string(),
                    rusqlite::types::Value::Text(text) => text,
                    rusqlite::types::Value::Blob(bytes) => hex::encode(bytes),
                })
            }
        }
    }

    /// The server's database URL, on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|database| database.1.as_str())
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
        command.env_remove("SHOP_JWT_SECRET");
        match self.database_url() {
            Some(url) => command
                .env("SHOP_DATABASE_URL", url)
                .env("SHOP_JWT_SECRET", SHARED_JWT_SECRET)
                .env_remove("SHOP_DB"),
            None => command
                .env("SHOP_DB", self.db())
                .env_remove("SHOP_DATABASE_URL"),
        };
        command
            .args(args)
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("SHOP_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("SHOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SHOP_LOG_FORMAT", "json")
            // Tests register many accounts from 127.0.0.1; the registration limit has its own test.
            .env("SHOP_RATE_LIMIT_REGISTER", "0")
            .env_remove("SHOP_ADDR")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    fn spawn(&mut self) {
        self.spawn_at("127.0.0.1:0");
    }

    fn spawn_at(&mut self, addr: &str) {
        let mut args = vec!["serve", "--addr", addr];
        args.extend(self.flags.iter().map(String::as_str));
        let open = |path: PathBuf| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("log file")
        };
        let stdout = open(self.stdout_path());
        let mut log = open(self.log_path());
        let mut child = self
            .command(&args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shop");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = self.stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("shop: listening on ") {
                    let _ = tx.send(url.to_owned());
                }
                let _ = std::io::Write::write_all(&mut log, format!("{line}\n").as_bytes());
                let mut all = sink.lock().expect("stderr lock");
                all.push_str(&line);
                all.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                std::thread::sleep(Duration::from_millis(100));
                let _ = child.kill();
                panic!("shop serve did not start; stderr:\n{}", self.stderr());
            });
        self.url = url;
        self.child = Some(child);
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        signal(&child, "TERM");
        wait(&mut child, Duration::from_secs(20))
    }

    /// Waits for a server that was already sent a signal to exit.
    pub fn stop_after_signal(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        wait(&mut child, Duration::from_secs(20))
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("server running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// Starts the server again on the same database and files.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// Starts a stopped server again on the port it had, the same database
    /// and files: a client still holding its URL finds it where it was.
    pub fn start_again_on_same_port(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        let addr = self
            .url
            .strip_prefix("http://")
            .expect("an http:// URL")
            .to_owned();
        self.spawn_at(&addr);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str, body: &Value) -> RequestBuilder {
        self.request(Method::POST, path).json(body)
    }

    /// A `/metrics` scrape as anyone sees it (no business series).
    pub async fn metrics(&self) -> String {
        let scrape = self.get("/metrics").send().await.unwrap();
        assert_eq!(scrape.status(), StatusCode::OK);
        scrape.text().await.unwrap()
    }

    /// `GET path` with `token` as the bearer.
    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.get(path)
            .header("authorization", bearer(token))
            .send()
            .await
            .expect("request")
    }

    /// `method path` with a JSON body and `token` as the bearer.
    pub async fn send_as(&self, method: Method, path: &str, body: &Value, token: &str) -> Response {
        self.request(method, path)
            .header("authorization", bearer(token))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `POST path` on a raw connection whose answer is never read: dropping
    /// the connection hangs up, as a client that gives up does.
    pub async fn post_unanswered(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> tokio::net::TcpStream {
        let addr = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let body = body.to_string();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        stream.write_all(head.as_bytes()).await.expect("send");
        stream.flush().await.expect("flush");
        stream
    }

    /// `POST /api/users/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/users/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .send()
        .await
        .expect("request")
    }

    /// `POST path` with an `Idempotency-Key`.
    pub async fn post_keyed(&self, path: &str, body: &Value, key: &str) -> Response {
        self.post(path, body)
            .header("idempotency-key", key)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, email: &str, name: &str) -> Value {
        let response = self
            .post(
                "/api/users/register",
                &json!({"email": email, "password": PASSWORD, "name": name}),
            )
            .send()
            .await
            .expect("register");
        expect_status(response, StatusCode::CREATED).await
    }

    pub async fn login(&self, email: &str, password: &str) -> TokenResponse {
        let response = self
            .post(
                "/api/users/login",
                &json!({"email": email, "password": password}),
            )
            .send()
            .await
            .expect("login");
        serde_json::from_value(expect_status(response, StatusCode::OK).await)
            .expect("token response")
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.access_token
    }

    /// A registered, logged-in customer's access token.
    pub async fn customer_token(&self, email: &str) -> String {
        self.register(email, "Customer").await;
        self.login(email, PASSWORD).await.access_token
    }
}

/// What a `shop` command printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Asserts the exit code, showing both streams on a mismatch.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "{self:#?}");
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| panic!("{err}: {self:#?}"))
    }

    pub fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
            .collect()
    }
}

impl TestServer {
    /// The config directory of this test's `shop` command line (logins, profiles).
    pub fn cli_config(&self) -> PathBuf {
        self.dir.path().join("cli-config").join("shop")
    }

    /// The `shop` command line pointed at this server, isolated from the
    /// machine running the test: its own config dir, none of the caller's
    /// SHOP_* settings, and no D-Bus session, so there is no OS keyring and
    /// logins go to the 0600 file, as on a CI runner or a headless server.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
        command
            .args(args)
            .env_remove("SHOP_TOKEN")
            .env_remove("SHOP_PROFILE")
            .env_remove("SHOP_TIMEOUT")
            .env_remove("NO_COLOR")
            .env("SHOP_URL", &self.url)
            .env("XDG_CONFIG_HOME", self.dir.path().join("cli-config"))
            .env("HOME", self.dir.path().join("home"))
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/shop-test-bus",
            )
            .stdin(Stdio::null());
        command
    }

    /// Runs `shop ARGS` to the end.
    pub fn shop(&self, args: &[&str]) -> CliOutput {
        run_cli(self.cli(args), None)
    }

    /// Runs `shop ARGS` with `stdin` as its input.
    pub fn shop_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        run_cli(self.cli(args), Some(stdin))
    }

    /// `shop login` as the bootstrap admin.
    pub fn cli_login_admin(&self) {
        self.shop_stdin(
            &["login", "--email", ADMIN_EMAIL, "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .expect(0);
    }
}

pub fn run_cli(mut command: Command, stdin: Option<&str>) -> CliOutput {
    use std::io::Write;
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shop");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("shop runs");
    CliOutput {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failed test's server log goes with it, or the reason for a 500
        // is lost with the temp dir.
        if std::thread::panicking() {
            let log = self.stderr();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("--- the last lines of {}'s log:\n{tail}", self.url);
        }
    }
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

pub fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the status and returns the JSON body, printing the body on a mismatch.
/// Polls `check` every 20 ms until it returns `Some`, or fails after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON body")
    }
}

/// Asserts an error response: its status, its `code`, and the shape of the error body.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("every response has X-Request-Id");
    let body = expect_status(response, status).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["error"]["request_id"], request_id.as_str(), "{body}");
    assert!(body["error"]["details"].is_object(), "{body}");
    body
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
