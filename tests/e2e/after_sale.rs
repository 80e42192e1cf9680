//! After the sale, through the `shop` command line: where an order's money
//! stands (`financial_status`), a fully refunded order that is no longer
//! shipped, confirmation before money moves, and one net revenue in the
//! analytics and `/metrics`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

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

/// The emails that went to `recipient` with `template`, once there are `count`.
async fn emails(server: &TestServer, token: &str, template: &str, count: usize) -> Vec<Value> {
    let path = "/api/notifications/deliveries?limit=100&channel=email&recipient=carol@example.com";
    eventually(template, Duration::from_secs(20), || async {
        let found = server
            .get_as(path, token)
            .await
            .json::<Value>()
            .await
            .ok()?;
        let items: Vec<Value> = found["items"]
            .as_array()?
            .iter()
            .filter(|d| d["template"] == template)
            .cloned()
            .collect();
        (items.len() >= count).then_some(items)
    })
    .await
}

#[tokio::test]
async fn a_partial_shipment_then_the_rest_ships_the_order_with_tracking_links() {
    let server = TestServer::start();
    stocked(&server);
    server
        .shop(&[
            "product",
            "add",
            "--sku",
            "LAMP-02",
            "--name",
            "Brass lamp",
            "--price",
            "45.00",
            "--stock",
            "5",
        ])
        .expect(0);
    let order = server
        .shop(&[
            "order",
            "create",
            "--item",
            "CHAIR-01:2",
            "--item",
            "LAMP-02:1",
            "--customer",
            "carol@example.com",
            "--pay",
            GOOD_CARD,
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    let number = number(&order);

    // One chair goes first, with UPS: the built-in template makes the link.
    let first = server
        .shop(&[
            "order",
            "ship",
            &number,
            "--item",
            "CHAIR-01:1",
            "--carrier",
            "ups",
            "--tracking",
            "1Z999AA1",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(first["status"], "paid", "{first}");
    assert_eq!(first["fulfillment_status"], "partially_shipped");
    let shipment = &first["fulfillments"][0];
    assert_eq!(
        shipment["items"],
        serde_json::json!([{"sku": "CHAIR-01", "quantity": 1}])
    );
    assert_eq!(shipment["tracking_number"], "1Z999AA1");
    assert_eq!(
        shipment["tracking_url"],
        "https://www.ups.com/track?tracknum=1Z999AA1"
    );
    assert!(shipment["delivered_at"].is_null());

    // More chairs than are left: its own code, exit 5, and nothing shipped.
    let too_many = server
        .shop(&["order", "ship", &number, "--item", "CHAIR-01:2"])
        .expect(5);
    assert!(
        too_many.stderr.contains("ship_exceeds_remaining") || too_many.stderr.contains("only 1"),
        "{too_many:#?}"
    );
    let not_in_order = server
        .shop(&["order", "ship", &number, "--item", "SOFA-9:1"])
        .expect(1);
    assert!(not_in_order.stderr.contains("SOFA-9"), "{not_in_order:#?}");
    assert_eq!(
        get(&server, &number)["fulfillments"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A partly shipped order is not cancelled: its shipped chair would be refunded and restocked.
    let cancel = server
        .shop(&["order", "cancel", &number, "--yes"])
        .expect(5);
    assert!(
        cancel.stderr.contains("order_partially_shipped"),
        "{cancel:#?}"
    );

    // The README's pipeline ships what is left of every paid order.
    let paid = server
        .shop(&[
            "order",
            "list",
            "--status",
            "paid",
            "--financial-status",
            "paid",
            "-q",
        ])
        .expect(0);
    assert_eq!(paid.stdout.trim(), order["id"].as_str().unwrap());
    let rest = server
        .shop(&[
            "order",
            "ship",
            paid.stdout.trim(),
            "--carrier",
            "dhl",
            "--tracking-url",
            "https://track.example/abc",
            "--tracking",
            "00340434",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(rest["status"], "shipped");
    assert_eq!(rest["fulfillment_status"], "shipped");
    assert_eq!(rest["tracking_number"], "00340434");
    let second = &rest["fulfillments"][1];
    assert_eq!(
        second["items"],
        serde_json::json!([{"sku": "CHAIR-01", "quantity": 1}, {"sku": "LAMP-02", "quantity": 1}])
    );
    assert_eq!(
        second["tracking_url"], "https://track.example/abc",
        "a given URL wins"
    );
    server.shop(&["order", "ship", &number]).expect(5);

    // `order get` on a terminal-like table shows the shipments.
    let table = server
        .shop(&["order", "get", &number, "-o", "table"])
        .expect(0);
    for text in ["1Z999AA1", "00340434", "LAMP-02 x1", "shipments"] {
        assert!(
            table.stdout.contains(text) || table.stderr.contains(text),
            "{text}: {table:#?}"
        );
    }

    let delivered = server
        .shop(&["order", "deliver", &number, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(delivered["fulfillment_status"], "delivered");
    assert!(
        delivered["fulfillments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["delivered_at"].is_string()),
        "{delivered}"
    );

    // The customer heard of each shipment, with its tracking link, and of the delivery.
    let token = server.admin_token().await;
    let shipped = emails(&server, &token, "order_shipped", 2).await;
    let said = serde_json::to_string(&shipped).unwrap();
    assert!(
        said.contains("https://www.ups.com/track?tracknum=1Z999AA1"),
        "{said}"
    );
    assert!(said.contains("https://track.example/abc"), "{said}");
    assert!(said.contains("Part of your order"), "{said}");
    emails(&server, &token, "order_delivered", 1).await;

    // The events: a partial shipment, then the order shipped.
    let events = server
        .get_as("/api/events/log?type=order.*&limit=500", &token)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| t.contains("shipped"))
        .collect();
    assert_eq!(
        kinds,
        ["order.partially_shipped", "order.shipped"],
        "{events}"
    );
}

#[tokio::test]
async fn a_tracking_file_ships_each_row_and_reports_a_bad_one_without_stopping() {
    let server = TestServer::start();
    stocked(&server);
    let first = number(&paid_order(&server, 2));
    let second = number(&paid_order(&server, 1));
    let third = number(&paid_order(&server, 3));
    let file = format!(
        "order,carrier,tracking_number,items\n\
         {first},ups,1ZFIRST,CHAIR-01:1\n\
         ORD-999999,ups,1ZNOBODY,\n\
         {second},fedex,7788,\n\
         not-an-order,ups,1Z,\n\
         {third},dhl,DHL3,CHAIR-01:9\n"
    );
    let path = server.cli_config().with_file_name("tracking.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, file).unwrap();
    let out = server.shop(&["order", "ship", "--from-file", path.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out:#?}");
    let results = out.lines();
    assert_eq!(results.len(), 5, "one result per row: {out:#?}");
    let lines: Vec<i64> = results
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 4, 5, 6]);
    let ok: Vec<bool> = results.iter().map(|r| r["ok"].as_bool().unwrap()).collect();
    assert_eq!(ok, [true, false, true, false, false]);
    assert_eq!(
        results[0]["order"]["fulfillment_status"],
        "partially_shipped"
    );
    assert_eq!(results[1]["status"], 404);
    assert_eq!(results[2]["order"]["status"], "shipped");
    assert_eq!(
        results[2]["order"]["fulfillments"][0]["tracking_url"],
        "https://www.fedex.com/fedextrack/?trknbr=7788"
    );
    assert_eq!(results[3]["error"]["code"], "invalid_row");
    assert_eq!(results[4]["error"]["code"], "ship_exceeds_remaining");
    assert_eq!(get(&server, &third)["fulfillment_status"], "unfulfilled");
    assert_eq!(get(&server, &first)["tracking_number"], "1ZFIRST");

    // From stdin, the rest of the first order: all rows fine, exit 0.
    let again = server
        .shop_stdin(
            &["order", "ship", "--from-file", "-", "-q"],
            &format!("order,carrier,tracking_number\n{first},ups,1ZREST\n"),
        )
        .expect(0);
    assert!(again.stdout.trim().starts_with("ord_"), "{again:#?}");
    assert_eq!(get(&server, &first)["status"], "shipped");
}

fn on_hand(server: &TestServer) -> (i64, Vec<String>) {
    let stock = server
        .shop(&["inventory", "get", "CHAIR-01", "--history", "-o", "json"])
        .expect(0)
        .json();
    let reasons = stock["movements"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["reason"].as_str().map(str::to_owned))
        .collect();
    (stock["on_hand"].as_i64().unwrap(), reasons)
}

fn returned(server: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["return"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    server.shop(&all).expect(0).json()
}

#[tokio::test]
async fn a_return_is_approved_received_without_restock_and_refunded_through_the_payment() {
    let server = TestServer::start();
    stocked(&server);
    let order = paid_order(&server, 2);
    let number = number(&order);
    let unit = order["items"][0]["unit_price_cents"].as_i64().unwrap();
    // Nothing shipped yet: nothing to return.
    let early = server
        .shop(&[
            "return",
            "create",
            &number,
            "--item",
            "CHAIR-01:1:too early",
        ])
        .expect(5);
    assert!(early.stderr.contains("not_shipped"), "{early:#?}");
    server.shop(&["order", "ship", &number]).expect(0);

    let damaged = returned(
        &server,
        &["create", &number, "--item", "CHAIR-01:1:wobbly leg"],
    );
    let id = damaged["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ret_"), "{damaged}");
    assert_eq!(damaged["status"], "requested");
    assert_eq!(damaged["refund_cents"], unit);
    assert_eq!(damaged["items"][0]["reason"], "wobbly leg");
    // Two more than the one left is refused, with its own code.
    let too_many = server
        .shop(&["return", "create", &number, "--item", "CHAIR-01:2:both"])
        .expect(5);
    assert!(
        too_many.stderr.contains("return_exceeds_shipped"),
        "{too_many:#?}"
    );
    // Received before it was approved: an illegal move.
    server.shop(&["return", "receive", &id]).expect(5);

    let (stock_before, _) = on_hand(&server);
    assert_eq!(returned(&server, &["approve", &id])["status"], "approved");
    let received = returned(&server, &["receive", &id, "--no-restock"]);
    assert_eq!(received["status"], "received");
    assert_eq!(received["items"][0]["restocked"], false);
    let (stock_after, reasons) = on_hand(&server);
    assert_eq!(
        stock_after, stock_before,
        "damaged goods stay off the shelf"
    );
    assert!(
        !reasons.iter().any(|r| r.contains(&id)),
        "no restock in the ledger: {reasons:?}"
    );

    let refunded = returned(&server, &["refund", &id]);
    assert_eq!(refunded["status"], "refunded", "{refunded}");
    let refund_id = refunded["refund_id"].as_str().unwrap().to_owned();
    let payment = server
        .shop(&["payment", "get", &number, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(payment["refunded_cents"], unit, "{payment}");
    let refund = payment["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == refund_id.as_str())
        .expect("the return's refund")
        .clone();
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["reason"], format!("return {id}"));
    assert_eq!(
        get(&server, &number)["financial_status"],
        "partially_refunded"
    );
    // Refunded once: a second refund is refused and no money moves.
    server.shop(&["return", "refund", &id]).expect(5);
    let again = server
        .shop(&["payment", "get", &number, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(again["refunded_cents"], unit);

    // The other chair comes back whole: restocked, with a ledger entry.
    let whole = returned(
        &server,
        &["create", &number, "--item", "CHAIR-01:1:changed my mind"],
    );
    let whole_id = whole["id"].as_str().unwrap().to_owned();
    returned(&server, &["approve", &whole_id]);
    let open = server.shop(&["return", "list", "--open", "-q"]).expect(0);
    assert_eq!(open.stdout.trim(), whole_id);
    returned(&server, &["receive", &whole_id]);
    let (restocked, reasons) = on_hand(&server);
    assert_eq!(restocked, stock_before + 1);
    assert!(reasons[0].contains(&whole_id), "{reasons:?}");

    // The customer heard of each step of the first return.
    let token = server.admin_token().await;
    for template in [
        "return_requested",
        "return_approved",
        "return_received",
        "return_refunded",
    ] {
        emails(&server, &token, template, 1).await;
    }
}

#[tokio::test]
async fn a_return_after_the_window_is_refused() {
    let server = TestServer::start_with(&[("SHOP_RETURN_WINDOW_DAYS", "0")]);
    stocked(&server);
    let number = number(&paid_order(&server, 1));
    server.shop(&["order", "ship", &number]).expect(0);
    server.shop(&["order", "deliver", &number]).expect(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = server
        .shop(&["return", "create", &number, "--item", "CHAIR-01:1:late"])
        .expect(5);
    assert!(late.stderr.contains("return_window_closed"), "{late:#?}");
    let none = server.shop(&["return", "list", "-q"]).expect(0);
    assert_eq!(none.stdout.trim(), "", "nothing was opened");
}

/// A customer opens a return of their own order; its refund is the units'
/// share of what was charged, discount included, never their full price
/// when the order had a discount. Shipping goes back with one return, once.
#[tokio::test]
async fn a_customer_returns_part_of_a_discounted_order_and_gets_its_share_back() {
    let server = TestServer::start();
    stocked(&server);
    let admin = server.admin_token().await;
    let zone = json!({"name": "US", "countries": ["US"],
        "methods": [{"code": "std", "name": "Standard", "rate": {"kind": "flat", "amount_cents": 500}}]});
    let zone = server
        .send_as(reqwest::Method::POST, "/api/shipping/zones", &zone, &admin)
        .await;
    expect_status(zone, StatusCode::CREATED).await;
    let discount = server
        .send_as(
            reqwest::Method::POST,
            "/api/discounts",
            &json!({"code": "TENOFF", "kind": "percent", "value": 1000, "automatic": false}),
            &admin,
        )
        .await;
    expect_status(discount, StatusCode::CREATED).await;
    let dana = server.customer_token("dana@example.com").await;
    let placed = server
        .send_as(
            reqwest::Method::POST,
            "/api/orders",
            &json!({"items": [{"sku": "CHAIR-01", "quantity": 2}], "discount_codes": ["TENOFF"],
                    "shipping_address": {"name": "Dana", "line1": "1 Elm St", "city": "Austin",
                                         "postal_code": "73301", "country": "US"},
                    "shipping_method": "std",
                    "payment": {"method": "card", "card_number": "4242424242424242",
                                "exp_month": 12, "exp_year": 2035}}),
            &dana,
        )
        .await;
    let order = expect_status(placed, StatusCode::CREATED).await;
    let number = number(&order);
    assert_eq!(order["discount_cents"], 2600, "10 % of 2 × 129.99: {order}");
    server.shop(&["order", "ship", &number]).expect(0);

    // Another customer cannot open a return of it, nor see it.
    let erin = server.customer_token("erin@example.com").await;
    let body = json!({"items": [{"sku": "CHAIR-01", "quantity": 1, "reason": "not mine"}]});
    let path = format!("/api/orders/{number}/returns");
    let foreign = server
        .send_as(reqwest::Method::POST, &path, &body, &erin)
        .await;
    expect_error(foreign, StatusCode::NOT_FOUND, "not_found").await;

    let body = json!({"items": [{"sku": "CHAIR-01", "quantity": 1, "reason": "too tall"}]});
    let opened = server
        .send_as(reqwest::Method::POST, &path, &body, &dana)
        .await;
    let opened = expect_status(opened, StatusCode::CREATED).await;
    // One chair of two: 129.99 less its half of the 26.00 discount.
    assert_eq!(opened["refund_cents"], 12_999 - 1_300, "{opened}");
    let id = opened["id"].as_str().unwrap();
    let mine = server.get_as(&format!("/api/returns/{id}"), &dana).await;
    expect_status(mine, StatusCode::OK).await;
    let theirs = server.get_as(&format!("/api/returns/{id}"), &erin).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    // Approving is staff work.
    let approve = server
        .send_as(
            reqwest::Method::POST,
            &format!("/api/returns/{id}/approve"),
            &json!({}),
            &dana,
        )
        .await;
    assert_eq!(approve.status(), StatusCode::FORBIDDEN);

    returned(&server, &["approve", id]);
    returned(&server, &["receive", id]);
    let refunded = returned(&server, &["refund", id, "--include-shipping"]);
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["shipping_refund_cents"], 500, "{refunded}");
    let payment = server
        .shop(&["payment", "get", &number, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(payment["refunded_cents"], 12_999 - 1_300 + 500, "{payment}");

    // The other chair comes back too: the shipping went back once already.
    let body = json!({"items": [{"sku": "CHAIR-01", "quantity": 1, "reason": "too tall too"}]});
    let second = server
        .send_as(reqwest::Method::POST, &path, &body, &dana)
        .await;
    let second = expect_status(second, StatusCode::CREATED).await;
    let second = second["id"].as_str().unwrap();
    returned(&server, &["approve", second]);
    returned(&server, &["receive", second]);
    let twice = server
        .shop(&["return", "refund", second, "--include-shipping"])
        .expect(5);
    assert!(
        twice.stderr.contains("shipping_already_refunded"),
        "{twice:#?}"
    );
    let refunded = returned(&server, &["refund", second]);
    assert_eq!(refunded["shipping_refund_cents"], 0);
    // Both returns together gave back exactly what the order charged.
    let payment = server
        .shop(&["payment", "get", &number, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(payment["refunded_cents"], order["total_cents"], "{payment}");
    assert_eq!(get(&server, &number)["financial_status"], "refunded");
}
