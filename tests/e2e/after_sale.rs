//! After the sale, through the `shop` command line: where an order's money
//! stands (`financial_status`), a fully refunded order that is no longer
//! shipped, confirmation before money moves, and one net revenue in the
//! analytics and `/metrics`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

const GOOD_CARD: &str = "card:4242424242424242";

/// Logs in as the admin and adds CHAIR-01 (129.99, 20 in stock).
fn stocked(server: &TestServer) {
    server.cli_login_admin();
    server
        .shop(&[
            "product",
            "add",
            "--sku",
            "CHAIR-01",
            "--name",
            "Oak chair",
            "--price",
            "129.99",
            "--stock",
            "20",
        ])
        .expect(0);
}

fn paid_order(server: &TestServer, quantity: u32) -> Value {
    server
        .shop(&[
            "order",
            "create",
            "--item",
            &format!("CHAIR-01:{quantity}"),
            "--customer",
            "carol@example.com",
            "--pay",
            GOOD_CARD,
            "-o",
            "json",
        ])
        .expect(0)
        .json()
}

fn number(order: &Value) -> String {
    order["number"].as_str().expect("a number").to_owned()
}

fn get(server: &TestServer, number: &str) -> Value {
    server
        .shop(&["order", "get", number, "-o", "json"])
        .expect(0)
        .json()
}

fn listed(server: &TestServer, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["order", "list", "-o", "ndjson"];
    args.extend_from_slice(filters);
    server
        .shop(&args)
        .expect(0)
        .lines()
        .iter()
        .map(number)
        .collect()
}

#[tokio::test]
async fn a_fully_refunded_order_is_not_shipped_and_lists_say_where_the_money_stands() {
    let server = TestServer::start();
    stocked(&server);
    let refunded = number(&paid_order(&server, 1));
    let partly = number(&paid_order(&server, 2));
    let kept = number(&paid_order(&server, 1));
    let unpaid = server
        .shop(&["order", "create", "--item", "CHAIR-01", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(unpaid["financial_status"], "pending");
    assert_eq!(get(&server, &kept)["financial_status"], "paid");
    // Cancelling an unpaid order moves no money: nothing to confirm.
    let voided = server
        .shop(&["order", "cancel", &number(&unpaid), "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(voided["financial_status"], "voided");

    // A full refund off a terminal needs --yes, and without it nothing moves.
    let unconfirmed = server.shop(&["order", "refund", &refunded]).expect(2);
    assert!(unconfirmed.stderr.contains("--yes"), "{unconfirmed:#?}");
    assert_eq!(get(&server, &refunded)["refunded_cents"], 0);
    server
        .shop(&["order", "refund", &refunded, "--yes"])
        .expect(0);
    // A partial refund is not a full one: no confirmation asked.
    server
        .shop(&["order", "refund", &partly, "--amount", "10.00"])
        .expect(0);

    let order = get(&server, &refunded);
    assert_eq!(order["status"], "paid");
    assert_eq!(order["financial_status"], "refunded");
    assert_eq!(
        get(&server, &partly)["financial_status"],
        "partially_refunded"
    );

    // Shipping refunded goods is refused, and changes nothing.
    let ship = server.shop(&["order", "ship", &refunded]).expect(5);
    assert!(ship.stderr.contains("order_refunded"), "{ship:#?}");
    assert_eq!(get(&server, &refunded)["status"], "paid");

    assert_eq!(
        listed(&server, &["--financial-status", "refunded"]),
        [refunded.as_str()]
    );
    assert_eq!(
        listed(&server, &["--financial-status", "partially_refunded"]),
        [partly.as_str()]
    );
    assert_eq!(
        listed(&server, &["--financial-status", "voided"]),
        [number(&unpaid)]
    );
    // The README's pipeline: only what is paid and not refunded gets shipped.
    let to_ship = listed(&server, &["--status", "paid", "--financial-status", "paid"]);
    assert_eq!(to_ship, [kept.as_str()]);
    server
        .shop(&["order", "list", "--financial-status", "settled"])
        .expect(2);
    let token = server.admin_token().await;
    let bad = server
        .get_as("/api/orders?financial_status=settled", &token)
        .await;
    expect_error(bad, StatusCode::BAD_REQUEST, "validation_failed").await;
    // The table shows the refund beside the status, and -o wide how much it was.
    for (format, texts) in [
        ("table", &["partially_refunded"][..]),
        ("wide", &["partially_refunded", "10.00 USD"]),
    ] {
        let table = server
            .shop(&[
                "order",
                "list",
                "--financial-status",
                "partially_refunded",
                "-o",
                format,
            ])
            .expect(0);
        for text in texts {
            assert!(table.stdout.contains(text), "{text}: {table:#?}");
        }
    }

    // A partly refunded order still ships.
    server.shop(&["order", "ship", &partly]).expect(0);

    // Cancelling a paid order refunds it: confirmed with --yes off a terminal.
    let help = server.shop(&["order", "cancel", "--help"]).expect(0);
    assert!(
        help.stdout.contains("refunded to the customer"),
        "{help:#?}"
    );
    server.shop(&["order", "cancel", &kept]).expect(2);
    assert_eq!(get(&server, &kept)["status"], "paid");
    let cancelled = server
        .shop(&["order", "cancel", &kept, "--yes", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["financial_status"], "refunded");

    // Net revenue: only the partly refunded order keeps money.
    let partly_total = get(&server, &partly)["total_cents"]
        .as_i64()
        .expect("total");
    let net = partly_total - 1000;
    let analytics = server
        .shop(&["order", "analytics", "-o", "json"])
        .expect(0)
        .json();
    let days = analytics["revenue_by_day"].as_array().expect("days");
    let revenue: i64 = days
        .iter()
        .map(|d| d["revenue_cents"].as_i64().unwrap())
        .sum();
    let orders: u64 = days.iter().map(|d| d["orders"].as_u64().unwrap()).sum();
    assert_eq!((revenue, orders), (net, 1), "{analytics}");
    assert_eq!(analytics["average_order_value"][0]["amount_cents"], net);
    let sample = format!("shop_net_revenue_cents{{currency=\"USD\"}} {net}");
    eventually("the net revenue gauge", Duration::from_secs(20), || {
        let server = &server;
        let token = &token;
        let sample = &sample;
        async move {
            let text = server.get_as("/metrics", token).await.text().await.ok()?;
            text.lines().any(|line| line == sample).then_some(())
        }
    })
    .await;
}
