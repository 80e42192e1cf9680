//! The `shop` command line against a real server: login and credentials,
//! every output format parsed back, the exit code of each error class,
//! retries, the event log, and the generated completions and man pages.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

/// A command line of words without spaces, e.g. `words("user list --role admin")`.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

async fn create_user(server: &TestServer, token: &str, email: &str, role: &str) -> Value {
    let response = server
        .send_as(
            reqwest::Method::POST,
            "/api/users",
            &json!({"email": email, "password": PASSWORD, "name": format!("User {email}"), "role": role}),
            token,
        )
        .await;
    expect_status(response, reqwest::StatusCode::CREATED).await
}

#[tokio::test]
async fn login_from_stdin_keeps_the_tokens_in_a_private_file_and_says_so_once() {
    let server = TestServer::start();
    let first = server
        .shop_stdin(
            &["login", "--email", ADMIN_EMAIL, "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .expect(0);
    assert!(
        first.stderr.contains("no OS keyring is available"),
        "{first:#?}"
    );
    assert!(first.stderr.contains("Logged in to"), "{first:#?}");
    assert!(first.stdout.is_empty(), "{first:#?}");

    let file = server.cli_config().join("credentials.toml");
    let mode = std::fs::metadata(&file)
        .expect("credentials file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "credentials must be private");
    assert!(read(&file).contains("refresh_token"));

    let second = server
        .shop_stdin(
            &["login", "--email", ADMIN_EMAIL, "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .expect(0);
    assert!(
        !second.stderr.contains("no OS keyring"),
        "said once: {second:#?}"
    );

    let me = server.shop(&["whoami", "-o", "json"]).expect(0).json();
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["role"], "admin");
    assert_eq!(me["token_source"], "credentials file");
    assert_eq!(me["url"], server.url.as_str());

    let out = server.shop(&["logout"]).expect(0);
    assert!(out.stderr.contains("session is revoked"), "{out:#?}");
    assert!(!read(&file).contains("refresh_token"), "tokens forgotten");
    let out = server.shop(&["whoami"]).expect(6);
    assert!(out.stderr.contains("not logged in"), "{out:#?}");
    server.shop(&["logout"]).expect(0);
    let again = server
        .shop_stdin(
            &["login", "--email", ADMIN_EMAIL, "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .expect(0);
    assert!(
        !again.stderr.contains("no OS keyring"),
        "said once, also after a logout: {again:#?}"
    );
}

#[tokio::test]
async fn a_wrong_password_or_a_missing_terminal_is_refused_clearly() {
    let server = TestServer::start();
    let out = server
        .shop_stdin(
            &["login", "--email", ADMIN_EMAIL, "--password-stdin"],
            "wrong-password\n",
        )
        .expect(6);
    assert!(out.stderr.contains("invalid_credentials"), "{out:#?}");
    assert!(!server.cli_config().join("credentials.toml").exists());
    // No terminal and no --password-stdin: a usage error, not a hang.
    let out = server.shop(&["login", "--email", ADMIN_EMAIL]).expect(2);
    assert!(out.stderr.contains("--password-stdin"), "{out:#?}");
}

#[tokio::test]
async fn every_output_format_parses_back() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    for i in 0..3 {
        create_user(&server, &admin, &format!("u{i}@example.com"), "customer").await;
    }
    server.cli_login_admin();

    let page = server
        .shop(&["user", "list", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(page["total"], 4);
    assert_eq!(page["items"].as_array().expect("items").len(), 4);

    // Piped output defaults to NDJSON.
    let lines = server.shop(&["user", "list"]).expect(0).lines();
    let emails: Vec<&str> = lines
        .iter()
        .map(|u| u["email"].as_str().expect("email"))
        .collect();
    assert_eq!(
        emails,
        [
            ADMIN_EMAIL,
            "u0@example.com",
            "u1@example.com",
            "u2@example.com"
        ]
    );

    let out = server.shop(&["user", "list", "-o", "csv"]).expect(0);
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let header = reader.headers().expect("header").clone();
    let email_column = header
        .iter()
        .position(|h| h == "email")
        .expect("email column");
    let csv_emails: Vec<String> = reader
        .records()
        .map(|row| row.expect("row")[email_column].to_owned())
        .collect();
    assert_eq!(csv_emails, emails);

    let ids = server.shop(&["user", "list", "-q"]).expect(0).stdout;
    let expected: Vec<&str> = lines
        .iter()
        .map(|u| u["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        server.shop(&["user", "list", "-o", "id"]).expect(0).stdout,
        ids
    );

    let table = server
        .shop(&["user", "list", "-o", "table"])
        .expect(0)
        .stdout;
    let mut rows = table.lines();
    let header = rows.next().expect("header row");
    for column in ["EMAIL", "NAME", "ROLE", "AGE"] {
        assert!(header.contains(column), "{table}");
    }
    let wide = server
        .shop(&["user", "list", "-o", "wide"])
        .expect(0)
        .stdout;
    let wide_header = wide.lines().next().expect("header row");
    assert!(
        wide_header.contains(" ID") && wide_header.contains("CREATED ("),
        "{wide}"
    );
    assert_eq!(rows.count(), 4, "{table}");
    assert!(!table.contains('\u{1b}'), "no colour when piped: {table:?}");

    // Paging, filters and --all.
    let page = server
        .shop(&words("user list --limit 2 --offset 1 -o json"))
        .expect(0)
        .json();
    assert_eq!(page["items"][0]["email"], "u0@example.com");
    assert_eq!(page["total"], 4);
    assert_eq!(
        server
            .shop(&["user", "list", "--all"])
            .expect(0)
            .lines()
            .len(),
        4
    );
    let admins = server
        .shop(&["user", "list", "--role", "admin"])
        .expect(0)
        .lines();
    assert_eq!(admins.len(), 1);
    let found = server
        .shop(&["user", "list", "--search", "U1@"])
        .expect(0)
        .lines();
    assert_eq!(found.len(), 1);

    // One record: get by email or id, in every format.
    let by_email = server
        .shop(&["user", "get", "u1@example.com", "-o", "json"])
        .expect(0)
        .json();
    let id = by_email["id"].as_str().expect("id");
    let by_id = server.shop(&["user", "get", id]).expect(0).lines();
    assert_eq!(by_id, std::slice::from_ref(&by_email));
    let vertical = server
        .shop(&["user", "get", id, "-o", "table"])
        .expect(0)
        .stdout;
    assert!(
        vertical.contains("EMAIL") && vertical.contains("u1@example.com"),
        "{vertical}"
    );
}

#[tokio::test]
async fn user_create_and_role_change_through_the_cli() {
    let server = TestServer::start();
    server.cli_login_admin();
    let created = server
        .shop_stdin(
            &[
                "user",
                "create",
                "--email",
                "kim@example.com",
                "--name",
                "Kim Lee",
                "--role",
                "staff",
                "--password-stdin",
                "-o",
                "json",
            ],
            &format!("{PASSWORD}\n"),
        )
        .expect(0)
        .json();
    assert_eq!(created["role"], "staff");
    let changed = server
        .shop(&words("user role kim@example.com customer -o json"))
        .expect(0)
        .json();
    assert_eq!(changed["id"], created["id"]);
    assert_eq!(changed["role"], "customer");
    // The new user can log in with the password given on stdin.
    server.login("kim@example.com", PASSWORD).await;
}

#[tokio::test]
async fn each_error_class_has_its_exit_code_and_one_clear_message() {
    let server = TestServer::start();

    // 2: usage, caught at parse time, naming the flag.
    let out = server.shop(&["user", "list", "--frobnicate"]).expect(2);
    assert!(out.stderr.contains("--frobnicate"), "{out:#?}");
    let out = server.shop(&["user", "list", "--limit", "-3"]).expect(2);
    assert!(out.stderr.contains("--limit"), "{out:#?}");
    let out = server
        .shop(&[
            "user",
            "create",
            "--email",
            "not an email",
            "--name",
            "x",
            "--password-stdin",
        ])
        .expect(2);
    assert!(out.stderr.contains("--email"), "{out:#?}");
    let out = server.shop(&["user", "role", "bob", "admin"]).expect(2);
    assert!(out.stderr.contains("<USER>"), "{out:#?}");
    let out = server
        .shop(&["user", "role", "a@example.com", "owner"])
        .expect(2);
    assert!(out.stderr.contains("<ROLE>"), "{out:#?}");
    let out = server.shop(&["events", "--type", "order paid"]).expect(2);
    assert!(out.stderr.contains("--type"), "{out:#?}");
    server
        .shop(&["--url", "localhost:7467", "status"])
        .expect(2);

    // 6: not logged in, then logged in without the rights.
    let out = server.shop(&["user", "list"]).expect(6);
    assert!(out.stderr.contains("shop login"), "{out:#?}");
    let customer = server.customer_token("c@example.com").await;
    let out = server
        .shop(&["--token", &customer, "user", "list"])
        .expect(6);
    assert!(out.stderr.contains("forbidden"), "{out:#?}");
    assert!(out.stderr.contains("request id"), "{out:#?}");

    server.cli_login_admin();
    // 4: not found, by id and by email.
    server
        .shop(&["user", "get", "usr_01JD0000000000000000000000"])
        .expect(4);
    server
        .shop(&["user", "get", "nobody@example.com"])
        .expect(4);
    // 5: conflict (a taken email), with the server's code and request id.
    let out = server
        .shop_stdin(
            &words("user create --email c@example.com --name Dup --password-stdin"),
            &format!("{PASSWORD}\n"),
        )
        .expect(5);
    assert!(out.stderr.contains("request id cli-"), "{out:#?}");
    // 1: the server refused the input (a weak password), field by field.
    let out = server
        .shop_stdin(
            &words("user create --email w@example.com --name Weak --password-stdin"),
            "password\n",
        )
        .expect(1);
    assert!(out.stderr.contains("password:"), "{out:#?}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_exit_3_with_one_line_naming_the_url() {
    let server = TestServer::start();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    for args in [vec!["status"], vec!["--token", "t", "user", "list"]] {
        let mut full = vec!["--url", closed.as_str()];
        full.extend(args);
        let out = server.shop(&full).expect(3);
        assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
        assert!(out.stderr.contains(&closed), "{out:#?}");
        assert!(out.stderr.contains("refused"), "{out:#?}");
    }
}

#[tokio::test]
async fn status_shows_every_service_and_parses_back() {
    let server = TestServer::start();
    let health = server.shop(&["status", "-o", "json"]).expect(0).json();
    assert_eq!(health["status"], "ok");
    let rows = server.shop(&["status"]).expect(0).lines();
    let services: Vec<&str> = rows
        .iter()
        .map(|r| r["service"].as_str().expect("service"))
        .collect();
    assert!(
        services.contains(&"users") && services.contains(&"platform"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["status"] == "ok" && r["checks"].is_object())
    );
    let table = server.shop(&["status", "-o", "table"]).expect(0).stdout;
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("all 2 checks ok"), "{table}");

    // -v logs each request and its answer on stderr, leaving stdout alone.
    let verbose = server.shop(&["-v", "status", "-o", "json"]).expect(0);
    assert!(
        verbose.stderr.contains("→ GET") && verbose.stderr.contains("/health"),
        "{verbose:#?}"
    );
    assert!(verbose.stderr.contains("← 200 OK"), "{verbose:#?}");
    assert_eq!(verbose.json()["status"], "ok");
    assert!(
        !server.shop(&["status"]).expect(0).stderr.contains("→"),
        "quiet without -v"
    );
}

#[tokio::test]
async fn an_expired_token_is_exit_6_and_a_stored_login_refreshes_itself() {
    let server = TestServer::start_with(&[("SHOP_ACCESS_TOKEN_TTL", "1")]);
    let expired = server.admin_token().await;
    server.cli_login_admin();
    // Expiry has whole-second precision: two seconds are sure to pass it.
    std::thread::sleep(Duration::from_millis(2100));

    let out = server.shop(&["--token", &expired, "whoami"]).expect(6);
    assert!(out.stderr.contains("expired"), "{out:#?}");
    let out = server
        .cli(&["whoami"])
        .env("SHOP_TOKEN", &expired)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(6));

    // The stored login's access token has expired too; it is refreshed, by
    // one process at a time: a replayed refresh token would end the session.
    let file = server.cli_config().join("credentials.toml");
    let before = read(&file);
    let runs: Vec<_> = (0..6)
        .map(|_| {
            server
                .cli(&["whoami", "-o", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_ne!(read(&file), before, "the refreshed tokens are stored");
    server.shop(&["whoami"]).expect(0);

    // A session revoked elsewhere cannot be refreshed: a clear exit 6.
    let stored: toml_like::Credentials = toml_like::parse(&read(&file));
    let response = server
        .request(reqwest::Method::POST, "/api/users/logout")
        .header("authorization", bearer(&stored.access_token))
        .send()
        .await
        .expect("logout");
    assert!(response.status().is_success(), "{response:?}");
    let out = server.shop(&["whoami"]).expect(6);
    assert!(out.stderr.contains("shop login"), "{out:#?}");
}

/// Just enough of credentials.toml to find the access token.
mod toml_like {
    pub struct Credentials {
        pub access_token: String,
    }

    pub fn parse(text: &str) -> Credentials {
        let line = text
            .lines()
            .find(|line| line.starts_with("access_token"))
            .expect("an access token line");
        let value = line.split_once('=').expect("key = value").1.trim();
        Credentials {
            access_token: value.trim_matches('"').to_owned(),
        }
    }
}

#[tokio::test]
async fn profiles_keep_each_server_and_never_send_a_token_elsewhere() {
    let a = TestServer::start();
    let b = TestServer::start();
    a.cli_login_admin();
    // The same config dir, a second profile for the second server.
    let login_b = a.cli(&[
        "--profile",
        "b",
        "--url",
        &b.url,
        "login",
        "--email",
        ADMIN_EMAIL,
        "--password-stdin",
    ]);
    run_cli(login_b, Some(&format!("{ADMIN_PASSWORD}\n"))).expect(0);

    // Without --url, profile b talks to server b: it remembers its URL.
    let mut whoami_b = a.cli(&["--profile", "b", "whoami", "-o", "json"]);
    whoami_b.env_remove("SHOP_URL");
    assert_eq!(
        run_cli(whoami_b, None).expect(0).json()["url"],
        b.url.as_str()
    );
    let mut via_env = a.cli(&["whoami", "-o", "json"]);
    via_env.env_remove("SHOP_URL").env("SHOP_PROFILE", "b");
    assert_eq!(
        run_cli(via_env, None).expect(0).json()["url"],
        b.url.as_str()
    );
    assert_eq!(
        a.shop(&["whoami", "-o", "json"]).expect(0).json()["url"],
        a.url.as_str()
    );

    // The default profile's login is for server a: pointed at b, it is not sent.
    let out = a.shop(&["--url", &b.url, "whoami"]).expect(6);
    assert!(out.stderr.contains("is for"), "{out:#?}");
    a.shop(&["--profile", "b", "logout"]).expect(0);
    a.shop(&["whoami"]).expect(0);
}

#[tokio::test]
async fn events_print_the_log_filter_by_type_and_follow_live() {
    let server = TestServer::start();
    server.register("e1@example.com", "E1").await;
    server.cli_login_admin();

    // Other services add events of their own as they react (a welcome
    // notification is queued and sent), so the checks look at user events.
    let users = server.shop(&["events", "-t", "user.*"]).expect(0).lines();
    assert!(
        users.iter().any(|e| e["type"] == "user.registered"),
        "{users:?}"
    );
    assert!(
        users
            .windows(2)
            .all(|w| w[0]["id"].as_u64() < w[1]["id"].as_u64())
    );
    for event in &users {
        for field in ["id", "type", "occurred_at", "data"] {
            assert!(event.get(field).is_some(), "{event}");
        }
    }
    let all = server.shop(&["events"]).expect(0).lines();
    let user_events: Vec<Value> = all
        .into_iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("user.")))
        .collect();
    assert_eq!(user_events, users);
    let registered = server
        .shop(&["events", "--type", "user.registered"])
        .expect(0)
        .lines();
    assert!(registered.iter().all(|e| e["type"] == "user.registered"));
    assert_eq!(registered.len(), 2, "the admin and e1");
    let tail = server
        .shop(&["events", "-t", "user.*", "--tail", "1"])
        .expect(0)
        .lines();
    assert_eq!(tail, [users.last().expect("an event").clone()]);
    let after = users[0]["id"].as_u64().expect("id").to_string();
    assert_eq!(
        server
            .shop(&["events", "-t", "user.*", "--after", &after])
            .expect(0)
            .lines()
            .len(),
        users.len() - 1
    );

    // --follow from the end: only what happens next, as it happens.
    let mut follow = server
        .cli(&words("events --tail 0 --follow --type user.registered"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = follow.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    server.register("live@example.com", "Live").await;
    let line = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a live event");
    let event: Value = serde_json::from_str(&line).expect("NDJSON");
    assert_eq!(event["data"]["email"], "live@example.com");
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing else"
    );
    follow.kill().expect("kill");
    let _ = follow.wait();
}

/// Polls `shop notification get ID` until it reaches `status`.
fn notification_reaches(server: &TestServer, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let notification = server
            .shop(&["notification", "get", id, "-o", "json"])
            .expect(0)
            .json();
        if notification["status"] == status {
            return notification;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {status}: {notification}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn notifications_are_sent_tracked_and_templated_from_the_cli() {
    let server = TestServer::start();
    server.cli_login_admin();

    let queued = server
        .shop(&words("notification send --channel email --to kim@example.com --template welcome --var name=Kim --priority high -o json"))
        .expect(0)
        .json();
    assert_eq!(queued["priority"], "high");
    let id = queued["id"].as_str().expect("id").to_owned();
    let sent = notification_reaches(&server, &id, "sent");
    assert_eq!(sent["attempts"], 1);
    // The name is in the text; a subject never carries it (issue 20).
    assert!(
        sent["rendered"]["body"]
            .as_str()
            .is_some_and(|s| s.contains("Kim")),
        "{sent}"
    );
    assert_eq!(sent["rendered"]["subject"], "Welcome to the shop", "{sent}");

    let listed = server
        .shop(&words(
            "notification list --recipient kim@example.com --status sent",
        ))
        .expect(0)
        .lines();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let delivered = server
        .shop(&["notification", "deliveries", "--channel", "email"])
        .expect(0)
        .lines();
    assert!(
        delivered
            .iter()
            .any(|d| d["notification_id"] == id.as_str()),
        "{delivered:?}"
    );

    // A user template: refused when it does not compile, used when it does;
    // a variable missing at send time is recorded on the notification.
    let dir = tempfile::tempdir().expect("dir");
    let broken = dir.path().join("broken.txt");
    std::fs::write(&broken, "Hi {{ name ").expect("write");
    let out = server
        .shop(&[
            "notification",
            "template",
            "add",
            "broken",
            "--channel",
            "sms",
            "--body-file",
            broken.to_str().expect("path"),
        ])
        .expect(1);
    assert!(out.stderr.contains("line 1"), "{out:#?}");
    let body = dir.path().join("back.txt");
    std::fs::write(&body, "Hi {{ name }}, {{ product }} is back in stock.").expect("write");
    server
        .shop(&[
            "notification",
            "template",
            "add",
            "back_in_stock",
            "--channel",
            "sms",
            "--body-file",
            body.to_str().expect("path"),
        ])
        .expect(0);
    let shown = server
        .shop(&words("notification template show back_in_stock -o json"))
        .expect(0)
        .json();
    assert_eq!(shown["builtin"], false);
    let names = server
        .shop(&["notification", "templates", "-q"])
        .expect(0)
        .stdout;
    assert!(names.lines().any(|n| n == "back_in_stock") && names.lines().any(|n| n == "welcome"));

    // A variable left out is refused before anything is queued, naming it.
    let missing = server
        .shop(&words("notification send --channel sms --to +4915112345678 --template back_in_stock --var name=Kim -q"))
        .expect(1);
    assert!(
        missing.stderr.contains("`product` is undefined") && missing.stdout.is_empty(),
        "{missing:#?}"
    );
    let complete = server
        .shop(&words("notification send --channel sms --to +4915112345678 --template back_in_stock --var name=Kim --var product=Mug -q"))
        .expect(0)
        .stdout;
    notification_reaches(&server, complete.trim(), "sent");
    let resent = server
        .shop(&["notification", "resend", complete.trim(), "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(resent["status"], "queued");

    let analytics = server
        .shop(&["notification", "analytics", "-o", "json"])
        .expect(0)
        .json();
    assert!(
        analytics["by_channel"]["email"]["sent"].as_u64() >= Some(1),
        "{analytics}"
    );
    let rows = server
        .shop(&["notification", "analytics"])
        .expect(0)
        .lines();
    assert!(
        rows.iter()
            .any(|r| r["group"] == "template" && r["name"] == "welcome"),
        "{rows:?}"
    );

    // Bad input: caught at parse time, or refused by the server with no row written.
    server
        .shop(&words(
            "notification send --channel fax --to x --template welcome",
        ))
        .expect(2);
    server
        .shop(&[
            "notification",
            "send",
            "--channel",
            "sms",
            "--to",
            "+49",
            "--template",
            "welcome",
            "--var",
            "bad key=1",
        ])
        .expect(2);
    server
        .shop(&words(
            "notification send --channel email --to k@example.com --template welcome --at tomorrow",
        ))
        .expect(2);
    let before = server
        .shop(&["notification", "list", "-o", "json"])
        .expect(0)
        .json()["total"]
        .clone();
    let out = server
        .shop(&words(
            "notification send --channel email --to not-an-address --template welcome",
        ))
        .expect(1);
    assert!(out.stderr.contains("to:"), "{out:#?}");
    server
        .shop(&words(
            "notification send --channel email --to k@example.com --template no_such_template",
        ))
        .expect(1);
    let after = server
        .shop(&["notification", "list", "-o", "json"])
        .expect(0)
        .json()["total"]
        .clone();
    assert_eq!(before, after, "nothing was queued");
}

#[tokio::test]
async fn a_closed_pipe_ends_quietly_with_exit_0() {
    let server = TestServer::start();
    server.cli_login_admin();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = server
        .cli(&["events", "-o", "ndjson"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stand-in server that answers each request with the next canned
/// response, recording what it was sent.
fn flaky_server(responses: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (status, body) in responses {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body_in = vec![0; length];
            let _ = reader.read_exact(&mut body_in);
            log.lock().expect("log").push(head);
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, seen)
}

fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

const USER: &str = r#"{"id":"usr_01JD0000000000000000000000","email":"a@example.com","name":"A","role":"admin","addresses":[],"created_at":"2026-11-23T00:00:00Z","updated_at":"2026-11-23T00:00:00Z"}"#;
const UNAVAILABLE: &str =
    r#"{"error":{"code":"unavailable","message":"try later","request_id":"r","details":{}}}"#;

#[tokio::test]
async fn reads_and_keyed_writes_are_retried_with_the_same_ids() {
    let server = TestServer::start();
    let (url, seen) = flaky_server(vec![(503, UNAVAILABLE), (502, ""), (200, USER)]);
    let out = server
        .shop(&["--url", &url, "--token", "t", "whoami", "-o", "json"])
        .expect(0);
    assert_eq!(out.json()["email"], "a@example.com");
    let requests = seen.lock().expect("log").clone();
    assert_eq!(requests.len(), 3);
    let ids: Vec<_> = requests.iter().map(|r| header(r, "x-request-id")).collect();
    assert!(
        ids[0].is_some() && ids.iter().all(|id| *id == ids[0]),
        "{requests:?}"
    );

    // A POST carries an Idempotency-Key, so it is retried with the same one.
    let (url, seen) = flaky_server(vec![(503, UNAVAILABLE), (201, USER)]);
    server
        .shop_stdin(
            &[
                "--url",
                &url,
                "--token",
                "t",
                "user",
                "create",
                "--email",
                "a@example.com",
                "--name",
                "A",
                "--password-stdin",
                "--idempotency-key",
                "create-a-1",
            ],
            "pw\n",
        )
        .expect(0);
    let requests = seen.lock().expect("log").clone();
    let keys: Vec<_> = requests
        .iter()
        .map(|r| header(r, "idempotency-key"))
        .collect();
    assert_eq!(keys, [Some("create-a-1"), Some("create-a-1")]);

    // Login must happen at most once: not retried on a 503, and the answer is reported.
    let (url, seen) = flaky_server(vec![(503, UNAVAILABLE), (200, "{}")]);
    let out = server
        .shop_stdin(
            &[
                "--url",
                &url,
                "login",
                "--email",
                "a@example.com",
                "--password-stdin",
            ],
            "pw\n",
        )
        .expect(3);
    assert!(out.stderr.contains("try later"), "{out:#?}");
    assert_eq!(seen.lock().expect("log").len(), 1);
    assert!(header(&seen.lock().expect("log")[0], "idempotency-key").is_none());
}

#[test]
fn completions_load_in_bash_and_match_the_binary() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("source {root}/completions/shop.bash && complete -p shop"),
        ])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("shop"));
    for (shell, file) in [
        ("bash", "shop.bash"),
        ("zsh", "_shop"),
        ("fish", "shop.fish"),
    ] {
        let generated = std::process::Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(["completions", shell])
            .output()
            .expect("shop completions");
        assert!(generated.status.success());
        let checked_in = std::fs::read(format!("{root}/completions/{file}")).expect("file");
        assert!(
            generated.stdout == checked_in,
            "completions/{file} is stale"
        );
    }
}

#[test]
fn man_pages_are_written_and_render_without_warnings() {
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["man", dir.path().to_str().expect("utf-8 path")])
        .output()
        .expect("shop man");
    assert!(out.status.success());
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    pages.sort();
    assert!(pages.len() > 10, "{pages:?}");
    for page in &pages {
        let name = page
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let checked_in = format!("{}/man/{name}", env!("CARGO_MANIFEST_DIR"));
        assert!(
            std::fs::read(page).ok() == std::fs::read(&checked_in).ok(),
            "man/{name} is stale"
        );
        // groff in warning-as-error mode: any roff problem shows up on stderr.
        let render = std::process::Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(page)
            .output()
            .expect("groff (apt install groff-base)");
        assert!(
            render.status.success() && render.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&render.stderr)
        );
    }
    let out = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.path().join("shop-user-list.1"))
        .env("MANWIDTH", "80")
        .output()
        .expect("man (apt install man-db)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("--role"));
}

/// `source <(COMPLETE=bash shop)` completes SKUs, order numbers and
/// template names from the server with the stored login, and offers
/// nothing (quietly, exit 0) when there is no server to ask.
#[tokio::test]
async fn dynamic_completions_offer_skus_orders_and_templates_from_the_server() {
    let server = TestServer::start();
    server.cli_login_admin();
    for (sku, name) in [
        ("CHAIR-01", "Oak chair"),
        ("CHAIR-02", "Pine chair"),
        ("LAMP-02", "Brass lamp"),
    ] {
        server
            .shop(&[
                "product", "add", "--sku", sku, "--name", name, "--price", "10", "--stock", "5",
            ])
            .expect(0);
    }
    let number = server
        .shop(&[
            "order",
            "create",
            "--item",
            "LAMP-02",
            "--customer",
            "kim@example.com",
            "--pay",
            "card:4242424242424242",
            "-o",
            "json",
        ])
        .expect(0)
        .json()["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let complete = |words: &[&str]| {
        let mut args = vec!["--", "shop"];
        args.extend_from_slice(words);
        let mut command = server.cli(&args);
        command.env("COMPLETE", "fish");
        run_cli(command, None).expect(0).stdout
    };
    assert_eq!(
        complete(&["product", "get", "ch"]),
        "CHAIR-01\tOak chair\nCHAIR-02\tPine chair\n"
    );
    assert!(complete(&["inventory", "adjust", "LA"]).starts_with("LAMP-02\t"));
    let orders = complete(&["order", "ship", "ORD"]);
    assert!(
        orders.starts_with(&format!("{number}\tpaid kim@example.com")),
        "{orders}"
    );
    assert!(complete(&["payment", "get", ""]).contains(&number));
    let templates = complete(&["notification", "send", "--template", "wel"]);
    assert!(
        templates.lines().all(|l| l.starts_with("welcome\t")) && !templates.is_empty(),
        "{templates}"
    );

    let script = {
        let mut command = server.cli(&[]);
        command.env("COMPLETE", "bash");
        run_cli(command, None).expect(0).stdout
    };
    assert!(
        script.contains("complete") && script.contains("shop"),
        "{script}"
    );

    let mut away = server.cli(&["--", "shop", "product", "get", "CH"]);
    away.env("COMPLETE", "fish")
        .env("SHOP_URL", "http://127.0.0.1:9");
    let away = run_cli(away, None).expect(0);
    assert_eq!(
        (away.stdout.as_str(), away.stderr.as_str()),
        ("", ""),
        "{away:#?}"
    );
}
