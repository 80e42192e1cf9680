//! Carts, checkout, orders and payments through the HTTP API, with real
//! races: checkouts for the last units, carts updated at one version,
//! refunds of one payment, retried checkouts, and a kill -9 mid-load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const VISA: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const NO_FUNDS: &str = "4000000000009995";

/// No rate limits: the races below send hundreds of requests at once.
fn unlimited(extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![("SHOP_RATE_LIMIT_IP", "0"), ("SHOP_RATE_LIMIT_TOKEN", "0")];
    env.extend_from_slice(extra);
    TestServer::start_with(&env)
}

fn card(number: &str) -> Value {
    json!({"method": "card", "card_number": number, "exp_month": 12, "exp_year": 2035})
}

async fn product(server: &TestServer, admin: &str, sku: &str, price: i64, stock: i64) {
    let body =
        json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": price, "stock": stock});
    let response = server
        .send_as(Method::POST, "/api/products", &body, admin)
        .await;
    expect_status(response, StatusCode::CREATED).await;
}

async fn stock(server: &TestServer, admin: &str, sku: &str) -> Value {
    expect_status(
        server.get_as(&format!("/api/inventory/{sku}"), admin).await,
        StatusCode::OK,
    )
    .await
}

async fn consistent(server: &TestServer, admin: &str) {
    let report = expect_status(
        server
            .send_as(
                Method::POST,
                "/api/inventory/reconcile",
                &json!({"fix": false}),
                admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(report["consistent"], true, "{report}");
}

async fn order(server: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    let response = server
        .send_as(Method::POST, "/api/orders", &body, token)
        .await;
    let status = response.status();
    (status, response.json().await.expect("JSON"))
}

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = server.send_as(Method::POST, path, &body, token).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(server: &TestServer, token: &str, path: &str) -> Value {
    expect_status(server.get_as(path, token).await, StatusCode::OK).await
}

#[tokio::test]
async fn a_cart_checks_out_paid_and_its_order_moves_through_its_states() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "MUG-1", 1250, 10).await;
    product(&server, &admin, "HAT-1", 2000, 5).await;
    let customer = server.customer_token("ada@example.com").await;

    // The cart: add reserves, lowering releases, removing releases.
    let (status, cart) = post(&server, &customer, "/api/cart", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{cart}");
    let id = cart["id"].as_str().unwrap().to_owned();
    let items = format!("/api/cart/{id}/items");
    let (status, cart) = post(
        &server,
        &customer,
        &items,
        json!({"sku": "MUG-1", "quantity": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    let (_, cart) = post(&server, &customer, &items, json!({"sku": "HAT-1"})).await;
    assert_eq!(stock(&server, &admin, "MUG-1").await["reserved"], 3);
    let lower = server
        .send_as(
            Method::PATCH,
            &format!("{items}/MUG-1"),
            &json!({"quantity": 2, "expected_version": cart["version"]}),
            &customer,
        )
        .await;
    let cart = expect_status(lower, StatusCode::OK).await;
    assert_eq!(stock(&server, &admin, "MUG-1").await["reserved"], 2);
    assert_eq!(cart["subtotal_cents"], 2 * 1250 + 2000, "{cart}");
    assert_eq!(cart["item_count"], 3);
    assert_eq!(cart["items"][0]["unit_price_cents"], 1250);
    // A stale version is refused with the current one.
    let stale = server
        .send_as(
            Method::PATCH,
            &format!("{items}/MUG-1"),
            &json!({"quantity": 1, "expected_version": 1}),
            &customer,
        )
        .await;
    let body = expect_error(stale, StatusCode::CONFLICT, "version_conflict").await;
    assert_eq!(body["error"]["details"]["current_version"], cart["version"]);
    assert_eq!(
        get(&server, &customer, "/api/cart").await["id"],
        id.as_str()
    );

    // Checkout from the cart.
    let (status, paid) = order(
        &server,
        &customer,
        json!({"cart_id": id, "payment": card(VISA)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["total_cents"], 4500);
    assert_eq!(paid["customer_email"], "ada@example.com");
    assert!(
        paid["number"].as_str().unwrap().starts_with("ORD-"),
        "{paid}"
    );
    let mug = stock(&server, &admin, "MUG-1").await;
    assert_eq!(
        (mug["on_hand"].as_i64(), mug["reserved"].as_i64()),
        (Some(8), Some(0))
    );
    let cart = get(&server, &customer, &format!("/api/cart/{id}")).await;
    assert_eq!(cart["status"], "checked_out");
    let (status, body) = post(&server, &customer, &items, json!({"sku": "MUG-1"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("cart_not_active"))
    );

    let payment = get(
        &server,
        &customer,
        &format!("/api/payments/{}", paid["payment_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["card_last4"], "4242");
    assert_eq!(payment["amount_cents"], 4500);

    // ship -> deliver; then nothing more, and the refusal names the allowed moves.
    let number = paid["number"].as_str().unwrap();
    let (status, shipped) = post(
        &server,
        &admin,
        &format!("/api/orders/{number}/ship"),
        json!({"tracking_number": "1Z999"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shipped}");
    assert_eq!(shipped["tracking_number"], "1Z999");
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/orders/{number}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "illegal_transition");
    assert_eq!(body["error"]["details"]["allowed"], json!(["delivered"]));
    let (_, delivered) = post(
        &server,
        &admin,
        &format!("/api/orders/{number}/deliver"),
        json!({}),
    )
    .await;
    assert_eq!(delivered["status"], "delivered");
    let full = get(&server, &customer, &format!("/api/orders/{number}")).await;
    let steps: Vec<&str> = full["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["pending", "paid", "shipped", "delivered"]);
    assert_eq!(full["history"][2]["actor"], ADMIN_EMAIL);
    // A customer may not ship.
    let (status, _) = post(
        &server,
        &customer,
        &format!("/api/orders/{number}/ship"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The paid order's confirmation was queued from its event.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = get(
            &server,
            &admin,
            "/api/notifications?template=order_confirmation",
        )
        .await;
        if page["total"] == 1 {
            assert_eq!(page["items"][0]["recipient"], "ada@example.com");
            break;
        }
        assert!(Instant::now() < deadline, "no confirmation queued: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let analytics = get(&server, &admin, "/api/orders/analytics").await;
    assert_eq!(analytics["top_products"][0]["sku"], "MUG-1", "{analytics}");
    assert_eq!(analytics["average_order_value"][0]["amount_cents"], 4500);
    consistent(&server, &admin).await;
}

#[tokio::test]
async fn a_declined_card_leaves_the_order_pending_and_a_second_card_pays_it() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "LAMP-1", 4999, 3).await;
    let customer = server.customer_token("bo@example.com").await;

    let body = json!({"items": [{"sku": "LAMP-1", "quantity": 2}], "payment": card(DECLINED)});
    let (status, declined) = order(&server, &customer, body).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{declined}");
    assert_eq!(declined["error"]["code"], "card_declined");
    let number = declined["error"]["details"]["order_number"]
        .as_str()
        .unwrap()
        .to_owned();
    // The stock stays held for the order.
    assert_eq!(stock(&server, &admin, "LAMP-1").await["reserved"], 2);
    let pending = get(&server, &customer, &format!("/api/orders/{number}")).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["payment_error"]["code"], "card_declined");

    let (status, body) = post(
        &server,
        &customer,
        &format!("/api/orders/{number}/pay"),
        card(NO_FUNDS),
    )
    .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["code"], "insufficient_funds");
    let (status, paid) = post(
        &server,
        &customer,
        &format!("/api/orders/{number}/pay"),
        card(VISA),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "paid");
    assert!(paid["payment_error"].is_null());
    let lamp = stock(&server, &admin, "LAMP-1").await;
    assert_eq!(
        (lamp["on_hand"].as_i64(), lamp["reserved"].as_i64()),
        (Some(1), Some(0))
    );
    // Paying twice is an illegal transition.
    let (status, body) = post(
        &server,
        &customer,
        &format!("/api/orders/{number}/pay"),
        card(VISA),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("illegal_transition"))
    );
    let payments = get(
        &server,
        &admin,
        &format!("/api/payments?order_id={}", paid["id"].as_str().unwrap()),
    )
    .await;
    let statuses: Vec<&str> = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "failed", "failed"]);
    let analytics = get(&server, &admin, "/api/payments/analytics").await;
    assert_eq!(
        (
            analytics["attempts"].as_u64(),
            analytics["succeeded"].as_u64()
        ),
        (Some(3), Some(1))
    );
    consistent(&server, &admin).await;
}

/// The race: 500 checkouts for a SKU with 100 units sell exactly 100.
#[tokio::test]
async fn five_hundred_checkouts_for_one_hundred_units_sell_exactly_one_hundred() {
    // One customer's 500 checkouts at once are each pending while their
    // card is charged: the cap on unpaid orders is off for this race.
    let server = Arc::new(unlimited(&[("SHOP_MAX_UNPAID_ORDERS", "0")]));
    let admin = server.admin_token().await;
    product(&server, &admin, "HOT-1", 999, 100).await;
    let customer = server.customer_token("rush@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let (server, customer) = (server.clone(), customer.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"items": [{"sku": "HOT-1", "quantity": 1}], "payment": card(VISA)});
            order(&server, &customer, body).await
        }));
    }
    let (mut sold, mut refused) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => {
                assert_eq!(body["status"], "paid", "{body}");
                sold += 1;
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "insufficient_stock", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((sold, refused), (100, 400));
    let hot = stock(&server, &admin, "HOT-1").await;
    assert_eq!(
        (hot["on_hand"].as_i64(), hot["reserved"].as_i64()),
        (Some(0), Some(0))
    );
    let paid = get(&server, &admin, "/api/orders?status=paid&limit=1").await;
    assert_eq!(paid["total"], 100);
    let analytics = get(&server, &admin, "/api/payments/analytics").await;
    assert_eq!(analytics["succeeded"], 100);
    assert_eq!(analytics["volume"][0]["captured_cents"], 100 * 999);
    consistent(&server, &admin).await;
}

#[tokio::test]
async fn of_concurrent_cart_changes_at_one_version_exactly_one_wins() {
    let server = Arc::new(unlimited(&[]));
    let admin = server.admin_token().await;
    product(&server, &admin, "SOCK-1", 500, 100).await;
    let customer = server.customer_token("cy@example.com").await;
    let (_, cart) = post(
        &server,
        &customer,
        "/api/cart",
        json!({"items": [{"sku": "SOCK-1", "quantity": 1}]}),
    )
    .await;
    let (id, version) = (
        cart["id"].as_str().unwrap().to_owned(),
        cart["version"].clone(),
    );
    let mut tasks = Vec::new();
    for n in 2..12 {
        let (server, customer, id, version) = (
            server.clone(),
            customer.clone(),
            id.clone(),
            version.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({"quantity": n, "expected_version": version});
            let response = server
                .send_as(
                    Method::PATCH,
                    &format!("/api/cart/{id}/items/SOCK-1"),
                    &body,
                    &customer,
                )
                .await;
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON"))
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::OK => winners.push(body),
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "version_conflict", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let quantity = winners[0]["items"][0]["quantity"].as_i64().unwrap();
    assert_eq!(
        stock(&server, &admin, "SOCK-1").await["reserved"].as_i64(),
        Some(quantity)
    );
    consistent(&server, &admin).await;
}

#[tokio::test]
async fn twenty_concurrent_refunds_never_exceed_what_was_captured() {
    let server = Arc::new(unlimited(&[]));
    let admin = server.admin_token().await;
    product(&server, &admin, "TV-1", 10_000, 5).await;
    let (status, paid) = order(
        &server,
        &admin,
        json!({"items": [{"sku": "TV-1", "quantity": 1}], "payment": card(VISA)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let payment = paid["payment_id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (server, admin, payment) = (server.clone(), admin.clone(), payment.clone());
        tasks.push(tokio::spawn(async move {
            post(
                &server,
                &admin,
                &format!("/api/payments/{payment}/refunds"),
                json!({"amount_cents": 700, "reason": "goodwill"}),
            )
            .await
        }));
    }
    let (mut refunded, mut refused) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => {
                assert_eq!(body["status"], "succeeded", "{body}");
                refunded += body["amount_cents"].as_i64().unwrap();
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "refund_exceeds_captured", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // 14 x 700 = 9,800 fit in 10,000; the 15th would not.
    assert_eq!((refunded, refused), (9_800, 6));
    let payment = get(&server, &admin, &format!("/api/payments/{payment}")).await;
    assert_eq!(payment["refunded_cents"], 9_800);
    assert_eq!(payment["refunds"].as_array().unwrap().len(), 14);
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/payments/{}/refunds", payment["id"].as_str().unwrap()),
        json!({"amount_cents": 201}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["details"]["refundable_cents"], 200);
    let order = get(
        &server,
        &admin,
        &format!("/api/orders/{}", paid["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(order["refunded_cents"], 9_800);
}

#[tokio::test]
async fn a_retried_checkout_with_the_same_key_charges_once() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "KEY-1", 1500, 10).await;
    let customer = server.customer_token("dee@example.com").await;
    let body = json!({"items": [{"sku": "KEY-1", "quantity": 2}], "payment": card(VISA)});
    let send = |body: Value| {
        server
            .post("/api/orders", &body)
            .header("authorization", format!("Bearer {customer}"))
            .header("idempotency-key", "checkout-7f3a")
            .send()
    };
    let first = expect_status(send(body.clone()).await.expect("send"), StatusCode::CREATED).await;
    let again = send(body.clone()).await.expect("send");
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let again = expect_status(again, StatusCode::CREATED).await;
    assert_eq!(first["id"], again["id"]);
    let payments = get(
        &server,
        &admin,
        &format!("/api/payments?order_id={}", first["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(payments["total"], 1);
    assert_eq!(stock(&server, &admin, "KEY-1").await["on_hand"], 8);
    // The same key with another body is refused and changes nothing.
    let other = json!({"items": [{"sku": "KEY-1", "quantity": 3}], "payment": card(VISA)});
    expect_error(
        send(other).await.expect("send"),
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(stock(&server, &admin, "KEY-1").await["on_hand"], 8);
    assert_eq!(get(&server, &admin, "/api/orders").await["total"], 1);
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_and_restocks_and_a_pending_one_releases() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "DESK-1", 25_000, 4).await;
    let customer = server.customer_token("eve@example.com").await;
    let (_, paid) = order(
        &server,
        &customer,
        json!({"items": [{"sku": "DESK-1", "quantity": 2}], "payment": card(VISA)}),
    )
    .await;
    let number = paid["number"].as_str().unwrap().to_owned();
    // A partial refund first, then the cancel refunds the rest.
    let (status, refund) = post(
        &server,
        &admin,
        &format!("/api/orders/{number}/refund"),
        json!({"amount_cents": 5_000, "reason": "scratched"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    // A customer cannot cancel a paid order.
    let (status, _) = post(
        &server,
        &customer,
        &format!("/api/orders/{number}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, cancelled) = post(
        &server,
        &admin,
        &format!("/api/orders/{number}/cancel"),
        json!({"note": "customer called"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refunded_cents"], 50_000);
    let payment = get(
        &server,
        &admin,
        &format!("/api/payments/{}", paid["payment_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(payment["status"], "refunded");
    assert_eq!(payment["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(stock(&server, &admin, "DESK-1").await["on_hand"], 4);

    // A pending order (no payment) cancelled by its customer gives its stock back.
    let (status, pending) = order(
        &server,
        &customer,
        json!({"items": [{"sku": "DESK-1", "quantity": 3}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(pending["status"], "pending");
    assert_eq!(stock(&server, &admin, "DESK-1").await["reserved"], 3);
    let (_, cancelled) = post(
        &server,
        &customer,
        &format!("/api/orders/{}/cancel", pending["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock(&server, &admin, "DESK-1").await["reserved"], 0);
    // The product is in orders now: it cannot be deleted, only archived.
    let response = server
        .send_as(Method::DELETE, "/api/products/DESK-1", &json!({}), &admin)
        .await;
    expect_error(response, StatusCode::CONFLICT, "product_in_use").await;
    consistent(&server, &admin).await;
}

#[tokio::test]
async fn an_anonymous_cart_joins_the_users_cart_at_login() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "PEN-1", 300, 20).await;
    product(&server, &admin, "INK-1", 700, 20).await;
    server.register("fay@example.com", "Fay").await;
    let fay = server.login("fay@example.com", PASSWORD).await.access_token;
    let (_, own) = post(
        &server,
        &fay,
        "/api/cart",
        json!({"items": [{"sku": "PEN-1", "quantity": 1}]}),
    )
    .await;

    // A visitor's cart, reached by its token only.
    let response = server
        .post(
            "/api/cart",
            &json!({"items": [{"sku": "PEN-1", "quantity": 2}, {"sku": "INK-1", "quantity": 1}]}),
        )
        .send()
        .await
        .expect("send");
    let anonymous = expect_status(response, StatusCode::CREATED).await;
    let token = anonymous["token"].as_str().unwrap().to_owned();
    let path = format!("/api/cart/{}", anonymous["id"].as_str().unwrap());
    let response = server.get(&path).send().await.expect("send");
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "no token, no cart"
    );
    let response = server
        .get(&path)
        .header("x-cart-token", &token)
        .send()
        .await
        .expect("send");
    assert!(
        expect_status(response, StatusCode::OK).await["token"].is_null(),
        "the token is shown once"
    );

    let response = server
        .post(
            "/api/users/login",
            &json!({"email": "fay@example.com", "password": PASSWORD}),
        )
        .header("x-cart-token", &token)
        .send()
        .await
        .expect("login");
    expect_status(response, StatusCode::OK).await;
    let merged = get(&server, &fay, "/api/cart").await;
    assert_eq!(merged["id"], own["id"]);
    let lines: Vec<(String, i64)> = merged["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines, [("PEN-1".to_owned(), 3), ("INK-1".to_owned(), 1)]);
    assert_eq!(stock(&server, &admin, "PEN-1").await["reserved"], 3);
    let response = server
        .get(&path)
        .header("x-cart-token", &token)
        .send()
        .await
        .expect("send");
    assert_eq!(
        expect_status(response, StatusCode::OK).await["status"],
        "merged"
    );
    consistent(&server, &admin).await;
}

#[tokio::test]
async fn idle_carts_and_unpaid_orders_expire_and_give_their_stock_back() {
    let server = unlimited(&[
        ("SHOP_CART_TTL_SECONDS", "1"),
        ("SHOP_PAYMENT_WINDOW_SECONDS", "1"),
        ("SHOP_COMMERCE_SWEEP_MS", "100"),
    ]);
    let admin = server.admin_token().await;
    product(&server, &admin, "ICE-1", 400, 10).await;
    let customer = server.customer_token("gus@example.com").await;
    let (_, cart) = post(
        &server,
        &customer,
        "/api/cart",
        json!({"items": [{"sku": "ICE-1", "quantity": 4}]}),
    )
    .await;
    let (_, pending) = order(
        &server,
        &customer,
        json!({"items": [{"sku": "ICE-1", "quantity": 3}]}),
    )
    .await;
    assert_eq!(stock(&server, &admin, "ICE-1").await["reserved"], 7);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stock(&server, &admin, "ICE-1").await["reserved"] != 0 {
        assert!(Instant::now() < deadline, "the holds were never released");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = cart["id"].as_str().unwrap();
    assert_eq!(
        get(&server, &customer, &format!("/api/cart/{id}")).await["status"],
        "expired"
    );
    let (status, body) = post(
        &server,
        &customer,
        &format!("/api/cart/{id}/items"),
        json!({"sku": "ICE-1"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("cart_expired"))
    );
    let expired = get(
        &server,
        &customer,
        &format!("/api/orders/{}", pending["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(expired["status"], "cancelled");
    assert_eq!(expired["history"][1]["actor"], "system");
    consistent(&server, &admin).await;
}

#[tokio::test]
async fn bad_input_gets_its_own_error_and_changes_nothing() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "OK-1", 1000, 5).await;
    product(&server, &admin, "OLD-1", 1000, 5).await;
    expect_status(
        server
            .send_as(
                Method::POST,
                "/api/products/OLD-1/archive",
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let customer = server.customer_token("hal@example.com").await;
    let item = |sku: &str, quantity: i64| json!({"items": [{"sku": sku, "quantity": quantity}], "payment": card(VISA)});
    for (body, status, code) in [
        (
            item("OK-1", 0),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            item("OK-1", -2),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (item("NOPE-1", 1), StatusCode::NOT_FOUND, "unknown_sku"),
        (item("OLD-1", 1), StatusCode::CONFLICT, "product_archived"),
        (item("OK-1", 6), StatusCode::CONFLICT, "insufficient_stock"),
        (
            json!({"items": [{"sku": "OK-1", "quantity": 1}], "payment": card("4242424242424241")}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"items": [{"sku": "OK-1", "quantity": 1}], "payment": {"method": "card", "card_number": VISA, "exp_month": 1, "exp_year": 2020}}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"items": [], "payment": card(VISA)}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"items": [{"sku": "OK-1", "quantity": 1}], "payment": {"method": "cash"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"items": [{"sku": "OK-1", "quantity": 1}], "customer_email": "someone@else.com"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ] {
        let (actual, answer) = order(&server, &customer, body.clone()).await;
        assert_eq!(
            (actual, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} -> {answer}"
        );
    }
    assert_eq!(get(&server, &admin, "/api/orders").await["total"], 0);
    assert_eq!(stock(&server, &admin, "OK-1").await["reserved"], 0);
    // Someone else's order is not found; a refund above what is left is a conflict.
    let (_, paid) = order(&server, &admin, item("OK-1", 1)).await;
    let response = server
        .get_as(
            &format!("/api/orders/{}", paid["id"].as_str().unwrap()),
            &customer,
        )
        .await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/orders/{}/refund", paid["number"].as_str().unwrap()),
        json!({"amount_cents": 1001}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("refund_exceeds_captured"))
    );
    let response = server.get_as("/api/orders/ORD-99x", &admin).await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = server.get_as("/api/orders?status=lost", &admin).await;
    expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
}

/// kill -9 in the middle of a checkout load: every acknowledged order is
/// there after the restart, paid, and no stock is lost or held for nothing.
#[tokio::test]
async fn a_kill_during_checkouts_keeps_every_acknowledged_order_and_leaks_no_stock() {
    let mut server = unlimited(&[
        ("SHOP_PAYMENT_WINDOW_SECONDS", "2"),
        ("SHOP_COMMERCE_SWEEP_MS", "100"),
    ]);
    let admin = server.admin_token().await;
    const UNITS: i64 = 100_000;
    product(&server, &admin, "BULK-1", 100, UNITS).await;
    let url = server.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..32 {
        let (url, admin, stop) = (url.clone(), admin.clone(), stop.clone());
        // One client for all: building one loads the TLS roots, which takes a while.
        let client = server.client.clone();
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let body =
                    json!({"items": [{"sku": "BULK-1", "quantity": 1}], "payment": card(VISA)});
                let sent = client
                    .post(format!("{url}/api/orders"))
                    .header("authorization", format!("Bearer {admin}"))
                    .json(&body)
                    .send()
                    .await;
                // The server is gone: the kill.
                let Ok(response) = sent else { break };
                if response.status() == StatusCode::CREATED
                    && let Ok(order) = response.json::<Value>().await
                {
                    acknowledged.push(order["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.expect("client"));
    }
    assert!(
        acknowledged.len() > 20,
        "the load barely ran: {}",
        acknowledged.len()
    );
    server.restart();
    let admin = server.admin_token().await;
    for id in &acknowledged {
        let order = get(&server, &admin, &format!("/api/orders/{id}")).await;
        assert_eq!(order["status"], "paid", "{order}");
    }
    // Whatever was in flight is finished by the recovery and the sweeper:
    // nothing stays held, and every unit is either on hand or in a paid order.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let bulk = stock(&server, &admin, "BULK-1").await;
        let paid = get(&server, &admin, "/api/orders?status=paid&limit=1").await["total"]
            .as_i64()
            .unwrap();
        if bulk["reserved"] == 0 {
            assert_eq!(bulk["on_hand"].as_i64().unwrap() + paid, UNITS, "{bulk}");
            assert!(paid >= acknowledged.len() as i64);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stock still held after the restart: {bulk}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let processing = get(&server, &admin, "/api/payments?status=processing").await;
    assert_eq!(processing["total"], 0, "{processing}");
    consistent(&server, &admin).await;
}

/// The Stripe adapter against a local fake that checks what it is sent:
/// PaymentIntents and Refunds, form-encoded, with our ids as idempotency
/// keys, retried on a 500 with the same key, and a lost charge found again.
#[tokio::test]
async fn checkouts_and_refunds_go_to_stripe_when_a_key_is_configured() {
    let (base, stripe) = crate::fake_stripe::start().await;
    let server = unlimited(&[
        ("SHOP_STRIPE_SECRET_KEY", "sk_test_e2e"),
        ("SHOP_STRIPE_API_BASE", &base),
        ("SHOP_PAYMENT_TIMEOUT_MS", "300"),
    ]);
    let admin = server.admin_token().await;
    product(&server, &admin, "CAM-1", 45_000, 5).await;

    // One 500 first: the charge is retried with the same key and goes through.
    stripe.fail_next(1);
    let (status, paid) = order(
        &server,
        &admin,
        json!({"items": [{"sku": "CAM-1", "quantity": 1}], "payment": card(VISA)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["status"], "paid");
    let payment_id = paid["payment_id"].as_str().unwrap().to_owned();
    let intents: Vec<_> = stripe
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/payment_intents")
        .collect();
    assert_eq!(intents.len(), 2, "one failed attempt and its retry");
    for intent in &intents {
        assert_eq!(intent.idempotency_key.as_deref(), Some(payment_id.as_str()));
        assert_eq!(intent.authorization.as_deref(), Some("Bearer sk_test_e2e"));
        assert_eq!(intent.field("amount"), Some("45000"));
        assert_eq!(intent.field("currency"), Some("usd"));
        assert_eq!(intent.field("confirm"), Some("true"));
        assert_eq!(
            intent.field("payment_method_data[card][number]"),
            Some(VISA)
        );
        assert_eq!(intent.field("metadata[order_id]"), paid["id"].as_str());
        assert_eq!(
            intent.field("metadata[payment_id]"),
            Some(payment_id.as_str())
        );
    }
    let payment = get(&server, &admin, &format!("/api/payments/{payment_id}")).await;
    assert_eq!(payment["provider"], "stripe");
    assert!(
        payment["provider_ref"].as_str().unwrap().starts_with("pi_"),
        "{payment}"
    );

    // A partial refund: POST /v1/refunds for that PaymentIntent, keyed by our refund id.
    let (status, refund) = post(
        &server,
        &admin,
        &format!("/api/payments/{payment_id}/refunds"),
        json!({"amount_cents": 5_000, "reason": "dent"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    let sent = stripe
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/refunds")
        .expect("a refund call");
    assert_eq!(sent.idempotency_key.as_deref(), refund["id"].as_str());
    assert_eq!(
        sent.field("payment_intent"),
        payment["provider_ref"].as_str()
    );
    assert_eq!(sent.field("amount"), Some("5000"));

    // A decline is Stripe's card_error, answered as 402 with its code.
    let (status, body) = order(
        &server,
        &admin,
        json!({"items": [{"sku": "CAM-1", "quantity": 1}], "payment": card(NO_FUNDS)}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("insufficient_funds")),
        "{body}"
    );

    // Stripe down for every attempt: 503, the payment stays `processing`,
    // and the recovery worker later asks Stripe (a search by our payment
    // id), finds no charge, and records the payment failed.
    stripe.fail_next(3);
    let (status, body) = order(
        &server,
        &admin,
        json!({"items": [{"sku": "CAM-1", "quantity": 1}], "payment": card(VISA)}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("payment_provider_unavailable")
        ),
        "{body}"
    );
    let lost = body["error"]["details"]["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get(&server, &admin, &format!("/api/payments/{lost}")).await["status"],
        "processing"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let payment = get(&server, &admin, &format!("/api/payments/{lost}")).await;
        if payment["status"] == "failed" {
            assert_eq!(payment["failure_code"], "interrupted");
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {payment}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let searched = stripe
        .requests()
        .into_iter()
        .any(|r| r.path == "/v1/payment_intents/search" && r.query.contains(&lost));
    assert!(searched, "the recovery asked Stripe about {lost}");
    consistent(&server, &admin).await;
}

/// The other ways to pay, and what a paid order sets in motion elsewhere:
/// a bank transfer pending until settled, a wallet token, the refund email,
/// the orders gauge, and co-purchase recommendations from real orders.
#[tokio::test]
async fn bank_transfers_wallets_and_what_paid_orders_feed() {
    let server = unlimited(&[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "TENT-1", 19_900, 5).await;
    product(&server, &admin, "STOVE-1", 4_900, 5).await;
    let customer = server.customer_token("ida@example.com").await;

    // A bank transfer: the order waits, holding its stock, until it is settled.
    let body = json!({"items": [{"sku": "TENT-1", "quantity": 1}, {"sku": "STOVE-1", "quantity": 1}], "payment": {"method": "bank_transfer"}});
    let (status, pending) = order(&server, &customer, body).await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    assert_eq!(pending["status"], "pending");
    let payment = pending["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&server, &admin, &format!("/api/payments/{payment}")).await["status"],
        "pending"
    );
    assert_eq!(stock(&server, &admin, "TENT-1").await["reserved"], 1);
    let (status, _) = post(
        &server,
        &customer,
        &format!("/api/payments/{payment}/settle"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "settling is for staff");
    let (status, settled) = post(
        &server,
        &admin,
        &format!("/api/payments/{payment}/settle"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    assert_eq!(settled["status"], "succeeded");
    let paid = get(
        &server,
        &customer,
        &format!("/api/orders/{}", pending["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(paid["status"], "paid");
    let tent = stock(&server, &admin, "TENT-1").await;
    assert_eq!(
        (tent["on_hand"].as_i64(), tent["reserved"].as_i64()),
        (Some(4), Some(0))
    );

    // A wallet: the token is charged like a card.
    let body = json!({"items": [{"sku": "TENT-1", "quantity": 1}, {"sku": "STOVE-1", "quantity": 1}], "payment": {"method": "apple_pay", "token": "tok_visa"}});
    let (status, wallet) = order(&server, &customer, body).await;
    assert_eq!(
        (status, wallet["status"].as_str()),
        (StatusCode::CREATED, Some("paid")),
        "{wallet}"
    );
    let body = json!({"items": [{"sku": "TENT-1", "quantity": 1}], "payment": {"method": "google_pay", "token": "tok_chargeDeclined"}});
    let (status, body) = order(&server, &customer, body).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("card_declined"))
    );

    // A refund reaches the customer by email, from its payment.refunded event.
    let (status, _) = post(
        &server,
        &admin,
        &format!("/api/orders/{}/refund", wallet["number"].as_str().unwrap()),
        json!({"amount_cents": 900}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = get(&server, &admin, "/api/notifications?template=refund_issued").await;
        if page["total"] == 1 {
            assert_eq!(page["items"][0]["recipient"], "ida@example.com");
            break;
        }
        assert!(Instant::now() < deadline, "no refund email queued: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The orders bought together are each other's recommendations, and
    // /metrics carries the orders gauge.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = get(&server, &admin, "/api/search/recommendations/TENT-1").await;
        let first = &found["items"][0];
        if first["reason"] == "co_purchase" {
            assert_eq!(first["product"]["sku"], "STOVE-1", "{found}");
            assert_eq!(first["co_purchases"], 2, "{found}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no co-purchases from paid orders: {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server
            .get("/metrics")
            .header("authorization", bearer(&admin))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text.contains("shop_orders{status=\"paid\"} 2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no orders gauge:\n{}",
            text.lines()
                .filter(|l| l.contains("shop_orders"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
