//! Carts, orders and payments through the `shop` command line: a cart
//! filled and checked out, an anonymous cart and its token, an order's life
//! from a declined card to a refund, bank transfers settled, and NDJSON
//! batches with their ordering, replay and exit codes.
//!
//! The simulated provider is assumed to take Stripe's test cards:
//! 4242424242424242 succeeds, 4000000000000002 is declined (`card_declined`).

use serde_json::Value;

use crate::common::*;

const GOOD_CARD: &str = "card:4242424242424242";
const DECLINED_CARD: &str = "card:4000000000000002";

/// Logs in as the admin and adds CHAIR-01 (129.99, 10 in stock) and LAMP-02 (45.00, 5).
fn stocked(server: &TestServer) {
    server.cli_login_admin();
    for (sku, name, price, stock) in [
        ("CHAIR-01", "Oak chair", "129.99", "10"),
        ("LAMP-02", "Brass lamp", "45.00", "5"),
    ] {
        server
            .shop(&[
                "product", "add", "--sku", sku, "--name", name, "--price", price, "--stock", stock,
            ])
            .expect(0);
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

#[tokio::test]
async fn a_cart_is_filled_changed_and_checked_out() {
    let server = TestServer::start();
    stocked(&server);

    let cart = server
        .shop(&["cart", "add", "CHAIR-01", "2", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(cart["items"][0]["quantity"], 2);
    assert_eq!(cart["subtotal_cents"], 25998);
    assert!(cart.get("token").is_none(), "a login's cart has no token");
    let version = cart["version"].as_u64().expect("a version");
    let cart = server
        .shop(&["cart", "add", "LAMP-02", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(cart["item_count"], 3);

    // A stale version is a conflict that names the current one.
    let stale = server
        .shop(&[
            "cart",
            "add",
            "CHAIR-01",
            "--expected-version",
            &version.to_string(),
        ])
        .expect(5);
    assert!(stale.stderr.contains("version_conflict"), "{stale:#?}");
    assert!(stale.stderr.contains("--expected-version"), "{stale:#?}");

    // More than is in stock (though within the line cap of 100) is a
    // conflict too; 0 removes a line.
    let short = server.shop(&["cart", "add", "CHAIR-01", "20"]).expect(5);
    assert!(short.stderr.contains("insufficient_stock"), "{short:#?}");
    server.shop(&["cart", "add", "NOPE-1"]).expect(4);
    let cart = server
        .shop(&["cart", "update", "LAMP-02", "0", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(cart["items"].as_array().expect("items").len(), 1);

    let table = server.shop(&["cart", "show", "-o", "table"]).expect(0);
    for text in [
        "CHAIR-01",
        "259.98 USD",
        "SUBTOTAL",
        "VERSION",
        "EXPIRES AT",
    ] {
        assert!(table.stdout.contains(text), "{text}: {table:#?}");
    }
    let csv = server.shop(&["cart", "show", "-o", "csv"]).expect(0);
    assert!(
        csv.stdout.starts_with("sku,name,quantity,unit_price_cents"),
        "{csv:#?}"
    );

    let id = server.shop(&["cart", "show", "-q"]).expect(0).stdout;
    let id = id.trim();
    assert!(id.starts_with("crt_"), "{id}");
    let order = server
        .shop(&[
            "order", "create", "--cart", id, "--pay", GOOD_CARD, "-o", "json",
        ])
        .expect(0)
        .json();
    assert_eq!(order["status"], "paid");
    assert_eq!(order["total_cents"], 25998);
    assert_eq!(order["cart_id"], id);

    // Checked out: no active cart any more, and the old one cannot change.
    server.shop(&["cart", "show"]).expect(4);
    let closed = server
        .shop(&["cart", "--cart", id, "add", "LAMP-02"])
        .expect(5);
    assert!(closed.stderr.contains("cart_not_active"), "{closed:#?}");

    // Clearing a new cart keeps the cart.
    server.shop(&["cart", "add", "LAMP-02", "2"]).expect(0);
    let cleared = server
        .shop(&["cart", "clear", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(cleared["item_count"], 0);
    assert_eq!(cleared["status"], "active");
}

#[tokio::test]
async fn an_anonymous_cart_is_used_again_by_its_token() {
    let server = TestServer::start();
    stocked(&server);
    server.shop(&["logout"]).expect(0);

    let none = server.shop(&["cart", "show"]).expect(4);
    assert!(none.stderr.contains("--cart-token"), "{none:#?}");

    let made = server
        .shop(&["cart", "add", "CHAIR-01", "2", "-o", "json"])
        .expect(0);
    let token = made
        .stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("export SHOP_CART_TOKEN="))
        .unwrap_or_else(|| panic!("no token shown: {made:#?}"))
        .to_owned();
    assert_eq!(made.json()["token"], token.as_str(), "and in the document");

    let with_token = |args: &[&str]| {
        let mut command = server.cli(args);
        command.env("SHOP_CART_TOKEN", &token);
        run_cli(command, None)
    };
    let cart = with_token(&["cart", "add", "LAMP-02", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(cart["item_count"], 3);
    assert!(cart.get("token").is_none(), "shown only once");
    let shown = server
        .shop(&["cart", "show", "--cart-token", &token, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(shown["id"], cart["id"]);
    server
        .shop(&["cart", "show", "--cart-token", "not-the-token"])
        .expect(4);

    // Logging in with the token in the environment brings the cart along.
    let mut login = server.cli(&["login", "--email", ADMIN_EMAIL, "--password-stdin"]);
    login.env("SHOP_CART_TOKEN", &token);
    let logged_in = run_cli(login, Some(&format!("{ADMIN_PASSWORD}\n"))).expect(0);
    assert!(
        logged_in.stderr.contains("joins your cart"),
        "{logged_in:#?}"
    );
    let mine = server
        .shop(&["cart", "show", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(mine["item_count"], 3, "{mine}");
    assert!(!mine["user_id"].is_null(), "{mine}");
}

#[tokio::test]
async fn an_order_goes_from_a_declined_card_to_delivered_and_refunded() {
    let server = TestServer::start();
    stocked(&server);

    let declined = server
        .shop(&[
            "order",
            "create",
            "--item",
            "CHAIR-01:1",
            "--item",
            "LAMP-02:2",
            "--customer",
            "kim@example.com",
            "--pay",
            DECLINED_CARD,
        ])
        .expect(7);
    assert!(declined.stderr.contains("card_declined"), "{declined:#?}");
    assert_eq!(
        declined.stderr.matches("stays pending").count(),
        1,
        "said once: {declined:#?}"
    );
    assert!(
        declined.stderr.contains("shop order pay ORD-"),
        "{declined:#?}"
    );
    let pending = server
        .shop(&["order", "list", "--status", "pending", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let number = text(&pending[0], "number").to_owned();
    assert_eq!(pending[0]["customer_email"], "kim@example.com");
    assert_eq!(pending[0]["total_cents"], 12999 + 2 * 4500);

    // Usage errors never reach the server.
    for bad in [
        &["order", "create", "--item", "CHAIR-01:0"][..],
        &[
            "order",
            "create",
            "--item",
            "CHAIR-01",
            "--pay",
            "card:4242424242424241",
        ],
        &["order", "create", "--item", "CHAIR-01:1", "--pay", "visa:1"],
        &["order", "pay", &number, "--pay", "card:12/29"],
        &["order", "refund", &number, "--amount", "1.999"],
        &["order", "get", "1042"],
    ] {
        server.shop(bad).expect(2);
    }

    let paid = server
        .shop(&["order", "pay", &number, "--pay", GOOD_CARD, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(paid["status"], "paid");
    let illegal = server.shop(&["order", "deliver", &number]).expect(5);
    assert!(
        illegal.stderr.contains("illegal_transition"),
        "{illegal:#?}"
    );
    assert_eq!(
        illegal.stderr.matches("allowed").count(),
        1,
        "the allowed moves, said once: {illegal:#?}"
    );

    // Ship everything paid, the way the README shows.
    let ids = server
        .shop(&["order", "list", "--status", "paid", "-q"])
        .expect(0)
        .stdout;
    for id in ids.lines() {
        server
            .shop(&["order", "ship", id, "--tracking-number", "1Z999"])
            .expect(0);
    }
    let shipped = server
        .shop(&[
            "order",
            "deliver",
            &number,
            "--note",
            "left at the door",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(shipped["status"], "delivered");
    assert_eq!(shipped["tracking_number"], "1Z999");
    let history: Vec<&str> = shipped["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|change| text(change, "to"))
        .collect();
    assert_eq!(history, ["pending", "paid", "shipped", "delivered"]);
    let table = server
        .shop(&["order", "get", &number, "-o", "table"])
        .expect(0);
    for text in ["219.99 USD", "129.99 USD", "left at the door", "delivered"] {
        assert!(table.stdout.contains(text), "{text}: {table:#?}");
    }

    let refund = server
        .shop(&[
            "order",
            "refund",
            &number,
            "--amount",
            "12.50",
            "--reason",
            "scratched",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(refund["amount_cents"], 1250);
    let too_much = server
        .shop(&["order", "refund", &number, "--amount", "500"])
        .expect(5);
    assert!(
        too_much.stderr.contains("refund_exceeds_captured"),
        "{too_much:#?}"
    );
    assert!(
        too_much.stderr.contains("only 207.49 USD of payment"),
        "in the units typed, not minor units: {too_much:#?}"
    );

    let payments = server
        .shop(&["payment", "list", "--order", &number, "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(payments.len(), 2, "the declined attempt and the paid one");
    let paid_payment = payments
        .iter()
        .find(|p| p["status"] == "succeeded")
        .expect("a succeeded payment");
    let id = text(paid_payment, "id");
    let rest = server
        .shop(&["payment", "refund", id, "--yes", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(rest["amount_cents"], 21999 - 1250, "all that is left");
    let payment = server
        .shop(&["payment", "get", id, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(payment["refunds"].as_array().expect("refunds").len(), 2);
    assert_eq!(payment["status"], "refunded");

    let analytics = server
        .shop(&["order", "analytics", "-o", "json"])
        .expect(0)
        .json();
    assert!(analytics["counts_by_status"].is_array(), "{analytics}");
    let payments = server
        .shop(&["payment", "analytics", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(payments["failed"], 1, "{payments}");
    server
        .shop(&["order", "analytics", "-o", "table"])
        .expect(0);
}

#[tokio::test]
async fn a_bank_transfer_stays_pending_until_settled() {
    let server = TestServer::start();
    stocked(&server);
    let order = server
        .shop(&[
            "order",
            "create",
            "--item",
            "LAMP-02:1",
            "--pay",
            "bank_transfer",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(order["status"], "pending");
    // The order number names its payment, as `payment list --order` takes it.
    let number = text(&order, "number").to_lowercase();
    let settled = server
        .shop(&["payment", "settle", &number, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(settled["status"], "succeeded");
    assert_eq!(settled["id"], order["payment_id"]);
    let order = server
        .shop(&["order", "get", text(&order, "number"), "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(order["status"], "paid");
}

#[tokio::test]
async fn an_ndjson_batch_answers_every_line_in_order_and_replays_with_its_key() {
    let server = TestServer::start();
    stocked(&server);
    let line = |sku: &str, quantity: u32, card: Option<&str>| {
        let payment = card.map_or(String::new(), |number| {
            format!(
                r#","payment":{{"method":"card","card_number":"{number}","exp_month":12,"exp_year":2040}}"#
            )
        });
        format!(r#"{{"items":[{{"sku":"{sku}","quantity":{quantity}}}]{payment}}}"#)
    };
    let mut lines = vec![
        line("LAMP-02", 1, Some("4242424242424242")),
        line("CHAIR-01", 1, Some("4000000000000002")),
        String::new(),
        "not json".to_owned(),
        line("CHAIR-01", 99, None),
        r#"{"itemz":[]}"#.to_owned(),
    ];
    lines.extend((0..6).map(|_| line("CHAIR-01", 1, None)));
    let input = lines.join("\n") + "\n";

    let run = server.shop_stdin(
        &[
            "order",
            "create",
            "-",
            "--idempotency-key",
            "batch-1",
            "--concurrency",
            "4",
        ],
        &input,
    );
    let results = run.lines();
    let numbers: Vec<u64> = results
        .iter()
        .map(|r| r["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(
        numbers,
        [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        "one result per non-blank line, in input order: {run:#?}"
    );
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[0]["order"]["status"], "paid");
    assert_eq!(results[1]["status"], 402);
    assert_eq!(results[1]["error"]["code"], "card_declined");
    assert!(results[1]["error"]["details"]["order_number"].is_string());
    assert_eq!(results[2]["error"]["code"], "invalid_json");
    assert!(results[2].get("status").is_none(), "never sent");
    assert_eq!(results[3]["status"], 409);
    assert_eq!(results[3]["error"]["code"], "insufficient_stock");
    assert_eq!(results[4]["error"]["code"], "invalid_order");
    assert!(
        results[5..]
            .iter()
            .all(|r| r["order"]["status"] == "pending")
    );
    assert_eq!(run.code, 7, "the first failed line was declined: {run:#?}");
    assert!(run.stderr.contains("4 of 11 orders failed"), "{run:#?}");

    // The same input with the same key replays: the same orders, nothing charged twice.
    let again = server.shop_stdin(
        &["order", "create", "-", "--idempotency-key", "batch-1"],
        &input,
    );
    assert_eq!(again.code, 7);
    for (first, second) in results.iter().zip(&again.lines()) {
        assert_eq!(first["order"]["id"], second["order"]["id"]);
        assert_eq!(first["error"]["code"], second["error"]["code"]);
    }
    let orders = server
        .shop(&["order", "list", "--all", "-q"])
        .expect(0)
        .stdout
        .lines()
        .count();
    assert_eq!(orders, 7 + 1, "the placed ones and the declined one, once");

    // -q prints the created orders' ids, the failures on stderr.
    let two = format!(
        "{}\n{}\n",
        line("LAMP-02", 1, None),
        line("LAMP-02", 1, Some("4000000000000002"))
    );
    let quiet = server
        .shop_stdin(&["order", "create", "-", "-q"], &two)
        .expect(7);
    assert_eq!(quiet.stdout.lines().count(), 1, "{quiet:#?}");
    assert!(quiet.stdout.starts_with("ord_"), "{quiet:#?}");
    assert!(quiet.stderr.contains("line 2:"), "{quiet:#?}");
    server
        .shop_stdin(&["order", "create", "-", "-o", "csv"], &two)
        .expect(2);
}

/// `shop ARGS` with extra environment, e.g. the terminal's width.
fn shop_env(server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut command = server.cli(args);
    command.env_remove("TZ").env_remove("COLUMNS");
    for (key, value) in env {
        command.env(key, value);
    }
    run_cli(command, None)
}

/// What a newcomer reads: tables fitted to the terminal with or without
/// colour (names cut with …, never numbers, money or times), ids only in
/// `-o wide`, local times that say their zone, ages, payments by their
/// order's number, names beside SKUs, and out of stock told from low.
#[tokio::test]
async fn tables_fit_the_terminal_and_show_what_people_read() {
    let server = TestServer::start();
    server.cli_login_admin();
    let long = "Reclaimed Oak and Walnut Extending Dining Table with Brass Feet";
    for (sku, name, price, stock) in [
        ("TABLE-01", long, "1249.00", "3"),
        ("LAMP-02", "Brass lamp", "45.00", "0"),
    ] {
        server
            .shop(&[
                "product", "add", "--sku", sku, "--name", name, "--price", price, "--stock", stock,
            ])
            .expect(0);
    }
    let number = server
        .shop(&[
            "order",
            "create",
            "--item",
            "TABLE-01:2",
            "--customer",
            "a.very.long.customer.address@example.com",
            "--pay",
            GOOD_CARD,
            "-o",
            "json",
        ])
        .expect(0)
        .json()["number"]
        .as_str()
        .expect("number")
        .to_owned();

    for env in [
        &[("COLUMNS", "64")][..],
        &[("COLUMNS", "64"), ("NO_COLOR", "1")],
    ] {
        for args in [
            &["product", "list", "-o", "table"][..],
            &["product", "list", "-o", "table", "--no-color"],
            &["order", "list", "-o", "table"],
            &["payment", "list", "-o", "table"],
            &["inventory", "list", "-o", "table"],
        ] {
            let table = shop_env(&server, args, env).expect(0).stdout;
            for line in table.lines() {
                assert!(
                    line.chars().count() <= 64,
                    "{args:?} {env:?}: a {}-column line at 64:\n{table}",
                    line.chars().count()
                );
            }
            assert!(
                !table.contains("prd_") && !table.contains("ord_"),
                "{table}"
            );
        }
    }
    let products = shop_env(
        &server,
        &["product", "list", "-o", "table"],
        &[("COLUMNS", "64")],
    )
    .expect(0)
    .stdout;
    let row = products
        .lines()
        .find(|l| l.starts_with("TABLE-01"))
        .unwrap_or_else(|| panic!("{products}"));
    assert!(
        row.contains("Reclaimed Oak") && row.contains('…'),
        "{products}"
    );
    assert!(
        row.contains("1249.00 USD"),
        "money is never cut: {products}"
    );

    let orders = shop_env(
        &server,
        &["order", "list", "-o", "table"],
        &[("COLUMNS", "64")],
    )
    .expect(0)
    .stdout;
    assert!(
        orders.lines().next().expect("header").contains("AGE"),
        "{orders}"
    );
    assert!(
        orders.contains(&number) && orders.contains("2498.00 USD"),
        "{orders}"
    );

    // Payments name their order by number; ids are in -o wide.
    let payments = shop_env(&server, &["payment", "list", "-o", "table"], &[])
        .expect(0)
        .stdout;
    assert!(
        payments.contains(&number) && !payments.contains("pay_"),
        "{payments}"
    );
    let wide = shop_env(&server, &["payment", "list", "-o", "wide"], &[])
        .expect(0)
        .stdout;
    assert!(wide.contains("pay_") && wide.contains("ord_"), "{wide}");
    let json = server.shop(&["payment", "get", &number]).expect(0).json();
    assert_eq!(json["order_number"], number.as_str(), "{json}");

    // Times are local, in TZ, and say so.
    let tokyo = shop_env(
        &server,
        &["order", "get", &number, "-o", "table"],
        &[("TZ", "Asia/Tokyo")],
    )
    .expect(0)
    .stdout;
    assert!(tokyo.contains(" JST ("), "{tokyo}");
    let utc = shop_env(&server, &["order", "list", "-o", "wide"], &[("TZ", "UTC")])
        .expect(0)
        .stdout;
    assert!(
        utc.lines()
            .next()
            .expect("header")
            .contains("CREATED (UTC)"),
        "{utc}"
    );

    // Stock lists name their products, and nothing left is OUT, not LOW.
    let stock = shop_env(&server, &["inventory", "list", "-o", "table"], &[])
        .expect(0)
        .stdout;
    let lamp = stock
        .lines()
        .find(|l| l.starts_with("LAMP-02"))
        .unwrap_or_else(|| panic!("{stock}"));
    assert!(
        lamp.contains("Brass lamp") && lamp.ends_with("OUT"),
        "{stock}"
    );
    let table = stock
        .lines()
        .find(|l| l.starts_with("TABLE-01"))
        .unwrap_or_else(|| panic!("{stock}"));
    assert!(
        table.ends_with("LOW"),
        "1 left of a threshold of 5 is low: {stock}"
    );

    // A detail view shows the price once, as money, and the stock.
    let product = shop_env(&server, &["product", "get", "table-01", "-o", "table"], &[])
        .expect(0)
        .stdout;
    assert!(
        product.contains("1249.00 USD") && !product.contains("PRICE CENTS"),
        "{product}"
    );
    assert!(
        product.contains("1 available (1 on hand, 0 reserved) - low"),
        "{product}"
    );
}
