//! Invoices and packing slips, through the `shop` command line and the API:
//! numbers from one gapless sequence, the order's figures to the cent, the
//! shop's own template, and a PDF that a real PDF reader (poppler's
//! `pdftotext`) reads back.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const GOOD_CARD: &str = "card:4242424242424242";

/// A server whose invoices are numbered `FG2026-000001`... and carry a
/// seller; the directory holds its config file.
fn shop_with_documents() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("documents.toml");
    std::fs::write(
        &config,
        "[storefront]\nname = \"Fjord Goods\"\n\n[documents]\ninvoice_prefix = \"FG2026-\"\n\
         seller_address = [\"Kaigata 1\", \"5003 Bergen\", \"Norway\"]\ntax_id = \"NO999999999MVA\"\n",
    )
    .unwrap();
    let server = TestServer::start_full(&[], &["--config", config.to_str().unwrap()]);
    (server, dir)
}

fn add_product(server: &TestServer, sku: &str, price: &str) {
    server
        .shop(&[
            "product", "add", "--sku", sku, "--name", sku, "--price", price, "--stock", "50",
        ])
        .expect(0);
}

fn order(server: &TestServer, items: &[&str], pay: bool) -> Value {
    let mut args = vec![
        "order",
        "create",
        "--customer",
        "dana@example.com",
        "-o",
        "json",
    ];
    for item in items {
        args.extend(["--item", item]);
    }
    if pay {
        args.extend(["--pay", GOOD_CARD]);
    }
    server.shop(&args).expect(0).json()
}

fn number(order: &Value) -> &str {
    order["number"].as_str().unwrap()
}

/// `12.99 USD` for 1299 cents, as the documents print money.
fn usd(cents: i64) -> String {
    format!("{}.{:02} USD", cents / 100, cents % 100)
}

fn pdf_text(path: &std::path::Path) -> String {
    let output = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) runs");
    assert!(output.status.success(), "pdftotext: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn invoices_take_gapless_numbers_once_and_show_the_orders_figures() {
    let (server, _config) = shop_with_documents();
    server.cli_login_admin();
    add_product(&server, "MUG-1", "12.99");
    add_product(&server, "LAMP-1", "89.50");

    let first = order(&server, &["MUG-1:2", "LAMP-1:1"], true);
    let pending = order(&server, &["MUG-1:1"], false);
    let second = order(&server, &["LAMP-1:1"], true);

    // The first request issues the number; every later one shows the same.
    let html = server
        .shop(&["order", "invoice", number(&first)])
        .expect(0)
        .stdout;
    for shown in [
        "FG2026-000001",
        number(&first),
        "Fjord Goods",
        "5003 Bergen",
        "NO999999999MVA",
        "dana@example.com",
        &usd(2598),
        &usd(8950),
        &usd(first["total_cents"].as_i64().unwrap()),
    ] {
        assert!(
            html.contains(shown),
            "{shown} missing from the invoice:\n{html}"
        );
    }
    let again = server
        .shop(&["order", "invoice", number(&first)])
        .expect(0)
        .stdout;
    assert_eq!(again, html, "an invoice keeps its number and figures");

    // An order no money was taken for has no invoice, and uses no number.
    let refused = server
        .shop(&["order", "invoice", number(&pending)])
        .expect(5);
    assert!(
        refused.stderr.contains("not_invoiceable"),
        "{}",
        refused.stderr
    );
    let html = server
        .shop(&["order", "invoice", number(&second)])
        .expect(0)
        .stdout;
    assert!(html.contains("FG2026-000002"), "{html}");
    server
        .shop(&["order", "pay", number(&pending), "--pay", GOOD_CARD])
        .expect(0);
    let html = server
        .shop(&["order", "invoice", number(&pending)])
        .expect(0)
        .stdout;
    assert!(html.contains("FG2026-000003"), "{html}");

    // Each issue is an event and an audit entry, once.
    let events = server
        .shop(&["events", "--type", "invoice.issued", "-o", "ndjson"])
        .expect(0)
        .lines();
    let numbers: Vec<&str> = events
        .iter()
        .map(|event| event["data"]["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["FG2026-000001", "FG2026-000002", "FG2026-000003"]);
    let audit = server
        .shop(&["audit", "--action", "invoice.issued", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(audit.len(), 3, "{audit:?}");

    // The PDF has the same figures, as a PDF reader sees them.
    let pdf = server.dir.path().join("invoice.pdf");
    server
        .shop(&[
            "order",
            "invoice",
            number(&first),
            "--pdf",
            "--output-file",
            pdf.to_str().unwrap(),
        ])
        .expect(0);
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    for shown in [
        "FG2026-000001",
        number(&first),
        "Fjord Goods",
        "NO999999999MVA",
        &usd(first["total_cents"].as_i64().unwrap()),
    ] {
        assert!(
            text.contains(shown),
            "{shown} missing from the PDF:\n{text}"
        );
    }

    // A packing slip says what is left to pack after a partial shipment.
    server
        .shop(&["order", "ship", number(&first), "--item", "MUG-1:1"])
        .expect(0);
    let slip = server.dir.path().join("slip.pdf");
    server
        .shop(&[
            "order",
            "packing-slip",
            number(&first),
            "--pdf",
            "--output-file",
            slip.to_str().unwrap(),
        ])
        .expect(0);
    let text = pdf_text(&slip);
    let mug = text
        .lines()
        .find(|line| line.contains("MUG-1"))
        .unwrap_or_else(|| panic!("no MUG-1 line:\n{text}"));
    let figures: Vec<&str> = mug.split_whitespace().rev().take(3).collect();
    assert_eq!(
        figures,
        ["1", "1", "2"],
        "ordered 2, shipped 1, 1 to pack: {mug}"
    );
    assert!(
        !text.contains("12.99"),
        "a packing slip shows no prices:\n{text}"
    );
}

#[tokio::test]
async fn customers_read_their_own_invoices_only_and_bad_requests_change_nothing() {
    let server = TestServer::start();
    server.cli_login_admin();
    add_product(&server, "MUG-1", "12.99");
    let erin = server.customer_token("erin@example.com").await;
    let frank = server.customer_token("frank@example.com").await;
    let placed = server
        .send_as(
            reqwest::Method::POST,
            "/api/orders",
            &json!({"items": [{"sku": "MUG-1", "quantity": 1}],
                    "payment": {"method": "card", "card_number": "4242424242424242",
                                "exp_month": 12, "exp_year": 2035}}),
            &erin,
        )
        .await;
    let placed = expect_status(placed, StatusCode::CREATED).await;
    let id = placed["id"].as_str().unwrap();

    let invoice = server
        .get_as(&format!("/api/orders/{id}/invoice"), &erin)
        .await;
    assert_eq!(invoice.status(), StatusCode::OK);
    assert_eq!(
        invoice.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let policy = invoice.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("style-src 'unsafe-inline'") && !policy.contains("script-src"),
        "{policy}"
    );
    assert!(invoice.text().await.unwrap().contains("INV-000001"));
    let pdf = server
        .get_as(&format!("/api/orders/{id}/invoice?format=pdf"), &erin)
        .await;
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(
        pdf.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("invoice-INV-000001.pdf")
    );

    // Another customer sees no such order; a customer gets no packing slip.
    let other = server
        .get_as(&format!("/api/orders/{id}/invoice"), &frank)
        .await;
    expect_error(other, StatusCode::NOT_FOUND, "not_found").await;
    let slip = server
        .get_as(&format!("/api/orders/{id}/packing-slip"), &erin)
        .await;
    assert_eq!(slip.status(), StatusCode::FORBIDDEN);
    let bad = server
        .get_as(&format!("/api/orders/{id}/invoice?format=docx"), &erin)
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let unknown = server.get_as("/api/orders/ORD-999999/invoice", &erin).await;
    expect_error(unknown, StatusCode::NOT_FOUND, "not_found").await;

    // None of that issued a second number.
    let admin = server.admin_token().await;
    let audit = server
        .get_as("/api/audit?action=invoice.issued", &admin)
        .await;
    let audit = expect_status(audit, StatusCode::OK).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn a_shops_own_template_renders_invoices_and_a_broken_one_is_refused_with_its_line() {
    let server = TestServer::start();
    server.cli_login_admin();
    add_product(&server, "MUG-1", "12.99");
    let paid = order(&server, &["MUG-1:2"], true);

    let builtin = server
        .shop(&["document", "template", "show", "invoice"])
        .expect(0)
        .stdout;
    assert!(builtin.contains("{{ invoice.number }}"), "{builtin}");

    let own = server.dir.path().join("rechnung.html");
    std::fs::write(
        &own,
        "<!doctype html><html lang=\"de\"><title>Rechnung {{ invoice.number }}</title>\n\
         <p>Summe {{ order.total_cents | money(order.currency) }}</p>\n\
         {% for item in order.items %}<p>{{ item.quantity }} × {{ item.name }}</p>{% endfor %}</html>\n",
    )
    .unwrap();
    let saved = server
        .shop(&[
            "document",
            "template",
            "set",
            "invoice",
            own.to_str().unwrap(),
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(saved["customized"], true);
    let html = server
        .shop(&["order", "invoice", number(&paid)])
        .expect(0)
        .stdout;
    assert!(html.contains("Rechnung INV-000001"), "{html}");
    assert!(html.contains(&format!("Summe {}", usd(2598))), "{html}");
    assert!(html.contains("2 × MUG-1"), "{html}");

    // A template naming what no order has is refused, with its line, and
    // the shop's template stays as it was.
    let broken = server.dir.path().join("broken.html");
    std::fs::write(
        &broken,
        "<html>\n<p>{{ invoice.number }}</p>\n<p>{{ order.vat_id }}</p>\n",
    )
    .unwrap();
    let refused = server
        .shop(&[
            "document",
            "template",
            "set",
            "invoice",
            broken.to_str().unwrap(),
        ])
        .expect(1);
    assert!(refused.stderr.contains("line 3"), "{}", refused.stderr);
    let html = server
        .shop(&["order", "invoice", number(&paid)])
        .expect(0)
        .stdout;
    assert!(html.contains("Rechnung INV-000001"), "{html}");

    let listed = server
        .shop(&["document", "templates", "-o", "json"])
        .expect(0)
        .json();
    let customized: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap(),
                t["customized"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(customized, [("invoice", true), ("packing_slip", false)]);

    let reset = server
        .shop(&["document", "template", "reset", "invoice", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(reset["customized"], false);
    let html = server
        .shop(&["order", "invoice", number(&paid)])
        .expect(0)
        .stdout;
    assert!(
        html.contains("Invoice number") && html.contains("INV-000001"),
        "{html}"
    );
    let changes = server
        .shop(&["audit", "--entity", "document_template", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(changes.len(), 2, "saved, then reset: {changes:?}");
}
