//! Accounts, logins, tokens, sessions and roles.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn register_login_profile_and_password_change_round_trip() {
    let server = TestServer::start();
    let user = server.register("  Ada@Example.com ", "Ada Lovelace").await;
    assert!(
        user["id"].as_str().is_some_and(|id| id.starts_with("usr_")),
        "{user}"
    );
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["role"], "customer");
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());

    let tokens = server.login("ADA@example.com", PASSWORD).await;
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    let auth = bearer(&tokens.access_token);

    let me = expect_status(
        server
            .get("/api/users/me")
            .header("authorization", &auth)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(me, user);

    let update = json!({"name": "Ada King", "addresses": [{"label": "home", "line1": "12 St James's Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "gb"}]});
    let updated = expect_status(
        server
            .request(Method::PATCH, "/api/users/me")
            .header("authorization", &auth)
            .json(&update)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["name"], "Ada King");
    assert_eq!(updated["addresses"][0]["country"], "GB");
    assert_eq!(
        updated["email"], "ada@example.com",
        "fields not sent are kept"
    );

    let new_password = "analytical-engine-1843-notes";
    let change = json!({"current_password": PASSWORD, "new_password": new_password});
    let response = server
        .post("/api/users/me/password", &change)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::NO_CONTENT).await;
    let old = server
        .post(
            "/api/users/login",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    expect_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    server.login("ada@example.com", new_password).await;
    // The session that changed the password stays valid.
    let me = server
        .get("/api/users/me")
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    expect_status(me, StatusCode::OK).await;
}

#[tokio::test]
async fn password_change_ends_other_sessions_and_needs_the_current_password() {
    let server = TestServer::start();
    server.register("grace@example.com", "Grace").await;
    let laptop = server
        .login("grace@example.com", PASSWORD)
        .await
        .access_token;
    let phone = server
        .login("grace@example.com", PASSWORD)
        .await
        .access_token;

    let wrong = json!({"current_password": "not-my-password-at-all", "new_password": "cobol-compiler-1959-flowmatic"});
    let response = server
        .send_as(Method::POST, "/api/users/me/password", &wrong, &laptop)
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(
        body["error"]["details"]["fields"]["current_password"].is_string(),
        "{body}"
    );

    let right =
        json!({"current_password": PASSWORD, "new_password": "cobol-compiler-1959-flowmatic"});
    let response = server
        .send_as(Method::POST, "/api/users/me/password", &right, &laptop)
        .await;
    expect_status(response, StatusCode::NO_CONTENT).await;
    let response = server.get_as("/api/users/me", &phone).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn expired_tampered_and_revoked_tokens_get_401() {
    let server = TestServer::start_with(&[("SHOP_ACCESS_TOKEN_TTL", "1")]);
    server.register("alan@example.com", "Alan").await;
    let tokens = server.login("alan@example.com", PASSWORD).await;
    assert_eq!(tokens.expires_in, 1);

    let mut tampered = tokens.access_token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let response = server.get_as("/api/users/me", &tampered).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let response = server.get("/api/users/me").send().await.unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = server.get_as("/api/users/me", &tokens.access_token).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "token_expired").await;

    // The refresh token still works, and logging out revokes the new pair at once.
    let refreshed = server.refresh(&tokens.refresh_token).await;
    let refreshed: shop_wire::users::TokenResponse =
        serde_json::from_value(expect_status(refreshed, StatusCode::OK).await).unwrap();
    let auth = bearer(&refreshed.access_token);
    expect_status(
        server
            .get("/api/users/me")
            .header("authorization", &auth)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let response = server
        .request(Method::POST, "/api/users/logout")
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::NO_CONTENT).await;
    let response = server
        .get("/api/users/me")
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let response = server.refresh(&refreshed.refresh_token).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn a_replayed_refresh_token_ends_the_session() {
    let server = TestServer::start();
    server.register("joan@example.com", "Joan").await;
    let first = server.login("joan@example.com", PASSWORD).await;
    let second = server.refresh(&first.refresh_token).await;
    let second: shop_wire::users::TokenResponse =
        serde_json::from_value(expect_status(second, StatusCode::OK).await).unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);

    let replay = server.refresh(&first.refresh_token).await;
    expect_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    // Whoever holds the current pair is cut off too.
    let response = server.get_as("/api/users/me", &second.access_token).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let response = server.refresh(&second.refresh_token).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn sessions_are_listed_and_one_can_be_revoked_from_another() {
    let server = TestServer::start();
    server.register("hedy@example.com", "Hedy").await;
    let laptop = server
        .login("hedy@example.com", PASSWORD)
        .await
        .access_token;
    let phone = server
        .login("hedy@example.com", PASSWORD)
        .await
        .access_token;

    let sessions = expect_status(
        server.get_as("/api/users/me/sessions", &laptop).await,
        StatusCode::OK,
    )
    .await;
    let sessions = sessions.as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    let phone_session = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let path = format!("/api/users/me/sessions/{phone_session}");
    let response = server
        .request(Method::DELETE, &path)
        .header("authorization", bearer(&laptop))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::NO_CONTENT).await;
    let response = server.get_as("/api/users/me", &phone).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let response = server
        .request(Method::DELETE, &path)
        .header("authorization", bearer(&laptop))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;

    // Another user cannot revoke Hedy's sessions.
    let other = server.customer_token("eve@example.com").await;
    let laptop_session = sessions.iter().find(|s| s["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = server
        .request(
            Method::DELETE,
            &format!("/api/users/me/sessions/{laptop_session}"),
        )
        .header("authorization", bearer(&other))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    expect_status(
        server.get_as("/api/users/me", &laptop).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn customers_cannot_reach_admin_routes_and_admins_manage_roles() {
    let server = TestServer::start();
    let customer = server.customer_token("mallory@example.com").await;
    let admin = server.admin_token().await;

    for (method, path) in [
        (Method::GET, "/api/users"),
        (Method::GET, "/api/events?after=0"),
    ] {
        let response = server
            .request(method, path)
            .header("authorization", bearer(&customer))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let create = json!({"email": "root2@example.com", "password": PASSWORD, "name": "Sneaky", "role": "admin"});
    let response = server
        .send_as(Method::POST, "/api/users", &create, &customer)
        .await;
    expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = server
        .post(
            "/api/users/register",
            &json!({"email": "x@example.com", "password": PASSWORD, "name": "X", "role": "admin"}),
        )
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    let staff = server.post("/api/users", &json!({"email": "sam@example.com", "password": PASSWORD, "name": "Sam", "role": "staff"}))
        .header("authorization", bearer(&admin)).send().await.unwrap();
    let staff = expect_status(staff, StatusCode::CREATED).await;
    assert_eq!(staff["role"], "staff");

    let list = expect_status(
        server
            .get_as("/api/users?role=staff&limit=10", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["limit"], 10);
    assert_eq!(list["offset"], 0);
    assert_eq!(list["items"][0]["email"], "sam@example.com");
    let all = expect_status(
        server.get_as("/api/users?q=EXAMPLE.com", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["total"], 3);
    let response = server.get_as("/api/users?limit=0", &admin).await;
    expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    let response = server.get_as("/api/users?role=king", &admin).await;
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_query").await;

    // A promotion takes effect on the customer's existing token at once.
    let me = expect_status(
        server.get_as("/api/users/me", &customer).await,
        StatusCode::OK,
    )
    .await;
    let path = format!("/api/users/{}/role", me["id"].as_str().unwrap());
    let promoted = server
        .send_as(Method::PUT, &path, &json!({"role": "admin"}), &admin)
        .await;
    assert_eq!(
        expect_status(promoted, StatusCode::OK).await["role"],
        "admin"
    );
    let response = server.get_as("/api/users", &customer).await;
    expect_status(response, StatusCode::OK).await;

    let response = server
        .get_as("/api/users/usr_01JDQ6Z5R3K8V2N4M7P9T0W1XY", &admin)
        .await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = server.get_as("/api/users/not-an-id", &admin).await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let me = expect_status(server.get_as("/api/users/me", &admin).await, StatusCode::OK).await;
    let path = format!("/api/users/{}/role", me["id"].as_str().unwrap());
    let response = server
        .send_as(Method::PUT, &path, &json!({"role": "customer"}), &admin)
        .await;
    expect_error(response, StatusCode::CONFLICT, "last_admin").await;
    let me = expect_status(server.get_as("/api/users/me", &admin).await, StatusCode::OK).await;
    assert_eq!(me["role"], "admin");
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_for_a_while() {
    let server = TestServer::start();
    server.register("kevin@example.com", "Kevin").await;
    for _ in 0..5 {
        let response = server
            .post(
                "/api/users/login",
                &json!({"email": "kevin@example.com", "password": "guess-guess-guess"}),
            )
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // Locked now, even for the right password.
    let response = server
        .post(
            "/api/users/login",
            &json!({"email": "kevin@example.com", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // Other accounts are unaffected.
    server.register("other@example.com", "Other").await;
    server.login("other@example.com", PASSWORD).await;
    // An unknown email answers exactly like a wrong password.
    let response = server
        .post(
            "/api/users/login",
            &json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}
