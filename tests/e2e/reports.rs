//! Customers and the sales report, through the `shop` command line and the
//! API: figures that match the orders placed to the cent, and the same net
//! as the order analytics.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const GOOD_CARD: &str = "card:4242424242424242";

fn add_product(server: &TestServer, sku: &str, price: &str, currency: &str) {
    server
        .shop(&[
            "product",
            "add",
            "--sku",
            sku,
            "--name",
            sku,
            "--price",
            price,
            "--currency",
            currency,
            "--stock",
            "50",
        ])
        .expect(0);
}

/// Places a paid order of `item` for `email`; returns the order.
fn paid(server: &TestServer, item: &str, email: &str) -> Value {
    server
        .shop(&[
            "order",
            "create",
            "--item",
            item,
            "--customer",
            email,
            "--pay",
            GOOD_CARD,
            "-o",
            "json",
        ])
        .expect(0)
        .json()
}

fn cents(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not cents: {value}"))
}

/// What an order keeps: charged minus refunded.
fn net(order: &Value) -> i64 {
    cents(&order["total_cents"]) - cents(&order["refunded_cents"])
}

fn refreshed(server: &TestServer, order: &Value) -> Value {
    server
        .shop(&["order", "get", order["id"].as_str().unwrap(), "-o", "json"])
        .expect(0)
        .json()
}

#[tokio::test]
async fn customers_and_the_sales_report_match_the_orders_to_the_cent() {
    let server = TestServer::start();
    server.cli_login_admin();
    add_product(&server, "MUG-1", "12.99", "USD");
    add_product(&server, "LAMP-1", "89.50", "USD");
    add_product(&server, "TEE-EU", "24.00", "EUR");

    // Carol buys three times (two currencies) and gets part of one back;
    // Dave buys once and gets all of it back; Erin only leaves an unpaid order.
    let carol_1 = paid(&server, "MUG-1:3", "carol@example.com");
    let carol_2 = paid(&server, "LAMP-1:1", "carol@example.com");
    server
        .shop(&[
            "order",
            "refund",
            carol_2["id"].as_str().unwrap(),
            "--amount",
            "10.25",
        ])
        .expect(0);
    let carol_3 = paid(&server, "TEE-EU:2", "Carol@Example.com");
    let dave = paid(&server, "LAMP-1:2", "dave@example.com");
    server
        .shop(&["order", "refund", dave["id"].as_str().unwrap(), "--yes"])
        .expect(0);
    server
        .shop(&[
            "order",
            "create",
            "--item",
            "MUG-1:1",
            "--customer",
            "erin@example.com",
        ])
        .expect(0);
    let carol_orders: Vec<Value> = [&carol_1, &carol_2, &carol_3]
        .into_iter()
        .map(|order| refreshed(&server, order))
        .collect();
    let dave = refreshed(&server, &dave);

    // The list: buyers only, newest first, with what each kept per currency.
    let list = server
        .shop(&["customer", "list", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(list["total"], 2, "{list:#}");
    let emails: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["dave@example.com", "carol@example.com"]);
    let carol = &list["items"][1];
    assert_eq!(carol["orders_count"], 3);
    assert_eq!(carol["currency"], "EUR", "the latest order's currency");
    assert_eq!(cents(&carol["total_spent_cents"]), net(&carol_orders[2]));
    let usd: i64 = carol_orders[..2].iter().map(net).sum();
    assert_eq!(
        carol["spent"],
        json!([{"currency": "EUR", "amount_cents": net(&carol_orders[2])},
               {"currency": "USD", "amount_cents": usd}])
    );
    assert_eq!(carol["first_order_at"], carol_orders[0]["created_at"]);
    assert_eq!(carol["last_order_at"], carol_orders[2]["created_at"]);
    assert_eq!(carol["user_id"], Value::Null, "no account with that email");
    let dave_row = &list["items"][0];
    assert_eq!(dave_row["orders_count"], 1);
    assert_eq!(dave_row["total_spent_cents"], 0, "refunded in full");

    // Searching, one by email in any case, and one that bought nothing.
    let found = server
        .shop(&["customer", "list", "--search", "CAROL", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(found["total"], 1);
    let none = server
        .shop(&["customer", "list", "--search", "100%_", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(none["total"], 0, "LIKE wildcards are text");
    let one = server
        .shop(&["customer", "get", "CAROL@example.com", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(&one, carol);
    server
        .shop(&["customer", "get", "erin@example.com"])
        .expect(4);
    let paged = server
        .shop(&[
            "customer", "list", "--limit", "1", "--offset", "5", "-o", "json",
        ])
        .expect(0)
        .json();
    assert_eq!(
        (paged["total"].clone(), paged["items"].clone()),
        (json!(2), json!([]))
    );

    // Today's report: one row per currency, adding up to the orders.
    let report = server
        .shop(&["report", "sales", "-o", "json"])
        .expect(0)
        .json();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report:#}");
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let usd_orders: Vec<&Value> = carol_orders[..2].iter().chain([&dave]).collect();
    let usd_row = rows.iter().find(|r| r["currency"] == "USD").unwrap();
    assert_eq!(usd_row["period"], today);
    assert_eq!(
        usd_row["orders"], 3,
        "an order refunded in full was still a sale"
    );
    let sum = |field: &str| -> i64 { usd_orders.iter().map(|o| cents(&o[field])).sum() };
    assert_eq!(cents(&usd_row["gross_cents"]), sum("total_cents"));
    assert_eq!(cents(&usd_row["refunds_cents"]), sum("refunded_cents"));
    assert_eq!(
        cents(&usd_row["net_cents"]),
        usd_orders.iter().map(|o| net(o)).sum::<i64>()
    );
    assert_eq!(cents(&usd_row["tax_cents"]), sum("tax_cents"));

    // The same net as the order analytics, the dashboard's source.
    let analytics = server
        .shop(&["order", "analytics", "-o", "json"])
        .expect(0)
        .json();
    for row in rows {
        let day = analytics["revenue_by_day"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["day"] == today && d["currency"] == row["currency"])
            .unwrap();
        assert_eq!(day["revenue_cents"], row["net_cents"], "{day} vs {row}");
    }

    // Weeks and months are labelled as ISO weeks and months; CSV for the books.
    let (year, week, _) = time::OffsetDateTime::now_utc().date().to_iso_week_date();
    let weekly = server
        .shop(&["report", "sales", "--group", "week", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(weekly["rows"][0]["period"], format!("{year}-W{week:02}"));
    let monthly = server
        .shop(&["report", "sales", "--group", "month", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(monthly["rows"][0]["period"], today[..7]);
    let csv = server
        .get(&format!(
            "/api/reports/sales?from={today}&to={today}&format=csv"
        ))
        .header("authorization", bearer(&server.admin_token().await))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "period,currency,orders,gross_cents,discount_cents,shipping_cents,tax_cents,refunds_cents,net_cents"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{today},USD,3,{}", sum("total_cents")))),
        "{csv}"
    );
    let cli_csv = server.shop(&["report", "sales", "-o", "csv"]).expect(0);
    assert!(cli_csv.stdout.lines().count() == 3, "{}", cli_csv.stdout);

    // Another day has no rows.
    let empty = server
        .shop(&[
            "report",
            "sales",
            "--from",
            "2020-01-01",
            "--to",
            "2020-12-31",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(empty["rows"], json!([]));
}

#[tokio::test]
async fn bad_report_and_customer_queries_are_refused_with_their_field() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    for (path, code, field) in [
        (
            "/api/reports/sales?from=2026-03-01&to=2026-02-01",
            "invalid_range",
            "from",
        ),
        (
            "/api/reports/sales?from=2026-02-30",
            "validation_failed",
            "from",
        ),
        ("/api/reports/sales?to=tomorrow", "validation_failed", "to"),
        ("/api/customers/not-an-email", "validation_failed", "email"),
        ("/api/customers?limit=0", "validation_failed", "limit"),
    ] {
        let body = expect_status(server.get_as(path, &admin).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(
            body["error"]["details"]["fields"][field].is_string(),
            "{path}: {body}"
        );
    }
    for path in [
        "/api/reports/sales?group=year",
        "/api/reports/sales?format=pdf",
        "/api/customers?sort=name",
    ] {
        let response = server.get_as(path, &admin).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // A customer sees neither.
    let customer = server.customer_token("zoe@example.com").await;
    for path in ["/api/customers", "/api/reports/sales"] {
        assert_eq!(
            server.get_as(path, &customer).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // The CLI checks the group before asking.
    server.cli_login_admin();
    server
        .shop(&["report", "sales", "--group", "year"])
        .expect(2);
}
