//! Scoped API keys (SPEC section 11): what a key may do, and how it stops.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn make_key(server: &TestServer, token: &str, name: &str, scopes: &[&str]) -> Value {
    let response = server
        .send_as(
            Method::POST,
            "/api/keys",
            &json!({"name": name, "scopes": scopes}),
            token,
        )
        .await;
    expect_status(response, StatusCode::CREATED).await
}

fn product(sku: &str) -> Value {
    json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": 1000, "category": "tools", "stock": 5})
}

async fn staff_token(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let created = server
        .send_as(
            Method::POST,
            "/api/users",
            &json!({"email": email, "password": PASSWORD, "name": "Sam", "role": "staff"}),
            admin,
        )
        .await;
    let user = expect_status(created, StatusCode::CREATED).await;
    let token = server.login(email, PASSWORD).await.access_token;
    (user["id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn a_key_acts_with_exactly_its_scopes_and_stops_when_revoked() {
    let server = TestServer::start();
    let admin = server.admin_token().await;

    let key = make_key(&server, &admin, "catalog reader", &["products:read"]).await;
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("shop_sk_"), "{key}");
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(key["scopes"], json!(["products:read"]));
    assert_eq!(key["last_used_at"], Value::Null);

    // Listing and reading never show the secret again.
    let listed = expect_status(server.get_as("/api/keys", &admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["id"], key["id"]);
    assert!(!listed.to_string().contains(&secret));
    assert!(listed["items"][0].get("secret").is_none());

    // products:read lists products but may not create one.
    expect_status(
        server.get_as("/api/products", &secret).await,
        StatusCode::OK,
    )
    .await;
    let refused = server
        .send_as(Method::POST, "/api/products", &product("KEY-1"), &secret)
        .await;
    let body = expect_error(refused, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert_eq!(body["error"]["details"]["required_scope"], "products:write");
    // Nor reach other resources, accounts or keys.
    expect_error(
        server.get_as("/api/orders", &secret).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    for path in ["/api/users/me", "/api/users", "/api/keys"] {
        expect_error(
            server.get_as(path, &secret).await,
            StatusCode::FORBIDDEN,
            "key_not_allowed",
        )
        .await;
    }

    // Its use is recorded.
    let path = format!("/api/keys/{}", key["id"].as_str().unwrap());
    let seen = expect_status(server.get_as(&path, &admin).await, StatusCode::OK).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = seen;
    while seen["last_used_at"].is_null() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        seen = expect_status(server.get_as(&path, &admin).await, StatusCode::OK).await;
    }
    assert!(seen["last_used_at"].is_string(), "{seen}");

    // Revoked: refused on the very next request.
    let revoked = server
        .request(Method::DELETE, &path)
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    let revoked = expect_status(revoked, StatusCode::OK).await;
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    expect_error(
        server.get_as("/api/products", &secret).await,
        StatusCode::UNAUTHORIZED,
        "api_key_revoked",
    )
    .await;
    // A made-up key is refused as well.
    expect_error(
        server.get_as("/api/products", "shop_sk_0000").await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
}

#[tokio::test]
async fn write_implies_read_and_an_expired_key_is_refused() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let key = make_key(&server, &admin, "fulfilment", &["orders:write"]).await;
    let secret = key["secret"].as_str().unwrap();
    expect_status(server.get_as("/api/orders", secret).await, StatusCode::OK).await;

    // Already past its expiry: refused at creation, so make one that ends in a second.
    let past = server
        .send_as(
            Method::POST,
            "/api/keys",
            &json!({"name": "old", "scopes": ["orders:read"], "expires_at": "2020-01-01T00:00:00Z"}),
            &admin,
        )
        .await;
    expect_error(past, StatusCode::BAD_REQUEST, "validation_failed").await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let short = server
        .send_as(
            Method::POST,
            "/api/keys",
            &json!({"name": "short", "scopes": ["orders:read"], "expires_at": soon}),
            &admin,
        )
        .await;
    let short = expect_status(short, StatusCode::CREATED).await;
    let short = short["secret"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = server.get_as("/api/orders", short).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            expect_error(response, StatusCode::UNAUTHORIZED, "api_key_expired").await;
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            std::time::Instant::now() < deadline,
            "the key never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Unknown scopes are refused with the list of resources.
    let bad = server
        .send_as(
            Method::POST,
            "/api/keys",
            &json!({"name": "x", "scopes": ["users:read"]}),
            &admin,
        )
        .await;
    assert!(bad.status().is_client_error());
}

#[tokio::test]
async fn a_key_never_exceeds_its_creators_current_role() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let (staff_id, staff) = staff_token(&server, &admin, "sam@example.com").await;

    // Customers cannot make keys.
    let customer = server.customer_token("cus@example.com").await;
    let refused = server
        .send_as(
            Method::POST,
            "/api/keys",
            &json!({"name": "x", "scopes": ["products:read"]}),
            &customer,
        )
        .await;
    expect_error(refused, StatusCode::FORBIDDEN, "forbidden").await;

    let all = ["products:write", "orders:write", "reports:read"];
    let staff_key = make_key(&server, &staff, "staff's", &all).await;
    let staff_secret = staff_key["secret"].as_str().unwrap().to_owned();
    let admin_key = make_key(&server, &admin, "admin's", &["reports:read"]).await;
    // The audit log is for admins: a staff member's key cannot read it, an admin's can.
    expect_error(
        server.get_as("/api/audit", &staff_secret).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_status(
        server
            .get_as("/api/audit", admin_key["secret"].as_str().unwrap())
            .await,
        StatusCode::OK,
    )
    .await;
    // Staff see only their own keys.
    let mine = expect_status(server.get_as("/api/keys", &staff).await, StatusCode::OK).await;
    assert_eq!(mine["total"], 1, "{mine}");
    let theirs = format!("/api/keys/{}", admin_key["id"].as_str().unwrap());
    expect_error(
        server.get_as(&theirs, &staff).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let created = server
        .send_as(
            Method::POST,
            "/api/products",
            &product("KEY-2"),
            &staff_secret,
        )
        .await;
    expect_status(created, StatusCode::CREATED).await;

    // Demoting the creator narrows the key at once.
    let demote = server
        .request(Method::PUT, &format!("/api/users/{staff_id}/role"))
        .header("authorization", bearer(&admin))
        .json(&json!({"role": "customer"}))
        .send()
        .await
        .unwrap();
    expect_status(demote, StatusCode::OK).await;
    let refused = server
        .send_as(
            Method::POST,
            "/api/products",
            &product("KEY-3"),
            &staff_secret,
        )
        .await;
    expect_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_key_has_its_own_idempotency_scope() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let key = make_key(&server, &admin, "importer", &["products:write"]).await;
    let secret = key["secret"].as_str().unwrap();
    let send = |token: String| {
        let server = &server;
        async move {
            server
                .request(Method::POST, "/api/products")
                .header("authorization", bearer(&token))
                .header("idempotency-key", "same-key")
                .json(&product("IDEM-1"))
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(secret.to_owned()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let replay = send(secret.to_owned()).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    // The key's creator, with the same Idempotency-Key, is another caller: it runs (and conflicts on the SKU).
    let creator = send(admin.clone()).await;
    assert_eq!(creator.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_cli_makes_keys_uses_them_as_tokens_and_reads_the_audit_log() {
    let server = TestServer::start();
    server.cli_login_admin();
    let made = server
        .shop(&[
            "key",
            "create",
            "--name",
            "reader",
            "--scope",
            "products:read",
            "--expires-in",
            "30d",
            "-q",
        ])
        .expect(0);
    let secret = made.stdout.trim().to_owned();
    assert!(secret.starts_with("shop_sk_"), "{made:#?}");
    assert!(made.stderr.contains("shown only once"), "{made:#?}");

    let with_key = |args: &[&str]| {
        let mut command = server.cli(args);
        command.env("SHOP_TOKEN", &secret);
        run_cli(command, None)
    };
    with_key(&["product", "list"]).expect(0);
    // No products:write: forbidden is exit 6.
    with_key(&[
        "product", "add", "--sku", "K-1", "--name", "K", "--price", "1.00",
    ])
    .expect(6);

    let listed = server.shop(&["key", "list", "-o", "json"]).expect(0);
    let id = listed.json()["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(!listed.stdout.contains(&secret));
    server.shop(&["key", "revoke", &id]).expect(0);
    with_key(&["product", "list"]).expect(6);

    let audit = server
        .shop(&["audit", "--entity", "key", "--since", "1h", "-o", "ndjson"])
        .expect(0);
    let actions: Vec<String> = audit
        .lines()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["key.revoked", "key.created"], "{audit:#?}");

    server
        .shop(&[
            "product", "add", "--sku", "H-1", "--name", "Hat", "--price", "5.00", "--stock", "3",
        ])
        .expect(0);
    server
        .shop(&["product", "update", "H-1", "--price", "6.00"])
        .expect(0);
    let history = server
        .shop(&["product", "get", "H-1", "--history", "-o", "ndjson"])
        .expect(0);
    let lines = history.lines();
    assert_eq!(lines[0]["action"], "product.updated", "{history:#?}");
    assert_eq!(lines[0]["after"]["price_cents"], 600);
    assert_eq!(lines[1]["action"], "product.created");
}

#[tokio::test]
async fn a_webhooks_read_key_follows_the_event_stream_until_it_is_revoked() {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    use std::time::Duration;

    let server = TestServer::start();
    let admin = server.admin_token().await;
    let products_only = make_key(&server, &admin, "catalog", &["products:read"]).await;
    expect_error(
        server
            .get_as("/api/events", products_only["secret"].as_str().unwrap())
            .await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    let key = make_key(&server, &admin, "listener", &["webhooks:read"]).await;
    let response = server
        .get("/api/events?type=key.*&after=0")
        .header("authorization", bearer(key["secret"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream().eventsource();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an answer within 10 s")
    };
    let first: Value = serde_json::from_str(&next().await.unwrap().unwrap().data).unwrap();
    assert_eq!(first["type"], "key.created");
    assert_eq!(first["data"]["id"], products_only["id"]);
    assert!(
        !first
            .to_string()
            .contains(products_only["secret"].as_str().unwrap()),
        "events never carry secrets"
    );
    let second: Value = serde_json::from_str(&next().await.unwrap().unwrap().data).unwrap();
    assert_eq!(second["data"]["id"], key["id"]);

    // Revoking the key ends its stream.
    let path = format!("/api/keys/{}", key["id"].as_str().unwrap());
    let revoked = server
        .request(Method::DELETE, &path)
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    expect_status(revoked, StatusCode::OK).await;
    assert!(next().await.is_none(), "the stream ended with the key");
}
