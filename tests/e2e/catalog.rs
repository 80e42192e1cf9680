//! The catalog and inventory through the HTTP API: products, categories,
//! imports and exports, stock, reservations racing for the last units,
//! expiry, low-stock crossings and reconcile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// No rate limits: the races below send hundreds of requests at once with one token.
fn unlimited() -> TestServer {
    TestServer::start_with(&[("SHOP_RATE_LIMIT_IP", "0"), ("SHOP_RATE_LIMIT_TOKEN", "0")])
}

async fn create(server: &TestServer, token: &str, body: Value) -> Value {
    let response = server
        .send_as(Method::POST, "/api/products", &body, token)
        .await;
    expect_status(response, StatusCode::CREATED).await
}

fn product(sku: &str, price: i64, category: &str, stock: i64) -> Value {
    json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": price, "category": category, "stock": stock})
}

async fn stock(server: &TestServer, token: &str, sku: &str) -> Value {
    expect_status(
        server.get_as(&format!("/api/inventory/{sku}"), token).await,
        StatusCode::OK,
    )
    .await
}

async fn reconcile(server: &TestServer, token: &str, fix: bool) -> Value {
    let response = server
        .send_as(
            Method::POST,
            "/api/inventory/reconcile",
            &json!({ "fix": fix }),
            token,
        )
        .await;
    expect_status(response, StatusCode::OK).await
}

async fn events(server: &TestServer, token: &str, pattern: &str) -> Vec<Value> {
    let page = expect_status(
        server
            .get_as(&format!("/api/events/log?type={pattern}&limit=500"), token)
            .await,
        StatusCode::OK,
    )
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn products_are_created_read_updated_archived_and_deleted() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let created = create(
        &server,
        &admin,
        json!({"sku": "CHAIR-OAK", "name": " Oak chair ", "price_cents": 12900, "category": "Furniture / Chairs",
               "attributes": {"material": "oak"}, "images": ["https://img.example.com/chair.jpg"], "stock": 7}),
    )
    .await;
    assert_eq!(created["name"], "Oak chair");
    assert_eq!(created["category"], "furniture/chairs");
    assert_eq!(created["version"], 1);
    let id = created["id"].as_str().expect("id");
    assert!(id.starts_with("prd_"));

    // Anyone can read it, by id or by SKU.
    for key in [id, "CHAIR-OAK"] {
        let got = expect_status(
            server
                .get(&format!("/api/products/{key}"))
                .send()
                .await
                .expect("get"),
            StatusCode::OK,
        )
        .await;
        assert_eq!(got, created);
    }
    assert_eq!(stock(&server, &admin, "CHAIR-OAK").await["on_hand"], 7);

    // Bad input: each a clear error, nothing stored.
    let bad = [
        (
            json!({"sku": "chair-1", "name": "x", "price_cents": 1}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"sku": "CHAIR-2", "name": "x", "price_cents": 0}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"sku": "CHAIR-3", "name": "x", "price_cents": -5}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"sku": "CHAIR-4", "name": "x", "price_cents": 5, "stock": -1}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            json!({"sku": "CHAIR-5", "name": "x", "price_cents": 5, "currency": "XYZ"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"sku": "CHAIR-OAK", "name": "again", "price_cents": 5}),
            StatusCode::CONFLICT,
            "duplicate_sku",
        ),
    ];
    for (body, status, code) in bad {
        expect_error(
            server
                .send_as(Method::POST, "/api/products", &body, &admin)
                .await,
            status,
            code,
        )
        .await;
    }
    let all = expect_status(
        server.get_as("/api/products?status=all", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["total"], 1, "{all}");

    // Customers may read but not write.
    let customer = server.customer_token("c@example.com").await;
    expect_error(
        server
            .send_as(
                Method::POST,
                "/api/products",
                &product("X-1", 1, "", 0),
                &customer,
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Optimistic update: the right version wins, a stale one gets 409 with the current version.
    let path = "/api/products/CHAIR-OAK";
    let updated = expect_status(
        server
            .send_as(
                Method::PATCH,
                path,
                &json!({"price_cents": 9900, "version": 1}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (updated["price_cents"].as_i64(), updated["version"].as_i64()),
        (Some(9900), Some(2))
    );
    assert_eq!(updated["name"], "Oak chair", "untouched fields stay");
    let stale = expect_error(
        server
            .send_as(
                Method::PATCH,
                path,
                &json!({"name": "Stale", "version": 1}),
                &admin,
            )
            .await,
        StatusCode::CONFLICT,
        "version_conflict",
    )
    .await;
    assert_eq!(stale["error"]["details"]["current_version"], 2);
    let with_header = server
        .request(Method::PATCH, path)
        .header("authorization", bearer(&admin))
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .expect("patch");
    expect_error(with_header, StatusCode::CONFLICT, "version_conflict").await;
    let got = expect_status(server.get(path).send().await.expect("get"), StatusCode::OK).await;
    assert_eq!(
        got, updated,
        "a read after a write sees the write, not a cached copy"
    );

    // Archive: hidden from the storefront list, still readable directly, listed for staff.
    let archived = expect_status(
        server
            .send_as(
                Method::POST,
                "/api/products/CHAIR-OAK/archive",
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(archived["active"], false);
    let public = expect_status(
        server.get("/api/products").send().await.expect("list"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(public["total"], 0);
    expect_error(
        server
            .get("/api/products?status=archived")
            .send()
            .await
            .expect("list"),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let staff_view = expect_status(
        server.get_as("/api/products?status=archived", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(staff_view["total"], 1);

    // Delete is refused while stock is held for it, then works.
    let reservation = expect_status(
        server
            .send_as(
                Method::POST,
                "/api/inventory/CHAIR-OAK/reservations",
                &json!({"quantity": 2}),
                &admin,
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    expect_error(
        server
            .send_as(Method::DELETE, path, &json!({}), &admin)
            .await,
        StatusCode::CONFLICT,
        "product_in_use",
    )
    .await;
    let released_path = format!(
        "/api/inventory/reservations/{}/release",
        reservation["id"].as_str().expect("id")
    );
    expect_status(
        server
            .send_as(Method::POST, &released_path, &json!({}), &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        server
            .send_as(Method::DELETE, path, &json!({}), &admin)
            .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_error(
        server.get(path).send().await.expect("get"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let kinds: Vec<String> = events(&server, &admin, "product.*")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "product.created",
            "product.updated",
            "product.archived",
            "product.deleted"
        ]
    );
}

#[tokio::test]
async fn lists_filter_by_category_subtree_price_text_and_stock_with_stable_sorting() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let catalog = [
        ("CH-1", 5000, "furniture/chairs", 3),
        ("CH-2", 5000, "furniture/chairs", 0),
        ("TB-1", 20000, "furniture/tables", 1),
        ("MUG-1", 900, "kitchen/mugs", 10),
        ("FURN-X", 100, "furnitureish", 1),
    ];
    for (sku, price, category, stock) in catalog {
        create(&server, &admin, product(sku, price, category, stock)).await;
    }
    let skus = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["sku"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let list = |query: &'static str| {
        let server = &server;
        async move {
            expect_status(
                server
                    .get(&format!("/api/products?{query}"))
                    .send()
                    .await
                    .expect("list"),
                StatusCode::OK,
            )
            .await
        }
    };
    let furniture = list("category=furniture&sort=price").await;
    assert_eq!(
        skus(&furniture),
        ["CH-1", "CH-2", "TB-1"],
        "a category covers its subtree, not its lookalikes"
    );
    assert_eq!(furniture["total"], 3);
    assert_eq!(
        skus(&list("category=Furniture/Chairs&sort=-price").await),
        ["CH-2", "CH-1"],
        "ties break by id, reversed with the sort"
    );
    assert_eq!(
        skus(&list("min_price=900&max_price=5000&sort=price").await),
        ["MUG-1", "CH-1", "CH-2"]
    );
    assert_eq!(skus(&list("q=mug").await), ["MUG-1"]);
    assert_eq!(skus(&list("in_stock=false").await), ["CH-2"]);
    assert_eq!(
        skus(&list("sort=-name&limit=2&offset=1").await),
        ["MUG-1", "FURN-X"]
    );
    // A crossed price range is an empty range, not an error.
    let crossed = list("min_price=10&max_price=1").await;
    assert_eq!(crossed["total"], 0, "{crossed}");
    assert_eq!(crossed["items"], json!([]), "{crossed}");
    for bad in [
        "sort=colour",
        "limit=0",
        "limit=501",
        "category=a//b",
        "status=gone",
    ] {
        expect_error(
            server
                .get(&format!("/api/products?{bad}"))
                .send()
                .await
                .expect("list"),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        )
        .await;
    }

    let categories = expect_status(
        server
            .get("/api/products/categories")
            .send()
            .await
            .expect("categories"),
        StatusCode::OK,
    )
    .await;
    let counts: Vec<(String, u64)> = categories["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap_or_default().to_owned(),
                c["product_count"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let expected = [
        ("furniture", 3),
        ("furniture/chairs", 2),
        ("furniture/tables", 1),
        ("furnitureish", 1),
        ("kitchen", 1),
        ("kitchen/mugs", 1),
    ];
    assert_eq!(counts, expected.map(|(p, n)| (p.to_owned(), n)));

    // Pages are cached, but never past a write: a page read again after a
    // change shows the change, and stock filters follow every stock change.
    let before = list("category=kitchen").await;
    assert_eq!(before["items"][0]["price_cents"], 900);
    expect_status(
        server
            .send_as(
                Method::PATCH,
                "/api/products/MUG-1",
                &json!({"price_cents": 1100}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        list("category=kitchen").await["items"][0]["price_cents"],
        1100
    );
    expect_status(
        server
            .send_as(
                Method::POST,
                "/api/inventory/CH-2/adjustments",
                &json!({"delta": 2, "reason": "delivery"}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(skus(&list("in_stock=false").await), Vec::<String>::new());
}

/// SPEC's race: 200 clients reserve one unit each from a SKU with 50 available.
#[tokio::test]
async fn two_hundred_clients_racing_for_fifty_units_get_exactly_fifty() {
    let server = Arc::new(unlimited());
    let admin = server.admin_token().await;
    create(&server, &admin, product("LAST-50", 1000, "", 50)).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (server, admin) = (server.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"quantity": 1, "reference": format!("client-{i}")});
            let response = server
                .send_as(
                    Method::POST,
                    "/api/inventory/LAST-50/reservations",
                    &body,
                    &admin,
                )
                .await;
            let status = response.status();
            let body: Value = response.json().await.expect("JSON");
            (status, body)
        }));
    }
    let (mut won, mut lost) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => won += 1,
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "insufficient_stock", "{body}");
                assert_eq!(body["error"]["details"]["available"], 0, "{body}");
                lost += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((won, lost), (50, 150));
    let after = stock(&server, &admin, "LAST-50").await;
    assert_eq!(
        (
            after["on_hand"].as_i64(),
            after["reserved"].as_i64(),
            after["available"].as_i64()
        ),
        (Some(50), Some(50), Some(0))
    );
    let active = expect_status(
        server
            .get_as(
                "/api/inventory/reservations?sku=LAST-50&status=active&limit=500",
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(active["total"], 50);
    let report = reconcile(&server, &admin, false).await;
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["reservations_checked"], 50);
}

#[tokio::test]
async fn concurrent_adjustments_never_take_stock_below_zero() {
    let server = Arc::new(unlimited());
    let admin = server.admin_token().await;
    create(&server, &admin, product("BOLT", 10, "", 30)).await;
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let (server, admin) = (server.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"delta": -1, "reason": "picked"});
            server
                .send_as(
                    Method::POST,
                    "/api/inventory/BOLT/adjustments",
                    &body,
                    &admin,
                )
                .await
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        30
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        30
    );
    assert_eq!(stock(&server, &admin, "BOLT").await["on_hand"], 0);
    let history = expect_status(
        server
            .get_as("/api/inventory/BOLT/movements?limit=500", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        history["total"], 31,
        "the initial stock and each accepted adjustment"
    );
    let newest = &history["items"][0];
    assert_eq!(
        (
            newest["on_hand_before"].as_i64(),
            newest["on_hand_after"].as_i64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(newest["actor"], ADMIN_EMAIL);
    assert_eq!(newest["reason"], "picked");
    assert_eq!(reconcile(&server, &admin, false).await["consistent"], true);
}

#[tokio::test]
async fn stock_is_set_and_adjusted_with_reasons_and_bad_changes_change_nothing() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    create(&server, &admin, product("LAMP", 2500, "lighting", 10)).await;
    let set = expect_status(
        server
            .send_as(
                Method::PUT,
                "/api/inventory/LAMP",
                &json!({"on_hand": 12, "reason": "stocktake", "low_stock_threshold": 4}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (set["on_hand"].as_i64(), set["low_stock_threshold"].as_i64()),
        (Some(12), Some(4))
    );
    expect_status(
        server
            .send_as(
                Method::POST,
                "/api/inventory/LAMP/reservations",
                &json!({"quantity": 5}),
                &admin,
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    let refused = [
        (
            Method::POST,
            "/api/inventory/LAMP/adjustments",
            json!({"delta": -13, "reason": "x"}),
            StatusCode::CONFLICT,
            "insufficient_stock",
        ),
        (
            Method::POST,
            "/api/inventory/LAMP/adjustments",
            json!({"delta": -8, "reason": "x"}),
            StatusCode::CONFLICT,
            "insufficient_stock",
        ),
        (
            Method::PUT,
            "/api/inventory/LAMP",
            json!({"on_hand": 4, "reason": "x"}),
            StatusCode::CONFLICT,
            "insufficient_stock",
        ),
        (
            Method::PUT,
            "/api/inventory/LAMP",
            json!({"on_hand": -1, "reason": "x"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/inventory/LAMP/adjustments",
            json!({"delta": 3, "reason": " "}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/inventory/LAMP/adjustments",
            json!({"delta": 0, "reason": "x"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/inventory/LAMP/reservations",
            json!({"quantity": 8}),
            StatusCode::CONFLICT,
            "insufficient_stock",
        ),
        (
            Method::POST,
            "/api/inventory/LAMP/reservations",
            json!({"quantity": 0}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/inventory/NOPE/adjustments",
            json!({"delta": 1, "reason": "x"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, body, status, code) in refused {
        expect_error(
            server.send_as(method, path, &body, &admin).await,
            status,
            code,
        )
        .await;
    }
    let after = stock(&server, &admin, "LAMP").await;
    assert_eq!(
        (after["on_hand"].as_i64(), after["reserved"].as_i64()),
        (Some(12), Some(5)),
        "refusals changed nothing"
    );
    let history = expect_status(
        server.get_as("/api/inventory/LAMP/movements", &admin).await,
        StatusCode::OK,
    )
    .await;
    let kinds: Vec<&str> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["reserve", "set", "set"]);
}

#[tokio::test]
async fn reservations_commit_release_and_expire_on_time() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    create(&server, &admin, product("TEE", 1500, "apparel", 10)).await;
    let reserve = |quantity: i64, ttl: u64| {
        let (server, admin) = (&server, admin.clone());
        async move {
            let body = json!({"quantity": quantity, "ttl_seconds": ttl, "reference": "crt_test"});
            expect_status(
                server
                    .send_as(
                        Method::POST,
                        "/api/inventory/TEE/reservations",
                        &body,
                        &admin,
                    )
                    .await,
                StatusCode::CREATED,
            )
            .await
        }
    };
    let sold = reserve(3, 600).await;
    let kept = reserve(2, 600).await;
    let lapsing = reserve(4, 1).await;
    assert_eq!(stock(&server, &admin, "TEE").await["available"], 1);

    let path = |r: &Value, action: &str| {
        format!(
            "/api/inventory/reservations/{}/{action}",
            r["id"].as_str().unwrap_or_default()
        )
    };
    let committed = expect_status(
        server
            .send_as(Method::POST, &path(&sold, "commit"), &json!({}), &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(committed["status"], "committed");
    let after = stock(&server, &admin, "TEE").await;
    assert_eq!(
        (after["on_hand"].as_i64(), after["reserved"].as_i64()),
        (Some(7), Some(6)),
        "a sale takes from both"
    );
    let released = expect_status(
        server
            .send_as(Method::POST, &path(&kept, "release"), &json!({}), &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(released["status"], "released");
    let again = expect_error(
        server
            .send_as(Method::POST, &path(&kept, "commit"), &json!({}), &admin)
            .await,
        StatusCode::CONFLICT,
        "reservation_not_active",
    )
    .await;
    assert_eq!(again["error"]["details"]["status"], "released");

    // The sweeper returns the lapsed hold's stock within a sweep interval or two.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let current = stock(&server, &admin, "TEE").await;
        if current["reserved"] == 0 {
            assert_eq!(current["available"], 7);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reservation never expired: {current}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = expect_status(
        server
            .get_as(
                &format!(
                    "/api/inventory/reservations/{}",
                    lapsing["id"].as_str().unwrap_or_default()
                ),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["status"], "expired");
    expect_error(
        server
            .send_as(Method::POST, &path(&lapsing, "commit"), &json!({}), &admin)
            .await,
        StatusCode::CONFLICT,
        "reservation_not_active",
    )
    .await;
    let kinds: Vec<String> = events(&server, &admin, "inventory.*")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    for kind in [
        "inventory.reserved",
        "inventory.committed",
        "inventory.released",
        "inventory.expired",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    assert_eq!(reconcile(&server, &admin, false).await["consistent"], true);
}

#[tokio::test]
async fn low_stock_alerts_once_per_crossing_and_reaches_staff_by_email() {
    // No alert window: each crossing is mailed (the window has its own test).
    let server = TestServer::start_with(&[("SHOP_NOTIFY_LOW_STOCK_WINDOW", "0")]);
    let admin = server.admin_token().await;
    create(&server, &admin, json!({"sku": "CUP", "name": "Cup", "price_cents": 500, "stock": 10, "low_stock_threshold": 3})).await;
    let adjust = |delta: i64| {
        let (server, admin) = (&server, admin.clone());
        async move {
            let body = json!({"delta": delta, "reason": "sale"});
            expect_status(
                server
                    .send_as(
                        Method::POST,
                        "/api/inventory/CUP/adjustments",
                        &body,
                        &admin,
                    )
                    .await,
                StatusCode::OK,
            )
            .await
        }
    };
    adjust(-6).await; // 4: above the threshold
    adjust(-1).await; // 3: crosses
    adjust(-1).await; // 2: still low, no second alert
    adjust(5).await; // 7: recovered
    adjust(-5).await; // 2: crosses again
    let alerts = events(&server, &admin, "inventory.low_stock").await;
    let available: Vec<i64> = alerts
        .iter()
        .filter_map(|e| e["data"]["available"].as_i64())
        .collect();
    assert_eq!(available, [3, 2]);
    let low = expect_status(
        server.get_as("/api/inventory?low=true", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(low["items"][0]["sku"], "CUP");

    // The notifications service turns each crossing into an urgent email to staff.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sent = expect_status(
            server
                .get_as("/api/notifications?template=low_stock_alert", &admin)
                .await,
            StatusCode::OK,
        )
        .await;
        if sent["total"] == 2 {
            assert_eq!(sent["items"][0]["recipient"], ADMIN_EMAIL);
            assert_eq!(sent["items"][0]["priority"], "urgent");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no low-stock alerts queued: {sent}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reconcile_reports_drift_and_fix_repairs_it() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    create(&server, &admin, product("NAIL", 5, "", 20)).await;
    create(&server, &admin, product("SCREW", 5, "", 20)).await;
    expect_status(
        server
            .send_as(
                Method::POST,
                "/api/inventory/NAIL/reservations",
                &json!({"quantity": 4}),
                &admin,
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(reconcile(&server, &admin, false).await["consistent"], true);

    // Someone edits the database by hand, behind the service's back.
    server.sql("UPDATE stock SET reserved = 9 WHERE sku = 'NAIL'");
    server.sql("UPDATE stock SET on_hand = 17 WHERE sku = 'SCREW'");

    let report = reconcile(&server, &admin, false).await;
    assert_eq!(report["consistent"], false);
    let drift: Vec<(String, String, i64, i64, bool)> = report["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .map(|d| {
            (
                d["sku"].as_str().unwrap_or_default().to_owned(),
                d["check"].as_str().unwrap_or_default().to_owned(),
                d["expected"].as_i64().unwrap_or_default(),
                d["found"].as_i64().unwrap_or_default(),
                d["fixed"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        drift,
        [
            (
                "NAIL".to_owned(),
                "reserved_matches_reservations".to_owned(),
                4,
                9,
                false
            ),
            (
                "SCREW".to_owned(),
                "ledger_matches_on_hand".to_owned(),
                20,
                17,
                false
            ),
        ]
    );
    let fixed = reconcile(&server, &admin, true).await;
    assert!(
        fixed["drift"]
            .as_array()
            .expect("drift")
            .iter()
            .all(|d| d["fixed"] == true),
        "{fixed}"
    );
    assert_eq!(stock(&server, &admin, "NAIL").await["reserved"], 4);
    assert_eq!(reconcile(&server, &admin, false).await["consistent"], true);
}

fn import_request(
    server: &TestServer,
    token: &str,
    query: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    server
        .request(Method::POST, &format!("/api/products/import?{query}"))
        .header("authorization", bearer(token))
        .body(body)
}

async fn export(server: &TestServer, token: &str, format: &str) -> String {
    let response = server
        .get_as(&format!("/api/products/export?format={format}"), token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("export body")
}

#[tokio::test]
async fn imports_report_bad_rows_by_line_and_exports_round_trip_in_every_format() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let csv = "sku,name,description,category,price,currency,attributes,images,stock\n\
        HOST-1,\"Sofa, \"\"Deluxe\"\" edition\",\"Seats three.\nVelvet, green.\",Furniture/Sofas,899.00,EUR,\"{\"\"colour\"\":\"\"green\"\"}\",\"[\"\"https://img.example.com/sofa.jpg\"\"]\",4\n\
        HOST-2,Crème brûlée torch,Ünïcödé ✓,kitchen,24.5,USD,,,12\n\
        HOST-3,Broken price,,kitchen,12.345,USD,,,1\n\
        host-4,Lower-case SKU,,kitchen,1,USD,,,1\n\
        HOST-5,Too few fields\n\
        HOST-6,Negative stock,,kitchen,3,USD,,,-2\n";
    let dry = expect_status(
        import_request(&server, &admin, "format=csv&dry_run=true", csv)
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            dry["created"].as_u64(),
            dry["failed"].as_u64(),
            dry["dry_run"].as_bool()
        ),
        (Some(2), Some(4), Some(true))
    );
    assert_eq!(
        expect_status(
            server.get_as("/api/products?status=all", &admin).await,
            StatusCode::OK
        )
        .await["total"],
        0,
        "a dry run writes nothing"
    );
    let summary = expect_status(
        import_request(&server, &admin, "format=csv", csv)
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let errors: Vec<(u64, String)> = summary["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap_or_default(),
                e["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (5, "price".to_owned()),
            (6, "sku".to_owned()),
            (7, String::new()),
            (8, "stock".to_owned())
        ],
        "{summary}"
    );
    assert_eq!(
        (summary["created"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(4))
    );
    let sofa = expect_status(
        server
            .get("/api/products/HOST-1")
            .send()
            .await
            .expect("get"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(sofa["name"], "Sofa, \"Deluxe\" edition");
    assert_eq!(sofa["description"], "Seats three.\nVelvet, green.");
    assert_eq!(
        (sofa["price_cents"].as_i64(), sofa["currency"].as_str()),
        (Some(89900), Some("EUR"))
    );
    assert_eq!(stock(&server, &admin, "HOST-1").await["on_hand"], 4);

    // Every format round-trips: export, import into a fresh shop, export again, byte for byte.
    let other = TestServer::start();
    let other_admin = other.admin_token().await;
    for format in ["csv", "ndjson", "json"] {
        let exported = export(&server, &admin, format).await;
        let summary = expect_status(
            import_request(
                &other,
                &other_admin,
                &format!("format={format}"),
                exported.clone(),
            )
            .send()
            .await
            .expect("import"),
            StatusCode::OK,
        )
        .await;
        assert_eq!(summary["failed"], 0, "{format}: {summary}");
        assert_eq!(
            export(&other, &other_admin, format).await,
            exported,
            "{format} round trip"
        );
        let again = expect_status(
            import_request(&server, &admin, &format!("format={format}"), exported)
                .send()
                .await
                .expect("import"),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            (again["unchanged"].as_u64(), again["updated"].as_u64()),
            (Some(2), Some(0)),
            "{format}: re-import changes nothing"
        );
    }

    // A file that is not the format at all is refused whole.
    expect_error(
        import_request(&server, &admin, "format=csv", "colour,size\nred,L\n")
            .send()
            .await
            .expect("import"),
        StatusCode::BAD_REQUEST,
        "invalid_import",
    )
    .await;
    expect_error(
        import_request(&server, &admin, "format=json", "{\"sku\":\"A\"}")
            .send()
            .await
            .expect("import"),
        StatusCode::BAD_REQUEST,
        "invalid_import",
    )
    .await;
    expect_error(
        import_request(&server, &admin, "", "x")
            .send()
            .await
            .expect("import"),
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn a_large_import_streams_past_the_body_limit_in_batches() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    // About 3 MB, three times the default body limit, sent as a stream of chunks.
    let rows = 20_000;
    let chunks: Vec<Result<String, std::io::Error>> = (0..rows)
        .collect::<Vec<u32>>()
        .chunks(1000)
        .map(|chunk| {
            Ok(chunk
                .iter()
                .map(|i| format!("{{\"sku\":\"BULK-{i:06}\",\"name\":\"Bulk item {i} with a longer descriptive name\",\"description\":\"{}\",\"price_cents\":{},\"category\":\"bulk/c{}\",\"stock\":{}}}\n", "d".repeat(60), 100 + i, i % 7, i % 50))
                .collect())
        })
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let summary = expect_status(
        import_request(&server, &admin, "format=ndjson", body)
            .header("content-type", "application/x-ndjson")
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (summary["created"].as_u64(), summary["failed"].as_u64()),
        (Some(u64::from(rows)), Some(0)),
        "{summary}"
    );
    let bulk = expect_status(
        server
            .get("/api/products?category=bulk&limit=1")
            .send()
            .await
            .expect("list"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(bulk["total"], rows);
    assert_eq!(stock(&server, &admin, "BULK-000049").await["on_hand"], 49);
}

#[tokio::test]
async fn serve_demo_loads_the_sample_catalog_once() {
    let mut server = TestServer::start_full(&[], &["--demo"]);
    let admin = server.admin_token().await;
    let all = expect_status(
        server
            .get_as("/api/products?status=all&limit=1", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["total"], 560);
    let categories = expect_status(
        server
            .get("/api/products/categories")
            .send()
            .await
            .expect("categories"),
        StatusCode::OK,
    )
    .await;
    let leaves = categories["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| c["depth"] == 2)
        .count();
    assert!(leaves >= 20, "{leaves} categories");
    let low = expect_status(
        server
            .get_as("/api/inventory?low=true&limit=1", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        low["total"].as_u64().is_some_and(|n| n > 0),
        "the sample has low stock to show: {low}"
    );
    let customers = expect_status(
        server
            .get_as("/api/users?role=customer&limit=1", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(customers["total"], 10);
    assert!(
        server
            .stderr()
            .contains("loaded the demo catalog: 560 products"),
        "{}",
        server.stderr()
    );

    server.restart();
    let admin = server.admin_token().await;
    let all = expect_status(
        server
            .get_as("/api/products?status=all&limit=1", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        all["total"], 560,
        "a second --demo start leaves the catalog alone"
    );
}
