//! The attacks of issue 20, each sent as a hostile client would and each
//! answered the way the fix says: bounded metric labels, slow clients cut
//! off, event streams that end with their rights, limits that cannot be
//! dodged by respelling a header, and so on.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// The server with rate limits off, for attacks that send many requests.
fn unlimited(extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("SHOP_RATE_LIMIT_IP", "0"),
        ("SHOP_RATE_LIMIT_TOKEN", "0"),
        ("SHOP_RATE_LIMIT_LOGIN", "0"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(&env)
}

async fn scrape(server: &TestServer, token: Option<&str>) -> String {
    let mut request = server.get("/metrics");
    if let Some(token) = token {
        request = request.header("authorization", bearer(token));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[tokio::test]
async fn custom_methods_do_not_create_metric_series_or_long_log_lines() {
    let server = unlimited(&[]);
    server.get("/api/version").send().await.unwrap();
    let before = scrape(&server, None).await.len();
    for i in 0..300 {
        let method = Method::from_bytes(format!("X{i:04}{}", "M".repeat(2000)).as_bytes()).unwrap();
        let response = server.request(method, "/api/version").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.len() < 600,
            "the method is echoed whole: {}",
            message.len()
        );
    }
    let text = scrape(&server, None).await;
    let scraped = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let methods: std::collections::BTreeSet<_> = scraped
        .samples
        .iter()
        .filter_map(|s| s.labels.get("method").map(str::to_owned))
        .collect();
    let fixed = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
    ];
    assert!(
        methods.iter().all(|m| fixed.contains(&m.as_str())),
        "{methods:?}"
    );
    assert!(methods.contains("other"), "{methods:?}");
    // 300 methods of 2 KB each would add at least 600 KB if they were labels.
    assert!(text.len() < before + 20_000, "{} -> {}", before, text.len());
    let log = read(&server.log_path());
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2000, "an access-log line of {longest} bytes");
}

#[tokio::test]
async fn respelling_the_authorization_header_does_not_buy_a_fresh_token_budget() {
    // A per-address limit high enough to stay out of the way; 2 per second (burst 4) per token.
    let server = TestServer::start_with(&[
        ("SHOP_RATE_LIMIT_IP", "1000"),
        ("SHOP_RATE_LIMIT_TOKEN", "2"),
    ]);
    let token = server.admin_token().await;
    let spellings = [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer   {token}  "),
        format!("  bEaReR {token}"),
        format!("Bearer {token} "),
    ];
    let mut limited = 0;
    for spelling in spellings.iter().cycle().take(12) {
        let response = server
            .get("/api/users/me")
            .header("authorization", spelling)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        } else {
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    assert!(limited >= 6, "only {limited} of 12 requests were limited");
}

#[tokio::test]
async fn the_event_log_refuses_a_thousand_patterns_with_400() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let many = (0..999)
        .map(|i| format!("t{i}.*"))
        .collect::<Vec<_>>()
        .join(",");
    let response = server
        .get_as(&format!("/api/events/log?type={many}"), &admin)
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(
        body["error"]["details"]["fields"]["type"].is_string(),
        "{body}"
    );
    let few = (0..32)
        .map(|i| format!("t{i}.*"))
        .collect::<Vec<_>>()
        .join(",");
    let response = server
        .get_as(&format!("/api/events/log?type={few}"), &admin)
        .await;
    expect_status(response, StatusCode::OK).await;
    let response = server
        .get(&format!("/api/events?type={many}"))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
}

#[tokio::test]
async fn offsets_past_the_bound_are_refused_on_every_list_route() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let doc = expect_status(
        server.get("/api/openapi.json").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        let takes_offset = get["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "offset"));
        if !takes_offset {
            continue;
        }
        let path = path.replace("{sku}", "NO-SUCH-SKU").replace("{id}", "nope");
        // Past i64::MAX this used to wrap around to the first page.
        for offset in ["9223372036854775808", "18446744073709551615", "1000001"] {
            let response = server
                .get_as(&format!("{path}?offset={offset}"), &admin)
                .await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{path}?offset={offset}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} list routes take an offset");
}

/// Creates a staff account and returns its id and access token.
async fn staff_member(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let created = server
        .send_as(
            Method::POST,
            "/api/users",
            &json!({"email": email, "password": PASSWORD, "name": "Staff", "role": "staff"}),
            admin,
        )
        .await;
    let created = expect_status(created, StatusCode::CREATED).await;
    let token = server.login(email, PASSWORD).await.access_token;
    (created["id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn staff_cannot_read_user_events_through_the_log_or_the_stream() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let (_, staff) = staff_member(&server, &admin, "staff@example.com").await;
    server.register("victim@example.com", "Victim").await;
    let page = expect_status(
        server
            .get_as("/api/events/log?type=user.*&limit=1000", &staff)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["total"], 0, "{page}");
    let all = expect_status(
        server.get_as("/api/events/log?limit=1000", &staff).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["type"].as_str().unwrap().starts_with("user.")),
        "{all}"
    );
    let admin_view = expect_status(
        server
            .get_as("/api/events/log?type=user.*&limit=1000", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(admin_view["total"].as_u64().unwrap() >= 3, "{admin_view}");

    // The stream replays the whole log; staff see the product event, never the user events.
    let response = server
        .get("/api/events?after=0")
        .header("authorization", bearer(&staff))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let product = json!({"sku": "MARK-1", "name": "Marker", "price_cents": 100, "stock": 3});
    expect_status(
        server
            .send_as(Method::POST, "/api/products", &product, &admin)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    assert!(!first.event.starts_with("user."), "{first:?}");
}

/// Reads `response` as an event stream until it ends; the time that took, or `None` if it outlived `limit`.
async fn stream_end(response: reqwest::Response, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut body = response.bytes_stream();
    loop {
        match tokio::time::timeout_at((started + limit).into(), body.next()).await {
            Err(_) => return None,
            Ok(None | Some(Err(_))) => return Some(started.elapsed()),
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn open_stream(server: &TestServer, token: &str) -> reqwest::Response {
    let response = server
        .get("/api/events")
        .header("authorization", bearer(token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
}

#[tokio::test]
async fn an_event_stream_ends_when_its_caller_is_demoted_or_logs_out() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let (id, staff) = staff_member(&server, &admin, "demoted@example.com").await;
    let watching = open_stream(&server, &staff).await;
    let demote = server
        .send_as(
            Method::PUT,
            &format!("/api/users/{id}/role"),
            &json!({"role": "customer"}),
            &admin,
        )
        .await;
    expect_status(demote, StatusCode::OK).await;
    assert!(
        stream_end(watching, Duration::from_secs(8)).await.is_some(),
        "the demoted user's stream stayed open"
    );

    let (_, other) = staff_member(&server, &admin, "leaver@example.com").await;
    let watching = open_stream(&server, &other).await;
    let logout = server
        .send_as(Method::POST, "/api/users/logout", &json!({}), &other)
        .await;
    assert!(logout.status().is_success(), "{}", logout.status());
    assert!(
        stream_end(watching, Duration::from_secs(8)).await.is_some(),
        "the stream outlived its logout"
    );
}

#[tokio::test]
async fn an_event_stream_ends_when_its_token_expires() {
    let server = TestServer::start_with(&[("SHOP_ACCESS_TOKEN_TTL", "3")]);
    let admin = server.admin_token().await;
    let watching = open_stream(&server, &admin).await;
    let ended = stream_end(watching, Duration::from_secs(12)).await;
    let ended = ended.expect("the stream outlived its token");
    assert!(ended <= Duration::from_secs(7), "{ended:?}");
}

/// Reads until the server closes `stream`; how long that took, or `None` past `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_one_address_cannot_hold_every_connection() {
    use tokio::io::AsyncWriteExt;
    let server = unlimited(&[
        // Long enough that opening all 300 (seconds on a loaded CI machine)
        // ends before the first admitted ones time out and free their places.
        ("SHOP_HEADER_READ_TIMEOUT", "5"),
        ("SHOP_MAX_CONNECTIONS_PER_ADDRESS", "100"),
    ]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    // 300 connections from 127.0.0.1, each sending half a request and stopping.
    let mut slow = Vec::new();
    let opening = Instant::now();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let connected = Instant::now();
        // A refused connection may already be closed: writing to it can fail.
        let _ = stream
            .write_all(b"GET /api/version HTTP/1.1\r\nHost: shop\r\nX-Slow: ")
            .await;
        slow.push((stream, connected));
    }
    let opening = opening.elapsed();
    // Watched all at once: how long after its connect does the server close
    // each? (Opening 300 takes a while, so the first ones' timeouts run
    // before the last ones are open.)
    let watch = futures::future::join_all(slow.iter_mut().map(|(stream, connected)| async {
        let waited = connected.elapsed();
        closed_within(stream, Duration::from_secs(12))
            .await
            .map(|ended| waited + ended)
    }));
    // Meanwhile a client at another address is served at once.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let served = async {
        let started = Instant::now();
        let response = other
            .get(format!("{}/api/version", server.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        (response.status(), started.elapsed())
    };
    let (closed, (status, took)) = tokio::join!(watch, served);
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(2), "{took:?}");
    // All 300 are closed: the 200 over the cap at once, the rest when their headers time out.
    let closed: Vec<Duration> = closed
        .into_iter()
        .map(|ended| ended.expect("a slow-header connection was kept open"))
        .collect();
    let held = closed
        .iter()
        .filter(|d| **d > Duration::from_millis(2500))
        .count();
    assert!(
        held <= 100,
        "{held} connections were held past the cap of 100 (opening them took {opening:?})"
    );
    assert!(
        held >= 50,
        "only {held} connections waited for the header timeout"
    );
    // Once they are gone the address may connect again.
    expect_status(
        server.get("/api/version").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(&[("SHOP_HEADER_READ_TIMEOUT", "1")]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /api/version HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    // The response arrives and then, idle, the connection is closed within the timeout and a margin.
    let ended = closed_within(&mut stream, Duration::from_secs(5)).await;
    let ended = ended.expect("an idle keep-alive connection was kept open");
    assert!(
        ended >= Duration::from_millis(900),
        "closed before the timeout: {ended:?}"
    );
}

#[tokio::test]
async fn wrong_passwords_from_one_address_do_not_lock_the_owner_out_elsewhere() {
    let server = TestServer::start_with(&[("SHOP_RATE_LIMIT_LOGIN", "0")]);
    let wrong = json!({"email": ADMIN_EMAIL, "password": "not-the-password"});
    for _ in 0..6 {
        server
            .post("/api/users/login", &wrong)
            .send()
            .await
            .unwrap();
    }
    let response = server
        .post("/api/users/login", &wrong)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // The admin, at another address, logs in as usual.
    let owner = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = owner
        .post(format!("{}/api/users/login", server.url))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::OK).await;
}

#[tokio::test]
async fn formula_cells_are_guarded_in_csv_exports_and_import_back_unchanged() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let name = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let description = "+cmd|' /C calc'!A0";
    let product =
        json!({"sku": "EVIL-1", "name": name, "description": description, "price_cents": 100});
    expect_status(
        server
            .send_as(Method::POST, "/api/products", &product, &admin)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let response = server
        .get_as("/api/products/export?format=csv", &admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let exported = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(exported.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            let risky = matches!(cell.chars().next(), Some('=' | '+' | '@' | '\t' | '\r'))
                || (cell.starts_with('-') && cell.parse::<f64>().is_err());
            assert!(!risky, "an unguarded formula cell: {cell:?}");
        }
    }
    // Importing our own export into another shop gives back the same text.
    let other = TestServer::start();
    let other_admin = other.admin_token().await;
    let response = other
        .request(Method::POST, "/api/products/import?format=csv")
        .header("authorization", bearer(&other_admin))
        .header("content-type", "text/csv")
        .body(exported)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let copy = expect_status(
        other.get_as("/api/products/EVIL-1", &other_admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(copy["name"], name);
    assert_eq!(copy["description"], description);

    // The CLI's `-o csv` guards names the same way (a self-registered `=HYPERLINK` customer).
    server.register("formula@example.com", name).await;
    server.cli_login_admin();
    let out = server.shop(&["user", "list", "-o", "csv"]).expect(0);
    assert!(
        !out.stdout
            .lines()
            .any(|line| line.starts_with('=') || line.contains(",=")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("'=HYPERLINK"), "{}", out.stdout);
}

#[tokio::test]
async fn one_address_cannot_register_accounts_without_limit() {
    let server = TestServer::start_with(&[("SHOP_RATE_LIMIT_REGISTER", "20")]);
    let mut created = 0;
    let mut limited = None;
    for i in 0..15 {
        let body =
            json!({"email": format!("bot{i}@example.com"), "password": PASSWORD, "name": "Bot"});
        let response = server
            .post("/api/users/register", &body)
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                limited = Some(
                    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await,
                );
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(created, 5, "a burst of a quarter of the hour's 20");
    assert!(limited.is_some());
    // Another address registers as usual.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let body = json!({"email": "person@example.com", "password": PASSWORD, "name": "Person"});
    let response = other
        .post(format!("{}/api/users/register", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::CREATED).await;
}

/// A product with `stock` units at `price` minor units, made by staff.
async fn stocked(
    server: &TestServer,
    admin: &str,
    sku: &str,
    price: i64,
    stock: i64,
    extra: Value,
) {
    let mut body =
        json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": price, "stock": stock});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let response = server
        .send_as(Method::POST, "/api/products", &body, admin)
        .await;
    expect_status(response, StatusCode::CREATED).await;
}

async fn reserved(server: &TestServer, admin: &str, sku: &str) -> i64 {
    let stock = expect_status(
        server.get_as(&format!("/api/inventory/{sku}"), admin).await,
        StatusCode::OK,
    )
    .await;
    stock["reserved"].as_i64().unwrap()
}

/// `method path` as the anonymous holder of `cart_token`.
async fn as_cart(
    server: &TestServer,
    method: Method,
    path: &str,
    cart_token: &str,
    body: &Value,
) -> reqwest::Response {
    server
        .request(method, path)
        .header("x-cart-token", cart_token)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cart_holds_at_most_its_caps_and_a_change_that_changes_nothing_extends_nothing() {
    let server = unlimited(&[
        ("SHOP_MAX_LINE_QUANTITY", "10"),
        ("SHOP_MAX_CART_QUANTITY", "15"),
    ]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "CAP-A", 1000, 100, json!({})).await;
    stocked(
        &server,
        &admin,
        "CAP-B",
        1000,
        100,
        json!({"attributes": {"max_per_cart": "2"}}),
    )
    .await;
    stocked(&server, &admin, "CAP-C", 1000, 100, json!({})).await;
    // A product's own cap must be a number.
    let bad = json!({"sku": "CAP-D", "name": "D", "price_cents": 1, "attributes": {"max_per_cart": "lots"}});
    expect_error(
        server
            .send_as(Method::POST, "/api/products", &bad, &admin)
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;

    // The whole stock in one anonymous cart is refused, and holds nothing.
    let all = json!({"items": [{"sku": "CAP-A", "quantity": 100}]});
    let body = expect_error(
        server.post("/api/cart", &all).send().await.unwrap(),
        StatusCode::CONFLICT,
        "quantity_limit",
    )
    .await;
    assert_eq!(body["error"]["details"]["max"], 10, "{body}");
    assert_eq!(reserved(&server, &admin, "CAP-A").await, 0);

    let ten = json!({"items": [{"sku": "CAP-A", "quantity": 10}]});
    let cart = expect_status(
        server.post("/api/cart", &ten).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let (id, token) = (
        cart["id"].as_str().unwrap().to_owned(),
        cart["token"].as_str().unwrap().to_owned(),
    );
    let items = format!("/api/cart/{id}/items");
    // One more of A, three of B (capped at 2 by its product), or a cart
    // past 15 units in all: each refused, and nothing more is held.
    for (sku, quantity, max) in [("CAP-A", 1, 10), ("CAP-B", 3, 2), ("CAP-C", 6, 15)] {
        let response = as_cart(
            &server,
            Method::POST,
            &items,
            &token,
            &json!({"sku": sku, "quantity": quantity}),
        )
        .await;
        let body = expect_error(response, StatusCode::CONFLICT, "quantity_limit").await;
        assert_eq!(body["error"]["details"]["max"], max, "{sku}: {body}");
    }
    for sku in ["CAP-B", "CAP-C"] {
        assert_eq!(reserved(&server, &admin, sku).await, 0);
    }
    // Raising a line past the cap by PATCH is refused too.
    let response = as_cart(
        &server,
        Method::PATCH,
        &format!("{items}/CAP-A"),
        &token,
        &json!({"quantity": 11}),
    )
    .await;
    expect_error(response, StatusCode::CONFLICT, "quantity_limit").await;

    // A PATCH that changes nothing answers the cart as it is: the same
    // version, the same expiry, and the hold is not extended.
    let before = expect_status(
        as_cart(
            &server,
            Method::GET,
            &format!("/api/cart/{id}"),
            &token,
            &json!(null),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let holds = expect_status(
        server
            .get_as(
                &format!("/api/inventory/reservations?reference={id}"),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let same = expect_status(
        as_cart(
            &server,
            Method::PATCH,
            &format!("{items}/CAP-A"),
            &token,
            &json!({"quantity": 10}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(same["version"], before["version"]);
    assert_eq!(same["expires_at"], before["expires_at"]);
    let holds_after = expect_status(
        server
            .get_as(
                &format!("/api/inventory/reservations?reference={id}"),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(holds_after, holds, "the hold moved on a no-op change");
    assert!(
        !holds["items"].as_array().unwrap().is_empty(),
        "the cart's line has its hold: {holds}"
    );
    // A real change still moves the version.
    let changed = expect_status(
        as_cart(
            &server,
            Method::PATCH,
            &format!("{items}/CAP-A"),
            &token,
            &json!({"quantity": 9}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(changed["version"], before["version"]);
    assert_eq!(reserved(&server, &admin, "CAP-A").await, 9);

    // Two carts within the caps do not become one over them at login: the
    // merge is left undone (the login itself succeeds) and each keeps its lines.
    let customer = server.customer_token("merger@example.com").await;
    let own = json!({"items": [{"sku": "CAP-A", "quantity": 5}]});
    expect_status(
        server
            .send_as(Method::POST, "/api/cart", &own, &customer)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let response = server
        .post(
            "/api/users/login",
            &json!({"email": "merger@example.com", "password": PASSWORD}),
        )
        .header("x-cart-token", &token)
        .send()
        .await
        .unwrap();
    let login = expect_status(response, StatusCode::OK).await;
    let mine = expect_status(
        server
            .get_as("/api/cart", login["access_token"].as_str().unwrap())
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine["item_count"], 5, "{mine}");
    assert_eq!(reserved(&server, &admin, "CAP-A").await, 14);
}

#[tokio::test]
async fn one_address_holds_few_carts_and_one_customer_few_unpaid_orders() {
    let server = unlimited(&[
        ("SHOP_MAX_CARTS_PER_ADDRESS", "3"),
        ("SHOP_MAX_UNPAID_ORDERS", "2"),
    ]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "HOLD-1", 500, 100, json!({})).await;
    let line = json!({"items": [{"sku": "HOLD-1", "quantity": 1}]});
    for _ in 0..3 {
        let response = server.post("/api/cart", &line).send().await.unwrap();
        expect_status(response, StatusCode::CREATED).await;
    }
    let response = server.post("/api/cart", &line).send().await.unwrap();
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_carts").await;
    assert_eq!(reserved(&server, &admin, "HOLD-1").await, 3);
    // Another address starts its own.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = other
        .post(format!("{}/api/cart", server.url))
        .json(&line)
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::CREATED).await;

    // A customer's unpaid orders each hold stock for the payment window: two at most.
    let customer = server.customer_token("holder@example.com").await;
    let mut orders = Vec::new();
    for _ in 0..2 {
        let response = server
            .send_as(Method::POST, "/api/orders", &line, &customer)
            .await;
        let order = expect_status(response, StatusCode::CREATED).await;
        assert_eq!(order["status"], "pending");
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    let response = server
        .send_as(Method::POST, "/api/orders", &line, &customer)
        .await;
    expect_error(response, StatusCode::CONFLICT, "too_many_unpaid_orders").await;
    assert_eq!(reserved(&server, &admin, "HOLD-1").await, 6);
    // Cancelling one makes room.
    let response = server
        .send_as(
            Method::POST,
            &format!("/api/orders/{}/cancel", orders[0]),
            &json!({}),
            &customer,
        )
        .await;
    expect_status(response, StatusCode::OK).await;
    let response = server
        .send_as(Method::POST, "/api/orders", &line, &customer)
        .await;
    expect_status(response, StatusCode::CREATED).await;
}

#[tokio::test]
async fn a_signed_in_cart_post_is_all_or_nothing_with_a_line_cap() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "ELEVEN", 500, 11, json!({})).await;
    stocked(&server, &admin, "OTHER", 500, 50, json!({})).await;
    let customer = server.customer_token("allornothing@example.com").await;
    let cart = expect_status(
        server
            .send_as(Method::POST, "/api/cart", &json!({}), &customer)
            .await,
        StatusCode::CREATED,
    )
    .await;
    // A line that fits, then twelve copies of a line where eleven are available.
    let mut items = vec![json!({"sku": "OTHER", "quantity": 2})];
    items.extend((0..12).map(|_| json!({"sku": "ELEVEN", "quantity": 1})));
    let response = server
        .send_as(
            Method::POST,
            "/api/cart",
            &json!({"items": items}),
            &customer,
        )
        .await;
    expect_error(response, StatusCode::CONFLICT, "insufficient_stock").await;
    assert_eq!(reserved(&server, &admin, "ELEVEN").await, 0);
    assert_eq!(reserved(&server, &admin, "OTHER").await, 0);
    let after = expect_status(server.get_as("/api/cart", &customer).await, StatusCode::OK).await;
    assert_eq!(after["items"], json!([]));
    assert_eq!(after["version"], cart["version"]);
    // More than 100 lines is refused before anything is looked at.
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"sku": "OTHER", "quantity": 1}))
        .collect();
    let response = server
        .send_as(
            Method::POST,
            "/api/cart",
            &json!({"items": many}),
            &customer,
        )
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    // Lines that fit are all held at once.
    let fit =
        json!({"items": [{"sku": "ELEVEN", "quantity": 11}, {"sku": "OTHER", "quantity": 2}]});
    let full = expect_status(
        server
            .send_as(Method::POST, "/api/cart", &fit, &customer)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(full["item_count"], 13);
    assert_eq!(reserved(&server, &admin, "ELEVEN").await, 11);
}

#[tokio::test]
async fn archived_products_are_staffs_and_customer_carts_change_only_by_their_owner() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "GONE-1", 500, 10, json!({})).await;
    let product = expect_status(
        server.get("/api/products/GONE-1").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let id = product["id"].as_str().unwrap().to_owned();
    let response = server
        .send_as(
            Method::POST,
            "/api/products/GONE-1/archive",
            &json!({}),
            &admin,
        )
        .await;
    expect_status(response, StatusCode::OK).await;
    let customer = server.customer_token("reader@example.com").await;
    for key in ["GONE-1", id.as_str()] {
        let path = format!("/api/products/{key}");
        let response = server.get(&path).send().await.unwrap();
        expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
        let response = server.get_as(&path, &customer).await;
        expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
        expect_status(server.get_as(&path, &admin).await, StatusCode::OK).await;
    }

    // Staff see a customer's cart but do not change it.
    stocked(&server, &admin, "KEEP-1", 500, 10, json!({})).await;
    let line = json!({"items": [{"sku": "KEEP-1", "quantity": 1}]});
    let cart = expect_status(
        server
            .send_as(Method::POST, "/api/cart", &line, &customer)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let cart_id = cart["id"].as_str().unwrap();
    let (_, staff) = staff_member(&server, &admin, "clerk@example.com").await;
    expect_status(
        server.get_as(&format!("/api/cart/{cart_id}"), &staff).await,
        StatusCode::OK,
    )
    .await;
    let add = json!({"sku": "KEEP-1", "quantity": 5});
    let items = format!("/api/cart/{cart_id}/items");
    for (method, path, body) in [
        (Method::POST, items.clone(), add),
        (Method::DELETE, items.clone(), json!(null)),
        (
            Method::PATCH,
            format!("{items}/KEEP-1"),
            json!({"quantity": 9}),
        ),
    ] {
        for token in [&staff, &admin] {
            let response = server.send_as(method.clone(), &path, &body, token).await;
            expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    let after = expect_status(server.get_as("/api/cart", &customer).await, StatusCode::OK).await;
    assert_eq!(after["item_count"], 1);
    assert_eq!(after["version"], cart["version"]);
}

#[tokio::test]
async fn a_checkout_charges_todays_price_and_says_when_it_changed() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "PRICE-1", 1000, 10, json!({})).await;
    let customer = server.customer_token("pricey@example.com").await;
    let line = json!({"items": [{"sku": "PRICE-1", "quantity": 2}]});
    let cart = expect_status(
        server
            .send_as(Method::POST, "/api/cart", &line, &customer)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(cart["subtotal_cents"], 2000);
    let response = server
        .send_as(
            Method::PATCH,
            "/api/products/PRICE-1",
            &json!({"price_cents": 99_999}),
            &admin,
        )
        .await;
    expect_status(response, StatusCode::OK).await;
    let checkout = json!({
        "cart_id": cart["id"],
        "payment": {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035}
    });
    let response = server
        .send_as(Method::POST, "/api/orders", &checkout, &customer)
        .await;
    let body = expect_error(response, StatusCode::CONFLICT, "price_changed").await;
    assert_eq!(
        body["error"]["details"]["changes"],
        json!([{"sku": "PRICE-1", "was_cents": 1000, "now_cents": 99_999}])
    );
    // Nothing was ordered or charged; the cart now shows today's price.
    let orders = expect_status(
        server.get_as("/api/orders", &customer).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(orders["total"], 0);
    let repriced = expect_status(server.get_as("/api/cart", &customer).await, StatusCode::OK).await;
    assert_eq!(repriced["subtotal_cents"], 199_998);
    assert_ne!(repriced["version"], cart["version"]);
    // Ordering again accepts the new price.
    let order = expect_status(
        server
            .send_as(Method::POST, "/api/orders", &checkout, &customer)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(order["total_cents"], 199_998);
    assert_eq!(order["status"], "paid");
}

fn card(number: &str) -> Value {
    json!({"method": "card", "card_number": number, "exp_month": 12, "exp_year": 2035})
}

/// A checkout of one unit of `sku` paid with `number`: its status and body.
async fn checkout(
    server: &TestServer,
    token: &str,
    sku: &str,
    number: &str,
) -> (StatusCode, Value) {
    let body = json!({"items": [{"sku": sku, "quantity": 1}], "payment": card(number)});
    let response = server
        .send_as(Method::POST, "/api/orders", &body, token)
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn one_customers_failing_card_does_not_switch_payments_off_for_everyone() {
    const OUTAGE: &str = "4000000000000119";
    const VISA: &str = "4242424242424242";
    // By default the outage card is only a decline: it says nothing about the provider.
    let server = unlimited(&[("SHOP_MAX_UNPAID_ORDERS", "0")]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "PAY-1", 500, 100, json!({})).await;
    let attacker = server.customer_token("mallory@example.com").await;
    for _ in 0..5 {
        let (status, body) = checkout(&server, &attacker, "PAY-1", OUTAGE).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
        assert_eq!(body["error"]["code"], "processing_error", "{body}");
    }
    let customer = server.customer_token("alice@example.com").await;
    let (status, body) = checkout(&server, &customer, "PAY-1", VISA).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "paid");

    // With outages simulated on purpose, one customer's five failing
    // checkouts (three attempts each) still leave payments on for others...
    let server = unlimited(&[
        ("SHOP_PAYMENT_SIMULATE_OUTAGES", "true"),
        ("SHOP_MAX_UNPAID_ORDERS", "0"),
    ]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "PAY-1", 500, 100, json!({})).await;
    let attacker = server.customer_token("mallory@example.com").await;
    for _ in 0..5 {
        let (status, body) = checkout(&server, &attacker, "PAY-1", OUTAGE).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let customer = server.customer_token("alice@example.com").await;
    let (status, body) = checkout(&server, &customer, "PAY-1", VISA).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "paid");
    // ...while failures of five different customers in a row, as in a real
    // outage, open the breaker as before.
    for i in 0..5 {
        let token = server.customer_token(&format!("c{i}@example.com")).await;
        checkout(&server, &token, "PAY-1", OUTAGE).await;
    }
    let (status, body) = checkout(&server, &customer, "PAY-1", VISA).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body["error"]["code"], "payment_provider_unavailable",
        "{body}"
    );
}

/// The notifications of `template` queued so far (`extra`: more filters).
async fn queued(server: &TestServer, admin: &str, template: &str) -> Vec<Value> {
    let page = expect_status(
        server
            .get_as(
                &format!("/api/notifications?template={template}&limit=100"),
                admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until `count` notifications of `template` are queued, and answers them.
async fn wait_for(server: &TestServer, admin: &str, template: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = queued(server, admin, template).await;
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{count} {template} expected: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn adjust(server: &TestServer, admin: &str, sku: &str, delta: i64) {
    let body = json!({"delta": delta, "reason": "stocktake"});
    let path = format!("/api/inventory/{sku}/adjustments");
    expect_status(
        server.send_as(Method::POST, &path, &body, admin).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn holding_and_releasing_stock_sends_no_low_stock_alerts_and_a_sku_alerts_once_per_window() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    for i in 0..2 {
        staff_member(&server, &admin, &format!("staff{i}@example.com")).await;
    }
    stocked(
        &server,
        &admin,
        "LOW-1",
        500,
        10,
        json!({"low_stock_threshold": 5}),
    )
    .await;
    // The attack: the whole stock into an anonymous cart and out again, five times.
    let caps = json!({"items": [{"sku": "LOW-1", "quantity": 10}]});
    let cart = expect_status(
        server.post("/api/cart", &caps).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let (id, token) = (
        cart["id"].as_str().unwrap(),
        cart["token"].as_str().unwrap(),
    );
    for round in 0..5 {
        if round > 0 {
            let body = json!({"sku": "LOW-1", "quantity": 10});
            let response = as_cart(
                &server,
                Method::POST,
                &format!("/api/cart/{id}/items"),
                token,
                &body,
            )
            .await;
            expect_status(response, StatusCode::OK).await;
        }
        let response = as_cart(
            &server,
            Method::DELETE,
            &format!("/api/cart/{id}/items"),
            token,
            &json!(null),
        )
        .await;
        expect_status(response, StatusCode::OK).await;
    }
    // A real crossing of the stock on hand: one alert to each of the three staff.
    adjust(&server, &admin, "LOW-1", -6).await;
    let alerts = wait_for(&server, &admin, "low_stock_alert", 3).await;
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    // It recovers and crosses again within the window: the event is logged,
    // but no second round of mail goes out.
    adjust(&server, &admin, "LOW-1", 6).await;
    adjust(&server, &admin, "LOW-1", -6).await;
    let log = expect_status(
        server
            .get_as("/api/events/log?type=inventory.low_stock", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 2, "{log}");
    // A later event that is mailed shows the reactor got past the second crossing.
    server.register("later@example.com", "Later").await;
    wait_for(&server, &admin, "welcome", 1).await;
    assert_eq!(queued(&server, &admin, "low_stock_alert").await.len(), 3);
}

#[tokio::test]
async fn registrations_cannot_put_their_name_in_a_subject_nor_mail_strangers_without_limit() {
    let server = unlimited(&[("SHOP_NOTIFY_UNVERIFIED_PER_HOUR", "3")]);
    let admin = server.admin_token().await;
    let name = "Claim your prize at evil.example";
    for i in 0..6 {
        server
            .register(&format!("victim{i}@example.com"), name)
            .await;
    }
    // A low-stock alert queued after them shows the reactor has seen every registration.
    stocked(
        &server,
        &admin,
        "BARRIER",
        500,
        10,
        json!({"low_stock_threshold": 5}),
    )
    .await;
    adjust(&server, &admin, "BARRIER", -6).await;
    wait_for(&server, &admin, "low_stock_alert", 1).await;
    let welcomes = queued(&server, &admin, "welcome").await;
    assert_eq!(welcomes.len(), 3, "{welcomes:?}");
    // What reached the sinks has no name in its subject.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent = expect_status(
            server
                .get_as("/api/notifications/deliveries?channel=email", &admin)
                .await,
            StatusCode::OK,
        )
        .await;
        let subjects: Vec<String> = sent["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["template"] == "welcome")
            .map(|d| d["subject"].as_str().unwrap_or_default().to_owned())
            .collect();
        if subjects.len() == 3 {
            for subject in subjects {
                assert!(!subject.contains("evil.example"), "{subject}");
                assert_eq!(subject, "Welcome to the shop");
            }
            break;
        }
        assert!(Instant::now() < deadline, "{sent}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The business series a scrape shows.
fn business(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            [
                "shop_revenue_cents_total",
                "shop_net_revenue_cents",
                "shop_refunds_cents_total",
                "shop_orders",
                "shop_orders_created_total",
                "shop_payments_total",
            ]
            .iter()
            .any(|name| {
                l.split(['{', ' ']).next() == Some(name) || l.contains(&format!(" {name} "))
            })
        })
        .collect()
}

#[tokio::test]
async fn business_metrics_are_for_staff_and_configured_scrapers_only() {
    let scrape_token = "prometheus-scrape-token-2026";
    let server = unlimited(&[
        ("SHOP_METRICS_TOKEN", scrape_token),
        ("SHOP_METRICS_ADDRESSES", "127.0.0.2"),
    ]);
    let admin = server.admin_token().await;
    stocked(&server, &admin, "SOLD-1", 1999, 10, json!({})).await;
    let customer = server.customer_token("buyer@example.com").await;
    let (status, body) = checkout(&server, &customer, "SOLD-1", "4242424242424242").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Staff see revenue and orders (the gauge is refreshed in the background).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&server, Some(&admin)).await;
        let shown = business(&text);
        if shown
            .iter()
            .any(|l| l.starts_with("shop_revenue_cents_total"))
            && shown.iter().any(|l| l.starts_with("shop_orders{"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // So do the scrape token and the configured address, without a login.
    let text = scrape(&server, Some(scrape_token)).await;
    assert!(text.contains("shop_revenue_cents_total"), "{text}");
    let listed = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let text = listed
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("shop_revenue_cents_total"), "{text}");

    // Anyone else, a customer or a wrong token included, gets the rest, which still parses.
    for token in [None, Some(customer.as_str()), Some("not-the-scrape-token")] {
        let text = scrape(&server, token).await;
        assert!(
            business(&text).is_empty(),
            "{token:?}: {:?}",
            business(&text)
        );
        assert!(text.contains("shop_http_requests_total"), "{text}");
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    }
}

/// A client whose requests come from `address` (127.0.0.x on loopback).
fn client_at(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn suggestions(server: &TestServer, prefix: &str) -> Vec<String> {
    let body = expect_status(
        server
            .get(&format!("/api/search/suggest?prefix={prefix}&limit=20"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    serde_json::from_value(body["suggestions"].clone()).unwrap()
}

#[tokio::test]
async fn one_client_cannot_plant_a_suggestion_nor_a_co_view() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    for (sku, name) in [
        ("OAK-CHAIR", "Oak Chair"),
        ("PINE-DESK", "Pine Desk"),
        ("ELM-LAMP", "Elm Lamp"),
    ] {
        let body = json!({"sku": sku, "name": name, "price_cents": 1000, "stock": 5});
        expect_status(
            server
                .send_as(Method::POST, "/api/products", &body, &admin)
                .await,
            StatusCode::CREATED,
        )
        .await;
    }
    let search_from = |client: reqwest::Client, q: &'static str| {
        let url = format!("{}/api/search?q={q}", server.url);
        async move {
            let response = client.get(url).send().await.unwrap();
            let body: Value = response.json().await.unwrap();
            assert!(body["total"].as_u64().unwrap() > 0, "{body}");
        }
    };
    // An advertisement searched many times from one address, and even from
    // several: its words are not the catalog's.
    for address in ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        for _ in 0..5 {
            search_from(
                client_at(address),
                "chair buy cheaper at evilshop dot example",
            )
            .await;
        }
    }
    // Catalog words in an order no name has: from one client only, then from three.
    for _ in 0..10 {
        search_from(client_at("127.0.0.1"), "desk pine").await;
    }
    for address in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        search_from(client_at(address), "chair oak").await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !suggestions(&server, "chair")
        .await
        .iter()
        .any(|s| s == "chair oak")
    {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            suggestions(&server, "chair").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let chair = suggestions(&server, "chair").await;
    assert!(!chair.iter().any(|s| s.contains("evilshop")), "{chair:?}");
    let desk = suggestions(&server, "desk").await;
    assert!(!desk.iter().any(|s| s == "desk pine"), "{desk:?}");

    // Fifty made-up anonymous sessions viewing the chair, then the lamp.
    for i in 0..50 {
        for sku in ["OAK-CHAIR", "ELM-LAMP"] {
            let body = json!({"product": sku, "session": format!("fake-{i}")});
            let response = server
                .post("/api/search/analytics/view", &body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
    }
    // Views are written in batches; reading the analytics writes the buffered ones.
    let flush_views = || async {
        expect_status(
            server.get_as("/api/search/analytics", &admin).await,
            StatusCode::OK,
        )
        .await;
    };
    flush_views().await;
    let co_views = |body: &Value, sku: &str| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["product"]["sku"] == sku)
            .map_or(0, |r| r["co_views"].as_u64().unwrap())
    };
    let recommended = expect_status(
        server
            .get("/api/search/recommendations/OAK-CHAIR")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(co_views(&recommended, "ELM-LAMP"), 0, "{recommended}");
    // A signed-in customer's views pair, once however often they repeat them.
    let customer = server.customer_token("browser@example.com").await;
    for _ in 0..10 {
        for sku in ["OAK-CHAIR", "ELM-LAMP"] {
            let response = server
                .send_as(
                    Method::POST,
                    "/api/search/analytics/view",
                    &json!({"product": sku}),
                    &customer,
                )
                .await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
    }
    flush_views().await;
    let recommended = expect_status(
        server
            .get("/api/search/recommendations/OAK-CHAIR")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(co_views(&recommended, "ELM-LAMP"), 1, "{recommended}");
    assert_eq!(
        recommended["items"][0]["reason"], "co_view",
        "{recommended}"
    );
}
