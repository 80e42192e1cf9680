//! Several `shop serve` nodes on one PostgreSQL database behind a real
//! nginx (round robin), as issue 15 runs them: what one node commits, every
//! node serves, and what must happen once happens once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const VISA: &str = "4242424242424242";

/// Nodes on one database behind nginx, which the tests reach as `url`.
struct Cluster {
    nodes: Vec<TestServer>,
    /// nginx's address: requests alternate between the nodes.
    url: String,
    client: reqwest::Client,
    nginx: Child,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `count` nodes with no rate limits (the races send hundreds of
    /// requests from one address) and fast notification polling, each
    /// trusting nginx's X-Forwarded-For.
    fn start(count: usize) -> Cluster {
        let database = postgres_database();
        let env = [
            ("SHOP_RATE_LIMIT_IP", "0"),
            ("SHOP_RATE_LIMIT_TOKEN", "0"),
            ("SHOP_MAX_UNPAID_ORDERS", "0"),
            ("SHOP_NOTIFY_POLL_MS", "50"),
        ];
        let flags = ["--trusted-proxy", "127.0.0.1"];
        // The first node migrates and creates the admin; the others find both.
        let nodes: Vec<TestServer> = (0..count)
            .map(|_| TestServer::start_on(Some(database.clone()), &env, &flags))
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let (nginx, url) = start_nginx(dir.path(), &nodes);
        Cluster {
            nodes,
            url,
            client: reqwest::Client::new(),
            nginx,
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: &str,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .header("authorization", bearer(token));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request through nginx");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn admin_token(&self) -> String {
        self.nodes[0].admin_token().await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}

/// nginx in front of `nodes`, round robin, on a free port; its URL.
fn start_nginx(dir: &Path, nodes: &[TestServer]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let upstreams: String = nodes
        .iter()
        .map(|node| {
            let addr = node.url.trim_start_matches("http://");
            format!("        server {addr} max_fails=1 fail_timeout=2s;\n")
        })
        .collect();
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    let dir = dir.display();
    // Workers run as the user that started nginx: as root the default
    // (nobody) could not write the temp dirs below.
    let user = if as_root { "user root;" } else { "" };
    let config = format!(
        "{user}
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream shop {{
{upstreams}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"
    );
    let file = format!("{dir}/nginx.conf");
    std::fs::write(&file, config).expect("write nginx.conf");
    let nginx = Command::new(nginx_binary())
        .args([
            "-p",
            &dir.to_string(),
            "-e",
            &format!("{dir}/error.log"),
            "-c",
            &file,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx: install Debian's nginx-light (bash .ci/run does)");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start; see {dir}/error.log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (nginx, url)
}

fn nginx_binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

fn card() -> Value {
    json!({"method": "card", "card_number": VISA, "exp_month": 12, "exp_year": 2035})
}

async fn add_product(cluster: &Cluster, admin: &str, sku: &str, name: &str, stock: i64) {
    let body = json!({"sku": sku, "name": name, "price_cents": 1_000, "stock": stock});
    let (status, body) = cluster
        .send(Method::POST, "/api/products", Some(&body), admin)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// What `node` answers to `GET path` for `token`, which must be 200.
async fn read_on(node: &TestServer, path: &str, token: &str) -> Value {
    expect_status(node.get_as(path, token).await, StatusCode::OK).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_checkouts_across_two_nodes_sell_exactly_one_hundred() {
    let cluster = Arc::new(Cluster::start(2));
    let admin = cluster.admin_token().await;
    add_product(&cluster, &admin, "HOT-1", "Hot item", 100).await;
    let customer = cluster.nodes[1].customer_token("rush@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let (cluster, customer) = (cluster.clone(), customer.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"items": [{"sku": "HOT-1", "quantity": 1}], "payment": card()});
            cluster
                .send(Method::POST, "/api/orders", Some(&body), &customer)
                .await
        }));
    }
    let (mut sold, mut refused) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => {
                assert_eq!(body["status"], "paid", "{body}");
                sold += 1;
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "insufficient_stock", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((sold, refused), (100, 400));
    for node in &cluster.nodes {
        let stock = read_on(node, "/api/inventory/HOT-1", &admin).await;
        assert_eq!(
            (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
            (Some(0), Some(0))
        );
        let paid = read_on(node, "/api/orders?status=paid&limit=1", &admin).await;
        assert_eq!(paid["total"], 100);
    }
    let (status, report) = cluster
        .send(
            Method::POST,
            "/api/inventory/reconcile",
            Some(&json!({"fix": false})),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["consistent"], true, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_refunds_across_two_nodes_never_pass_the_capture() {
    let cluster = Arc::new(Cluster::start(2));
    let admin = cluster.admin_token().await;
    add_product(&cluster, &admin, "TV-1", "Television", 5).await;
    let body = json!({"items": [{"sku": "TV-1", "quantity": 1}], "payment": card()});
    let (status, paid) = cluster
        .send(Method::POST, "/api/orders", Some(&body), &admin)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let payment = paid["payment_id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (cluster, admin, payment) = (cluster.clone(), admin.clone(), payment.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"amount_cents": 70, "reason": "goodwill"});
            cluster
                .send(
                    Method::POST,
                    &format!("/api/payments/{payment}/refunds"),
                    Some(&body),
                    &admin,
                )
                .await
        }));
    }
    let (mut refunded, mut refused) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => refunded += body["amount_cents"].as_i64().unwrap(),
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "refund_exceeds_captured", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // 14 x 70 = 980 fit in the 1,000 captured; the 15th would not.
    assert_eq!((refunded, refused), (980, 6));
    for node in &cluster.nodes {
        let payment = read_on(node, &format!("/api/payments/{payment}"), &admin).await;
        assert_eq!(payment["refunded_cents"], 980);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_one_node_commits_the_other_serves_within_a_second() {
    let cluster = Cluster::start(2);
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let admin = a.admin_token().await;

    // B's live stream, opened before the order is placed through A.
    let response = b
        .get("/api/events?type=order.*")
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream().eventsource();

    // A product created through A is found by search through B.
    let body =
        json!({"sku": "QUOKKA-1", "name": "Quokka lantern", "price_cents": 2500, "stock": 5});
    expect_status(
        a.send_as(Method::POST, "/api/products", &body, &admin)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let created = Instant::now();
    eventually("B to find the product", Duration::from_secs(5), || async {
        let found = read_on(b, "/api/search?q=quokka", &admin).await;
        (found["items"][0]["product"]["sku"] == "QUOKKA-1").then_some(())
    })
    .await;
    let waited = created.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "B found it after {waited:?}"
    );

    // An order placed through A reaches B's live stream.
    let body = json!({"items": [{"sku": "QUOKKA-1", "quantity": 2}], "payment": card()});
    let paid = expect_status(
        a.send_as(Method::POST, "/api/orders", &body, &admin).await,
        StatusCode::CREATED,
    )
    .await;
    let streamed = loop {
        let message = tokio::time::timeout(Duration::from_secs(1), stream.next())
            .await
            .expect("the order on B's stream within a second")
            .expect("stream open")
            .expect("well-formed SSE");
        let event: Value = serde_json::from_str(&message.data).unwrap();
        if event["type"] == "order.paid" {
            break event;
        }
    };
    assert_eq!(streamed["data"]["id"], paid["id"]);
    // B's search index heard the stock the order took: 5 - 2.
    eventually(
        "B's index to show 3 left",
        Duration::from_secs(1),
        || async {
            let found = read_on(b, "/api/search?q=quokka", &admin).await;
            (found["items"][0]["available"] == 3).then_some(())
        },
    )
    .await;

    // A session revoked through A is refused by B within a second.
    b.register("hedy@example.com", "Hedy").await;
    let laptop = b.login("hedy@example.com", PASSWORD).await.access_token;
    let phone = b.login("hedy@example.com", PASSWORD).await.access_token;
    expect_status(b.get_as("/api/users/me", &phone).await, StatusCode::OK).await;
    let sessions = read_on(a, "/api/users/me/sessions", &laptop).await;
    let phone_session = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = a
        .request(
            Method::DELETE,
            &format!("/api/users/me/sessions/{phone_session}"),
        )
        .header("authorization", bearer(&laptop))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::NO_CONTENT).await;
    let revoked = Instant::now();
    eventually(
        "B to refuse the revoked session",
        Duration::from_secs(5),
        || async {
            let response = b.get_as("/api/users/me", &phone).await;
            (response.status() == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    let waited = revoked.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "B refused it after {waited:?}"
    );
    expect_status(b.get_as("/api/users/me", &laptop).await, StatusCode::OK).await;

    // A staff member demoted through A loses the staff routes on B, whose
    // cache had just seen them as staff.
    let body =
        json!({"email": "sam@example.com", "password": PASSWORD, "name": "Sam", "role": "staff"});
    let sam = expect_status(
        a.send_as(Method::POST, "/api/users", &body, &admin).await,
        StatusCode::CREATED,
    )
    .await;
    let staff = b.login("sam@example.com", PASSWORD).await.access_token;
    expect_status(
        b.get_as("/api/notifications?limit=1", &staff).await,
        StatusCode::OK,
    )
    .await;
    let path = format!("/api/users/{}/role", sam["id"].as_str().unwrap());
    let demoted = a
        .send_as(Method::PUT, &path, &json!({"role": "customer"}), &admin)
        .await;
    expect_status(demoted, StatusCode::OK).await;
    let demoted = Instant::now();
    eventually(
        "B to refuse the demoted staff member",
        Duration::from_secs(5),
        || async {
            let response = b.get_as("/api/notifications?limit=1", &staff).await;
            (response.status() == StatusCode::FORBIDDEN).then_some(())
        },
    )
    .await;
    let waited = demoted.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "B refused them after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_welcome_email_is_sent_once_whatever_the_number_of_nodes() {
    let cluster = Cluster::start(2);
    let admin = cluster.admin_token().await;
    for (i, node) in cluster.nodes.iter().enumerate() {
        node.register(&format!("guest{i}@example.com"), "Guest")
            .await;
    }
    for i in 0..2 {
        let query = format!(
            "/api/notifications/deliveries?limit=50&channel=email&recipient=guest{i}@example.com"
        );
        let delivered = eventually("the welcome email", Duration::from_secs(10), || async {
            let found = read_on(&cluster.nodes[1 - i], &query, &admin).await;
            let items = found["items"].as_array().unwrap().clone();
            (!items.is_empty()).then_some(items)
        })
        .await;
        // Both nodes' reactors and senders had time to double it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = read_on(&cluster.nodes[i], &query, &admin).await;
        assert_eq!(again["items"].as_array().unwrap().len(), 1, "{again}");
        assert_eq!(delivered[0]["template"], "welcome");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_node_under_checkouts_loses_no_acknowledged_order() {
    let mut cluster = Cluster::start(2);
    let admin = cluster.admin_token().await;
    add_product(&cluster, &admin, "BULK-1", "Bulk item", 100_000).await;
    let customer = cluster.nodes[0].customer_token("load@example.com").await;
    let cluster_url = cluster.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (url, customer, stop) = (cluster_url.clone(), customer.clone(), stop.clone());
        let (acknowledged, failed) = (acknowledged.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"items": [{"sku": "BULK-1", "quantity": 1}], "payment": card()});
                let sent = client
                    .post(format!("{url}/api/orders"))
                    .header("authorization", bearer(&customer))
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == StatusCode::CREATED => {
                        let order: Value = response.json().await.expect("an order");
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(order["id"].as_str().unwrap().to_owned());
                    }
                    // The node died mid-request: nginx says 502, or the
                    // connection drops. Neither is an acknowledgement.
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acknowledged.lock().unwrap().len();
    cluster.nodes[1].kill9();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(before_kill > 0, "no checkout went through before the kill");
    assert!(
        acknowledged.len() > before_kill,
        "the surviving node kept serving: {} before the kill, {} in all",
        before_kill,
        acknowledged.len()
    );
    let survivor = &cluster.nodes[0];
    for id in &acknowledged {
        let order = read_on(survivor, &format!("/api/orders/{id}"), &admin).await;
        assert_eq!(order["status"], "paid", "{order}");
    }
    let stock = read_on(survivor, "/api/inventory/BULK-1", &admin).await;
    let sold = 100_000 - stock["on_hand"].as_i64().unwrap();
    let paid = read_on(survivor, "/api/orders?status=paid&limit=1", &admin).await;
    assert_eq!(
        paid["total"].as_i64().unwrap(),
        sold,
        "every unit sold is a paid order"
    );
    assert!(sold >= acknowledged.len() as i64);
}

#[test]
fn the_dashboard_on_one_node_shows_an_order_placed_through_the_other() {
    use crate::dashboard::{LIVE, STARTUP, Tmux, dashboard_command};
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    let cluster = Cluster::start(2);
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    b.cli_login_admin();
    let tmux = Tmux::start(120, 30, &dashboard_command(b, ""));
    tmux.expect("Services", STARTUP);
    a.cli_login_admin();
    a.shop(&[
        "product",
        "add",
        "--sku",
        "NODE-1",
        "--name",
        "Node lamp",
        "--price",
        "9.00",
        "--stock",
        "10",
    ])
    .expect(0);
    let order = a
        .shop(&[
            "order",
            "create",
            "--item",
            "NODE-1:2",
            "--customer",
            "node@example.com",
            "--pay",
            "card:4242424242424242",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    let number = order["number"].as_str().expect("a number");
    tmux.expect(number, LIVE);
}
