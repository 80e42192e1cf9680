//! The event log over Server-Sent Events, with `Last-Event-ID` resume.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

/// Opens `/api/events` and returns the next `n` events.
async fn next_events(
    server: &TestServer,
    token: &str,
    query: &str,
    last_event_id: Option<&str>,
    n: usize,
) -> Vec<Value> {
    let mut request = server
        .get(&format!("/api/events{query}"))
        .header("authorization", bearer(token));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = response.bytes_stream().eventsource();
    let mut events = Vec::new();
    while events.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("well-formed SSE");
        let event: Value = serde_json::from_str(&message.data).unwrap();
        assert_eq!(
            message.id,
            event["id"].to_string(),
            "SSE id is the event id"
        );
        assert_eq!(message.event, event["type"].as_str().unwrap());
        events.push(event);
    }
    events
}

#[tokio::test]
async fn events_replay_from_the_log_and_resume_after_last_event_id() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    for name in ["one", "two", "three"] {
        server.register(&format!("{name}@example.com"), name).await;
    }
    let registered = next_events(&server, &admin, "?after=0&type=user.registered", None, 4).await;
    let emails: Vec<_> = registered
        .iter()
        .map(|e| e["data"]["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        emails,
        [
            ADMIN_EMAIL,
            "one@example.com",
            "two@example.com",
            "three@example.com"
        ]
    );
    assert!(
        registered
            .windows(2)
            .all(|w| w[0]["id"].as_u64() < w[1]["id"].as_u64())
    );
    assert!(
        registered[0]["occurred_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Resume after "two": the next registration is "three".
    let after_two = registered[2]["id"].to_string();
    let resumed = next_events(&server, &admin, "?type=user.*", Some(&after_two), 1).await;
    assert_eq!(resumed[0]["data"]["email"], "three@example.com");

    // Resume works across a restart: the log is durable.
    let mut server = server;
    server.restart();
    let admin = server.admin_token().await;
    let resumed = next_events(
        &server,
        &admin,
        "?type=user.registered",
        Some(&after_two),
        1,
    )
    .await;
    assert_eq!(resumed[0]["data"]["email"], "three@example.com");
}

#[tokio::test]
async fn live_events_arrive_as_they_happen() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let watcher = {
        let (url, token) = (server.url.clone(), admin.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let response = client
                .get(format!("{url}/api/events?type=user.logged_in"))
                .header("authorization", bearer(&token))
                .send()
                .await
                .unwrap();
            let mut stream = response.bytes_stream().eventsource();
            let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            serde_json::from_str::<Value>(&message.data).unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.register("live@example.com", "Live").await;
    let login = server.login("live@example.com", PASSWORD).await;
    let event = watcher.await.unwrap();
    assert_eq!(event["type"], "user.logged_in");
    assert_eq!(event["data"]["user_id"], login.user.id.as_str());

    // An open stream does not hold up shutdown: it ends, and the server exits at once.
    let response = server.get_as("/api/events", &admin).await;
    let mut stream = response.bytes_stream().eventsource();
    let mut server = server;
    let started = std::time::Instant::now();
    assert!(server.stop().success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .is_none(),
        "the stream ended"
    );
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_clear_error() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let response = server
        .get("/api/events")
        .header("authorization", bearer(&admin))
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
}

/// The next event on `stream` that `wanted` accepts, skipping the others.
async fn next_matching<S, E>(stream: &mut S, wanted: impl Fn(&Value) -> bool) -> Value
where
    S: futures::Stream<Item = Result<eventsource_stream::Event, E>> + Unpin,
    E: std::fmt::Debug,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("well-formed SSE");
        let event: Value = serde_json::from_str(&message.data).unwrap();
        if wanted(&event) {
            return event;
        }
    }
}

#[tokio::test]
async fn a_checkout_whose_client_hangs_up_reaches_the_live_stream_and_search() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let product = serde_json::json!({
        "sku": "QUOKKA-1", "name": "Quokka lantern", "price_cents": 2500, "stock": 5,
    });
    let created = server
        .send_as(reqwest::Method::POST, "/api/products", &product, &admin)
        .await;
    expect_status(created, StatusCode::CREATED).await;
    let response = server
        .get("/api/events?type=order.*,inventory.*")
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream().eventsource();
    // A change made while the stream waits proves it follows live events,
    // not only the log it read when it opened.
    let marker = serde_json::json!({"delta": 1, "reason": "marker"});
    let adjusted = server
        .send_as(
            reqwest::Method::POST,
            "/api/inventory/QUOKKA-1/adjustments",
            &marker,
            &admin,
        )
        .await;
    expect_status(adjusted, StatusCode::OK).await;
    next_matching(&mut stream, |e| e["type"] == "inventory.adjusted").await;

    // The client sends its checkout and hangs up once the server has it,
    // long before the answer.
    let order = serde_json::json!({
        "items": [{"sku": "QUOKKA-1", "quantity": 2}],
        "payment": {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035},
    });
    let connection = server
        .post_unanswered("/api/orders", &[("authorization", &bearer(&admin))], &order)
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(connection);

    let committed = next_matching(&mut stream, |e| e["type"] == "inventory.committed").await;
    assert_eq!(committed["data"]["sku"], "QUOKKA-1");
    assert_eq!(committed["data"]["on_hand"], 4);
    let paid = next_matching(&mut stream, |e| e["type"] == "order.paid").await;
    assert_eq!(paid["data"]["items"][0]["sku"], "QUOKKA-1");
    // The search index heard the stock change too: 6 - 2 left.
    let found = expect_status(
        server.get("/api/search?q=quokka").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(found["items"][0]["product"]["sku"], "QUOKKA-1", "{found}");
    assert_eq!(found["items"][0]["available"], 4, "{found}");
}
