//! Starting, configuring, restarting and stopping the server.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn restart_keeps_users_sessions_and_tokens() {
    let mut server = TestServer::start();
    server.register("keep@example.com", "Keep").await;
    let tokens = server.login("keep@example.com", PASSWORD).await;
    assert!(server.stop().success(), "SIGTERM ends the server cleanly");
    server.restart();
    let me = server.get_as("/api/users/me", &tokens.access_token).await;
    assert_eq!(
        expect_status(me, StatusCode::OK).await["email"],
        "keep@example.com"
    );
    let refreshed = server.refresh(&tokens.refresh_token).await;
    expect_status(refreshed, StatusCode::OK).await;
    assert!(
        !server.stderr().contains("password:"),
        "no admin password is generated when one is configured"
    );
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_registration() {
    let mut server = TestServer::start();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let email = format!("durable{i}@example.com");
        server.register(&email, "Durable").await;
        acknowledged.push(email);
    }
    server.kill9();
    server.restart();
    let admin = server.admin_token().await;
    let list = server
        .get_as("/api/users?q=durable&limit=100", &admin)
        .await;
    let list = expect_status(list, StatusCode::OK).await;
    let mut stored: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);
    // The last acknowledged account can log in: its password hash was written too.
    server.login("durable19@example.com", PASSWORD).await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut server = TestServer::start();
    // Password hashing queues these on two cores, so they are still running when SIGTERM lands.
    let requests: Vec<_> = (0..12)
        .map(|i| {
            let request = server.post(
                "/api/users/register",
                &json!({"email": format!("inflight{i}@example.com"), "password": PASSWORD, "name": "In Flight"}),
            );
            tokio::spawn(request.send())
        })
        .collect();
    // SIGTERM only once every request is in the server or answered: a
    // request still in the kernel's queue, or on a connection the server has
    // not read yet, is not in flight, and hyper rightly closes it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Finished first, then the gauge: a request finishing in between is
        // counted by neither, so the sum can only fall short, never overcount.
        let answered = requests.iter().filter(|r| r.is_finished()).count();
        let handling = requests_in_flight(&server).await - 1; // less the scrape itself
        if answered + handling >= requests.len() {
            assert!(handling > 0, "every request was answered before SIGTERM");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the requests never all reached the server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = server.pid();
    let killer = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killer.success());
    for request in requests {
        let response = request
            .await
            .unwrap()
            .expect("in-flight request answered, not dropped");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert!(server.stop_after_signal().success());
    // New connections are refused once it has stopped.
    assert!(server.get("/api/version").send().await.is_err());
    server.restart();
    server.login("inflight11@example.com", PASSWORD).await;
}

/// The server's `shop_http_requests_in_flight` gauge, from a `/metrics` scrape.
async fn requests_in_flight(server: &TestServer) -> usize {
    let text = server.metrics().await;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("shop_http_requests_in_flight "))
        .unwrap_or_else(|| panic!("no in-flight gauge in the scrape: {text}"));
    value.trim().parse::<f64>().unwrap() as usize
}

#[tokio::test]
async fn first_start_without_configured_admin_generates_a_password_once() {
    let mut server =
        TestServer::start_with(&[("SHOP_ADMIN_EMAIL", ""), ("SHOP_ADMIN_PASSWORD", "")]);
    let stderr = server.stderr();
    let password = stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("generated password printed: {stderr}"))
        .to_owned();
    assert!(password.len() >= 20);
    let tokens = server.login("admin@shop.local", &password).await;
    assert_eq!(tokens.user.role, shop_wire::users::Role::Admin);
    server.restart();
    let again = server.stderr();
    assert_eq!(
        again.matches("password: ").count(),
        1,
        "printed only on the first start: {again}"
    );
}

#[tokio::test]
async fn flags_beat_environment_which_beats_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(
        &file,
        "access_token_ttl_seconds = 111\nsession_ttl_seconds = 86400\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();

    let server = TestServer::start_full(&[("SHOP_CONFIG", config)], &[]);
    assert_eq!(
        server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.expires_in,
        111
    );
    let server = TestServer::start_full(
        &[("SHOP_CONFIG", config), ("SHOP_ACCESS_TOKEN_TTL", "222")],
        &[],
    );
    assert_eq!(
        server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.expires_in,
        222
    );
    let server = TestServer::start_full(
        &[("SHOP_CONFIG", config), ("SHOP_ACCESS_TOKEN_TTL", "222")],
        &["--access-token-ttl", "333"],
    );
    assert_eq!(
        server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.expires_in,
        333
    );
}

#[tokio::test]
async fn bad_configuration_is_refused_with_a_clear_message() {
    let server = TestServer::start();
    let file = server.dir.path().join("bad.toml");
    std::fs::write(&file, "adress = \"0.0.0.0:1\"\n").unwrap();
    let output = server
        .command(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--config",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("adress"), "{stderr}");

    let output = server
        .command(&["serve", "--addr", "127.0.0.1:0", "--tls-cert", "cert.pem"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let output = server
        .command(&["serve", "--addr", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--addr"));

    let weak = server
        .command(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--db",
            server.dir.path().join("other.db").to_str().unwrap(),
        ])
        .env("SHOP_ADMIN_PASSWORD", "admin")
        .output()
        .unwrap();
    assert_eq!(weak.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("password"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
}

#[tokio::test]
async fn serves_https_when_given_a_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut server = TestServer::start_full(
        &[],
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve(
            "localhost",
            server.url.trim_start_matches("https://").parse().unwrap(),
        )
        .build()
        .unwrap();
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let response = client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("strict-transport-security"));
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_database_from_a_newer_shop_is_refused_and_left_untouched() {
    let mut server = TestServer::start();
    server.register("kept@example.com", "Kept").await;
    server.stop();
    let conn = rusqlite::Connection::open(server.db()).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);

    let output = server
        .command(&["serve", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("schema is version 99") && stderr.contains("newer"),
        "{stderr}"
    );
    let conn = rusqlite::Connection::open(server.db()).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(
        version, 99,
        "the refused database was not migrated or changed"
    );
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |row| row.get(0))
        .unwrap();
    assert_eq!(users, 2);
}
