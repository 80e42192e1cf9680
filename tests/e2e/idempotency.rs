//! Idempotency keys belong to their caller, responses with credentials are
//! never kept, and a request whose client hangs up runs to its end and
//! frees its key.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// No rate limits: the retry loops below send many requests.
fn unlimited() -> TestServer {
    TestServer::start_with(&[("SHOP_RATE_LIMIT_IP", "0"), ("SHOP_RATE_LIMIT_TOKEN", "0")])
}

async fn keyed(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
    key: &str,
) -> Response {
    server
        .request(method, path)
        .header("authorization", bearer(token))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request")
}

fn replayed(response: &Response) -> bool {
    response.headers().get("idempotent-replayed").is_some()
}

/// Rows of the idempotency table whose key ends with `key` (keys are stored scoped).
fn stored_keys(server: &TestServer, key: &str) -> i64 {
    // The keys the tests use are plain words: nothing to escape.
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    server
        .sql(&format!(
            "SELECT count(*) FROM idempotency_keys WHERE key LIKE '%{key}'"
        ))
        .expect("a count")
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn a_retry_after_the_access_token_was_refreshed_replays() {
    let server = TestServer::start();
    server.register("retry@example.com", "Retry").await;
    let tokens = server.login("retry@example.com", PASSWORD).await;
    let body = json!({"name": "Renamed"});
    let first = keyed(
        &server,
        &tokens.access_token,
        Method::PATCH,
        "/api/users/me",
        &body,
        "rename-1",
    )
    .await;
    assert!(!replayed(&first));
    let first = expect_status(first, StatusCode::OK).await;

    let refreshed =
        expect_status(server.refresh(&tokens.refresh_token).await, StatusCode::OK).await;
    let access = refreshed["access_token"].as_str().expect("access token");
    assert_ne!(access, tokens.access_token);
    let again = keyed(
        &server,
        access,
        Method::PATCH,
        "/api/users/me",
        &body,
        "rename-1",
    )
    .await;
    assert!(replayed(&again), "the same caller's retry replays, not 409");
    assert_eq!(expect_status(again, StatusCode::OK).await, first);
}

#[tokio::test]
async fn two_callers_with_the_same_key_each_get_their_own_result() {
    let server = TestServer::start();
    let ada = server.customer_token("ada@example.com").await;
    let bob = server.customer_token("bob@example.com").await;
    let rename = |name: &str| json!({ "name": name });
    let for_ada = keyed(
        &server,
        &ada,
        Method::PATCH,
        "/api/users/me",
        &rename("Ada L"),
        "same-key",
    )
    .await;
    assert_eq!(
        expect_status(for_ada, StatusCode::OK).await["name"],
        "Ada L"
    );
    // Bob's request differs from Ada's but is his own: neither 409 nor her answer.
    let for_bob = keyed(
        &server,
        &bob,
        Method::PATCH,
        "/api/users/me",
        &rename("Bob M"),
        "same-key",
    )
    .await;
    assert!(!replayed(&for_bob));
    let bob_user = expect_status(for_bob, StatusCode::OK).await;
    assert_eq!(bob_user["name"], "Bob M");
    assert_eq!(bob_user["email"], "bob@example.com");
    // Each one's retry replays their own.
    let again = keyed(
        &server,
        &ada,
        Method::PATCH,
        "/api/users/me",
        &rename("Ada L"),
        "same-key",
    )
    .await;
    assert!(replayed(&again));
    assert_eq!(
        expect_status(again, StatusCode::OK).await["email"],
        "ada@example.com"
    );
    let again = keyed(
        &server,
        &bob,
        Method::PATCH,
        "/api/users/me",
        &rename("Bob M"),
        "same-key",
    )
    .await;
    assert!(replayed(&again));
    assert_eq!(
        expect_status(again, StatusCode::OK).await["email"],
        "bob@example.com"
    );
    assert_eq!(stored_keys(&server, "same-key"), 2);
}

#[tokio::test]
async fn tokens_and_cart_secrets_are_never_stored_for_replay() {
    let server = TestServer::start();
    server.register("tok@example.com", "Tok").await;
    let login = json!({"email": "tok@example.com", "password": PASSWORD});
    let mut refresh_tokens = Vec::new();
    for _ in 0..2 {
        let response = server
            .post_keyed("/api/users/login", &login, "login-key")
            .await;
        assert!(!replayed(&response), "a login is never replayed");
        let tokens = expect_status(response, StatusCode::OK).await;
        refresh_tokens.push(
            tokens["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
        );
    }
    assert_ne!(refresh_tokens[0], refresh_tokens[1], "two real logins");
    assert_eq!(stored_keys(&server, "login-key"), 0);

    let refresh = json!({"refresh_token": refresh_tokens[0]});
    let response = server
        .post_keyed("/api/users/refresh", &refresh, "refresh-key")
        .await;
    expect_status(response, StatusCode::OK).await;
    assert_eq!(stored_keys(&server, "refresh-key"), 0);

    // An anonymous cart's answer carries its secret: not kept either.
    let response = server.post_keyed("/api/cart", &json!({}), "cart-key").await;
    let cart = expect_status(response, StatusCode::CREATED).await;
    assert!(cart["token"].is_string(), "{cart}");
    assert_eq!(stored_keys(&server, "cart-key"), 0);
}

#[tokio::test]
async fn a_request_whose_client_hangs_up_frees_its_key_when_it_ends() {
    let server = unlimited();
    let admin = server.admin_token().await;
    let body = json!({"email": "gone@example.com", "password": PASSWORD, "name": "Gone"});
    let connection = server
        .post_unanswered(
            "/api/users/register",
            &[("idempotency-key", "gone-key")],
            &body,
        )
        .await;
    // Hang up once the server has the request (its claim is taken by then).
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(connection);
    // The retry comes at once: at most a short "still running", never for minutes.
    let deadline = Instant::now() + Duration::from_secs(15);
    let user = loop {
        let response = server
            .post_keyed("/api/users/register", &body, "gone-key")
            .await;
        if response.status() == StatusCode::CONFLICT {
            let error =
                expect_error(response, StatusCode::CONFLICT, "idempotency_in_progress").await;
            assert!(Instant::now() < deadline, "the key stayed claimed: {error}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        break expect_status(response, StatusCode::CREATED).await;
    };
    assert_eq!(user["email"], "gone@example.com");
    let users = expect_status(
        server.get_as("/api/users?q=gone", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(users["total"], 1, "registered once");
}

#[tokio::test]
async fn a_checkout_whose_client_hangs_up_is_still_paid_and_its_stock_committed() {
    let (base, stripe) = crate::fake_stripe::start().await;
    let server = TestServer::start_with(&[
        ("SHOP_RATE_LIMIT_IP", "0"),
        ("SHOP_RATE_LIMIT_TOKEN", "0"),
        ("SHOP_STRIPE_SECRET_KEY", "sk_test_e2e"),
        ("SHOP_STRIPE_API_BASE", &base),
        ("SHOP_PAYMENT_TIMEOUT_MS", "10000"),
    ]);
    let admin = server.admin_token().await;
    let product = json!({"sku": "GONE-1", "name": "Left behind", "price_cents": 1500, "stock": 5});
    let created = server
        .send_as(Method::POST, "/api/products", &product, &admin)
        .await;
    expect_status(created, StatusCode::CREATED).await;
    // The charge takes a while: the client hangs up while it is under way,
    // between the order's first step and its last.
    stripe.slow_down(Duration::from_millis(1500));
    let order = json!({
        "items": [{"sku": "GONE-1", "quantity": 2}],
        "payment": {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035},
    });
    let authorization = bearer(&admin);
    let connection = server
        .post_unanswered("/api/orders", &[("authorization", &authorization)], &order)
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !stripe
        .requests()
        .iter()
        .any(|r| r.path == "/v1/payment_intents")
    {
        assert!(
            Instant::now() < deadline,
            "the checkout never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(connection);

    loop {
        let orders =
            expect_status(server.get_as("/api/orders", &admin).await, StatusCode::OK).await;
        let stock = expect_status(
            server.get_as("/api/inventory/GONE-1", &admin).await,
            StatusCode::OK,
        )
        .await;
        let paid = orders["items"]
            .as_array()
            .expect("orders")
            .iter()
            .any(|o| o["status"] == "paid" && o["items"][0]["sku"] == "GONE-1");
        if paid && stock["on_hand"] == 3 && stock["reserved"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the checkout did not finish: {orders} {stock}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
