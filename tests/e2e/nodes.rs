//! What several nodes behind a load balancer rely on (issue 15): the client
//! address behind trusted proxies, one JWT secret shared by every node, a
//! health check cheap enough to poll, and online backups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// A client of `server` whose connections come from `local` (any 127.x address).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// How many of `count` requests to `/api/version`, sent as `forwarded_for`
/// (none: no header) by `client`, were answered 200; the rest must be 429.
async fn passed(
    server: &TestServer,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
    count: usize,
) -> usize {
    let mut ok = 0;
    for _ in 0..count {
        let mut request = client.get(format!("{}/api/version", server.url));
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        let response = request.send().await.unwrap();
        match response.status() {
            StatusCode::OK => ok += 1,
            _ => {
                expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
            }
        }
    }
    ok
}

/// The client addresses of the access log's lines for `path`, once it has
/// at least `count` of them (the log reaches its file a moment after the answer).
async fn logged_clients(server: &TestServer, path: &str, count: usize) -> Vec<String> {
    let lines = || -> Vec<String> {
        read(&server.log_path())
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["span"]["path"] == path && line["status"].is_number())
            .map(|line| line["span"]["client"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    for _ in 0..100 {
        if lines().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lines()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limits() {
    // The proxy is 127.0.0.1; the header names the clients behind it.
    let server = TestServer::start_with(&[
        ("SHOP_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
        ("SHOP_RATE_LIMIT_IP", "5"),
        ("SHOP_RATE_LIMIT_LOGIN", "0"),
    ]);
    let proxy = &server.client;
    let first = passed(&server, proxy, Some("203.0.113.1"), 30).await;
    assert!(
        (10..30).contains(&first),
        "a burst of 10, then 429s: {first}"
    );
    // The same proxy, another client: a budget of its own, at once.
    let second = passed(&server, proxy, Some("203.0.113.2"), 10).await;
    assert_eq!(
        second, 10,
        "the second client was limited by the first's requests"
    );
    let clients = logged_clients(&server, "/api/version", 40).await;
    assert_eq!(clients.len(), 40, "{clients:?}");
    assert_eq!(clients.iter().filter(|c| *c == "203.0.113.1").count(), 30);
    assert_eq!(clients.iter().filter(|c| *c == "203.0.113.2").count(), 10);

    // The login guard too: one client's wrong passwords lock out that client only.
    let login = |forwarded_for: &'static str, password: &'static str| {
        server
            .post(
                "/api/users/login",
                &json!({"email": ADMIN_EMAIL, "password": password}),
            )
            .header("x-forwarded-for", forwarded_for)
            .send()
    };
    let mut refused = None;
    for _ in 0..10 {
        let response = login("198.51.100.7", "not-the-password").await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the guessing client is locked out");
    expect_error(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let owner = login("198.51.100.8", ADMIN_PASSWORD).await.unwrap();
    expect_status(owner, StatusCode::OK).await;
}

#[tokio::test]
async fn from_an_untrusted_peer_a_forged_forwarded_for_changes_nothing() {
    // Only 127.0.0.2 is a proxy; the test's own client connects from 127.0.0.1.
    let server = TestServer::start_full(
        &[("SHOP_RATE_LIMIT_IP", "5")],
        &["--trusted-proxy", "127.0.0.2"],
    );
    let direct = &server.client;
    let mut ok = 0;
    for n in 0..30 {
        // A new address in the header for every request buys no new budget.
        ok += passed(&server, direct, Some(&format!("203.0.113.{n}")), 1).await;
    }
    assert!((10..30).contains(&ok), "the limit hit the real peer: {ok}");
    // The one trusted proxy is believed, so the flag did take.
    let proxy = client_from("127.0.0.2");
    assert_eq!(passed(&server, &proxy, Some("203.0.113.200"), 5).await, 5);
    let clients = logged_clients(&server, "/api/version", 35).await;
    assert_eq!(clients.len(), 35, "{clients:?}");
    assert_eq!(
        clients.iter().filter(|c| *c == "127.0.0.1").count(),
        30,
        "a forged address reached the log: {clients:?}"
    );
    assert_eq!(clients.iter().filter(|c| *c == "203.0.113.200").count(), 5);
}

#[tokio::test]
async fn a_bad_trusted_proxy_stops_the_start_with_a_clear_message() {
    let server = TestServer::start();
    let refused = |flag: Option<&str>, env: Option<&str>, file: Option<&str>| {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        if let Some(flag) = flag {
            args.extend(["--trusted-proxy", flag]);
        }
        let mut command = server.command(&args);
        if let Some(env) = env {
            command.env("SHOP_TRUSTED_PROXIES", env);
        }
        if let Some(text) = file {
            let path = server.dir.path().join("proxies.toml");
            std::fs::write(&path, text).unwrap();
            command.env("SHOP_CONFIG", path);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1), "started anyway");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused(Some("10.0.0.0/33"), None, None);
    assert!(
        stderr.contains("`10.0.0.0/33` is not an address or CIDR range"),
        "{stderr}"
    );
    let stderr = refused(None, Some("127.0.0.1,proxy.local"), None);
    assert!(stderr.contains("`proxy.local`"), "{stderr}");
    let stderr = refused(None, None, Some("trusted_proxies = [\"10.0.0.0/99\"]\n"));
    assert!(
        stderr.contains("`10.0.0.0/99` is not an address or CIDR range"),
        "{stderr}"
    );
}

#[tokio::test]
async fn nodes_sharing_the_jwt_secret_accept_each_others_tokens() {
    const SECRET: &str = "one-secret-for-every-node-of-this-shop-0123";
    // Two nodes on one database, as behind a load balancer.
    let a = TestServer::start_with(&[("SHOP_JWT_SECRET", SECRET)]);
    let db = a.db();
    let db = db.to_str().unwrap();
    // B's secret comes from its config file rather than the environment.
    let file = a.dir.path().join("node-b.toml");
    std::fs::write(&file, format!("jwt_secret = \"{SECRET}\"\n")).unwrap();
    let b = TestServer::start_with(&[("SHOP_DB", db), ("SHOP_CONFIG", file.to_str().unwrap())]);
    let from_a = a.admin_token().await;
    let from_b = b.admin_token().await;
    for (node, token) in [(&b, &from_a), (&a, &from_b)] {
        let me = expect_status(node.get_as("/api/users/me", token).await, StatusCode::OK).await;
        assert_eq!(me["email"], ADMIN_EMAIL);
    }
    assert!(
        !a.dir.path().join("shop.jwt-secret").exists(),
        "a configured secret is never written beside the database"
    );
    // A node with another secret, or none (it generates one), refuses them.
    let other = TestServer::start_with(&[
        ("SHOP_DB", db),
        ("SHOP_JWT_SECRET", "another-secret-for-another-shop-456789"),
    ]);
    let generated = TestServer::start_with(&[("SHOP_DB", db)]);
    for node in [&other, &generated] {
        let refused = node.get_as("/api/users/me", &from_a).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }

    // Too short a secret stops the start, whichever way it is given.
    let short = a
        .command(&["serve", "--addr", "127.0.0.1:0"])
        .env("SHOP_JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("at least 32 characters"), "{stderr}");
}

/// Every item of a list route, page by page.
async fn all(server: &TestServer, token: &str, path: &str) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    loop {
        let page = format!("{path}&limit=500&offset={}", items.len());
        let page = expect_status(server.get_as(&page, token).await, StatusCode::OK).await;
        let got = page["items"].as_array().unwrap().clone();
        let total = page["total"].as_u64().unwrap() as usize;
        let empty = got.is_empty();
        items.extend(got);
        if empty || items.len() >= total {
            return items;
        }
    }
}

#[tokio::test]
async fn a_backup_taken_during_checkouts_starts_a_consistent_shop() {
    let env = [
        ("SHOP_RATE_LIMIT_IP", "0"),
        ("SHOP_RATE_LIMIT_TOKEN", "0"),
        // Checkouts caught half-way in the copy are settled soon after it starts.
        ("SHOP_PAYMENT_WINDOW_SECONDS", "2"),
        ("SHOP_COMMERCE_SWEEP_MS", "100"),
    ];
    let server = TestServer::start_with(&env);
    let admin = server.admin_token().await;
    const UNITS: i64 = 100_000;
    let product = json!({"sku": "BULK-1", "name": "Bulk", "price_cents": 100, "stock": UNITS});
    let created = server
        .send_as(reqwest::Method::POST, "/api/products", &product, &admin)
        .await;
    expect_status(created, StatusCode::CREATED).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (url, admin, stop) = (server.url.clone(), admin.clone(), stop.clone());
        let client = server.client.clone();
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let body = json!({"items": [{"sku": "BULK-1", "quantity": 1}],
                    "payment": {"method": "card", "card_number": "4242424242424242",
                                "exp_month": 12, "exp_year": 2035}});
                let response = client
                    .post(format!("{url}/api/orders"))
                    .header("authorization", bearer(&admin))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                let order: Value = response.json().await.unwrap();
                acknowledged.push((Instant::now(), order["id"].as_str().unwrap().to_owned()));
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let copy = server.dir.path().join("backup.db");
    let began = Instant::now();
    let mut command = server.command(&["db", "backup", copy.to_str().unwrap()]);
    let backup = tokio::task::spawn_blocking(move || run_cli(command, None))
        .await
        .unwrap()
        .expect(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    let report = backup.json();
    assert_eq!(report["file"], copy.to_str().unwrap(), "{report}");
    assert!(report["bytes"].as_u64().unwrap() > 0, "{report}");
    let before: Vec<&String> = acknowledged
        .iter()
        .filter(|(at, _)| *at < began)
        .map(|(_, id)| id)
        .collect();
    assert!(before.len() > 20, "the load barely ran: {}", before.len());

    // The copy is never overwritten by accident.
    command = server.command(&["db", "backup", copy.to_str().unwrap()]);
    let again = run_cli(command, None).expect(5);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);

    // A server on the copy: every order acknowledged before the backup
    // began is there and paid, and what was half-way settles consistently.
    let restored =
        TestServer::start_with(&[&env[..], &[("SHOP_DB", copy.to_str().unwrap())]].concat());
    let admin = restored.admin_token().await;
    for id in &before {
        let order = expect_status(
            restored.get_as(&format!("/api/orders/{id}"), &admin).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(order["status"], "paid", "{order}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let on_hand = loop {
        let stock = expect_status(
            restored.get_as("/api/inventory/BULK-1", &admin).await,
            StatusCode::OK,
        )
        .await;
        if stock["reserved"] == 0 {
            break stock["on_hand"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "stock still held: {stock}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let paid = all(&restored, &admin, "/api/orders?status=paid").await;
    assert!(paid.len() >= before.len() && paid.len() <= acknowledged.len());
    assert_eq!(on_hand + paid.len() as i64, UNITS, "stock + sold");
    let succeeded = all(&restored, &admin, "/api/payments?status=succeeded").await;
    let mut paid_orders: Vec<&str> = paid.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut charged: Vec<&str> = succeeded
        .iter()
        .map(|p| p["order_id"].as_str().unwrap())
        .collect();
    paid_orders.sort_unstable();
    charged.sort_unstable();
    assert_eq!(
        paid_orders, charged,
        "every paid order has its payment, and no more"
    );
    assert!(succeeded.iter().all(|p| p["amount_cents"] == 100));
    let report = expect_status(
        restored
            .send_as(
                reqwest::Method::POST,
                "/api/inventory/reconcile",
                &json!({"fix": false}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(report["consistent"], true, "{report}");
}
