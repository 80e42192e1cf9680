//! Outbound webhooks end to end: a receiver in Python that verifies every
//! delivery with the `standardwebhooks` package from PyPI (the reference
//! library, not our code), retries, replays, secret rotation, a kill -9 with
//! deliveries queued, and the SSRF checks.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, eventually, expect_error, expect_status, read};

/// The receiver: answers each POST as `config.json` (re-read per request)
/// says, verifies it with standardwebhooks against each configured secret,
/// and appends what it saw to `log.jsonl`.
const RECEIVER: &str = r#"
import json, os, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from standardwebhooks.webhooks import Webhook

root = sys.argv[1]
lock = threading.Lock()
seen = {}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(os.path.join(root, "config.json")) as f:
            config = json.load(f)
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified, payload, errors = [], None, []
        for secret in config["secrets"]:
            try:
                payload = Webhook(secret).verify(body, headers)
                verified.append(True)
            except Exception as e:
                verified.append(False)
                errors.append(repr(e))
        wid = headers.get("webhook-id")
        with lock:
            seen[wid] = seen.get(wid, 0) + 1
            attempt = seen[wid]
        kind = payload.get("type") if payload else None
        status = 204
        failing = config.get("fail", {}).get(kind)
        if failing and attempt <= failing[0]:
            status = failing[1]
        if not any(verified):
            status = 401
        time.sleep(config.get("delay_ms", 0) / 1000)
        record = {
            "webhook_id": wid,
            "event_id": payload.get("id") if payload else None,
            "type": kind,
            "verified": verified,
            "errors": errors,
            "signatures": len(headers.get("webhook-signature", "").split(" ")),
            "status": status,
        }
        with lock:
            with open(os.path.join(root, "log.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(root, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(root, "port.tmp"), os.path.join(root, "port"))
server.serve_forever()
"#;

/// The receiver process and its files; killed on drop.
struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Receiver {
    fn start() -> Self {
        let found = Command::new("python3")
            .args(["-c", "import standardwebhooks"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "this test needs the standardwebhooks package from PyPI: \
             python3 -m pip install standardwebhooks (.ci/run installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("receiver.py"), RECEIVER).unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"secrets": []}"#).unwrap();
        let child = Command::new("python3")
            .arg(dir.path().join("receiver.py"))
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("receiver.log")).unwrap())
            .spawn()
            .expect("spawn python3 receiver.py");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(port) = std::fs::read_to_string(dir.path().join("port")) {
                break port.trim().parse().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not start:\n{}",
                read(&dir.path().join("receiver.log"))
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Receiver { child, dir, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    fn configure(&self, config: Value) {
        let path = self.dir.path().join("config.json");
        let temp = self.dir.path().join("config.tmp");
        std::fs::write(&temp, config.to_string()).unwrap();
        std::fs::rename(temp, path).unwrap();
    }

    fn log(&self) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(self.dir.path().join("log.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|r| r["type"] == kind)
            .collect()
    }

    fn stderr(&self) -> String {
        read(&self.dir.path().join("receiver.log"))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that may deliver to the receiver's port over http, with retries in milliseconds.
fn server_for(receiver: &Receiver, extra: &[(&str, &str)]) -> TestServer {
    let allow = format!("127.0.0.1:{}", receiver.port);
    let mut env = vec![
        ("SHOP_RATE_LIMIT_IP", "0"),
        ("SHOP_RATE_LIMIT_TOKEN", "0"),
        ("SHOP_WEBHOOK_RETRY_BASE_MS", "300"),
        ("SHOP_WEBHOOK_RETRY_MAX_MS", "1000"),
        ("SHOP_WEBHOOK_POLL_MS", "100"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_full(&env, &["--webhook-allow-host", &allow])
}

async fn create_webhook(server: &TestServer, admin: &str, url: &str, events: &[&str]) -> Value {
    let response = server
        .send_as(
            Method::POST,
            "/api/webhooks",
            &json!({"url": url, "events": events, "description": "e2e receiver"}),
            admin,
        )
        .await;
    expect_status(response, StatusCode::CREATED).await
}

async fn deliveries(server: &TestServer, admin: &str, webhook: &str) -> Vec<Value> {
    let page = expect_status(
        server
            .get_as(
                &format!("/api/webhooks/{webhook}/deliveries?limit=500"),
                admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

async fn product(server: &TestServer, admin: &str, sku: &str) {
    let body =
        json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": 1500, "stock": 20});
    let response = server
        .send_as(Method::POST, "/api/products", &body, admin)
        .await;
    expect_status(response, StatusCode::CREATED).await;
}

#[tokio::test]
async fn an_order_paid_is_delivered_signed_retried_after_two_500s_then_replayed_and_rotated() {
    let receiver = Receiver::start();
    let server = server_for(&receiver, &[]);
    let admin = server.admin_token().await;
    product(&server, &admin, "MUG-1").await;
    let webhook = create_webhook(&server, &admin, &receiver.url(), &["order.*"]).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    assert!(
        id.starts_with("whk_") && secret.starts_with("whsec_"),
        "{webhook}"
    );
    assert_eq!(webhook["status"], "active");
    // The secret is shown once: not by a read.
    let read_back = expect_status(
        server.get_as(&format!("/api/webhooks/{id}"), &admin).await,
        StatusCode::OK,
    )
    .await;
    assert!(read_back.get("secret").is_none(), "{read_back}");
    receiver.configure(json!({"secrets": [secret], "fail": {"order.paid": [2, 500]}}));

    let order = json!({
        "items": [{"sku": "MUG-1", "quantity": 1}],
        "customer_email": "ada@example.com",
        "payment": {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035}
    });
    let response = server
        .send_as(Method::POST, "/api/orders", &order, &admin)
        .await;
    let order = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(order["status"], "paid", "{order}");

    let paid = eventually(
        "order.paid to be answered 500 twice and then accepted",
        Duration::from_secs(30),
        || async {
            let seen = receiver.of_type("order.paid");
            (seen.len() >= 3).then_some(seen)
        },
    )
    .await;
    assert_eq!(paid.len(), 3, "{paid:?}");
    let statuses: Vec<i64> = paid.iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [500, 500, 204]);
    let message_id = paid[0]["webhook_id"].as_str().unwrap().to_owned();
    for record in &paid {
        assert_eq!(record["verified"], json!([true]), "{record}");
        assert_eq!(
            record["webhook_id"],
            message_id.as_str(),
            "one id across retries"
        );
        assert_eq!(record["signatures"], 1);
    }
    // The other order event went through at once, under its own id.
    let created = receiver.of_type("order.created");
    assert_eq!(created.len(), 1, "{created:?}");
    assert_ne!(created[0]["webhook_id"], message_id.as_str());

    // The receiver answers before the server records the answer.
    let delivery = eventually(
        "the third attempt to be recorded",
        Duration::from_secs(10),
        || async {
            deliveries(&server, &admin, &id)
                .await
                .into_iter()
                .find(|d| d["event_type"] == "order.paid" && d["status"] == "succeeded")
        },
    )
    .await;
    assert_eq!(delivery["id"], message_id.as_str());
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["response_status"], 204);
    assert_eq!(delivery["event_id"], paid[0]["event_id"]);

    // A replay sends it again, with the same webhook-id.
    let response = server
        .send_as(
            Method::POST,
            &format!("/api/webhooks/{id}/deliveries/{message_id}/replay"),
            &json!({}),
            &admin,
        )
        .await;
    let replayed = expect_status(response, StatusCode::OK).await;
    assert_eq!(replayed["attempts"], 0, "{replayed}");
    eventually("the replay to arrive", Duration::from_secs(20), || async {
        let seen = receiver.of_type("order.paid");
        (seen.len() == 4 && seen[3]["status"] == 204).then_some(())
    })
    .await;
    assert_eq!(
        receiver.of_type("order.paid")[3]["webhook_id"],
        message_id.as_str()
    );
    let missing = server
        .send_as(
            Method::POST,
            &format!("/api/webhooks/{id}/deliveries/msg_01JDQ6Z5R3K8V2N4M7P9T0W1XY/replay"),
            &json!({}),
            &admin,
        )
        .await;
    expect_error(missing, StatusCode::NOT_FOUND, "not_found").await;

    // Rotation: the new secret is returned, and both sign during the overlap.
    let rotated = expect_status(
        server
            .send_as(
                Method::POST,
                &format!("/api/webhooks/{id}/rotate-secret"),
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    receiver.configure(json!({"secrets": [new_secret, secret]}));
    let test = expect_status(
        server
            .send_as(
                Method::POST,
                &format!("/api/webhooks/{id}/test"),
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let tested = eventually("the test event", Duration::from_secs(20), || async {
        receiver.of_type("webhook.test").into_iter().next()
    })
    .await;
    assert_eq!(tested["event_id"], test["event_id"]);
    assert_eq!(tested["signatures"], 2, "{tested}");
    assert_eq!(tested["verified"], json!([true, true]), "{tested}");
    assert_eq!(tested["status"], 204);
}

#[tokio::test]
async fn failures_are_replayed_since_a_time_and_a_410_disables_the_endpoint_and_tells_the_admins() {
    let receiver = Receiver::start();
    let server = server_for(&receiver, &[("SHOP_WEBHOOK_GIVE_UP_SECONDS", "1")]);
    let admin = server.admin_token().await;
    let webhook = create_webhook(&server, &admin, &receiver.url(), &["product.*"]).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    // Every product event fails until the window of one second is over: dead.
    receiver.configure(json!({"secrets": [secret], "fail": {"product.created": [1000, 503]}}));
    product(&server, &admin, "HAT-1").await;
    let dead = eventually(
        "the delivery to be given up",
        Duration::from_secs(30),
        || async {
            let log = deliveries(&server, &admin, &id).await;
            log.into_iter().find(|d| d["status"] == "dead")
        },
    )
    .await;
    assert!(dead["attempts"].as_u64().unwrap() >= 1, "{dead}");
    assert_eq!(dead["response_status"], 503);
    assert!(
        dead["last_error"].as_str().unwrap().contains("503"),
        "{dead}"
    );

    // The receiver is fixed; a replay of the failures since a time delivers it.
    // (On a slow machine the endpoint may also have failed for the whole
    // second and been disabled: enabling it is a no-op otherwise.)
    receiver.configure(json!({"secrets": [secret]}));
    expect_status(
        server
            .send_as(
                Method::PATCH,
                &format!("/api/webhooks/{id}"),
                &json!({"status": "active"}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let since = since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let result = expect_status(
        server
            .send_as(
                Method::POST,
                &format!("/api/webhooks/{id}/replay"),
                &json!({"since": since}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(result["replayed"], 1, "{result}");
    eventually(
        "the replayed delivery to succeed",
        Duration::from_secs(20),
        || async {
            let log = deliveries(&server, &admin, &id).await;
            log.iter().all(|d| d["status"] == "succeeded").then_some(())
        },
    )
    .await;

    // 410 Gone: the delivery is dead and the endpoint disabled, and staff get an email.
    receiver.configure(json!({"secrets": [secret], "fail": {"webhook.test": [1000, 410]}}));
    expect_status(
        server
            .send_as(
                Method::POST,
                &format!("/api/webhooks/{id}/test"),
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let disabled = eventually(
        "the endpoint to be disabled",
        Duration::from_secs(20),
        || async {
            let webhook = expect_status(
                server.get_as(&format!("/api/webhooks/{id}"), &admin).await,
                StatusCode::OK,
            )
            .await;
            (webhook["status"] == "disabled").then_some(webhook)
        },
    )
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{disabled}"
    );
    let mail = eventually(
        "the email to the admins",
        Duration::from_secs(20),
        || async {
            let page = expect_status(
                server
                    .get_as("/api/notifications?template=webhook_disabled", &admin)
                    .await,
                StatusCode::OK,
            )
            .await;
            page["items"].as_array().unwrap().first().cloned()
        },
    )
    .await;
    assert_eq!(mail["recipient"], crate::common::ADMIN_EMAIL, "{mail}");
    // A disabled endpoint cannot be tested until it is enabled again.
    let refused = server
        .send_as(
            Method::POST,
            &format!("/api/webhooks/{id}/test"),
            &json!({}),
            &admin,
        )
        .await;
    expect_error(refused, StatusCode::CONFLICT, "webhook_disabled").await;
    let enabled = expect_status(
        server
            .send_as(
                Method::PATCH,
                &format!("/api/webhooks/{id}"),
                &json!({"status": "active"}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert!(enabled.get("disabled_reason").is_none(), "{enabled}");
}

#[tokio::test]
async fn fifty_deliveries_queued_through_a_kill_9_each_arrive_under_one_id() {
    let receiver = Receiver::start();
    let mut server = server_for(
        &receiver,
        &[
            ("SHOP_WEBHOOK_MAX_IN_FLIGHT", "2"),
            ("SHOP_WEBHOOK_TIMEOUT_MS", "2000"),
            ("SHOP_WEBHOOK_LEASE_MS", "3000"),
        ],
    );
    let admin = server.admin_token().await;
    let webhook = create_webhook(&server, &admin, &receiver.url(), &["product.created"]).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    // A slow receiver, so most of the 50 are still queued at the kill.
    receiver.configure(json!({"secrets": [secret], "delay_ms": 150}));
    for n in 0..50 {
        product(&server, &admin, &format!("SKU-{n:02}")).await;
    }
    eventually("the first deliveries", Duration::from_secs(30), || async {
        (receiver.log().len() >= 4).then_some(())
    })
    .await;
    server.kill9();
    let before = receiver.log().len();
    assert!(
        before < 50,
        "all 50 were delivered before the kill: nothing was tested"
    );
    server.restart();

    let by_event = eventually(
        "every one of the 50 to arrive after the restart",
        Duration::from_secs(90),
        || async {
            let mut by_event: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
            for record in receiver.log() {
                assert_eq!(record["verified"], json!([true]), "{record}");
                by_event
                    .entry(record["event_id"].as_i64().unwrap())
                    .or_default()
                    .insert(record["webhook_id"].as_str().unwrap().to_owned());
            }
            (by_event.len() == 50).then_some(by_event)
        },
    )
    .await;
    for (event, ids) in &by_event {
        assert_eq!(
            ids.len(),
            1,
            "event {event} arrived under several ids: {ids:?}"
        );
    }
    let all_ids: BTreeSet<&String> = by_event.values().flatten().collect();
    assert_eq!(all_ids.len(), 50, "one id per delivery");
    let admin = server.admin_token().await;
    eventually(
        "the log to record every delivery",
        Duration::from_secs(30),
        || async {
            let log = deliveries(&server, &admin, &id).await;
            (log.len() == 50 && log.iter().all(|d| d["status"] == "succeeded")).then_some(())
        },
    )
    .await;
    // The receiver fails no request of its own. A request whose sender was
    // killed mid-way is reset under it, which Python's server reports as a
    // traceback too: that one is the kill, not the receiver.
    let stderr = receiver.stderr();
    let failures: Vec<&str> = stderr
        .split("----------------------------------------")
        .filter(|report| report.contains("Traceback"))
        .filter(|report| !report.contains("ConnectionResetError"))
        .collect();
    assert!(failures.is_empty(), "{stderr}");
}

#[tokio::test]
async fn urls_that_reach_inside_or_are_not_https_are_refused() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    for url in [
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost:8443/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hooks",
        "https://[fd00:ec2::254]/",
        "https://10.0.0.8/hooks",
        "https://100.64.0.1/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "ftp://example.com/hooks",
        "https://user:secret@example.com/hooks",
        "not a url",
    ] {
        let response = server
            .send_as(
                Method::POST,
                "/api/webhooks",
                &json!({"url": url, "events": ["order.*"]}),
                &admin,
            )
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(
            body["error"]["details"]["fields"]["url"].is_string(),
            "{url}: {body}"
        );
    }
    for events in [json!([]), json!(["order.eaten"]), json!(["webhook.*"])] {
        let response = server
            .send_as(
                Method::POST,
                "/api/webhooks",
                &json!({"url": "https://example.com/hooks", "events": events}),
                &admin,
            )
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    }
    let page = expect_status(server.get_as("/api/webhooks", &admin).await, StatusCode::OK).await;
    assert_eq!(page["total"], 0, "nothing was saved: {page}");
    // Customers cannot see or add endpoints.
    let customer = server.customer_token("ada@example.com").await;
    let response = server.get_as("/api/webhooks", &customer).await;
    expect_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn the_cli_manages_endpoints_and_shop_listen_forwards_a_live_event_signed() {
    let receiver = Receiver::start();
    let server = server_for(&receiver, &[]);
    server.cli_login_admin();

    // shop webhook add | list | get | test | deliveries | rotate-secret | remove
    let added = server
        .shop(&[
            "webhook",
            "add",
            &receiver.url(),
            "--event",
            "order.*,inventory.low_stock",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    let id = added["id"].as_str().unwrap().to_owned();
    assert!(
        added["secret"].as_str().unwrap().starts_with("whsec_"),
        "{added}"
    );
    assert_eq!(added["events"], json!(["order.*", "inventory.low_stock"]));
    receiver.configure(json!({"secrets": [added["secret"]]}));
    let listed = server.shop(&["webhook", "list"]).expect(0).lines();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("secret").is_none(), "{:?}", listed[0]);
    server.shop(&["webhook", "test", &id]).expect(0);
    eventually("the CLI's test event", Duration::from_secs(20), || async {
        let seen = receiver.of_type("webhook.test");
        (seen.first().is_some_and(|r| r["verified"] == json!([true]))).then_some(())
    })
    .await;
    let delivered = eventually("the delivery log", Duration::from_secs(20), || async {
        let lines = server
            .shop(&["webhook", "deliveries", &id])
            .expect(0)
            .lines();
        (lines.first().is_some_and(|d| d["status"] == "succeeded")).then_some(lines)
    })
    .await;
    assert_eq!(delivered[0]["event_type"], "webhook.test");
    let bad = server.shop(&[
        "webhook",
        "add",
        "https://127.0.0.1/x",
        "--event",
        "order.*",
    ]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("not a public address"),
        "{}",
        bad.stderr
    );
    let rotated = server
        .shop(&["webhook", "rotate-secret", &id])
        .expect(0)
        .lines();
    assert_ne!(rotated[0]["secret"], added["secret"]);
    server.shop(&["webhook", "remove", &id, "--yes"]).expect(0);
    assert!(
        server
            .shop(&["webhook", "list"])
            .expect(0)
            .lines()
            .is_empty()
    );

    // shop listen: the secret at start, then each matching event forwarded and reported.
    let mut listen = server
        .cli(&[
            "listen",
            "--forward-to",
            &receiver.url(),
            "--event",
            "product.*",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shop listen");
    let stderr = listen.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let secret = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("shop listen to print its secret");
        if let Some(rest) = line.split("signing secret is ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.configure(json!({"secrets": [secret]}));
    let admin = server.admin_token().await;
    product(&server, &admin, "LISTEN-1").await;
    let forwarded = eventually(
        "shop listen to forward product.created",
        Duration::from_secs(30),
        || async { receiver.of_type("product.created").into_iter().next() },
    )
    .await;
    assert_eq!(forwarded["verified"], json!([true]), "{forwarded}");
    assert_eq!(forwarded["status"], 204);
    let stdout = listen.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let line: Value = serde_json::from_str(
        &rx.recv_timeout(Duration::from_secs(30))
            .expect("a line per forwarded event"),
    )
    .unwrap();
    assert_eq!(line["type"], "product.created", "{line}");
    assert_eq!(line["status"], 204, "{line}");
    assert_eq!(line["event_id"], forwarded["event_id"]);
    // Only the events asked for: nothing else was forwarded.
    assert!(
        receiver
            .log()
            .iter()
            .all(|r| r["type"] != "inventory.adjusted" && r["type"] != "user.logged_in")
    );
    let _ = listen.kill();
    let _ = listen.wait();
}

#[tokio::test]
async fn a_slow_endpoint_holds_up_only_its_own_deliveries() {
    let slow = Receiver::start();
    let fast = Receiver::start();
    let server = TestServer::start_full(
        &[
            ("SHOP_RATE_LIMIT_IP", "0"),
            ("SHOP_WEBHOOK_POLL_MS", "100"),
            ("SHOP_WEBHOOK_TIMEOUT_MS", "60000"),
            ("SHOP_WEBHOOK_LEASE_MS", "90000"),
        ],
        // Any port of 127.0.0.1: both receivers.
        &["--webhook-allow-host", "127.0.0.1"],
    );
    let admin = server.admin_token().await;
    for receiver in [&slow, &fast] {
        let webhook = create_webhook(&server, &admin, &receiver.url(), &["product.created"]).await;
        receiver.configure(json!({"secrets": [webhook["secret"]]}));
    }
    // The slow receiver takes 30 s to answer anything.
    let secret = std::fs::read_to_string(slow.dir.path().join("config.json")).unwrap();
    let mut config: Value = serde_json::from_str(&secret).unwrap();
    config["delay_ms"] = json!(30_000);
    slow.configure(config);
    product(&server, &admin, "FIRST-1").await;
    eventually(
        "the fast endpoint's first delivery",
        Duration::from_secs(20),
        || async { (fast.log().len() == 1).then_some(()) },
    )
    .await;
    product(&server, &admin, "SECOND-1").await;
    eventually(
        "the fast endpoint's second delivery",
        Duration::from_secs(20),
        || async { (fast.log().len() == 2).then_some(()) },
    )
    .await;
    assert!(
        slow.log().is_empty(),
        "the slow endpoint answered before the fast one got its second event: nothing was tested"
    );
}
