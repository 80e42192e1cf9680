//! Notifications end to end: the local sinks, a real SMTP server (aiosmtpd), signed
//! webhooks, retries, the breaker, templates, priority order and restarts.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, Mac};
use mail_parser::MessageParser;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::*;

const SECRET: &str = "webhook-secret-for-tests-0123456789";

/// Fast retries and polling, so failures play out in milliseconds.
const FAST: [(&str, &str); 4] = [
    ("SHOP_NOTIFY_RETRY_BASE_MS", "20"),
    ("SHOP_NOTIFY_RETRY_MAX_MS", "100"),
    ("SHOP_NOTIFY_POLL_MS", "50"),
    ("SHOP_NOTIFY_SEND_TIMEOUT_MS", "2000"),
];

fn fast_with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    FAST.iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn start(extra: &[(&str, &str)]) -> TestServer {
    let env = fast_with(extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestServer::start_with(&env)
}

async fn send(server: &TestServer, token: &str, body: Value) -> Value {
    let response = server
        .send_as(Method::POST, "/api/notifications", &body, token)
        .await;
    expect_status(response, StatusCode::CREATED).await
}

async fn get_json(server: &TestServer, path: &str, token: &str) -> Value {
    expect_status(server.get_as(path, token).await, StatusCode::OK).await
}

/// Waits until the notification reaches `status` (sent or dead) and returns it.
async fn settled(server: &TestServer, token: &str, id: &str, status: &str) -> Value {
    let path = format!("/api/notifications/{id}");
    eventually(
        &format!("{id} to be {status}"),
        Duration::from_secs(10),
        || async {
            let n = get_json(server, &path, token).await;
            (n["status"] == status).then_some(n)
        },
    )
    .await
}

async fn deliveries(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    get_json(
        server,
        &format!("/api/notifications/deliveries?limit=500&{query}"),
        token,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_fresh_install_delivers_to_the_local_sinks_welcome_included() {
    let server = start(&[]);
    let admin = server.admin_token().await;
    server.register("ada@example.com", "Ada").await;

    // The user.registered event became a welcome email.
    let welcome = eventually("the welcome email", Duration::from_secs(10), || async {
        deliveries(&server, &admin, "channel=email&recipient=ada@example.com")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(welcome["template"], "welcome");
    assert_eq!(welcome["subject"], "Welcome to the shop");
    assert!(welcome["html"].as_str().unwrap().contains("Ada"));

    let sms = send(
        &server,
        &admin,
        json!({"channel": "sms", "to": "+49 151 1234 5678", "template": "order_shipped",
               "vars": {"number": "1001", "tracking_number": "ZX9"}}),
    )
    .await;
    assert_eq!(sms["recipient"], "+4915112345678");
    assert_eq!(sms["status"], "queued");
    assert!(sms["id"].as_str().unwrap().starts_with("ntf_"));
    let push = send(
        &server,
        &admin,
        json!({"channel": "push", "to": "device-abc", "template": "welcome",
               "vars": {"name": "Ada"}, "priority": "high"}),
    )
    .await;
    let sms = settled(&server, &admin, sms["id"].as_str().unwrap(), "sent").await;
    assert_eq!(sms["attempts"], 1);
    assert_eq!(
        sms["rendered"]["body"],
        "Order 1001 has shipped. Tracking: ZX9"
    );
    assert_eq!(sms["history"][0]["outcome"], "sent");
    assert!(sms["sent_at"].is_string());
    settled(&server, &admin, push["id"].as_str().unwrap(), "sent").await;
    let recorded = deliveries(&server, &admin, "channel=push").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["subject"], "Welcome");

    // History filters, analytics and health.
    let list = get_json(
        &server,
        "/api/notifications?channel=sms&status=sent",
        &admin,
    )
    .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], sms["id"]);
    let analytics = get_json(&server, "/api/notifications/analytics", &admin).await;
    assert!(analytics["by_channel"]["email"]["sent"].as_u64().unwrap() >= 1);
    assert_eq!(analytics["by_template"]["order_shipped"]["sent"], 1);
    assert!(analytics["median_seconds_to_send"].is_number());
    let health = expect_status(
        server
            .get("/api/notifications/health")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["checks"]["channel:email"]["status"], "ok");
    assert_eq!(
        health["checks"]["worker:notification_dispatcher"]["status"],
        "ok"
    );
    let system = expect_status(server.get("/health").send().await.unwrap(), StatusCode::OK).await;
    assert!(
        system["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["service"] == "notifications")
    );
    // Resend a sent one: a new notification that points at the first.
    let resent = expect_status(
        server
            .send_as(
                Method::POST,
                &format!("/api/notifications/{}/resend", sms["id"].as_str().unwrap()),
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(resent["resent_from"], sms["id"]);
    settled(&server, &admin, resent["id"].as_str().unwrap(), "sent").await;
    assert_eq!(deliveries(&server, &admin, "channel=sms").await.len(), 2);
}

/// aiosmtpd (PyPI), a real SMTP server, on a free port: it stores each message
/// it accepts in a maildir the test reads. Killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Plain SMTP, or with `tls` (certificate and key) STARTTLS that the server
    /// requires before it accepts a message.
    fn start(tls: Option<(&Path, &Path)>) -> Self {
        require_aiosmtpd();
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("python3");
        command
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("aiosmtpd.log")).unwrap());
        if let Some((cert, key)) = tls {
            command.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
        }
        command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"));
        let mut smtp = SmtpServer {
            child: command.spawn().expect("spawn python3 -m aiosmtpd"),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !smtp.greets() {
            if let Some(status) = smtp.child.try_wait().unwrap() {
                panic!("aiosmtpd exited with {status}:\n{}", smtp.log());
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd is not listening on {port} after 10 s:\n{}",
                smtp.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        smtp
    }

    /// Listening, and it is aiosmtpd's 220 greeting, not whatever else may have
    /// taken the port between finding it free and aiosmtpd binding it.
    fn greets(&self) -> bool {
        use std::io::Read;
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut greeting = [0; 4];
        stream.read_exact(&mut greeting).is_ok() && greeting.starts_with(b"220 ")
    }

    fn log(&self) -> String {
        read(&self.dir.path().join("aiosmtpd.log"))
    }

    /// Every message delivered so far for `to`, raw. The maildir moves a
    /// message into `new/` only once it is written in full.
    fn messages_to(&self, to: &str) -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("mail").join("new")) else {
            return Vec::new();
        };
        entries
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .filter(|raw| {
                // aiosmtpd records the envelope recipients in X-RcptTo.
                let message = MessageParser::default().parse(raw).unwrap();
                message.header_raw("X-RcptTo").map(str::trim) == Some(to)
            })
            .collect()
    }

    /// Waits for the first message for `to` and returns it raw.
    async fn message_to(&self, to: &str) -> Vec<u8> {
        eventually(
            &format!("aiosmtpd to receive mail for {to}"),
            Duration::from_secs(10),
            || async { self.messages_to(to).into_iter().next() },
        )
        .await
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails, rather than skips, when the SMTP server the tests need is missing.
fn require_aiosmtpd() {
    let found = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status();
    match found {
        Ok(status) if status.success() => {}
        Ok(_) => panic!(
            "the SMTP tests need aiosmtpd: `python3 -m pip install aiosmtpd` (.ci/run installs it)"
        ),
        Err(err) => panic!(
            "the SMTP tests need python3 ({err}): install Python 3, then `python3 -m pip install aiosmtpd`"
        ),
    }
}

/// The sender as the shop's SMTP settings give it.
const SMTP_FROM: &str = "Shop <orders@shop.test>";

#[tokio::test]
async fn email_goes_over_smtp_with_starttls_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let smtp = SmtpServer::start(Some((&cert_path, &key_path)));
    // A bare smtp:// URL means STARTTLS required. The shop trusts the
    // self-signed certificate through the platform verifier's SSL_CERT_FILE.
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let server = start(&[
        ("SHOP_SMTP_URL", url.as_str()),
        ("SHOP_SMTP_FROM", SMTP_FROM),
        ("SSL_CERT_FILE", cert_path.to_str().unwrap()),
    ]);
    let admin = server.admin_token().await;
    let sent = send(
        &server,
        &admin,
        json!({"channel": "email", "to": "bob@example.com", "template": "order_confirmation",
               "vars": {"number": "1001", "total_cents": 4999, "currency": "EUR"}}),
    )
    .await;
    let id = sent["id"].as_str().unwrap().to_owned();
    settled(&server, &admin, &id, "sent").await;

    let raw = smtp.message_to("bob@example.com").await;
    let message = MessageParser::default().parse(&raw).unwrap();
    let from = message.from().and_then(|a| a.first()).unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Shop"), Some("orders@shop.test"))
    );
    assert_eq!(
        message.to().and_then(|a| a.first()).unwrap().address(),
        Some("bob@example.com")
    );
    assert_eq!(message.subject(), Some("Order 1001 confirmed"));
    assert_eq!(
        message.message_id(),
        Some(format!("{id}@shop.notifications").as_str())
    );
    assert_eq!(
        message.header_raw("X-MailFrom").map(str::trim),
        Some("orders@shop.test")
    );
    assert_eq!(
        message.body_text(0).unwrap(),
        "Thank you for your order 1001.\nTotal: 49.99 EUR\n\nWe will let you know when it ships."
    );
    assert_eq!(
        message.body_html(0).unwrap(),
        "<p>Thank you for your order <b>1001</b>.</p><p>Total: 49.99 EUR</p>\
         <p>We will let you know when it ships.</p>"
    );
    assert_eq!(smtp.messages_to("bob@example.com").len(), 1, "sent once");
    // Email went out over SMTP, so the local email sink recorded none of it.
    assert!(
        deliveries(&server, &admin, "channel=email&recipient=bob@example.com")
            .await
            .is_empty()
    );
    let health = get_json(&server, "/api/notifications/health", &admin).await;
    assert!(
        health["checks"]["channel:email"]["message"]
            .as_str()
            .unwrap()
            .starts_with("smtp")
    );
}

#[tokio::test]
async fn a_registration_welcome_goes_over_plain_smtp_to_a_local_relay() {
    let smtp = SmtpServer::start(None);
    let url = format!("smtp://127.0.0.1:{}?tls=none", smtp.port);
    let server = start(&[
        ("SHOP_SMTP_URL", url.as_str()),
        ("SHOP_SMTP_FROM", SMTP_FROM),
    ]);
    server.register("ada@example.com", "Ada").await;

    let raw = smtp.message_to("ada@example.com").await;
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.subject(), Some("Welcome to the shop"));
    let id = message.message_id().unwrap();
    assert!(
        id.starts_with("ntf_") && id.ends_with("@shop.notifications"),
        "{id}"
    );
    // The Message-ID names the notification that carried the welcome.
    let admin = server.admin_token().await;
    let notification = get_json(
        &server,
        &format!(
            "/api/notifications/{}",
            id.trim_end_matches("@shop.notifications")
        ),
        &admin,
    )
    .await;
    assert_eq!(notification["template"], "welcome");
    assert_eq!(notification["recipient"], "ada@example.com");
    assert!(notification["event_id"].is_u64(), "{notification}");
    // It brings the code that proves the address (see tests/e2e/accounts.rs).
    let code = notification["vars"]["token"].as_str().unwrap();
    assert_eq!(
        message.body_text(0).unwrap(),
        format!(
            "Hi Ada,\n\nyour account is ready. Happy shopping!\n\n\
             To confirm that this address is yours, use this code within 7 days:\n{code}\n\
             (shop user verify CODE). Until then, orders placed for this address without \
             signing in stay out of your account.\n\nThe shop team"
        )
    );
    let html = message.body_html(0).unwrap();
    assert!(
        html.starts_with("<p>Hi Ada,</p><p>your account is ready. Happy shopping!</p>")
            && html.contains(&format!("<code>{code}</code>"))
            && html.ends_with("<p>The shop team</p>"),
        "{html}"
    );
}

/// A webhook provider: records calls and answers with the status set in `status`.
#[derive(Clone, Default)]
struct Provider {
    calls: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    status: Arc<AtomicU16>,
}

async fn provider_handler(
    State(provider): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    provider.calls.lock().unwrap().push((headers, body));
    AxumStatus::from_u16(provider.status.load(Ordering::SeqCst)).unwrap()
}

async fn fake_provider() -> (String, Provider) {
    let provider = Provider::default();
    provider.status.store(202, Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(provider_handler))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, provider)
}

fn verify_signature(headers: &HeaderMap, body: &[u8]) {
    let timestamp = headers["x-shop-timestamp"].to_str().unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-shop-signature"].to_str().unwrap(), expected);
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "{age}");
}

#[tokio::test]
async fn sms_and_push_webhooks_are_signed_retried_and_given_up_on() {
    let (sms_url, sms) = fake_provider().await;
    let (push_url, push) = fake_provider().await;
    let server = start(&[
        ("SHOP_SMS_WEBHOOK_URL", sms_url.as_str()),
        ("SHOP_PUSH_WEBHOOK_URL", push_url.as_str()),
        ("SHOP_WEBHOOK_SECRET", SECRET),
        ("SHOP_NOTIFY_MAX_ATTEMPTS", "3"),
        ("SHOP_NOTIFY_BREAKER_THRESHOLD", "50"),
    ]);
    let admin = server.admin_token().await;

    // Accepted: signed, with the notification id as the idempotency key.
    let ok = send(
        &server,
        &admin,
        json!({"channel": "sms", "to": "+15551234567", "template": "welcome", "vars": {"name": "Al"}}),
    )
    .await;
    let id = ok["id"].as_str().unwrap();
    settled(&server, &admin, id, "sent").await;
    {
        let calls = sms.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let (headers, body) = &calls[0];
        verify_signature(headers, body);
        assert_eq!(headers["idempotency-key"], id);
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["to"], "+15551234567");
        assert_eq!(body["id"], id);
        assert_eq!(
            body["body"],
            "Welcome to the shop, Al! Your account is ready."
        );
    }
    assert!(deliveries(&server, &admin, "channel=sms").await.is_empty());

    // 500: transient, retried with backoff until the attempts run out.
    sms.status.store(500, Ordering::SeqCst);
    let failing = send(
        &server,
        &admin,
        json!({"channel": "sms", "to": "+15551234567", "template": "welcome", "vars": {"name": "Al"}}),
    )
    .await;
    let failing_id = failing["id"].as_str().unwrap();
    let dead = settled(&server, &admin, failing_id, "dead").await;
    assert_eq!(dead["attempts"], 3);
    let history = dead["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|a| a["outcome"] == "transient_error"));
    assert!(
        dead["last_error"].as_str().unwrap().contains("500"),
        "{dead}"
    );
    let calls_for = |provider: &Provider, id: &str| {
        provider
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _)| h["idempotency-key"] == id)
            .count()
    };
    assert_eq!(calls_for(&sms, failing_id), 3);

    // The provider recovers; a manual resend of the dead one goes through.
    sms.status.store(200, Ordering::SeqCst);
    let requeued = expect_status(
        server
            .send_as(
                Method::POST,
                &format!("/api/notifications/{failing_id}/resend"),
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(requeued["id"], failing_id);
    assert_eq!(requeued["status"], "queued");
    // Its `notification.queued` event tells the count it starts again from.
    let log = get_json(
        &server,
        "/api/events/log?type=notification.queued&limit=1000",
        &admin,
    )
    .await;
    let queued_again = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|event| event["data"]["id"] == failing_id)
        .expect("the resend's event");
    assert_eq!(queued_again["data"]["attempts"], 0, "{queued_again}");
    settled(&server, &admin, failing_id, "sent").await;

    // 4xx: permanent, dead after one attempt.
    push.status.store(400, Ordering::SeqCst);
    let refused = send(
        &server,
        &admin,
        json!({"channel": "push", "to": "device-1", "template": "welcome", "vars": {"name": "Al"}}),
    )
    .await;
    let refused_id = refused["id"].as_str().unwrap();
    let dead = settled(&server, &admin, refused_id, "dead").await;
    assert_eq!(dead["attempts"], 1);
    assert_eq!(dead["history"][0]["outcome"], "permanent_error");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls_for(&push, refused_id), 1, "no retry after a 4xx");
    let analytics = get_json(&server, "/api/notifications/analytics", &admin).await;
    assert_eq!(analytics["by_channel"]["push"]["dead"], 1);
}

#[tokio::test]
async fn an_open_breaker_holds_notifications_instead_of_burning_attempts() {
    let (sms_url, sms) = fake_provider().await;
    sms.status.store(503, Ordering::SeqCst);
    let server = start(&[
        ("SHOP_SMS_WEBHOOK_URL", sms_url.as_str()),
        ("SHOP_WEBHOOK_SECRET", SECRET),
        ("SHOP_NOTIFY_MAX_ATTEMPTS", "10"),
        ("SHOP_NOTIFY_BREAKER_THRESHOLD", "2"),
        ("SHOP_NOTIFY_BREAKER_COOLDOWN_MS", "60000"),
        ("SHOP_NOTIFY_BATCH_SIZE", "1"),
    ]);
    let admin = server.admin_token().await;
    let body = json!({"channel": "sms", "to": "+15551234567", "template": "welcome", "vars": {"name": "Al"}});
    let first = send(&server, &admin, body.clone()).await;
    let health = eventually("the breaker to open", Duration::from_secs(10), || async {
        let h = get_json(&server, "/api/notifications/health", &admin).await;
        (h["checks"]["channel:sms"]["status"] == "degraded").then_some(h)
    })
    .await;
    assert_eq!(health["status"], "degraded");
    assert!(
        health["checks"]["channel:sms"]["message"]
            .as_str()
            .unwrap()
            .contains("open")
    );
    let attempts_then = sms.calls.lock().unwrap().len();
    assert_eq!(attempts_then, 2);
    let held = send(&server, &admin, body).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sms.calls.lock().unwrap().len(), 2, "no calls while open");
    let held = get_json(
        &server,
        &format!("/api/notifications/{}", held["id"].as_str().unwrap()),
        &admin,
    )
    .await;
    assert_eq!(held["status"], "queued");
    assert_eq!(held["attempts"], 0);
    let first = get_json(
        &server,
        &format!("/api/notifications/{}", first["id"].as_str().unwrap()),
        &admin,
    )
    .await;
    assert_eq!(first["status"], "failed", "waiting for a retry, not dead");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("shop_notifications_circuit_state{channel=\"sms\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("shop_notifications_queue_depth{priority=\"normal\"}"));
}

#[tokio::test]
async fn templates_are_checked_on_save_and_missing_variables_are_refused() {
    let server = start(&[]);
    let admin = server.admin_token().await;
    let broken = server
        .send_as(
            Method::POST,
            "/api/notifications/templates",
            &json!({"name": "promo", "channel": "email", "subject": "Hi",
                    "body": "Hello\n{% for x in items %}\n{{ x }"}),
            &admin,
        )
        .await;
    let body = expect_error(broken, StatusCode::BAD_REQUEST, "validation_failed").await;
    let problem = body["error"]["details"]["fields"]["body"].as_str().unwrap();
    assert!(
        problem.contains("syntax error") && problem.contains("line 3"),
        "{problem}"
    );
    expect_error(
        server
            .get_as("/api/notifications/templates/promo", &admin)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let saved = server
        .send_as(
            Method::POST,
            "/api/notifications/templates",
            &json!({"name": "promo", "channel": "email", "subject": "{{ percent }}% off",
                    "body": "Hi {{ name }}, save {{ percent }}% today."}),
            &admin,
        )
        .await;
    let saved = expect_status(saved, StatusCode::CREATED).await;
    assert_eq!(saved["builtin"], false);
    let shown = get_json(&server, "/api/notifications/templates/promo", &admin).await;
    assert_eq!(
        shown[0]["body"],
        "Hi {{ name }}, save {{ percent }}% today."
    );
    let all = get_json(&server, "/api/notifications/templates", &admin).await;
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for builtin in [
        "welcome",
        "order_confirmation",
        "order_shipped",
        "order_cancelled",
        "refund_issued",
        "password_reset",
        "low_stock_alert",
        "promo",
    ] {
        assert!(names.contains(&builtin), "{builtin}: {names:?}");
    }

    // A variable left out: refused before it is queued (it would go dead at
    // once), naming what is missing, and nothing went out.
    let missing = server
        .send_as(
            Method::POST,
            "/api/notifications",
            &json!({"channel": "email", "to": "c@example.com", "template": "promo", "vars": {"percent": 20}}),
            &admin,
        )
        .await;
    let error = expect_error(missing, StatusCode::BAD_REQUEST, "validation_failed").await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("name") && message.contains("undefined"),
        "{message}"
    );
    assert!(
        deliveries(&server, &admin, "recipient=c@example.com")
            .await
            .is_empty()
    );
    // With every variable it renders.
    let ok = send(
        &server,
        &admin,
        json!({"channel": "email", "to": "c@example.com", "template": "promo",
               "vars": {"percent": 20, "name": "Cy"}}),
    )
    .await;
    let sent = settled(&server, &admin, ok["id"].as_str().unwrap(), "sent").await;
    assert_eq!(sent["rendered"]["subject"], "20% off");
}

#[tokio::test]
async fn urgent_goes_before_low_when_both_are_waiting() {
    let server = start(&[]);
    let admin = server.admin_token().await;
    // Wait for the admin's own welcome so it does not mix in.
    eventually("the admin welcome", Duration::from_secs(10), || async {
        (!deliveries(&server, &admin, "channel=sms").await.is_empty()
            || !deliveries(&server, &admin, "channel=email")
                .await
                .is_empty())
        .then_some(())
    })
    .await;
    // All due at the same moment, a little ahead: the queue fills first.
    let send_at = (time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for priority in ["low", "normal", "urgent"] {
        for i in 0..8 {
            send(
                &server,
                &admin,
                json!({"channel": "sms", "to": "+15551234567", "template": "welcome",
                       "vars": {"name": format!("{priority}-{i}")}, "priority": priority,
                       "send_at": send_at}),
            )
            .await;
        }
    }
    let recorded = eventually("all 24 sends", Duration::from_secs(10), || async {
        let d = deliveries(&server, &admin, "channel=sms").await;
        (d.len() == 24).then_some(d)
    })
    .await;
    // Newest first: reverse into delivery order.
    let order: Vec<String> = recorded
        .iter()
        .rev()
        .map(|d| {
            let body = d["body"].as_str().unwrap();
            body.split(", ")
                .nth(1)
                .unwrap()
                .split('-')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = ["urgent", "normal", "low"]
        .iter()
        .flat_map(|p| std::iter::repeat_n((*p).to_owned(), 8))
        .collect();
    assert_eq!(order, expected);
    // FIFO within a priority.
    let urgent: Vec<String> = recorded
        .iter()
        .rev()
        .take(8)
        .map(|d| d["body"].as_str().unwrap().to_owned())
        .collect();
    for (i, body) in urgent.iter().enumerate() {
        assert!(body.contains(&format!("urgent-{i}!")), "{body}");
    }
}

#[tokio::test]
async fn kill_9_with_a_full_queue_then_restart_delivers_everything_exactly_once() {
    let lease = [
        ("SHOP_NOTIFY_LEASE_MS", "2500"),
        ("SHOP_NOTIFY_SEND_TIMEOUT_MS", "1000"),
    ];
    let mut server = start(&lease);
    let admin = server.admin_token().await;
    let mut ids = Vec::new();
    // Some due now (the worker is on them when the process dies), some later.
    for i in 0..60 {
        let mut body = json!({"channel": "push", "to": format!("device-{i}"), "template": "welcome",
                              "vars": {"name": "N"}});
        if i % 2 == 0 {
            body["send_at"] = json!(
                (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            );
        }
        ids.push(
            send(&server, &admin, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    server.kill9();
    server.restart();
    let admin = server.admin_token().await;
    let recorded = eventually("every push delivered", Duration::from_secs(20), || async {
        let d = deliveries(&server, &admin, "channel=push").await;
        (d.len() >= ids.len()).then_some(d)
    })
    .await;
    assert_eq!(recorded.len(), ids.len(), "nothing recorded twice");
    let mut delivered: Vec<&str> = recorded
        .iter()
        .map(|d| d["notification_id"].as_str().unwrap())
        .collect();
    delivered.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(delivered, expected);
    let sent = get_json(
        &server,
        "/api/notifications?channel=push&status=sent",
        &admin,
    )
    .await;
    assert_eq!(sent["total"], ids.len());

    // A graceful restart with scheduled work: still there afterwards, and sent once.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let scheduled = send(
        &server,
        &admin,
        json!({"channel": "push", "to": "device-x", "template": "welcome", "vars": {"name": "N"}, "send_at": later}),
    )
    .await;
    server.restart();
    let admin = server.admin_token().await;
    settled(&server, &admin, scheduled["id"].as_str().unwrap(), "sent").await;
    assert_eq!(
        deliveries(&server, &admin, "channel=push&recipient=device-x")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_writes_nothing() {
    let server = start(&[]);
    let admin = server.admin_token().await;
    let customer = server.customer_token("cy@example.com").await;
    let before = get_json(&server, "/api/notifications?limit=1", &admin).await["total"].clone();
    let cases = [
        (
            json!({"channel": "email", "to": "not-an-email", "template": "welcome"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "to",
        ),
        (
            json!({"channel": "sms", "to": "0151 1234", "template": "welcome"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "to",
        ),
        (
            json!({"channel": "push", "to": "  ", "template": "welcome"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "to",
        ),
        (
            json!({"channel": "email", "to": "a@example.com", "template": "nope"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "template",
        ),
        (
            json!({"channel": "sms", "to": "+15551234567", "template": "password_reset_typo"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "template",
        ),
        (
            json!({"channel": "fax", "to": "a@example.com", "template": "welcome"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "channel",
        ),
        (
            json!({"channel": "email", "to": "a@example.com", "template": "welcome", "priority": "asap"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "priority",
        ),
        (
            json!({"channel": "email", "to": "a@example.com", "template": "welcome", "vars": [1]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "vars",
        ),
        (
            json!({"channel": "email", "to": "a@example.com", "template": "welcome", "vars": {"name": "A"}, "send_at": "2999-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "send_at",
        ),
    ];
    for (body, status, code, field) in cases {
        let response = server
            .send_as(Method::POST, "/api/notifications", &body, &admin)
            .await;
        let error = expect_error(response, status, code).await;
        assert!(
            error["error"]["details"]["fields"].get(field).is_some(),
            "{body}: {error}"
        );
    }
    let body = json!({"channel": "email", "to": "a@example.com", "template": "welcome"});
    expect_error(
        server
            .send_as(Method::POST, "/api/notifications", &body, &customer)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        server
            .post("/api/notifications", &body)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        server
            .get_as("/api/notifications/ntf_01JDQ6Z5R3K8V2N4M7P9T0W1XY", &admin)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        server
            .get_as("/api/notifications?status=lost", &admin)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_error(
        server.get_as("/api/notifications?limit=0", &admin).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    let bad_template = json!({"name": "Bad Name", "channel": "sms", "body": "x"});
    expect_error(
        server
            .send_as(
                Method::POST,
                "/api/notifications/templates",
                &bad_template,
                &admin,
            )
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    let after = get_json(&server, "/api/notifications?limit=1", &admin).await["total"].clone();
    assert_eq!(before, after, "no row written");

    // Resending something still queued is a conflict naming its state.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let queued = send(
        &server,
        &admin,
        json!({"channel": "email", "to": "a@example.com", "template": "welcome", "vars": {"name": "A"}, "send_at": later}),
    )
    .await;
    let conflict = expect_error(
        server
            .send_as(
                Method::POST,
                &format!(
                    "/api/notifications/{}/resend",
                    queued["id"].as_str().unwrap()
                ),
                &json!({}),
                &admin,
            )
            .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    assert_eq!(conflict["error"]["details"]["status"], "queued");
}
