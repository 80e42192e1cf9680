//! Pricing through the HTTP API: shipping zones and tax rates kept by
//! staff, their refusals with their own codes, and quotes priced to the cent.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

pub(crate) async fn send(
    server: &TestServer,
    token: &str,
    method: Method,
    path: impl AsRef<str>,
    body: Value,
) -> reqwest::Response {
    server.send_as(method, path.as_ref(), &body, token).await
}

pub(crate) async fn created(server: &TestServer, token: &str, path: &str, body: Value) -> Value {
    expect_status(
        send(server, token, Method::POST, path, body).await,
        StatusCode::CREATED,
    )
    .await
}

fn germany() -> Value {
    json!({
        "name": "Germany",
        "countries": ["DE", "at"],
        "currency": "EUR",
        "methods": [
            {"code": "dhl", "name": "DHL Paket", "rate": {"kind": "flat", "amount_cents": 490}, "estimated_days": 2},
            {"code": "parcel", "name": "Parcel by weight", "rate": {"kind": "per_kg", "amount_cents": 400}},
        ],
    })
}

pub(crate) fn address(country: &str, region: Option<&str>) -> Value {
    json!({
        "name": "Erika Mustermann",
        "line1": "Heidestraße 17",
        "city": "Köln",
        "region": region,
        "postal_code": "51147",
        "country": country,
    })
}

/// A shop in euros: a mug (standard VAT) and a book (reduced VAT), weighed.
pub(crate) async fn shop(server: &TestServer, admin: &str) {
    for (sku, price, grams, category) in [
        ("MUG-1", 1190, 350, None),
        ("BOOK-1", 2000, 500, Some("books")),
    ] {
        let body = json!({"sku": sku, "name": sku, "price_cents": price, "currency": "EUR",
            "stock": 10, "weight_grams": grams, "tax_category": category});
        let product = created(server, admin, "/api/products", body).await;
        assert_eq!(product["weight_grams"], grams);
    }
    created(server, admin, "/api/shipping/zones", germany()).await;
    for (name, bps, category) in [("MwSt 19%", 1900, None), ("MwSt 7%", 700, Some("books"))] {
        let body =
            json!({"country": "DE", "name": name, "rate_bps": bps, "tax_category": category});
        created(server, admin, "/api/tax/rates", body).await;
    }
}

#[tokio::test]
async fn a_quote_prices_shipping_and_tax_to_the_cent_and_changes_nothing() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    shop(&server, &admin).await;
    let customer = server.customer_token("erika@example.com").await;

    let body = json!({
        "items": [{"sku": "MUG-1", "quantity": 2}, {"sku": "BOOK-1", "quantity": 1}],
        "shipping_address": address("DE", None),
        "shipping_method": "dhl",
    });
    let quote = expect_status(
        send(&server, &customer, Method::POST, "/api/orders/quote", body).await,
        StatusCode::OK,
    )
    .await;
    // Goods 2380 + 2000, DHL 490; VAT inside: (2380 + 490) * 19/119 = 458.24
    // and 2000 * 7/107 = 130.84.
    assert_eq!(quote["currency"], "EUR");
    assert_eq!(quote["prices_include_tax"], true);
    assert_eq!(quote["subtotal_cents"], 4380);
    assert_eq!(quote["shipping_cents"], 490);
    assert_eq!(quote["discount_cents"], 0);
    assert_eq!(quote["tax_cents"], 589);
    assert_eq!(quote["total_cents"], 4870);
    assert_eq!(
        quote["tax_lines"],
        json!([
            {"name": "MwSt 19%", "rate_bps": 1900, "amount_cents": 458},
            {"name": "MwSt 7%", "rate_bps": 700, "amount_cents": 131},
        ])
    );
    assert_eq!(
        quote["shipping_method"],
        json!({"code": "dhl", "name": "DHL Paket", "price_cents": 490})
    );
    // 1.2 kg: two started kilograms by weight.
    let methods: Vec<(String, i64)> = quote["shipping_methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| {
            (
                m["code"].as_str().expect("code").to_owned(),
                m["price_cents"].as_i64().expect("price"),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [("dhl".to_owned(), 490), ("parcel".to_owned(), 800)]
    );

    // Nothing was held or ordered.
    let stock = expect_status(
        server.get_as("/api/inventory/MUG-1", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stock["reserved"], 0);
    let orders = expect_status(server.get_as("/api/orders", &admin).await, StatusCode::OK).await;
    assert_eq!(orders["total"], 0);

    // Refusals, each with its own code.
    let quote_error =
        |body: Value| send(&server, &customer, Method::POST, "/api/orders/quote", body);
    let items = json!([{"sku": "MUG-1", "quantity": 1}]);
    expect_error(
        quote_error(json!({"items": items, "shipping_address": address("DE", None), "shipping_method": "ups"})).await,
        StatusCode::BAD_REQUEST,
        "shipping_method_unavailable",
    )
    .await;
    expect_error(
        quote_error(json!({"items": items, "shipping_address": address("FR", None), "shipping_method": "dhl"})).await,
        StatusCode::BAD_REQUEST,
        "shipping_method_unavailable",
    )
    .await;
    let body = expect_error(
        quote_error(json!({"items": items, "shipping_address": address("XX", None)})).await,
        StatusCode::BAD_REQUEST,
        "unknown_country",
    )
    .await;
    assert!(
        body["error"]["details"]["fields"]["shipping_address.country"].is_string(),
        "{body}"
    );
    expect_error(
        quote_error(json!({"items": items, "shipping_method": "dhl"})).await,
        StatusCode::BAD_REQUEST,
        "shipping_address_required",
    )
    .await;
    created(
        &server,
        &admin,
        "/api/shipping/zones",
        json!({"name": "US", "countries": ["US"], "currency": "USD",
               "methods": [{"code": "ground", "name": "Ground", "rate": {"kind": "flat", "amount_cents": 500}}]}),
    )
    .await;
    expect_error(
        quote_error(json!({"items": items, "shipping_address": address("US", Some("CA"))})).await,
        StatusCode::CONFLICT,
        "currency_mismatch",
    )
    .await;
}

#[tokio::test]
async fn bad_tables_are_refused_with_their_own_codes_and_change_nothing() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let zones = "/api/shipping/zones";
    let rates = "/api/tax/rates";
    let mut zone = germany();
    zone["countries"] = json!(["DE", "QQ"]);
    expect_error(
        send(&server, &admin, Method::POST, zones, zone).await,
        StatusCode::BAD_REQUEST,
        "unknown_country",
    )
    .await;
    let mut zone = germany();
    zone["methods"][0]["rate"]["amount_cents"] = json!(-5);
    expect_error(
        send(&server, &admin, Method::POST, zones, zone).await,
        StatusCode::BAD_REQUEST,
        "invalid_shipping_rate",
    )
    .await;
    for bps in [-1, 10_001] {
        let body = json!({"country": "DE", "name": "VAT", "rate_bps": bps});
        expect_error(
            send(&server, &admin, Method::POST, rates, body).await,
            StatusCode::BAD_REQUEST,
            "invalid_tax_rate",
        )
        .await;
    }
    let body = json!({"country": "ZZ", "name": "VAT", "rate_bps": 1900});
    expect_error(
        send(&server, &admin, Method::POST, rates, body).await,
        StatusCode::BAD_REQUEST,
        "unknown_country",
    )
    .await;
    let listed = expect_status(server.get_as(zones, &admin).await, StatusCode::OK).await;
    assert_eq!(listed["total"], 0, "{listed}");
    let listed = expect_status(server.get_as(rates, &admin).await, StatusCode::OK).await;
    assert_eq!(listed["total"], 0, "{listed}");

    let zone = created(&server, &admin, zones, germany()).await;
    assert_eq!(zone["countries"], json!(["AT", "DE"]));
    let mut again = germany();
    again["countries"] = json!(["CH", "AT"]);
    expect_error(
        send(&server, &admin, Method::POST, zones, again).await,
        StatusCode::CONFLICT,
        "country_in_another_zone",
    )
    .await;
    let rate = json!({"country": "US", "region": "ca", "name": "California", "rate_bps": 725});
    let stored = created(&server, &admin, rates, rate.clone()).await;
    assert_eq!(stored["region"], "CA");
    expect_error(
        send(&server, &admin, Method::POST, rates, rate).await,
        StatusCode::CONFLICT,
        "tax_rate_exists",
    )
    .await;

    // Customers neither read nor write the tables.
    let customer = server.customer_token("max@example.com").await;
    expect_error(
        server.get_as(zones, &customer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        send(
            &server,
            &customer,
            Method::POST,
            rates,
            json!({"country": "DE", "name": "x", "rate_bps": 1}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Each change is audited, removal too.
    let id = zone["id"].as_str().expect("id");
    expect_status(
        send(
            &server,
            &admin,
            Method::DELETE,
            &format!("{zones}/{id}"),
            Value::Null,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_error(
        send(
            &server,
            &admin,
            Method::DELETE,
            &format!("{zones}/{id}"),
            Value::Null,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let audit = expect_status(
        server
            .get_as("/api/audit?entity=shipping_zone", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions.len(), 2, "{audit}");
    assert!(
        actions.contains(&"shipping_zone.created") && actions.contains(&"shipping_zone.deleted"),
        "{audit}"
    );
    let audit = expect_status(
        server.get_as("/api/audit?entity=tax_rate", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(audit["total"], 1, "{audit}");
}

pub(crate) fn card() -> Value {
    json!({"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035})
}

#[tokio::test]
async fn an_order_is_charged_what_its_quote_said_and_refunds_stop_at_that() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    shop(&server, &admin).await;
    let customer = server.customer_token("erika@example.com").await;
    let items = json!([{"sku": "MUG-1", "quantity": 2}, {"sku": "BOOK-1", "quantity": 1}]);

    // A shop that ships needs to know where to and how; nothing is held meanwhile.
    let order = |body: Value| send(&server, &customer, Method::POST, "/api/orders", body);
    let body = expect_error(
        order(json!({"items": items})).await,
        StatusCode::BAD_REQUEST,
        "shipping_address_required",
    )
    .await;
    assert!(
        body["error"]["details"]["fields"]["shipping_address"].is_string(),
        "{body}"
    );
    expect_error(
        order(json!({"items": items, "shipping_address": address("DE", None)})).await,
        StatusCode::BAD_REQUEST,
        "shipping_method_required",
    )
    .await;
    let stock = expect_status(
        server.get_as("/api/inventory/MUG-1", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stock["reserved"], 0, "{stock}");

    let wanted = json!({"items": items, "shipping_address": address("DE", None), "shipping_method": "parcel"});
    let quote = expect_status(
        send(
            &server,
            &customer,
            Method::POST,
            "/api/orders/quote",
            wanted.clone(),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mut body = wanted.clone();
    body["payment"] = card();
    body["billing_address"] = address("AT", None);
    let placed = expect_status(order(body).await, StatusCode::CREATED).await;
    assert_eq!(placed["status"], "paid", "{placed}");
    for field in [
        "subtotal_cents",
        "discount_cents",
        "shipping_cents",
        "tax_cents",
        "total_cents",
        "tax_lines",
        "shipping_method",
        "prices_include_tax",
    ] {
        assert_eq!(placed[field], quote[field], "{field}: {placed} vs {quote}");
    }
    // 2380 + 2000 goods, 2 kg by weight 800; VAT inside (2380 + 800) * 19/119 = 507.73 and 2000 * 7/107.
    assert_eq!(placed["total_cents"], 5180);
    assert_eq!(placed["tax_cents"], 508 + 131);
    assert_eq!(placed["shipping_address"]["country"], "DE");
    assert_eq!(placed["billing_address"]["country"], "AT");

    // Frozen: a later change of the tables leaves the order as it was sold.
    let zones = expect_status(
        server.get_as("/api/shipping/zones", &admin).await,
        StatusCode::OK,
    )
    .await;
    let zone = zones["items"][0]["id"].as_str().expect("zone id");
    expect_status(
        send(
            &server,
            &admin,
            Method::DELETE,
            &format!("/api/shipping/zones/{zone}"),
            Value::Null,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let id = placed["id"].as_str().expect("order id");
    let stored = expect_status(
        server.get_as(&format!("/api/orders/{id}"), &customer).await,
        StatusCode::OK,
    )
    .await;
    for field in [
        "total_cents",
        "shipping_cents",
        "tax_lines",
        "shipping_method",
        "shipping_address",
    ] {
        assert_eq!(stored[field], placed[field], "{field}");
    }

    // What was charged, shipping and tax included, is what can be refunded.
    let payment_id = placed["payment_id"].as_str().expect("payment id");
    let payment = expect_status(
        server
            .get_as(&format!("/api/payments/{payment_id}"), &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(payment["amount_cents"], 5180);
    let refund = |amount: i64| {
        send(
            &server,
            &admin,
            Method::POST,
            format!("/api/orders/{id}/refund"),
            json!({"amount_cents": amount}),
        )
    };
    expect_error(
        refund(5181).await,
        StatusCode::CONFLICT,
        "refund_exceeds_captured",
    )
    .await;
    expect_status(refund(5180).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn fifty_racing_checkouts_never_use_a_limit_10_code_11_times() {
    let server =
        TestServer::start_with(&[("SHOP_RATE_LIMIT_IP", "0"), ("SHOP_RATE_LIMIT_TOKEN", "0")]);
    let admin = server.admin_token().await;
    created(
        &server,
        &admin,
        "/api/products",
        json!({"sku": "DEAL-1", "name": "Deal", "price_cents": 2000, "stock": 100}),
    )
    .await;
    let discount = created(
        &server,
        &admin,
        "/api/discounts",
        json!({"code": "launch10", "kind": "percent", "value": 1000, "usage_limit": 10}),
    )
    .await;
    assert_eq!(discount["code"], "LAUNCH10");

    let mut racers = Vec::new();
    for racer in 0..50 {
        let server_url = server.url.clone();
        let admin = admin.clone();
        racers.push(tokio::spawn(async move {
            let body = json!({
                "items": [{"sku": "DEAL-1", "quantity": 1}],
                "customer_email": format!("racer{racer}@example.com"),
                "discount_codes": ["LAUNCH10"],
                "payment": card(),
            });
            let response = reqwest::Client::new()
                .post(format!("{server_url}/api/orders"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = response.status();
            let body: Value = response.json().await.expect("JSON");
            (status, body)
        }));
    }
    let mut placed = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.expect("task");
        match status {
            StatusCode::CREATED => {
                assert_eq!(body["discount_cents"], 200, "{body}");
                assert_eq!(body["total_cents"], 1800, "{body}");
                placed.push(body);
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "discount_limit_reached", "{body}")
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(placed.len(), 10, "exactly ten orders got the code");
    let stored = expect_status(
        server.get_as("/api/discounts/LAUNCH10", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["times_used"], 10, "{stored}");
    let stock = expect_status(
        server.get_as("/api/inventory/DEAL-1", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        stock["on_hand"], 90,
        "only the ten orders took stock: {stock}"
    );

    // A paid order fully refunded gives its use back; a partial refund does not.
    let first = placed[0]["id"].as_str().expect("id");
    let refund = |id: &str, amount: i64| {
        send(
            &server,
            &admin,
            Method::POST,
            format!("/api/orders/{id}/refund"),
            json!({"amount_cents": amount}),
        )
    };
    expect_status(refund(first, 1000).await, StatusCode::CREATED).await;
    let stored = expect_status(
        server.get_as("/api/discounts/LAUNCH10", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["times_used"], 10, "half refunded keeps its use");
    expect_status(refund(first, 800).await, StatusCode::CREATED).await;
    let stored = expect_status(
        server.get_as("/api/discounts/LAUNCH10", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["times_used"], 9, "fully refunded gives it back");
    // So one more order may use it.
    let body = json!({"items": [{"sku": "DEAL-1", "quantity": 1}], "discount_codes": ["launch10"]});
    expect_status(
        send(&server, &admin, Method::POST, "/api/orders", body.clone()).await,
        StatusCode::CREATED,
    )
    .await;
    expect_error(
        send(&server, &admin, Method::POST, "/api/orders", body).await,
        StatusCode::CONFLICT,
        "discount_limit_reached",
    )
    .await;
}

#[tokio::test]
async fn each_refused_code_has_its_own_error_and_a_cart_takes_a_code_once() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    created(
        &server,
        &admin,
        "/api/products",
        json!({"sku": "TEA-1", "name": "Tea", "price_cents": 1500, "stock": 20}),
    )
    .await;
    for body in [
        json!({"code": "BIG", "kind": "fixed", "value": 500, "currency": "USD", "min_subtotal_cents": 5000}),
        json!({"code": "OLD", "kind": "percent", "value": 500, "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-02-01T00:00:00Z"}),
        json!({"code": "SOON", "kind": "percent", "value": 500, "starts_at": "2099-01-01T00:00:00Z"}),
        json!({"code": "ONCE", "kind": "percent", "value": 1000, "per_customer_limit": 1}),
    ] {
        created(&server, &admin, "/api/discounts", body).await;
    }
    let bad = json!({"code": "BACKWARDS", "kind": "percent", "value": 500, "starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"});
    expect_error(
        send(&server, &admin, Method::POST, "/api/discounts", bad).await,
        StatusCode::BAD_REQUEST,
        "invalid_discount_window",
    )
    .await;
    let listed = expect_status(
        server.get_as("/api/discounts", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["total"], 4, "the refused one was not written");

    let customer = server.customer_token("kim@example.com").await;
    let quote = |codes: Value| {
        send(
            &server,
            &customer,
            Method::POST,
            "/api/orders/quote",
            json!({"items": [{"sku": "TEA-1", "quantity": 1}], "discount_codes": codes}),
        )
    };
    for (codes, status, code) in [
        (json!(["NOPE"]), StatusCode::NOT_FOUND, "unknown_discount"),
        (
            json!(["BIG"]),
            StatusCode::CONFLICT,
            "discount_minimum_not_met",
        ),
        (json!(["OLD"]), StatusCode::CONFLICT, "discount_expired"),
        (
            json!(["SOON"]),
            StatusCode::CONFLICT,
            "discount_not_started",
        ),
        (
            json!(["ONCE", "once"]),
            StatusCode::BAD_REQUEST,
            "discount_already_applied",
        ),
    ] {
        expect_error(quote(codes).await, status, code).await;
    }
    let priced = expect_status(quote(json!(["once"])).await, StatusCode::OK).await;
    assert_eq!(
        priced["discounts"],
        json!([{"code": "ONCE", "amount_cents": 150}])
    );

    // A cart takes a code once, and its checkout uses it.
    let cart = expect_status(
        send(
            &server,
            &customer,
            Method::POST,
            "/api/cart",
            json!({"items": [{"sku": "TEA-1", "quantity": 2}]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let cart_id = cart["id"].as_str().expect("cart id");
    let path = format!("/api/cart/{cart_id}/discounts");
    let priced = expect_status(
        send(
            &server,
            &customer,
            Method::POST,
            &path,
            json!({"code": "once"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(priced["discount_cents"], 300);
    expect_error(
        send(
            &server,
            &customer,
            Method::POST,
            &path,
            json!({"code": "ONCE"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "discount_already_applied",
    )
    .await;
    let order = expect_status(
        send(
            &server,
            &customer,
            Method::POST,
            "/api/orders",
            json!({"cart_id": cart_id, "payment": card()}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(order["total_cents"], 2700, "{order}");
    assert_eq!(
        order["discounts"],
        json!([{"code": "ONCE", "amount_cents": 300}])
    );
    // Once per customer: the next order is refused.
    expect_error(
        quote(json!(["ONCE"])).await,
        StatusCode::CONFLICT,
        "discount_customer_limit_reached",
    )
    .await;
}

#[test]
fn the_cli_sets_up_pricing_and_checks_out_at_the_quoted_total() {
    let server = TestServer::start();
    server.cli_login_admin();
    let shop = |args: &[&str]| server.shop(args);
    shop(&[
        "product",
        "add",
        "--sku",
        "MUG-1",
        "--name",
        "Mug",
        "--price",
        "11.90",
        "--currency",
        "EUR",
        "--stock",
        "10",
        "--weight-grams",
        "350",
        "-o",
        "json",
    ])
    .expect(0);
    shop(&[
        "product",
        "add",
        "--sku",
        "BOOK-1",
        "--name",
        "Book",
        "--price",
        "20.00",
        "--currency",
        "EUR",
        "--stock",
        "10",
        "--weight-grams",
        "500",
        "--tax-category",
        "books",
        "-o",
        "json",
    ])
    .expect(0);
    let zone = shop(&[
        "shipping",
        "zone",
        "add",
        "--name",
        "Germany",
        "--country",
        "DE",
        "--currency",
        "EUR",
        "--method",
        "dhl:flat:4.90",
        "--method",
        "parcel:per_kg:4.00",
        "--days",
        "2",
        "-o",
        "json",
    ])
    .expect(0)
    .json();
    assert_eq!(
        zone["methods"][1]["rate"],
        json!({"kind": "per_kg", "amount_cents": 400})
    );
    shop(&[
        "tax",
        "rate",
        "add",
        "--country",
        "DE",
        "--name",
        "MwSt 19%",
        "--rate",
        "19",
        "-o",
        "json",
    ])
    .expect(0);
    let reduced = shop(&[
        "tax",
        "rate",
        "add",
        "--country",
        "de",
        "--name",
        "MwSt 7%",
        "--rate",
        "7",
        "--category",
        "books",
        "-o",
        "json",
    ])
    .expect(0)
    .json();
    assert_eq!(reduced["rate_bps"], 700);
    shop(&[
        "discount",
        "add",
        "--code",
        "winter10",
        "--percent",
        "10",
        "--limit",
        "5",
        "-o",
        "json",
    ])
    .expect(0);
    // Bad input is refused with its own exit code and changes nothing.
    shop(&[
        "tax",
        "rate",
        "add",
        "--country",
        "DE",
        "--name",
        "x",
        "--rate",
        "101",
    ])
    .expect(2);
    let unknown = shop(&[
        "tax",
        "rate",
        "add",
        "--country",
        "XX",
        "--name",
        "x",
        "--rate",
        "5",
    ])
    .expect(1);
    assert!(
        unknown.stderr.contains("unknown_country") || unknown.stderr.contains("ISO 3166"),
        "{unknown:?}"
    );

    let address = server.dir.path().join("address.json");
    std::fs::write(
        &address,
        r#"{"name":"Erika Mustermann","line1":"Heidestraße 17","city":"Köln","postal_code":"51147","country":"DE"}"#,
    )
    .expect("address file");
    let address = address.to_str().expect("utf-8 path");
    let checkout = [
        "--item",
        "MUG-1:2",
        "--item",
        "BOOK-1",
        "--ship-to",
        address,
        "--shipping",
        "dhl",
        "--discount",
        "WINTER10",
    ];
    let mut quote_args = vec!["order", "quote", "-o", "json"];
    quote_args.extend_from_slice(&checkout);
    let quote = shop(&quote_args).expect(0).json();
    let mut order_args = vec![
        "order",
        "create",
        "--pay",
        "card:4242424242424242",
        "-o",
        "json",
    ];
    order_args.extend_from_slice(&checkout);
    let order = shop(&order_args).expect(0).json();
    assert_eq!(order["status"], "paid", "{order}");
    for field in [
        "subtotal_cents",
        "discount_cents",
        "shipping_cents",
        "tax_cents",
        "total_cents",
        "tax_lines",
        "discounts",
        "shipping_method",
    ] {
        assert_eq!(order[field], quote[field], "{field}");
    }
    // 4380 goods, 438 off; DHL 490; VAT inside: the discount spread 2380:2000
    // (238 and 200), (2142 + 490) * 19/119 = 420.23 and 1800 * 7/107 = 117.76.
    assert_eq!(order["discount_cents"], 438);
    assert_eq!(
        order["tax_lines"],
        json!([
            {"name": "MwSt 19%", "rate_bps": 1900, "amount_cents": 420},
            {"name": "MwSt 7%", "rate_bps": 700, "amount_cents": 118},
        ])
    );
    assert_eq!(order["total_cents"], 4380 - 438 + 490);

    // Without an address a shop that ships refuses the order (exit 1, a 400).
    let refused = shop(&[
        "order",
        "create",
        "--item",
        "MUG-1",
        "--pay",
        "card:4242424242424242",
    ])
    .expect(1);
    assert!(refused.stderr.contains("shipping_address"), "{refused:?}");
    // A quote for a country alone lists its methods.
    let by_country = shop(&[
        "order",
        "quote",
        "--item",
        "MUG-1",
        "--country",
        "DE",
        "-o",
        "json",
    ])
    .expect(0)
    .json();
    assert_eq!(by_country["shipping_methods"][0]["code"], "dhl");
    let listed = shop(&["discount", "get", "winter10", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(listed["times_used"], 1);
    // The tables show the breakdown.
    let table = shop(&[
        "order",
        "get",
        order["number"].as_str().expect("number"),
        "-o",
        "table",
    ])
    .expect(0);
    assert!(
        table.stdout.contains("SUBTOTAL") && table.stdout.contains("43.80 EUR"),
        "{table:?}"
    );
}
