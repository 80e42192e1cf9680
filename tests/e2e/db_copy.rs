//! `shop db copy`: a running SQLite shop copied into PostgreSQL with the real
//! binary, then a second server on the copy answers as the first does.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn get(server: &TestServer, token: &str, path: &str) -> Value {
    expect_status(server.get_as(path, token).await, StatusCode::OK).await
}

/// A paid order of one unit of `sku`, placed by `token`.
async fn paid_order(server: &TestServer, token: &str, sku: &str) -> Value {
    let body = json!({
        "items": [{"sku": sku, "quantity": 1}],
        "shipping_address": {"name": "Dana", "line1": "1 Elm St", "city": "Austin",
                             "postal_code": "73301", "country": "US"},
        "shipping_method": "standard",
        "payment": {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035},
    });
    let order = expect_status(
        server
            .send_as(Method::POST, "/api/orders", &body, token)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(order["status"], "paid", "{order}");
    order
}

/// `ORD-001042` as 1042.
fn serial(order: &Value) -> u64 {
    let number = order["number"].as_str().unwrap();
    number
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap()
}

/// The whole event log as (id, type), paged through.
async fn log(server: &TestServer, token: &str) -> Vec<(u64, String)> {
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |(id, _)| *id);
        let page = get(
            server,
            token,
            &format!("/api/events/log?after={after}&limit=1000"),
        )
        .await;
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return events;
        }
        events.extend(items.iter().map(|event| {
            (
                event["id"].as_u64().unwrap(),
                event["type"].as_str().unwrap().to_owned(),
            )
        }));
    }
}

/// What both servers must answer alike.
async fn answers(server: &TestServer, token: &str, sku: &str, order: &str) -> Vec<Value> {
    vec![
        get(server, token, "/api/products?limit=100").await,
        get(server, token, "/api/products?limit=100&offset=500").await,
        get(server, token, &format!("/api/inventory/{sku}")).await,
        get(server, token, "/api/orders?limit=100").await,
        get(server, token, &format!("/api/orders/{order}")).await,
        get(server, token, "/api/payments/analytics").await,
    ]
}

#[tokio::test]
async fn a_running_sqlite_shop_is_copied_to_postgres_and_a_server_on_the_copy_answers_alike() {
    let unlimited = [("SHOP_RATE_LIMIT_IP", "0"), ("SHOP_RATE_LIMIT_TOKEN", "0")];
    let server = TestServer::start_full(&unlimited, &["--demo"]);
    let admin = server.admin_token().await;
    let products = get(&server, &admin, "/api/products?limit=2").await;
    assert_eq!(products["total"], 560, "the demo catalog");
    let sku = products["items"][0]["sku"].as_str().unwrap().to_owned();
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(paid_order(&server, &admin, &sku).await);
    }
    let refund = expect_status(
        server
            .send_as(
                Method::POST,
                &format!(
                    "/api/payments/{}/refunds",
                    orders[0]["payment_id"].as_str().unwrap()
                ),
                &json!({"amount_cents": 100, "reason": "goodwill"}),
                &admin,
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(refund["status"], "succeeded", "{refund}");
    let order = orders[0]["id"].as_str().unwrap().to_owned();

    // Copied while the server runs.
    let database = postgres_database();
    let url = database.1.clone();
    let copied = run_cli(server.command(&["db", "copy", "--to", &url]), None).expect(0);
    let report = copied.json();
    assert_eq!(
        report["database"],
        server.db().to_str().unwrap(),
        "{report}"
    );
    assert!(report["tables"].as_u64().unwrap() > 30, "{report}");
    assert_eq!(report["copied"]["products"], 560, "{report}");
    assert_eq!(report["copied"]["orders"], 3, "{report}");
    assert_eq!(report["copied"]["refunds"], 1, "{report}");
    let rows: u64 = report["copied"]
        .as_object()
        .unwrap()
        .values()
        .map(|rows| rows.as_u64().unwrap())
        .sum();
    assert_eq!(report["rows"], rows, "{report}");
    let total: i64 = orders
        .iter()
        .map(|order| order["total_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(report["verified"]["orders.total_cents"], total, "{report}");
    assert_eq!(report["verified"]["refunds.amount_cents"], 100, "{report}");
    assert!(
        copied.stderr.is_empty(),
        "no progress when piped: {copied:?}"
    );

    // A second server on the copy answers as the first.
    let copy = TestServer::start_on(Some(database.clone()), &unlimited, &[]);
    let copy_admin = copy.admin_token().await;
    assert_eq!(
        answers(&server, &admin, &sku, &order).await,
        answers(&copy, &copy_admin, &sku, &order).await
    );
    // The log as of the copy's snapshot: the original goes on logging (its
    // notifications are sent after the answers), the copy logs its own logins.
    let last_copied = report["verified"]["events.max_id"].as_u64().unwrap();
    let as_copied = |mut events: Vec<(u64, String)>| {
        events.retain(|(id, _)| *id <= last_copied);
        events
    };
    let before = as_copied(log(&server, &admin).await);
    let after = as_copied(log(&copy, &copy_admin).await);
    assert!(before.len() > 560, "{}", before.len());
    assert!(
        before.iter().any(|(_, kind)| kind == "payment.refunded"),
        "the snapshot is taken after the refund"
    );
    assert!(
        before == after,
        "the same events, ids and types; the first difference: {:?}",
        before.iter().zip(&after).find(|(a, b)| a != b)
    );

    // The copy goes on numbering where the original stopped.
    let highest = orders.iter().map(serial).max().unwrap();
    let next = paid_order(&copy, &copy_admin, &sku).await;
    assert_eq!(serial(&next), highest + 1, "{next}");

    // The copy is no longer empty: a second copy is refused and writes nothing.
    // (With a password, which the test cluster does not ask for, and which
    // no message shows.)
    let with_password = url.replacen("://shop@", "://shop:hunter2-secret@", 1);
    assert_ne!(with_password, url);
    let again = run_cli(
        server.command(&["db", "copy", "--to", &with_password]),
        None,
    )
    .expect(5);
    assert!(again.stderr.contains("not empty"), "{again:?}");
    assert!(!again.stderr.contains("hunter2"), "{again:?}");
    let orders_on_copy = get(&copy, &copy_admin, "/api/orders?limit=100").await;
    assert_eq!(orders_on_copy["total"], 4, "{orders_on_copy}");

    // Only a PostgreSQL URL is a target.
    let sqlite = run_cli(
        server.command(&["db", "copy", "--to", "sqlite:/tmp/elsewhere.db"]),
        None,
    )
    .expect(2);
    assert!(sqlite.stderr.contains("PostgreSQL"), "{sqlite:?}");
}

/// A shop already on PostgreSQL is neither copied nor backed up by these
/// commands, which would otherwise read a default SQLite file that is not
/// the shop's: each says what to use instead, and touches nothing.
#[test]
fn a_shop_configured_on_postgres_is_sent_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "database_url = \"postgres://shop:s3cret@db.internal/shop\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shop"));
        command
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("SHOP_DB")
            .env_remove("SHOP_CONFIG")
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
        run_cli(command, None).expect(2)
    };
    let copy = run(&["db", "copy", "--to", "postgres://shop@127.0.0.1:1/other"]);
    assert!(copy.stderr.contains("already PostgreSQL"), "{copy:?}");
    assert!(copy.stderr.contains("pg_dump"), "{copy:?}");
    let backup_file = dir.path().join("backup.db");
    let backup = run(&["db", "backup", backup_file.to_str().unwrap()]);
    assert!(backup.stderr.contains("pg_dump"), "{backup:?}");
    for answer in [&copy, &backup] {
        assert!(!answer.stderr.contains("s3cret"), "{answer:?}");
    }
    assert!(!backup_file.exists());
    assert!(
        !dir.path().join("data").exists(),
        "no default database was made"
    );

    // The same when the environment says so, as it does to `shop serve`.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shop"));
    command
        .args(["db", "backup"])
        .arg(&backup_file)
        .env_remove("SHOP_DB")
        .env_remove("SHOP_CONFIG")
        .env(
            "SHOP_DATABASE_URL",
            "postgres://shop:s3cret@db.internal/shop",
        )
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    let from_env = run_cli(command, None).expect(2);
    assert!(from_env.stderr.contains("pg_dump"), "{from_env:?}");
    assert!(!from_env.stderr.contains("s3cret"), "{from_env:?}");
    assert!(!backup_file.exists());
}
