//! The address book and a cart that keeps its checkout: saved addresses
//! named by id in quotes, orders and carts (only one's own), and a checkout
//! from a cart that needs nothing but a payment.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::pricing::{address, card, created, send, shop};

async fn save(server: &TestServer, token: &str, body: Value) -> Value {
    created(server, token, "/api/users/me/addresses", body).await
}

async fn book(server: &TestServer, token: &str) -> Vec<Value> {
    let page = expect_status(
        server.get_as("/api/users/me/addresses", token).await,
        StatusCode::OK,
    )
    .await;
    page["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn a_customer_keeps_an_address_book_that_only_they_can_use() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    shop(&server, &admin).await;
    let erika = server.customer_token("erika@example.com").await;
    let max = server.customer_token("max@example.com").await;

    let home = save(
        &server,
        &erika,
        json!({"address": address("de", None), "default_shipping": true, "default_billing": true}),
    )
    .await;
    assert!(
        home["id"].as_str().expect("id").starts_with("adr_"),
        "{home}"
    );
    // Checked and tidied as a checkout's address is.
    assert_eq!(home["address"]["country"], "DE");
    let office = save(
        &server,
        &erika,
        json!({"address": address("AT", None), "default_shipping": true}),
    )
    .await;
    let saved = book(&server, &erika).await;
    assert_eq!(saved.len(), 2);
    // The shipping default moved; the billing one stayed.
    assert_eq!(saved[0]["default_shipping"], false);
    assert_eq!(saved[0]["default_billing"], true);
    assert_eq!(saved[1]["default_shipping"], true);
    assert!(book(&server, &max).await.is_empty());

    // Bad input is refused with the field named, and nothing is saved.
    let mut bad = address("DE", None);
    bad["city"] = json!("Köln\u{7}");
    let refused = expect_error(
        send(
            &server,
            &erika,
            Method::POST,
            "/api/users/me/addresses",
            json!({"address": bad}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(
        refused["error"]["details"]["fields"]["address.city"].is_string(),
        "{refused}"
    );
    assert_eq!(book(&server, &erika).await.len(), 2);

    // A quote and an order name a saved address by id.
    let office_id = office["id"].as_str().expect("id");
    let items = json!([{"sku": "MUG-1", "quantity": 1}]);
    let quote = expect_status(
        send(
            &server,
            &erika,
            Method::POST,
            "/api/orders/quote",
            json!({"items": items, "shipping_address_id": office_id, "shipping_method": "dhl"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(quote["shipping_cents"], 490, "{quote}");
    let placed = expect_status(
        send(
            &server,
            &erika,
            Method::POST,
            "/api/orders",
            json!({"items": items, "shipping_address_id": office_id,
                   "billing_address_id": home["id"], "shipping_method": "dhl", "payment": card()}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(placed["shipping_address"], office["address"]);
    assert_eq!(placed["billing_address"], home["address"]);
    assert_eq!(placed["total_cents"], quote["total_cents"]);

    // Another customer's address is not found, whatever names it.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/orders/quote".to_owned(),
            json!({"items": items, "shipping_address_id": office_id}),
        ),
        (
            Method::POST,
            "/api/orders".to_owned(),
            json!({"items": items, "shipping_address_id": office_id, "shipping_method": "dhl"}),
        ),
        (
            Method::DELETE,
            format!("/api/users/me/addresses/{office_id}"),
            Value::Null,
        ),
    ] {
        expect_error(
            send(&server, &max, method, &path, body).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // Both forms at once is ambiguous.
    expect_error(
        send(
            &server,
            &erika,
            Method::POST,
            "/api/orders/quote",
            json!({"items": items, "shipping_address_id": office_id,
                   "shipping_address": address("DE", None)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;

    // Deleting an address leaves the order that used it as it was.
    let deleted = expect_status(
        send(
            &server,
            &erika,
            Method::DELETE,
            &format!("/api/users/me/addresses/{office_id}"),
            Value::Null,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(deleted["id"], office["id"]);
    assert_eq!(book(&server, &erika).await.len(), 1);
    let id = placed["id"].as_str().expect("order id");
    let stored = expect_status(
        server.get_as(&format!("/api/orders/{id}"), &erika).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["shipping_address"], office["address"]);

    // Each change is in the audit log, made by the customer.
    let audit = expect_status(
        server.get_as("/api/audit?entity=address", &admin).await,
        StatusCode::OK,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|entry| {
            assert_eq!(entry["actor"]["email"], "erika@example.com", "{entry}");
            entry["action"].as_str().expect("action")
        })
        .collect();
    assert_eq!(actions.len(), 3, "{audit}");
    assert!(actions.contains(&"address.deleted"), "{actions:?}");
}

#[tokio::test]
async fn a_book_holds_twenty_addresses_even_when_saves_race() {
    let server = TestServer::start();
    let erika = server.customer_token("erika@example.com").await;
    let mut racers = Vec::new();
    for _ in 0..30 {
        let url = server.url.clone();
        let token = erika.clone();
        racers.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/api/users/me/addresses"))
                .bearer_auth(token)
                .json(&json!({"address": address("DE", None)}))
                .send()
                .await
                .expect("answer")
                .status()
        }));
    }
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.expect("racer"));
    }
    let saved = answers
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let full = answers
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((saved, full), (20, 10), "{answers:?}");
    assert_eq!(book(&server, &erika).await.len(), 20);
    expect_error(
        send(
            &server,
            &erika,
            Method::POST,
            "/api/users/me/addresses",
            json!({"address": address("DE", None)}),
        )
        .await,
        StatusCode::CONFLICT,
        "address_book_full",
    )
    .await;
}

#[tokio::test]
async fn a_cart_keeps_its_checkout_so_that_paying_needs_nothing_else() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    shop(&server, &admin).await;
    created(
        &server,
        &admin,
        "/api/discounts",
        json!({"code": "welcome5", "kind": "fixed", "value": 500, "currency": "EUR"}),
    )
    .await;
    let erika = server.customer_token("erika@example.com").await;
    let home = save(&server, &erika, json!({"address": address("DE", None)})).await;
    let cart = created(
        &server,
        &erika,
        "/api/cart",
        json!({"items": [{"sku": "MUG-1", "quantity": 2}, {"sku": "BOOK-1", "quantity": 1}]}),
    )
    .await;
    let cart_id = cart["id"].as_str().expect("cart id");
    let version = cart["version"].as_u64().expect("version");

    let checkout = format!("/api/cart/{cart_id}/checkout");
    // Bad input changes nothing: an unknown country, a stale version.
    let bad = address("XX", None);
    expect_error(
        send(
            &server,
            &erika,
            Method::PUT,
            &checkout,
            json!({"shipping_address": bad}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_country",
    )
    .await;
    expect_error(
        send(
            &server,
            &erika,
            Method::PUT,
            &checkout,
            json!({"shipping_method": "dhl", "expected_version": version + 5}),
        )
        .await,
        StatusCode::CONFLICT,
        "version_conflict",
    )
    .await;
    let kept = expect_status(
        send(
            &server,
            &erika,
            Method::PUT,
            &checkout,
            json!({"shipping_address_id": home["id"], "billing_address": address("AT", None),
                   "shipping_method": "dhl", "expected_version": version}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(kept["version"], version + 1);
    assert_eq!(kept["checkout"]["shipping_address"], home["address"]);
    assert_eq!(kept["checkout"]["billing_address"]["country"], "AT");
    assert_eq!(kept["checkout"]["shipping_method"], "dhl");
    expect_status(
        send(
            &server,
            &erika,
            Method::POST,
            &format!("/api/cart/{cart_id}/discounts"),
            json!({"code": "WELCOME5"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let shown = expect_status(
        server.get_as(&format!("/api/cart/{cart_id}"), &erika).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["discount_codes"], json!(["WELCOME5"]));
    assert_eq!(shown["checkout"], kept["checkout"]);

    // Another customer cannot name Erika's address for their cart.
    let max = server.customer_token("max@example.com").await;
    let theirs = created(
        &server,
        &max,
        "/api/cart",
        json!({"items": [{"sku": "MUG-1", "quantity": 1}]}),
    )
    .await;
    expect_error(
        send(
            &server,
            &max,
            Method::PUT,
            &format!("/api/cart/{}/checkout", theirs["id"].as_str().expect("id")),
            json!({"shipping_address_id": home["id"]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let quote = expect_status(
        send(
            &server,
            &erika,
            Method::POST,
            "/api/orders/quote",
            json!({"cart_id": cart_id}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // Goods 2380 + 2000 less 5.00, DHL 4.90.
    assert_eq!(quote["discount_cents"], 500, "{quote}");
    assert_eq!(quote["shipping_cents"], 490, "{quote}");
    let placed = expect_status(
        send(
            &server,
            &erika,
            Method::POST,
            "/api/orders",
            json!({"cart_id": cart_id, "payment": card()}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(placed["status"], "paid", "{placed}");
    for field in [
        "subtotal_cents",
        "discount_cents",
        "shipping_cents",
        "tax_cents",
        "total_cents",
        "shipping_method",
        "discounts",
    ] {
        assert_eq!(placed[field], quote[field], "{field}");
    }
    assert_eq!(placed["total_cents"], 4380 - 500 + 490);
    assert_eq!(placed["shipping_address"], home["address"]);
    assert_eq!(placed["billing_address"]["country"], "AT");
}

#[test]
fn shop_address_adds_lists_and_deletes_through_the_cli() {
    let server = TestServer::start();
    server.cli_login_admin();
    let added = server
        .shop(&[
            "address",
            "add",
            "--name",
            "Erika Mustermann",
            "--line1",
            "Heidestr. 17",
            "--city",
            "Köln",
            "--postal-code",
            "51147",
            "--country",
            "de",
            "--default-shipping",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(added["address"]["country"], "DE");
    assert_eq!(added["default_shipping"], true);
    let id = added["id"].as_str().expect("id");
    let listed = server
        .shop(&["address", "list", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    let refused = server
        .shop(&[
            "address",
            "add",
            "--name",
            "E",
            "--line1",
            "x",
            "--city",
            "y",
            "--postal-code",
            "1",
            "--country",
            "XX",
        ])
        .expect(1);
    assert!(refused.stderr.contains("country"), "{refused:?}");
    server.shop(&["address", "delete", id, "-q"]).expect(0);
    assert!(
        server
            .shop(&["address", "list", "-o", "ndjson"])
            .expect(0)
            .lines()
            .is_empty()
    );
    server.shop(&["address", "delete", id]).expect(4);
}
