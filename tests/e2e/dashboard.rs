//! `shop dashboard` as a person sees it: the real binary in a real terminal
//! (a tmux pane) against a real server. A change made with the CLI must be
//! on screen within 2 seconds; the server going away must show; `q` must
//! give the terminal back as it was (main screen, cursor, no mouse
//! reporting, cooked mode).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// How fast a change must reach the screen.
pub const LIVE: Duration = Duration::from_secs(2);
/// Generous limits for things that are not under test: a cold start of the
/// debug binary on a busy machine, the server noticing a kill.
pub const STARTUP: Duration = Duration::from_secs(30);

/// A tmux server of its own (its own socket, no user config), so the test
/// neither sees nor disturbs any other tmux on the machine.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    pub fn start(width: u16, height: u16, command: &str) -> Tmux {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let tmux = Tmux {
            socket: format!(
                "shop-e2e-{}-{}",
                std::process::id(),
                STARTED.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let output = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "dash",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(output.status.success(), "tmux new-session: {output:?}");
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// Whether the screen uses any colour, from its escape sequences.
    fn coloured(&self) -> bool {
        let output = self.run(&["capture-pane", "-p", "-e", "-t", "dash"]);
        let text = String::from_utf8_lossy(&output.stdout);
        text.split("\x1b[").skip(1).any(|sequence| {
            let Some((params, _)) = sequence.split_once('m') else {
                return false;
            };
            params.split(';').any(|param| {
                matches!(
                    param.parse::<u16>(),
                    Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
                )
            })
        })
    }

    fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", "dash"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A tmux format about the pane, e.g. `#{alternate_on}`.
    fn pane(&self, format: &str) -> String {
        let output = self.run(&["display-message", "-p", "-t", "dash", format]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn keys(&self, keys: &str) {
        let output = self.run(&["send-keys", "-t", "dash", keys]);
        assert!(output.status.success(), "tmux send-keys: {output:?}");
    }

    /// Waits until the screen shows `text`; the screen, or None after `limit`.
    fn wait_for(&self, text: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return Some(screen);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn expect(&self, text: &str, limit: Duration) -> String {
        self.wait_for(text, limit).unwrap_or_else(|| {
            panic!(
                "`{text}` not on screen within {limit:?}; the screen:\n{}",
                self.screen()
            )
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The shell line tmux runs: the dashboard with the test's isolated CLI
/// settings (as `TestServer::cli` sets them), its pid written to `pid`
/// (the inner shell execs it), then what the terminal looks like once it
/// has quit.
pub fn dashboard_command(server: &TestServer, flags: &str) -> String {
    let home = server.dir.path().join("home");
    format!(
        "sh -c 'echo $$ > \"$0\"; exec \"$@\"' {pid} env -u SHOP_TOKEN -u SHOP_PROFILE -u SHOP_TIMEOUT -u NO_COLOR \
         SHOP_URL={url} XDG_CONFIG_HOME={config} HOME={home} \
         DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus {shop} dashboard --refresh-ms 500 {flags}; \
         echo \"dashboard exited $?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; \
         sleep 600",
        pid = quoted(&server.dir.path().join("dashboard.pid")),
        url = server.url,
        config = quoted(&server.dir.path().join("cli-config")),
        home = quoted(&home),
        shop = quoted(Path::new(env!("CARGO_BIN_EXE_shop"))),
    )
}

/// After the dashboard ended: it exited 0 and the terminal is as before.
fn assert_restored(tmux: &Tmux) {
    let screen = tmux.expect("dashboard exited 0", STARTUP);
    assert!(
        !screen.contains("Services"),
        "the dashboard's screen is gone: {screen}"
    );
    let after = tmux.expect("echo", STARTUP);
    let modes: Vec<&str> = after
        .lines()
        .skip_while(|line| !line.starts_with("dashboard exited"))
        .skip(1)
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(modes, ["icanon", "echo"], "cooked mode again: {after}");
    assert_eq!(tmux.pane("#{alternate_on}"), "0", "back on the main screen");
    assert_eq!(tmux.pane("#{cursor_flag}"), "1", "the cursor shows again");
    assert_eq!(tmux.pane("#{mouse_any_flag}"), "0", "no more mouse reports");
}

#[test]
fn the_dashboard_shows_a_cli_change_live_the_server_going_away_and_restores_the_terminal() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    let mut server = TestServer::start();
    server.cli_login_admin();
    let tmux = Tmux::start(160, 48, &dashboard_command(&server, ""));
    tmux.expect("● live", STARTUP);
    tmux.expect("Services", STARTUP);
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "1",
        "the dashboard uses the alternate screen"
    );

    // An order placed with the CLI: its events reach the screen through the stream.
    server
        .shop(&[
            "product",
            "add",
            "--sku",
            "DASH-1",
            "--name",
            "Dash lamp",
            "--price",
            "12.50",
            "--stock",
            "10",
        ])
        .expect(0);
    let order = server
        .shop(&[
            "order",
            "create",
            "--item",
            "DASH-1:2",
            "--customer",
            "watcher@example.com",
            "--pay",
            "card:4242424242424242",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    let number = order["number"]
        .as_str()
        .expect("an order number")
        .to_owned();
    let made = Instant::now();
    let seen = tmux.wait_for(&number, LIVE);
    assert!(
        seen.is_some(),
        "order {number} was not on screen {:?} after the CLI placed it:\n{}",
        made.elapsed(),
        tmux.screen()
    );

    // The server goes away: the dashboard says so and keeps the last data.
    server.kill9();
    let screen = tmux.expect("server unreachable", STARTUP);
    assert!(screen.contains("Services"), "{screen}");
    assert!(screen.contains(&number), "{screen}");

    tmux.keys("q");
    assert_restored(&tmux);
}

#[test]
fn without_colour_sigterm_ends_the_dashboard_and_restores_the_terminal() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    let server = TestServer::start();
    server.cli_login_admin();
    let tmux = Tmux::start(80, 24, &dashboard_command(&server, "--no-color"));
    tmux.expect("● live", STARTUP);
    assert!(!tmux.coloured(), "--no-color: no colour at all");
    let pid = read(&server.dir.path().join("dashboard.pid"));
    let status = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM {pid}");
    assert_restored(&tmux);
}

#[test]
fn the_dashboard_needs_a_terminal() {
    let server = TestServer::start();
    let output = server.shop(&["dashboard"]).expect(2);
    assert!(output.stderr.contains("needs a terminal"), "{output:?}");
}

/// Waits until `check` holds for what the CLI says, or fails with the screen.
/// The action tests below wait for forms and views with the generous
/// [`STARTUP`]: what they check is what is sent and what the server then
/// says, not how fast a key is answered on a machine busy with other tests.
fn eventually(tmux: &Tmux, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + STARTUP;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_order_is_shipped_and_stock_adjusted_from_the_dashboard_after_confirmation() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    let server = TestServer::start();
    server.cli_login_admin();
    server
        .shop(&[
            "product", "add", "--sku", "ACT-1", "--name", "Act lamp", "--price", "9.00", "--stock",
            "10",
        ])
        .expect(0);
    let order = server
        .shop(&[
            "order",
            "create",
            "--item",
            "ACT-1:2",
            "--customer",
            "act@example.com",
            "--pay",
            "card:4242424242424242",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    let number = order["number"].as_str().expect("a number").to_owned();
    let tmux = Tmux::start(120, 30, &dashboard_command(&server, ""));
    tmux.expect(&number, STARTUP);

    // Orders, the newest line (this order, paid), ship with a tracking number.
    tmux.keys("Down");
    tmux.keys("s");
    tmux.expect("tracking number", STARTUP);
    tmux.keys("1Z-ACT-42");
    tmux.keys("Enter");
    let confirm = tmux.expect("y do it", STARTUP);
    assert!(
        confirm.contains(&format!("Ship {number} (paid")) && confirm.contains("1Z-ACT-42"),
        "the confirmation says what will happen:\n{confirm}"
    );
    let status = || {
        server
            .shop(&["order", "get", &number, "-o", "json"])
            .expect(0)
            .json()
    };
    assert_eq!(status()["status"], "paid", "nothing is sent before y");
    tmux.keys("y");
    eventually(&tmux, "the order shipped", || {
        status()["status"] == "shipped"
    });
    assert_eq!(status()["tracking_number"], "1Z-ACT-42");
    tmux.expect("shipped", STARTUP);

    // Stock: filter to the SKU, adjust it by +5 with a reason.
    tmux.keys("Up");
    tmux.keys("Right");
    tmux.keys("/");
    tmux.keys("ACT-1");
    tmux.keys("Enter");
    tmux.keys("a");
    tmux.expect("change (+5, -2)", STARTUP);
    tmux.keys("+5");
    tmux.keys("Enter");
    tmux.keys("restock from the dashboard");
    tmux.keys("Enter");
    let confirm = tmux.expect("y do it", STARTUP);
    assert!(
        confirm.contains("Adjust ACT-1: on hand 8 → 13 (+5)"),
        "{confirm}"
    );
    tmux.keys("y");
    let on_hand = || {
        server
            .shop(&["inventory", "get", "ACT-1", "-o", "json"])
            .expect(0)
            .json()["on_hand"]
            .as_i64()
    };
    eventually(&tmux, "the stock adjusted", || on_hand() == Some(13));
    // The ledger opens from the same row and shows the change.
    tmux.keys("l");
    let ledger = tmux.expect("Ledger of ACT-1", STARTUP);
    assert!(ledger.contains("8 → 13 (+5)"), "{ledger}");
    tmux.keys("Escape");
    // Only once the ledger is closed: an Escape and a `q` that reach the
    // terminal in one read are Alt+q, which closes the ledger and quits nothing.
    let closed = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !tmux.screen().contains("Ledger of ACT-1")
    });
    assert!(closed, "the ledger stayed open: {}", tmux.screen());
    tmux.keys("q");
    assert_restored(&tmux);
}

#[test]
fn read_only_refuses_actions() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    let server = TestServer::start();
    server.cli_login_admin();
    server
        .shop(&[
            "product", "add", "--sku", "RO-1", "--name", "Ro lamp", "--price", "9.00", "--stock",
            "10",
        ])
        .expect(0);
    let tmux = Tmux::start(80, 24, &dashboard_command(&server, "--readonly"));
    tmux.expect("RO-1", STARTUP);
    tmux.keys("Right");
    tmux.keys("a");
    tmux.expect("read-only (--readonly): actions are off", STARTUP);
    let stock = server
        .shop(&["inventory", "get", "RO-1", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(stock["on_hand"], 10);
    tmux.keys("q");
    assert_restored(&tmux);
}

#[test]
fn a_dead_notification_is_sent_again_from_the_dashboard_after_confirmation() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    // SMS goes to a webhook nobody listens on: one attempt, then dead.
    let server = TestServer::start_with(&[
        ("SHOP_SMS_WEBHOOK_URL", "http://127.0.0.1:1/sms"),
        ("SHOP_WEBHOOK_SECRET", "webhook-secret-for-tests-0123456789"),
        ("SHOP_NOTIFY_MAX_ATTEMPTS", "1"),
        ("SHOP_NOTIFY_POLL_MS", "50"),
        ("SHOP_NOTIFY_BREAKER_THRESHOLD", "50"),
    ]);
    server.cli_login_admin();
    let sent = server
        .shop(&[
            "notification",
            "send",
            "--channel",
            "sms",
            "--to",
            "+15550001111",
            "--template",
            "welcome",
            "--var",
            "name=Al",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    let id = sent["id"].as_str().expect("an id").to_owned();
    let notification = || {
        server
            .shop(&["notification", "get", &id, "-o", "json"])
            .expect(0)
            .json()
    };
    let tmux = Tmux::start(80, 24, &dashboard_command(&server, ""));
    tmux.expect("● live", STARTUP);
    eventually(&tmux, "the notification dead", || {
        notification()["status"] == "dead"
    });
    let attempts_before = notification()["history"].as_array().map_or(0, Vec::len);

    // The notifications view, filtered to this one, then R.
    tmux.keys(":");
    tmux.keys("notifications");
    tmux.keys("Enter");
    tmux.expect("R resends", STARTUP);
    tmux.keys("/");
    tmux.keys("+15550001111");
    tmux.keys("Enter");
    tmux.expect("dead", STARTUP);
    tmux.keys("R");
    let confirm = tmux.expect("y do it", STARTUP);
    assert!(
        confirm.contains(&format!("Send {id} again")) && confirm.contains("queued again"),
        "the confirmation says what will happen:\n{confirm}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        notification()["history"].as_array().map_or(0, Vec::len),
        attempts_before,
        "nothing is sent before y"
    );
    tmux.keys("y");
    tmux.expect(&format!("{id} is queued again"), STARTUP);
    eventually(&tmux, "the notification tried again", || {
        notification()["history"].as_array().map_or(0, Vec::len) > attempts_before
    });
    tmux.keys("q");
    assert_restored(&tmux);
}
