//! The storefront and status page: a real Chromium (through chromedriver and
//! Selenium, `tests/browser/storefront.py`) buys, signs in and watches the
//! status page against the real binary; plain HTTP checks the security rules
//! the browser cannot show (CSRF refusals, escaping, headers).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestServer, bearer, expect_status};

/// The whole browser run; it normally takes well under a minute.
const BROWSER_LIMIT: Duration = Duration::from_secs(240);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// axe-core's browser build, installed by `.ci/run` (`npm install --prefix target/browser axe-core`).
fn axe_js() -> PathBuf {
    let path = std::env::var_os("AXE_JS").map_or_else(
        || workspace().join("target/browser/node_modules/axe-core/axe.min.js"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "axe-core is missing at {}: run `npm install --prefix target/browser axe-core` (as .ci/run does)",
        path.display()
    );
    path
}

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("shop_session="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", response.headers()))
        .to_owned()
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..start + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_buys_merges_a_cart_and_watches_the_status_page() {
    // A provider that refuses every SMS: one failure opens the breaker and
    // notifications turn degraded while the status page watches.
    let mut server = TestServer::start_full(
        &[
            ("SHOP_SMS_WEBHOOK_URL", "http://127.0.0.1:9/sms"),
            ("SHOP_WEBHOOK_SECRET", "0123456789abcdef0123"),
            ("SHOP_NOTIFY_BREAKER_THRESHOLD", "1"),
            ("SHOP_NOTIFY_RETRY_BASE_MS", "100"),
        ],
        &["--demo"],
    );
    let admin = server.admin_token().await;
    // A customer whose account cart already holds a chair: signing in on the site merges into it.
    let carol = server.customer_token("carol@example.com").await;
    let cart = server
        .client
        .post(format!("{}/api/cart", server.url))
        .header("authorization", bearer(&carol))
        .json(&json!({"items": [{"sku": "FUR-CHR-0010", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert!(cart.status().is_success(), "{:?}", cart.text().await);
    // And a saved address in California, which the checkout offers her first.
    let saved = server
        .client
        .post(format!("{}/api/users/me/addresses", server.url))
        .header("authorization", bearer(&carol))
        .json(
            &json!({"address": {"name": "Carol Example", "line1": "1 Market St",
            "city": "San Francisco", "region": "CA", "postal_code": "94105", "country": "US"},
            "default_shipping": true}),
        )
        .send()
        .await
        .unwrap();
    assert!(saved.status().is_success(), "{:?}", saved.text().await);

    let shots = workspace().join("target/screenshots");
    let started = Instant::now();
    let mut child = Command::new("python3")
        .arg(workspace().join("tests/browser/storefront.py"))
        .env("SHOP_URL", &server.url)
        .env("SHOP_DB", server.db())
        .env("SHOP_ADMIN_TOKEN", &admin)
        .env("SHOP_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("SHOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SHOP_CUSTOMER_EMAIL", "carol@example.com")
        .env("SHOP_CUSTOMER_PASSWORD", PASSWORD)
        .env("AXE_JS", axe_js())
        .env("SCREENSHOTS", &shots)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (with selenium from PyPI, chromium and chromium-driver from Debian)");
    let mut control = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    // The script's requests to stop and start the server (for the status
    // page's reconnect), answered once done; anything else it prints is kept.
    let mut printed = Vec::new();
    let status = loop {
        while let Ok(line) = said.try_recv() {
            match line.as_str() {
                "control: stop" => {
                    let stopped = server.stop();
                    assert!(stopped.success(), "the server stopped badly: {stopped:?}");
                    writeln!(control, "stopped").unwrap();
                }
                "control: start" => {
                    server.start_again_on_same_port();
                    writeln!(control, "started").unwrap();
                }
                _ => printed.push(line),
            }
            control.flush().unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            panic!("the browser test ran over {BROWSER_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // What the script printed after its last check.
    printed.extend(said.try_iter());
    let (stdout, stderr) = (printed.join("\n"), err.join().unwrap());
    assert!(status.success(), "browser test failed:\n{stderr}\n{stdout}");
    let last = printed.last().expect("the findings line");
    let findings: Value = serde_json::from_str(last).expect("findings as JSON");
    eprintln!("browser findings: {findings:#}");

    // The order the browser placed, seen through the command line.
    server.cli_login_admin();
    let order_id = findings["order_id"].as_str().unwrap();
    let order = server.shop(&["order", "get", order_id]).expect(0).json();
    assert_eq!(order["status"], "paid", "{order:#}");
    assert_eq!(order["customer_email"], findings["email"]);
    assert_eq!(order["number"], findings["order_number"]);
    // Priced with an address, a method, tax and the sample code, and the
    // total the pages showed is the API's to the cent.
    assert_eq!(order["total_cents"], findings["quoted_cents"], "{order:#}");
    assert_eq!(
        order["total_cents"], findings["order_page_cents"],
        "{order:#}"
    );
    assert_eq!(order["shipping_address"]["country"], "DE", "{order:#}");
    assert_eq!(order["discounts"][0]["code"], "WELCOME10", "{order:#}");
    assert!(order["tax_cents"].as_i64().unwrap() > 0, "{order:#}");
    assert!(order["shipping_cents"].as_i64().unwrap() > 0, "{order:#}");
    let no_js = server
        .shop(&["order", "get", findings["no_js_order"].as_str().unwrap()])
        .expect(0)
        .json();
    assert_eq!(no_js["shipping_address"]["region"], "CA", "{no_js:#}");
    assert_eq!(no_js["tax_lines"][0]["rate_bps"], 725, "{no_js:#}");

    // Stock went down by what was bought, committed against that order.
    for (sku, quantity) in findings["bought"].as_object().unwrap() {
        let quantity = quantity.as_i64().unwrap();
        let ledger = expect_status(
            server
                .get_as(&format!("/api/inventory/{sku}/movements"), &admin)
                .await,
            StatusCode::OK,
        )
        .await;
        let sale = ledger["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == "commit" && m["reason"] == order_id)
            .unwrap_or_else(|| panic!("no sale of {sku} for {order_id}: {ledger:#}"));
        let before = sale["on_hand_before"].as_i64().unwrap();
        assert_eq!(sale["on_hand_after"].as_i64().unwrap(), before - quantity);
        let stock = expect_status(
            server
                .get_as(&format!("/api/inventory/{sku}"), &admin)
                .await,
            StatusCode::OK,
        )
        .await;
        assert!(
            stock["on_hand"].as_i64().unwrap() <= before - quantity,
            "{stock:#}"
        );
    }

    // Signing in merged the anonymous cart into Carol's: her chair and the item added before.
    let merged = findings["merged_cart"].as_object().unwrap();
    assert!(merged.contains_key("FUR-CHR-0010"), "{merged:?}");
    assert_eq!(merged.len(), 2, "{merged:?}");
    // The status page turned every service red while the database was locked, and came back live after a restart.
    assert_eq!(findings["down"]["badge"], "Down", "{findings:#}");
    assert_eq!(findings["down"]["overall"], "Overall: Down", "{findings:#}");
    assert_eq!(findings["while_stopped"], "Reconnecting…", "{findings:#}");
    assert!(
        findings["after_restart"]
            .as_str()
            .is_some_and(|live| live.starts_with("Live")),
        "{findings:#}"
    );
    for (page, violations) in findings["axe"].as_object().unwrap() {
        assert_eq!(violations, 0, "axe-core on {page}");
    }
    for page in [
        "home",
        "product",
        "category",
        "cart",
        "checkout",
        "confirmation",
    ] {
        let total = findings["pages"][page]["total"].as_u64().unwrap();
        assert!(total < 100 * 1024, "{page} weighs {total} bytes");
        assert!(shots.join(format!("{page}-phone.png")).exists());
        assert!(shots.join(format!("{page}-desktop.png")).exists());
    }
}

#[tokio::test]
async fn storefront_forms_need_their_token_and_pages_escape_what_they_show() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let hostile = "<script>alert('name')</script> Chair";
    let created = server
        .client
        .post(format!("{}/api/products", server.url))
        .header("authorization", bearer(&admin))
        .json(&json!({"sku": "XSS-1", "name": hostile, "price_cents": 1999,
            "description": "<img src=x onerror=alert(1)>", "attributes": {"<b>": "<i>"}, "stock": 3}))
        .send()
        .await
        .unwrap();
    expect_status(created, StatusCode::CREATED).await;

    let page = server.get("/p/XSS-1").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = session_cookie(&page);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "no TLS, so no Secure flag: {cookie}"
    );
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>alert"),
        "a product name ran as a script"
    );
    assert!(
        !html.contains("<img src=x"),
        "a description became an element"
    );
    assert!(html.contains("&lt;script&gt;alert("), "{html}");
    assert!(html.contains("3 left"), "{html}");

    // The API keeps its own, stricter headers.
    let api = server.get("/api/version").send().await.unwrap();
    assert_eq!(
        api.headers()[CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'"
    );

    let session = cookie.split(';').next().unwrap().to_owned();
    // Redirects are what a form answers: see them rather than follow them.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |body: String| {
        client
            .post(format!("{}/cart/add", server.url))
            .header(COOKIE, &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let missing = post("sku=XSS-1&quantity=1".to_owned()).await.unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("This form has expired")
    );
    let forged = post(format!("sku=XSS-1&quantity=1&csrf={}", "0".repeat(64)))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Nothing was added by the refused posts.
    let stock = expect_status(
        server.get_as("/api/inventory/XSS-1", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stock["reserved"], 0);

    let token = csrf_of(&html);
    let added = post(format!("sku=XSS-1&quantity=2&csrf={token}"))
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(added.headers()[LOCATION], "/cart");
    let stock = expect_status(
        server.get_as("/api/inventory/XSS-1", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stock["reserved"], 2, "the cart holds two");

    // One session's token is no good in another session.
    let other = server.get("/").send().await.unwrap();
    let other_session = session_cookie(&other).split(';').next().unwrap().to_owned();
    let stolen = client
        .post(format!("{}/cart/add", server.url))
        .header(COOKIE, &other_session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("sku=XSS-1&quantity=1&csrf={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);

    // A sign-in redirect never leaves the site.
    let signin = server
        .get("/account/signin?next=//evil.example/")
        .send()
        .await
        .unwrap();
    let html = signin.text().await.unwrap();
    assert!(html.contains("name=\"next\" value=\"&#x2f;\""), "{html}");
    assert!(!html.contains("evil.example"), "{html}");
}

#[tokio::test]
async fn no_storefront_keeps_the_api_and_the_status_page() {
    let server = TestServer::start_full(&[], &["--no-storefront"]);
    let home = server.get("/").send().await.unwrap();
    assert_eq!(home.status(), StatusCode::NOT_FOUND);
    let product = server.get("/p/anything").send().await.unwrap();
    assert_eq!(product.status(), StatusCode::NOT_FOUND);
    let status = server.get("/status").send().await.unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    let html = status.text().await.unwrap();
    for service in shop_wire::health::SERVICES {
        assert!(
            html.contains(&format!("data-service=\"{service}\"")),
            "{service}"
        );
    }
    assert!(
        !html.contains("action=\"/search\""),
        "no storefront search without the storefront"
    );
    let version = server.get("/api/version").send().await.unwrap();
    assert_eq!(version.status(), StatusCode::OK);
}

/// The `/assets/...` URLs a page links to, in order.
fn asset_urls(html: &str) -> Vec<String> {
    html.match_indices("\"/assets/")
        .map(|(at, _)| {
            let rest = &html[at + 1..];
            rest[..rest.find('"').expect("a closing quote")].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_brand_comes_from_configuration_assets_are_hashed_and_tls_makes_the_cookie_secure() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path, logo_path) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("logo.svg"),
    );
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let logo = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8" fill="#0a6b4f"/></svg>"##;
    std::fs::write(&logo_path, logo).unwrap();
    let server = TestServer::start_full(
        &[],
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
            "--store-name",
            "Harbor & <Sons>",
            "--store-color",
            "#0a6b4f",
            "--store-logo",
            logo_path.to_str().unwrap(),
        ],
    );
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve(
            "localhost",
            server.url.trim_start_matches("https://").parse().unwrap(),
        )
        .build()
        .unwrap();
    let site = format!("https://localhost:{port}");

    let home = client.get(format!("{site}/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let cookie = session_cookie(&home);
    for flag in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    assert!(home.headers().contains_key("strict-transport-security"));
    // A page is never kept; what it links to is kept for a year under a name that changes with it.
    assert_eq!(home.headers()["cache-control"], "no-store");
    let html = home.text().await.unwrap();
    assert!(html.contains("Harbor &amp; &lt;Sons&gt;"), "{html}");
    assert!(!html.contains("<Sons>"), "the configured name is escaped");

    let assets = asset_urls(&html);
    for name in ["theme", "shop", "logo"] {
        assert!(
            assets
                .iter()
                .any(|a| a.starts_with(&format!("/assets/{name}."))),
            "no {name} asset in {assets:?}"
        );
    }
    for url in &assets {
        let answer = client.get(format!("{site}{url}")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{url}");
        assert_eq!(
            answer.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{url}"
        );
        let content_type = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = answer.bytes().await.unwrap();
        // The name carries the content's hash: new content, new name.
        let hash = hex::encode(&sha2::Sha256::digest(&body)[..6]);
        let file = url.rsplit('/').next().unwrap();
        assert_eq!(file.split('.').nth(1), Some(hash.as_str()), "{url}");
        match file.rsplit('.').next().unwrap() {
            "css" => assert!(content_type.starts_with("text/css"), "{content_type}"),
            "js" => assert!(
                content_type.starts_with("text/javascript"),
                "{content_type}"
            ),
            "svg" => {
                assert_eq!(content_type, "image/svg+xml");
                assert_eq!(body, logo.as_bytes());
            }
            other => panic!("an unexpected asset type {other}"),
        }
        if file.starts_with("theme.") {
            assert_eq!(&body[..], b":root{--brand:#0a6b4f}\n");
        }
    }
    let unknown = client
        .get(format!("{site}/assets/shop.000000000000.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// Signs in on the storefront's form; the session cookie it leaves (a new one: sign-in rotates it).
async fn storefront_sign_in(server: &TestServer, client: &reqwest::Client, email: &str) -> String {
    let page = client
        .get(format!("{}/account/signin", server.url))
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&page).split(';').next().unwrap().to_owned();
    let csrf = csrf_of(&page.text().await.unwrap());
    let signed_in = client
        .post(format!("{}/account/signin", server.url))
        .header(COOKIE, &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&email={}&password={PASSWORD}&next=%2Faccount",
            email.replace('@', "%40")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    session_cookie(&signed_in)
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_customers_order_is_not_found_for_another_and_prices_follow_their_currency() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    for (sku, price, currency) in [("YEN-1", 1300, "JPY"), ("DINAR-1", 1500, "KWD")] {
        let created = server
            .send_as(
                reqwest::Method::POST,
                "/api/products",
                &json!({"sku": sku, "name": format!("{currency} teapot"), "price_cents": price,
                    "currency": currency, "stock": 5}),
                &admin,
            )
            .await;
        expect_status(created, StatusCode::CREATED).await;
    }
    let yen = server
        .get("/p/YEN-1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(yen.contains("¥1,300"), "{yen}");
    let dinar = server
        .get("/p/DINAR-1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dinar.contains("KWD 1.500"), "{dinar}");

    let alice = server.customer_token("alice@example.com").await;
    server.customer_token("bob@example.com").await;
    let order = server
        .send_as(
            reqwest::Method::POST,
            "/api/orders",
            &json!({"items": [{"sku": "YEN-1", "quantity": 1}],
                "payment": {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035}}),
            &alice,
        )
        .await;
    let order = expect_status(order, StatusCode::CREATED).await;
    let path = format!("/orders/{}", order["id"].as_str().unwrap());

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |cookie: String| {
        client
            .get(format!("{}{path}", server.url))
            .header(COOKIE, cookie)
            .send()
    };
    let hers = page(storefront_sign_in(&server, &client, "alice@example.com").await)
        .await
        .unwrap();
    assert_eq!(hers.status(), StatusCode::OK);
    let html = hers.text().await.unwrap();
    assert!(html.contains(order["number"].as_str().unwrap()), "{html}");
    assert!(html.contains("¥1,300"), "{html}");
    // Not 403: another customer learns nothing, not even that the order exists.
    let his = page(storefront_sign_in(&server, &client, "bob@example.com").await)
        .await
        .unwrap();
    assert_eq!(his.status(), StatusCode::NOT_FOUND);
    let html = his.text().await.unwrap();
    assert!(!html.contains(order["number"].as_str().unwrap()), "{html}");
}

#[tokio::test]
async fn kept_recommendations_and_categories_are_never_older_than_the_last_catalog_write() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    for (sku, name, price) in [
        ("KEPT-A", "Alder Stool", 4000),
        ("KEPT-B", "Birch Stool", 5000),
    ] {
        let created = server
            .send_as(
                reqwest::Method::POST,
                "/api/products",
                &json!({"sku": sku, "name": name, "price_cents": price,
                    "category": "seating/stools", "stock": 5}),
                &admin,
            )
            .await;
        expect_status(created, StatusCode::CREATED).await;
    }
    let page = || async {
        let html = server
            .get("/p/KEPT-A")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let recommended = &html[html.find("id=\"recs\"").expect("recommendations")..];
        recommended.to_owned()
    };
    assert!(page().await.contains("$50.00"));
    // Kept now; a price change must show at once all the same.
    assert!(page().await.contains("$50.00"));
    let changed = server
        .send_as(
            reqwest::Method::PATCH,
            "/api/products/KEPT-B",
            &json!({"price_cents": 4500}),
            &admin,
        )
        .await;
    expect_status(changed, StatusCode::OK).await;
    let after = page().await;
    assert!(
        after.contains("$45.00") && !after.contains("$50.00"),
        "{after}"
    );

    let home = server.get("/").send().await.unwrap().text().await.unwrap();
    assert!(!home.contains("/c/garden"), "{home}");
    let created = server
        .send_as(
            reqwest::Method::POST,
            "/api/products",
            &json!({"sku": "KEPT-C", "name": "Cedar Planter", "price_cents": 3000,
                "category": "garden/planters", "stock": 5}),
            &admin,
        )
        .await;
    expect_status(created, StatusCode::CREATED).await;
    let home = server.get("/").send().await.unwrap().text().await.unwrap();
    assert!(home.contains("/c/garden"), "{home}");
    let category = server.get("/c/garden/planters").send().await.unwrap();
    assert_eq!(category.status(), StatusCode::OK);
}
