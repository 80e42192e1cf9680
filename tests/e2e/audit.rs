//! The audit log (SPEC section 11): one entry per change, with who, from
//! where and what changed, and none for a refused change.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn entries(server: &TestServer, admin: &str, query: &str) -> Vec<Value> {
    let page = expect_status(
        server.get_as(&format!("/api/audit?{query}"), admin).await,
        StatusCode::OK,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn each_change_writes_one_entry_with_before_and_after() {
    let server = TestServer::start();
    let admin = server.admin_token().await;

    let created = server
        .send_as(
            Method::POST,
            "/api/products",
            &json!({"sku": "AUD-1", "name": "Lamp", "price_cents": 1000, "category": "home", "stock": 5}),
            &admin,
        )
        .await;
    let product = expect_status(created, StatusCode::CREATED).await;
    let id = product["id"].as_str().unwrap().to_owned();

    let changed = server
        .send_as(
            Method::PATCH,
            "/api/products/AUD-1",
            &json!({"price_cents": 1250}),
            &admin,
        )
        .await;
    expect_status(changed, StatusCode::OK).await;

    let history = entries(&server, &admin, &format!("entity=product&entity_id={id}")).await;
    assert_eq!(history.len(), 2, "{history:#?}");
    let update = &history[0];
    assert_eq!(update["action"], "product.updated");
    assert_eq!(
        update["before"],
        json!({"price_cents": 1000}),
        "only the changed field"
    );
    assert_eq!(update["after"], json!({"price_cents": 1250}));
    assert_eq!(update["actor"]["kind"], "user");
    assert_eq!(update["actor"]["email"], ADMIN_EMAIL);
    assert_eq!(update["ip"], "127.0.0.1");
    assert!(update["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(history[1]["action"], "product.created");
    assert_eq!(history[1]["before"], Value::Null);
    assert_eq!(history[1]["after"]["sku"], "AUD-1");

    // Stock: a set and an adjustment each write one entry; a refused one (409) writes none.
    let set = server
        .send_as(
            Method::PUT,
            "/api/inventory/AUD-1",
            &json!({"on_hand": 9, "reason": "count"}),
            &admin,
        )
        .await;
    expect_status(set, StatusCode::OK).await;
    let adjust = server
        .send_as(
            Method::POST,
            "/api/inventory/AUD-1/adjustments",
            &json!({"delta": -2, "reason": "broken"}),
            &admin,
        )
        .await;
    expect_status(adjust, StatusCode::OK).await;
    let refused = server
        .send_as(
            Method::POST,
            "/api/inventory/AUD-1/adjustments",
            &json!({"delta": -100, "reason": "x"}),
            &admin,
        )
        .await;
    expect_error(refused, StatusCode::CONFLICT, "insufficient_stock").await;
    let stock = entries(&server, &admin, "entity=stock&entity_id=AUD-1").await;
    assert_eq!(
        stock.len(),
        2,
        "the refused change wrote nothing: {stock:#?}"
    );
    assert_eq!(stock[0]["action"], "inventory.adjusted");
    assert_eq!(stock[0]["before"]["on_hand"], 9);
    assert_eq!(stock[0]["after"]["on_hand"], 7);
    assert_eq!(stock[1]["action"], "inventory.set");
    assert_eq!(stock[1]["before"]["on_hand"], 5);
    assert_eq!(stock[1]["after"]["on_hand"], 9);

    // A change through an API key names the key.
    let key = server
        .send_as(
            Method::POST,
            "/api/keys",
            &json!({"name": "erp", "scopes": ["products:write"]}),
            &admin,
        )
        .await;
    let key = expect_status(key, StatusCode::CREATED).await;
    let secret = key["secret"].as_str().unwrap();
    let archived = server
        .send_as(
            Method::PATCH,
            "/api/products/AUD-1",
            &json!({"active": false}),
            secret,
        )
        .await;
    expect_status(archived, StatusCode::OK).await;
    let by_key = entries(
        &server,
        &admin,
        &format!("actor={}", key["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(by_key.len(), 1, "{by_key:#?}");
    assert_eq!(by_key[0]["action"], "product.archived");
    assert_eq!(by_key[0]["actor"]["kind"], "api_key");
    assert_eq!(
        by_key[0]["actor"]["email"], ADMIN_EMAIL,
        "the key's creator"
    );
    assert_eq!(by_key[0]["before"], json!({"active": true}));

    // Keys themselves, and role changes.
    let keys = entries(&server, &admin, "entity=key").await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["action"], "key.created");
    assert!(!keys[0].to_string().contains(secret), "never the secret");
    let staff = server
        .send_as(Method::POST, "/api/users", &json!({"email": "sam@example.com", "password": PASSWORD, "name": "Sam", "role": "staff"}), &admin)
        .await;
    let staff = expect_status(staff, StatusCode::CREATED).await;
    let role = server
        .send_as(
            Method::PUT,
            &format!("/api/users/{}/role", staff["id"].as_str().unwrap()),
            &json!({"role": "customer"}),
            &admin,
        )
        .await;
    expect_status(role, StatusCode::OK).await;
    let made = entries(
        &server,
        &admin,
        &format!(
            "action=user.created&entity_id={}",
            staff["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(made.len(), 1, "{made:#?}");
    assert_eq!(made[0]["action"], "user.created");
    assert_eq!(made[0]["after"]["role"], "staff");
    assert!(made[0]["after"].get("password_hash").is_none());
    let roles = entries(&server, &admin, "action=user.role_changed").await;
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["before"], json!({"role": "staff"}));
    assert_eq!(roles[0]["after"], json!({"role": "customer"}));

    // Delete: the product's last entry holds what it was.
    let deleted = server
        .request(Method::DELETE, "/api/products/AUD-1")
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let history = entries(&server, &admin, &format!("entity_id={id}&action=product")).await;
    assert_eq!(history[0]["action"], "product.deleted");
    assert_eq!(history[0]["after"], Value::Null);
    assert_eq!(history.len(), 4);

    // Only admins read the log, and no route edits it.
    let customer = server.customer_token("c@example.com").await;
    expect_error(
        server.get_as("/api/audit", &customer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let id = history[0]["id"].as_u64().unwrap();
    for method in [Method::DELETE, Method::PATCH, Method::PUT] {
        let response = server
            .request(method, &format!("/api/audit/{id}"))
            .header("authorization", bearer(&admin))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(
                response.status(),
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "{}",
            response.status()
        );
    }
}

#[tokio::test]
async fn order_transitions_and_refunds_are_audited() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let created = server
        .send_as(
            Method::POST,
            "/api/products",
            &json!({"sku": "AUD-2", "name": "Mug", "price_cents": 800, "category": "home", "stock": 5}),
            &admin,
        )
        .await;
    expect_status(created, StatusCode::CREATED).await;
    let order = server
        .send_as(
            Method::POST,
            "/api/orders",
            &json!({"items": [{"sku": "AUD-2", "quantity": 2}], "customer_email": "buyer@example.com",
                    "payment": {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2040}}),
            &admin,
        )
        .await;
    let order = expect_status(order, StatusCode::CREATED).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let ship = server
        .send_as(
            Method::POST,
            &format!("/api/orders/{order_id}/ship"),
            &json!({}),
            &admin,
        )
        .await;
    expect_status(ship, StatusCode::OK).await;
    let log = entries(
        &server,
        &admin,
        &format!("entity=order&entity_id={order_id}"),
    )
    .await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["order.shipped", "order.paid", "order.created"],
        "{log:#?}"
    );
    assert_eq!(log[0]["before"]["status"], "paid");
    assert_eq!(log[0]["after"]["status"], "shipped");

    let payment = order["payment_id"].as_str().unwrap();
    let refund = server
        .send_as(
            Method::POST,
            &format!("/api/payments/{payment}/refunds"),
            &json!({"amount_cents": 300, "reason": "dented"}),
            &admin,
        )
        .await;
    assert!(refund.status().is_success(), "{}", refund.status());
    let refunds = entries(
        &server,
        &admin,
        &format!("entity=payment&entity_id={payment}"),
    )
    .await;
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    assert_eq!(refunds[0]["action"], "payment.refunded");
    assert_eq!(refunds[0]["before"]["refunded_cents"], 0);
    assert_eq!(refunds[0]["after"]["refunded_cents"], 300);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_recorded() {
    let server = TestServer::start_full(&[], &["--trusted-proxy", "127.0.0.0/8"]);
    let admin = server.admin_token().await;
    let sent = server
        .request(Method::POST, "/api/products")
        .header("authorization", bearer(&admin))
        // The client forged the first hop; the proxy appended the real one.
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.7")
        .json(&json!({"sku": "PRX-1", "name": "Via proxy", "price_cents": 100}))
        .send()
        .await
        .unwrap();
    expect_status(sent, StatusCode::CREATED).await;
    let log = entries(&server, &admin, "action=product.created").await;
    assert_eq!(log[0]["ip"], "203.0.113.7", "{log:#?}");

    // Without the flag, the header is not believed.
    let plain = TestServer::start();
    let admin = plain.admin_token().await;
    let sent = plain
        .request(Method::POST, "/api/products")
        .header("authorization", bearer(&admin))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"sku": "PRX-2", "name": "Direct", "price_cents": 100}))
        .send()
        .await
        .unwrap();
    expect_status(sent, StatusCode::CREATED).await;
    let log = entries(&plain, &admin, "action=product.created").await;
    assert_eq!(log[0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn webhook_changes_are_audited_without_their_secrets() {
    let server = TestServer::start_full(&[], &["--webhook-allow-host", "127.0.0.1"]);
    let admin = server.admin_token().await;
    let created = server
        .send_as(
            Method::POST,
            "/api/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["order.*"]}),
            &admin,
        )
        .await;
    let webhook = expect_status(created, StatusCode::CREATED).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let path = format!("/api/webhooks/{id}");
    let changed = server
        .send_as(
            Method::PATCH,
            &path,
            &json!({"events": ["order.paid"]}),
            &admin,
        )
        .await;
    expect_status(changed, StatusCode::OK).await;
    let rotated = server
        .send_as(
            Method::POST,
            &format!("{path}/rotate-secret"),
            &json!({}),
            &admin,
        )
        .await;
    expect_status(rotated, StatusCode::OK).await;
    let removed = server
        .send_as(Method::DELETE, &path, &json!({}), &admin)
        .await;
    assert!(removed.status().is_success(), "{}", removed.status());

    let history = entries(&server, &admin, &format!("entity=webhook&entity_id={id}")).await;
    let actions: Vec<&str> = history
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.deleted",
            "webhook.secret_rotated",
            "webhook.updated",
            "webhook.created"
        ],
        "{history:#?}"
    );
    assert_eq!(history[3]["after"]["url"], "http://127.0.0.1:9/hook");
    assert_eq!(history[2]["before"], json!({"events": ["order.*"]}));
    assert_eq!(history[2]["after"], json!({"events": ["order.paid"]}));
    assert_eq!(
        history[1]["before"],
        json!({"previous_secret_expires_at": null}),
        "no overlap before the first rotation"
    );
    assert!(
        history[1]["after"]["previous_secret_expires_at"].is_string(),
        "{:#?}",
        history[1]
    );
    assert_eq!(history[0]["after"], Value::Null);
    assert_eq!(history[0]["before"]["events"], json!(["order.paid"]));
    assert!(history.iter().all(|e| e["actor"]["email"] == ADMIN_EMAIL));
    let text = serde_json::to_string(&history).unwrap();
    assert!(
        !text.contains("whsec_"),
        "a secret reached the audit log: {text}"
    );
}
