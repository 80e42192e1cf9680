//! Accounts after the sale, through the `shop` command line: an address is
//! proved before the orders placed for it join an account, and a password
//! is changed, or reset by email, with every other session ended.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const NEW_PASSWORD: &str = "amber-glacier-77-lantern";
const RESET_PASSWORD: &str = "copper-meadow-19-compass";

/// The email of `template` that the local sink delivered to `to`, as the admin reads it.
async fn delivered(server: &TestServer, admin: &str, template: &str, to: &str) -> Value {
    eventually(
        &format!("the {template} email to {to}"),
        Duration::from_secs(10),
        || async {
            let page = expect_status(
                server
                    .get_as(
                        &format!("/api/notifications/deliveries?channel=email&recipient={to}"),
                        admin,
                    )
                    .await,
                StatusCode::OK,
            )
            .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["template"] == template)
                .cloned()
        },
    )
    .await
}

/// The one-time code in an email's text: 64 hex digits.
fn code_in(email: &Value) -> String {
    let body = email["body"].as_str().unwrap();
    body.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|word| word.len() == 64 && word.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_owned()
}

/// `shop user password` with both passwords on stdin.
fn change_password(server: &TestServer, current: &str, new: &str) -> CliOutput {
    server.shop_stdin(
        &["user", "password", "--password-stdin"],
        &format!("{current}\n{new}\n"),
    )
}

async fn refused_login(server: &TestServer, email: &str, password: &str) {
    let response = server
        .post(
            "/api/users/login",
            &json!({"email": email, "password": password}),
        )
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

async fn order_numbers(server: &TestServer, token: &str) -> Vec<String> {
    let page = expect_status(server.get_as("/api/orders", token).await, StatusCode::OK).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["number"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn guest_orders_join_an_account_only_once_its_email_is_verified() {
    let server = TestServer::start();
    server.cli_login_admin();
    server
        .shop(&[
            "product", "add", "--sku", "MUG-01", "--name", "Mug", "--price", "9.50", "--stock",
            "10",
        ])
        .expect(0);
    // Staff take an order for Carol before she has an account.
    let order = server
        .shop(&[
            "order",
            "create",
            "--item",
            "MUG-01:1",
            "--customer",
            "carol@example.com",
            "--pay",
            "card:4242424242424242",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    let number = order["number"].as_str().unwrap().to_owned();

    // Whoever registers the address sees nothing of it yet: not in the
    // list, not by number, not its payment.
    let carol = server.customer_token("carol@example.com").await;
    assert!(order_numbers(&server, &carol).await.is_empty());
    expect_error(
        server
            .get_as(&format!("/api/orders/{number}"), &carol)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let payments =
        expect_status(server.get_as("/api/payments", &carol).await, StatusCode::OK).await;
    assert_eq!(payments["total"], 0, "{payments}");
    let user = server
        .shop(&["user", "get", "carol@example.com", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(user["email_verified"], false);

    // The welcome email brings the code; a wrong one changes nothing.
    let admin = server.admin_token().await;
    let code = code_in(&delivered(&server, &admin, "welcome", "carol@example.com").await);
    let wrong = server.shop(&["user", "verify", &"0".repeat(64)]).expect(1);
    assert!(wrong.stderr.contains("invalid_account_token"), "{wrong:?}");
    assert!(order_numbers(&server, &carol).await.is_empty());

    let verified = server
        .shop(&["user", "verify", &code, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(verified["email"], "carol@example.com");
    assert_eq!(verified["email_verified"], true);
    assert_eq!(order_numbers(&server, &carol).await, vec![number.clone()]);
    expect_status(
        server
            .get_as(&format!("/api/orders/{number}"), &carol)
            .await,
        StatusCode::OK,
    )
    .await;
    let me = expect_status(server.get_as("/api/users/me", &carol).await, StatusCode::OK).await;
    assert_eq!(me["email_verified"], true);

    // A code works once.
    let again = server.shop(&["user", "verify", &code]).expect(1);
    assert!(again.stderr.contains("account_token_used"), "{again:?}");
}

#[tokio::test]
async fn a_password_is_changed_and_reset_by_email_ending_the_other_sessions() {
    // Many logins from one address; the limit on them has its own test below.
    let server = TestServer::start_with(&[("SHOP_RATE_LIMIT_LOGIN", "0")]);
    let admin = server.admin_token().await;
    server.register("dan@example.com", "Dan").await;
    server
        .shop_stdin(
            &["login", "--email", "dan@example.com", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )
        .expect(0);
    let other = server.login("dan@example.com", PASSWORD).await.access_token;

    // The wrong current password changes nothing.
    let refused = change_password(&server, "not-the-password", NEW_PASSWORD).expect(1);
    assert!(refused.stderr.contains("current_password"), "{refused:?}");
    expect_status(server.get_as("/api/users/me", &other).await, StatusCode::OK).await;

    let changed = change_password(&server, PASSWORD, NEW_PASSWORD).expect(0);
    assert!(changed.stderr.contains("other sessions"), "{changed:?}");
    // This session goes on; the other one ended; only the new password logs in.
    let me = server.shop(&["whoami", "-o", "json"]).expect(0).json();
    assert_eq!(me["email"], "dan@example.com");
    expect_error(
        server.get_as("/api/users/me", &other).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    server.login("dan@example.com", NEW_PASSWORD).await;
    refused_login(&server, "dan@example.com", PASSWORD).await;

    // Asking for a reset says the same whether or not the address has an account.
    let asked = server
        .shop(&["user", "reset-password", "--email", "dan@example.com"])
        .expect(0);
    let unknown = server
        .shop(&["user", "reset-password", "--email", "nobody@example.com"])
        .expect(0);
    assert_eq!(
        asked.stderr.replace("dan@", "X@"),
        unknown.stderr.replace("nobody@", "X@")
    );
    let response = server
        .post(
            "/api/users/password-reset",
            &json!({"email": "nobody@example.com"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let email = delivered(&server, &admin, "password_reset", "dan@example.com").await;
    let code = code_in(&email);
    // Staff read the queue, but never the code: it would open any account.
    let sam = server.register("sam@example.com", "Sam").await;
    let sam = sam["id"].as_str().unwrap();
    expect_status(
        server
            .send_as(
                Method::PUT,
                &format!("/api/users/{sam}/role"),
                &json!({"role": "staff"}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let staff = server.login("sam@example.com", PASSWORD).await.access_token;
    for path in [
        "/api/notifications/deliveries?channel=email&recipient=dan@example.com",
        "/api/notifications?template=password_reset",
        &format!(
            "/api/notifications/{}",
            email["notification_id"].as_str().unwrap()
        ),
    ] {
        let seen = expect_status(server.get_as(path, &staff).await, StatusCode::OK).await;
        assert!(!seen.to_string().contains(&code), "{path}: {seen}");
    }

    let reset = server
        .shop_stdin(
            &[
                "user",
                "reset-password",
                "--token",
                &code,
                "--password-stdin",
            ],
            &format!("{RESET_PASSWORD}\n"),
        )
        .expect(0);
    assert!(reset.stderr.contains("Password reset"), "{reset:?}");
    let after = server.login("dan@example.com", RESET_PASSWORD).await;
    assert!(
        after.user.email_verified,
        "the reset email reached the address"
    );
    refused_login(&server, "dan@example.com", NEW_PASSWORD).await;
    // Every session ended with the reset, the command line's too.
    assert_ne!(server.shop(&["whoami"]).code, 0);
    let reused = server
        .shop_stdin(
            &[
                "user",
                "reset-password",
                "--token",
                &code,
                "--password-stdin",
            ],
            &format!("{NEW_PASSWORD}\n"),
        )
        .expect(1);
    assert!(reused.stderr.contains("account_token_used"), "{reused:?}");
}

#[tokio::test]
async fn emailed_codes_are_guessed_no_faster_than_passwords() {
    let server = TestServer::start_with(&[("SHOP_RATE_LIMIT_LOGIN", "3")]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = server
            .post("/api/users/verify", &json!({"token": "0".repeat(64)}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(statuses[0], StatusCode::BAD_REQUEST);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let confirm = server
        .post(
            "/api/users/password-reset/confirm",
            &json!({"token": "0".repeat(64), "new_password": RESET_PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), StatusCode::TOO_MANY_REQUESTS);
}
