//! Search through the HTTP API and the command line: relevance on the
//! sample catalog, typos, filters and facets checked against the catalog
//! routes, the index after every kind of catalog change and a restart,
//! paging, suggestions, recommendations, analytics and bad input.

use std::collections::{BTreeMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn search(server: &TestServer, query: &str) -> Value {
    expect_status(
        server
            .get(&format!("/api/search?{query}"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await
}

fn skus(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["product"]["sku"].as_str().unwrap().to_owned())
        .collect()
}

async fn create(server: &TestServer, token: &str, body: Value) -> Value {
    let response = server
        .send_as(Method::POST, "/api/products", &body, token)
        .await;
    expect_status(response, StatusCode::CREATED).await
}

/// Every result of a query, page by page.
async fn all_results(server: &TestServer, query: &str, page: usize) -> Vec<Value> {
    let mut items = Vec::new();
    loop {
        let got = search(
            server,
            &format!("{query}&limit={page}&offset={}", items.len()),
        )
        .await;
        let batch = got["items"].as_array().unwrap().clone();
        let total = got["total"].as_u64().unwrap() as usize;
        items.extend(batch.iter().cloned());
        if batch.is_empty() || items.len() >= total {
            assert_eq!(items.len(), total, "pages add up to the total");
            return items;
        }
    }
}

#[tokio::test]
async fn the_sample_catalog_is_searched_by_relevance_with_typos_filters_and_facets() {
    let server = TestServer::start_full(&[], &["--demo"]);
    let admin = server.admin_token().await;

    // A name match outranks a description-only match of the same word.
    create(
        &server,
        &admin,
        json!({"sku": "QUOKKA-DESC", "name": "Plain Side Lamp", "price_cents": 5000, "category": "lighting",
               "description": "Shaped like a quokka, with a quokka on the base."}),
    )
    .await;
    create(
        &server,
        &admin,
        json!({"sku": "QUOKKA-NAME", "name": "Quokka Lamp", "price_cents": 5000, "category": "lighting"}),
    )
    .await;
    let got = search(&server, "q=quokka").await;
    assert_eq!(skus(&got), ["QUOKKA-NAME", "QUOKKA-DESC"]);
    assert_eq!(got["matching"], "all");
    assert_eq!(
        got["items"][0]["highlights"]["name"],
        "<em>Quokka</em> Lamp"
    );
    assert_eq!(got["items"][0]["rank"], 1);

    // A typo finds chairs, below nothing (there is no exact "chiar").
    let typo = search(&server, "q=chiar&limit=10").await;
    assert!(typo["total"].as_u64().unwrap() >= 10, "{typo}");
    for hit in typo["items"].as_array().unwrap() {
        let name = hit["product"]["name"].as_str().unwrap().to_lowercase();
        assert!(name.contains("chair"), "{name}");
    }
    // Plurals and accents: "Chairs" and "cafe" match "chair" and "Café".
    assert!(search(&server, "q=Chairs").await["total"].as_u64().unwrap() > 0);
    let cafe = search(&server, "q=cafe+atelier").await;
    assert!(
        cafe["items"][0]["product"]["name"]
            .as_str()
            .unwrap()
            .contains("Café"),
        "{cafe}"
    );

    // Filters hold for every result, and the facets count exactly the results.
    let query = "q=oak&category=furniture&max_price=50000&in_stock=true";
    let results = all_results(&server, query, 7).await;
    assert!(results.len() > 3, "{results:?}");
    let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
    for hit in &results {
        let product = &hit["product"];
        let category = product["category"].as_str().unwrap();
        assert!(category.starts_with("furniture/"), "{category}");
        assert!(product["price_cents"].as_i64().unwrap() <= 50_000);
        assert!(hit["available"].as_i64().unwrap() > 0);
        let sku = product["sku"].as_str().unwrap();
        let stock = expect_status(
            server
                .get_as(&format!("/api/inventory/{sku}"), &admin)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            stock["available"], hit["available"],
            "stock agrees with inventory"
        );
        *by_category.entry(category.to_owned()).or_default() += 1;
        *by_category.entry("furniture".to_owned()).or_default() += 1;
    }
    let page = search(&server, query).await;
    let facets: BTreeMap<String, u64> = page["facets"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap().to_owned(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(facets, by_category);
    let priced: u64 = page["facets"]["price"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(priced, results.len() as u64);
    assert_eq!(page["facets"]["in_stock"]["true"], results.len() as u64);

    // Browsing a category finds what the catalog lists under it.
    for category in ["kitchen", "furniture/chairs", "lighting"] {
        let browse = search(&server, &format!("q=&category={category}&limit=1")).await;
        assert_eq!(browse["matching"], "browse");
        let listed = expect_status(
            server
                .get(&format!("/api/products?category={category}&limit=1"))
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(browse["total"], listed["total"], "{category}");
    }
    // Out of stock only: every one has none available.
    for hit in all_results(&server, "q=&in_stock=false", 100).await {
        assert!(hit["available"].as_i64().unwrap() <= 0);
    }
}

#[tokio::test]
async fn every_catalog_change_is_searchable_when_its_call_returns_and_after_a_restart() {
    let mut server = TestServer::start();
    let admin = server.admin_token().await;
    let created = create(
        &server,
        &admin,
        json!({"sku": "WOMBAT-1", "name": "Wombat Mug", "price_cents": 1500, "category": "kitchen/mugs", "stock": 3}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(skus(&search(&server, "q=wombat").await), ["WOMBAT-1"]);

    // Renamed: found by the new name only.
    let patched = server
        .send_as(
            Method::PATCH,
            "/api/products/WOMBAT-1",
            &json!({"name": "Numbat Mug"}),
            &admin,
        )
        .await;
    expect_status(patched, StatusCode::OK).await;
    assert_eq!(search(&server, "q=wombat").await["total"], 0);
    assert_eq!(skus(&search(&server, "q=numbat").await), ["WOMBAT-1"]);

    // Stock: out of stock the moment the adjustment answers.
    let set = server
        .send_as(
            Method::PUT,
            "/api/inventory/WOMBAT-1",
            &json!({"on_hand": 0, "reason": "count"}),
            &admin,
        )
        .await;
    expect_status(set, StatusCode::OK).await;
    assert_eq!(search(&server, "q=numbat&in_stock=true").await["total"], 0);
    assert_eq!(
        search(&server, "q=numbat&in_stock=false").await["items"][0]["available"],
        0
    );

    // Archived: gone; active again: back.
    let archived = server
        .send_as(
            Method::POST,
            "/api/products/WOMBAT-1/archive",
            &json!({}),
            &admin,
        )
        .await;
    expect_status(archived, StatusCode::OK).await;
    assert_eq!(search(&server, "q=numbat").await["total"], 0);
    let revived = server
        .send_as(
            Method::PATCH,
            "/api/products/WOMBAT-1",
            &json!({"active": true}),
            &admin,
        )
        .await;
    expect_status(revived, StatusCode::OK).await;
    assert_eq!(skus(&search(&server, "q=numbat").await), ["WOMBAT-1"]);

    // Imported: new rows and a changed row, searchable when the import answers.
    let ndjson = [
        json!({"sku": "IMP-1", "name": "Echidna Bowl", "price_cents": 900, "category": "kitchen", "stock": 2}),
        json!({"sku": "IMP-2", "name": "Echidna Plate", "price_cents": 800, "category": "kitchen"}),
        json!({"sku": "WOMBAT-1", "name": "Bilby Mug", "price_cents": 1500, "category": "kitchen/mugs"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let imported = server
        .request(Method::POST, "/api/products/import?format=ndjson")
        .header("authorization", bearer(&admin))
        .body(ndjson)
        .send()
        .await
        .unwrap();
    let summary = expect_status(imported, StatusCode::OK).await;
    assert_eq!(summary["created"], 2, "{summary}");
    assert_eq!(skus(&search(&server, "q=echidna&limit=5").await).len(), 2);
    assert_eq!(skus(&search(&server, "q=bilby").await), ["WOMBAT-1"]);
    assert_eq!(search(&server, "q=numbat").await["total"], 0);

    // Deleted: gone, and its recommendations are 404.
    let deleted = server
        .send_as(Method::DELETE, "/api/products/IMP-2", &json!({}), &admin)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(skus(&search(&server, "q=echidna").await), ["IMP-1"]);

    // After a restart the rebuilt index answers the same.
    let before: Vec<Value> = ["q=echidna", "q=bilby", "q=mug&in_stock=false", "q="]
        .iter()
        .map(|q| q.to_string())
        .map(Value::from)
        .collect();
    let mut answers = Vec::new();
    for q in &before {
        answers.push(skus(&search(&server, q.as_str().unwrap()).await));
    }
    server.restart();
    for (q, expected) in before.iter().zip(&answers) {
        assert_eq!(
            &skus(&search(&server, q.as_str().unwrap()).await),
            expected,
            "{q}"
        );
    }
    let health = expect_status(
        server.get("/api/search/health").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(
        health["checks"]["index"]["message"]
            .as_str()
            .unwrap()
            .starts_with("2 products"),
        "{health}"
    );
    let _ = id;
}

/// Records a view of `product` with no one signed in.
async fn view_anonymously(server: &TestServer, product: &str) {
    let viewed = server
        .post("/api/search/analytics/view", &json!({"product": product}))
        .send()
        .await
        .unwrap();
    assert_eq!(viewed.status(), StatusCode::NO_CONTENT);
}

/// Searches answered from the result cache so far, from `/metrics`.
async fn cache_hits(server: &TestServer) -> u64 {
    let text = server.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix(r#"shop_search_cache_requests_total{result="hit"} "#))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn a_cached_page_outlives_views_and_stock_levels_but_never_shows_stale_stock() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    for (sku, name) in [
        ("BILBY-1", "Bilby Lantern"),
        ("QUOLL-1", "Quoll Lantern"),
        ("WOMBAT-1", "Wombat Kettle"),
    ] {
        create(
            &server,
            &admin,
            json!({"sku": sku, "name": name, "price_cents": 2500, "stock": 5}),
        )
        .await;
    }
    let set_stock = |sku: &'static str, on_hand: i64| {
        let server = &server;
        let admin = &admin;
        async move {
            let set = server
                .send_as(
                    Method::PUT,
                    &format!("/api/inventory/{sku}"),
                    &json!({"on_hand": on_hand, "reason": "count"}),
                    admin,
                )
                .await;
            expect_status(set, StatusCode::OK).await;
        }
    };
    let query = "q=bilby+lantern&in_stock=true";
    // Served from the cache exactly when the hit counter moves.
    let served_cached = |hits_before: u64| {
        let server = &server;
        async move {
            let page = search(server, query).await;
            (page, cache_hits(server).await > hits_before)
        }
    };
    search(&server, query).await;

    // A view, a stock change of a product not on the page, and products
    // that are no result of it selling out keep it.
    view_anonymously(&server, "BILBY-1").await;
    set_stock("QUOLL-1", 4).await;
    set_stock("WOMBAT-1", 0).await;
    let (page, cached) = served_cached(cache_hits(&server).await).await;
    assert!(
        cached,
        "a view and another product's stock keep the page: {page}"
    );
    set_stock("QUOLL-1", 0).await;
    let (page, cached) = served_cached(cache_hits(&server).await).await;
    assert!(cached, "a quoll lantern is no bilby lantern: {page}");
    set_stock("QUOLL-1", 5).await;
    assert_eq!(skus(&page), ["BILBY-1"]);
    assert_eq!(page["items"][0]["available"], 5);

    // Its own product's level: the next search shows the new level, from
    // the cache (a level changes nothing else on a page).
    set_stock("BILBY-1", 3).await;
    let (page, cached) = served_cached(cache_hits(&server).await).await;
    assert!(cached, "{page}");
    assert_eq!(page["items"][0]["available"], 3);

    // Out of stock: gone from an in-stock search at once.
    set_stock("BILBY-1", 0).await;
    let page = search(&server, query).await;
    assert_eq!(page["total"], 0, "{page}");
    // Another product going out of stock changes the in-stock facet of the
    // cached pages it is a result of.
    let all = "q=lantern";
    assert_eq!(search(&server, all).await["facets"]["in_stock"]["true"], 1);
    let hits = cache_hits(&server).await;
    assert_eq!(search(&server, all).await["facets"]["in_stock"]["true"], 1);
    assert!(cache_hits(&server).await > hits, "cached");
    set_stock("QUOLL-1", 0).await;
    assert_eq!(search(&server, all).await["facets"]["in_stock"]["true"], 0);
}

#[tokio::test]
async fn views_are_written_in_batches_and_the_last_when_the_server_stops() {
    // The analytics worker waits an hour between rounds: only a clean stop
    // can write these views.
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("shop.toml");
    std::fs::write(&file, "[search]\nanalytics_flush_ms = 3600000\n").unwrap();
    let mut server = TestServer::start_full(&[], &["--config", file.to_str().unwrap()]);
    let admin = server.admin_token().await;
    for (sku, name) in [("NUMBAT-1", "Numbat Mug"), ("DINGO-1", "Dingo Mug")] {
        create(
            &server,
            &admin,
            json!({"sku": sku, "name": name, "price_cents": 900, "stock": 5}),
        )
        .await;
    }
    // Browsing puts the most viewed and bought first, then the oldest.
    assert_eq!(skus(&search(&server, "q=").await), ["NUMBAT-1", "DINGO-1"]);

    let writes = |metrics: String| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("shop_store_writer_transaction_seconds_count "))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    let before = writes(server.metrics().await);
    let views = 20;
    for _ in 0..views {
        view_anonymously(&server, "DINGO-1").await;
    }
    let during = writes(server.metrics().await) - before;
    assert!(
        during < views,
        "{during} writer transactions for {views} views"
    );

    assert!(server.stop().success());
    server.restart();
    assert_eq!(
        skus(&search(&server, "q=").await),
        ["DINGO-1", "NUMBAT-1"],
        "the views were written when the server stopped"
    );
}

#[tokio::test]
async fn paging_never_repeats_or_skips_a_result() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    let ndjson = (0..45)
        .map(|i| json!({"sku": format!("TWIN-{i:02}"), "name": "Twin Teapot", "price_cents": 2000 + i % 3, "category": "kitchen"}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let imported = server
        .request(Method::POST, "/api/products/import?format=ndjson")
        .header("authorization", bearer(&admin))
        .body(ndjson)
        .send()
        .await
        .unwrap();
    expect_status(imported, StatusCode::OK).await;
    for query in ["q=twin+teapot", "q=", "q=teapot&max_price=2001"] {
        let whole: Vec<String> = skus(&search(&server, &format!("{query}&limit=100")).await);
        let paged: Vec<String> = all_results(&server, query, 7)
            .await
            .iter()
            .map(|hit| hit["product"]["sku"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(paged, whole, "{query}");
        assert_eq!(paged.iter().collect::<HashSet<_>>().len(), paged.len());
    }
}

#[tokio::test]
async fn suggestions_recommendations_views_and_analytics() {
    let server = TestServer::start_full(&[], &["--demo"]);
    let admin = server.admin_token().await;

    let suggestions = expect_status(
        server
            .get("/api/search/suggest?prefix=din")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let list = suggestions["suggestions"].as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= 10, "{suggestions}");
    for s in list {
        assert!(s.as_str().unwrap().to_lowercase().starts_with("din"), "{s}");
    }
    let none = expect_status(
        server
            .get("/api/search/suggest?prefix=")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(none["suggestions"], json!([]));

    // Recommendations: the same category at first; never the product, never archived.
    let chairs = search(&server, "q=&category=furniture/chairs&limit=3").await;
    let chair = skus(&chairs);
    let recommended = expect_status(
        server
            .get(&format!(
                "/api/search/recommendations/{}?limit=50",
                chair[0]
            ))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let got: Vec<&str> = recommended["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["product"]["sku"].as_str().unwrap())
        .collect();
    assert!(!got.contains(&chair[0].as_str()));
    assert!(got.contains(&chair[1].as_str()), "{got:?}");
    let archived = server
        .send_as(
            Method::POST,
            &format!("/api/products/{}/archive", chair[1]),
            &json!({}),
            &admin,
        )
        .await;
    expect_status(archived, StatusCode::OK).await;

    // Two products viewed by one signed-in customer are viewed together.
    let lamp = skus(&search(&server, "q=&category=kitchen/cookware&limit=1").await).remove(0);
    let visitor = server.customer_token("visitor-1@example.com").await;
    for product in [&chair[0], &lamp, &chair[0]] {
        let viewed = server
            .send_as(
                Method::POST,
                "/api/search/analytics/view",
                &json!({"product": product}),
                &visitor,
            )
            .await;
        assert_eq!(viewed.status(), StatusCode::NO_CONTENT);
    }
    // Views are written in batches; reading the analytics writes the buffered ones.
    expect_status(
        server.get_as("/api/search/analytics", &admin).await,
        StatusCode::OK,
    )
    .await;
    let recommended = expect_status(
        server
            .get(&format!(
                "/api/search/recommendations/{}?limit=50",
                chair[0]
            ))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let items = recommended["items"].as_array().unwrap();
    assert_eq!(items[0]["product"]["sku"], lamp.as_str(), "{recommended}");
    assert_eq!(items[0]["reason"], "co_view");
    assert!(
        items
            .iter()
            .all(|r| r["product"]["sku"] != chair[1].as_str()
                && r["product"]["sku"] != chair[0].as_str())
    );

    // Analytics: every query counted, zero-result ones listed, events logged.
    for q in ["chair", "Chair", "zzqxv", "lamp"] {
        search(&server, &format!("q={q}")).await;
    }
    let analytics = expect_status(
        server.get_as("/api/search/analytics", &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        analytics["top_queries"][0],
        json!({"query": "chair", "count": 2}),
        "{analytics}"
    );
    assert!(
        analytics["zero_result_queries"]
            .as_array()
            .unwrap()
            .contains(&json!({"query": "zzqxv", "count": 1}))
    );
    assert!(analytics["total_queries"].as_u64().unwrap() >= 4);
    assert!(!analytics["volume"].as_array().unwrap().is_empty());
    let forbidden = server.get("/api/search/analytics").send().await.unwrap();
    assert_eq!(forbidden.status(), StatusCode::UNAUTHORIZED);
    let events = expect_status(
        server
            .get_as("/api/events/log?type=search.query&limit=500", &admin)
            .await,
        StatusCode::OK,
    )
    .await;
    let zero = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["query"] == "zzqxv")
        .expect("a search.query event");
    assert_eq!(zero["data"]["result_count"], 0);
    assert!(zero["data"]["latency_ms"].is_number() && zero["data"]["cache_hit"].is_boolean());

    // The cache's hit ratio and the Bloom filters' rates are in /metrics.
    let metrics = server.metrics().await;
    for series in [
        "shop_search_cache_hit_ratio",
        "shop_search_bloom_false_positive_rate{filter=\"typo_terms\"} 0.01",
        "shop_search_bloom_false_positive_rate{filter=\"product_keys\"} 0.01",
        "shop_search_index_documents",
    ] {
        assert!(metrics.contains(series), "{series} missing");
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_never_a_5xx() {
    let server = TestServer::start();
    let admin = server.admin_token().await;
    create(
        &server,
        &admin,
        json!({"sku": "OAK-1", "name": "Oak Chair", "price_cents": 100}),
    )
    .await;
    let long = "x".repeat(10 * 1024);
    let refused = [
        (format!("/api/search?q={long}"), "validation_failed"),
        ("/api/search?q=oak&limit=-1".to_owned(), "validation_failed"),
        ("/api/search?q=oak&limit=0".to_owned(), "validation_failed"),
        (
            "/api/search?q=oak&offset=-5".to_owned(),
            "validation_failed",
        ),
        (
            "/api/search?q=oak&offset=99999999".to_owned(),
            "validation_failed",
        ),
        ("/api/search?q=oak&limit=ten".to_owned(), "invalid_query"),
        ("/api/search?q=%FF%FE".to_owned(), "invalid_query"),
        (
            "/api/search?q=oak&min_price=-1".to_owned(),
            "validation_failed",
        ),
        (
            "/api/search?q=oak&category=a//b".to_owned(),
            "validation_failed",
        ),
        ("/api/search?q=oak&colour=red".to_owned(), "invalid_query"),
        (
            format!("/api/search/suggest?prefix={long}"),
            "validation_failed",
        ),
        (
            "/api/search/suggest?prefix=a&limit=-3".to_owned(),
            "validation_failed",
        ),
        (
            "/api/search/recommendations/OAK-1?limit=500".to_owned(),
            "validation_failed",
        ),
    ];
    for (path, code) in refused {
        let response = server.get(&path).send().await.unwrap();
        expect_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    // A crossed price range matches nothing; it is not an error.
    let crossed = expect_status(
        server
            .get("/api/search?q=oak&min_price=500&max_price=100")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(skus(&crossed).is_empty(), "{crossed}");
    for path in [
        "/api/search/recommendations/NOPE-1",
        "/api/search/recommendations/prd_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
    ] {
        expect_error(
            server.get(path).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // Query syntax means nothing: the words are searched.
    for q in [
        "%22oak%22+AND+(chair*)+-x:y",
        "oak%00chair",
        "%E2%80%8B%F0%9F%AA%91",
        "***",
        "+++",
    ] {
        let got = search(&server, &format!("q={q}")).await;
        assert!(got["total"].is_u64(), "{q}: {got}");
    }
    assert_eq!(
        skus(&search(&server, "q=%22oak%22+AND+(chair*)").await),
        ["OAK-1"]
    );
    // Views: a bad body, an unknown product, a bad session.
    let bad = server
        .post("/api/search/analytics/view", &json!({"sku": "OAK-1"}))
        .send()
        .await
        .unwrap();
    expect_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let unknown = server
        .post("/api/search/analytics/view", &json!({"product": "GHOST-9"}))
        .send()
        .await
        .unwrap();
    expect_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let session = server
        .post(
            "/api/search/analytics/view",
            &json!({"product": "OAK-1", "session": "x".repeat(500)}),
        )
        .send()
        .await
        .unwrap();
    expect_error(session, StatusCode::BAD_REQUEST, "validation_failed").await;
    // A 10 KB query of many words is bounded work, not a slow path.
    let words = "chair ".repeat(1_500);
    let many = server
        .get("/api/search")
        .query(&[("q", &words[..500])])
        .send()
        .await
        .unwrap();
    assert_eq!(many.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_command_line_searches_suggests_recommends_and_reports() {
    let server = TestServer::start_full(&[], &["--demo"]);
    server.cli_login_admin();
    let page = server
        .shop(&[
            "search",
            "chiar",
            "--category",
            "furniture",
            "--max-price",
            "500",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert!(page["total"].as_u64().unwrap() > 0, "{page}");
    for hit in page["items"].as_array().unwrap() {
        assert!(hit["product"]["price_cents"].as_i64().unwrap() <= 50_000);
        assert!(
            hit["product"]["category"]
                .as_str()
                .unwrap()
                .starts_with("furniture/")
        );
    }
    let lines = server
        .shop(&["search", "oak chair", "--limit", "3"])
        .expect(0)
        .lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["rank"], 1);
    // Words without quotes are one query, and the words `suggest` and
    // `analytics` can be searched for.
    for (words, query) in [
        (&["oak", "chair"][..], "oak chair"),
        (&["oak", "chair", "--limit", "3"][..], "oak chair"),
        (&["oak", "suggest"][..], "oak suggest"),
        (&["--", "suggest"][..], "suggest"),
        (&["--", "analytics", "chair"][..], "analytics chair"),
    ] {
        let mut args = vec!["search", "-o", "json"];
        args.extend_from_slice(words);
        let page = server.shop(&args).expect(0).json();
        assert_eq!(page["query"], query, "{words:?}: {page}");
    }
    let table = server
        .shop(&["search", "oak chair", "--limit", "3", "-o", "table"])
        .expect(0);
    for header in ["SCORE", "SKU", "NAME", "PRICE", "STOCK"] {
        assert!(table.stdout.contains(header), "{header}: {}", table.stdout);
    }
    let suggestions = server
        .shop(&["search", "suggest", "din", "-o", "json"])
        .expect(0)
        .json();
    assert!(!suggestions["suggestions"].as_array().unwrap().is_empty());
    let ids = server
        .shop(&["search", "suggest", "din", "-o", "id"])
        .expect(0);
    assert!(
        ids.stdout
            .lines()
            .all(|l| l.to_lowercase().starts_with("din")),
        "{}",
        ids.stdout
    );
    let analytics = server
        .shop(&["search", "analytics", "-o", "json"])
        .expect(0)
        .json();
    assert!(
        analytics["total_queries"].as_u64().unwrap() >= 2,
        "{analytics}"
    );
    let sku = page["items"][0]["product"]["sku"]
        .as_str()
        .unwrap()
        .to_owned();
    let recommended = server
        .shop(&["recommend", &sku, "--limit", "4", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(recommended["items"].as_array().unwrap().len(), 4);
    server.shop(&["recommend", "NOPE-404"]).expect(4);
    server.shop(&["search", "x", "--limit", "0"]).expect(2);
}
