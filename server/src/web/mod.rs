//! The web: the storefront customers buy from at `/`, and the live status
//! page at `/status` (SPEC section 12).
//!
//! Pages are rendered on the server from templates compiled into the binary,
//! and every form works without JavaScript; a little script adds search
//! suggestions and live updates. The storefront reaches the services only
//! through the public API, called in-process ([`api`]), so it obeys every
//! rule a client does. It has its own router and headers: a session cookie,
//! CSRF tokens on every form, and a content security policy that allows the
//! shop's own assets only. The API keeps its own headers.

pub mod api;
pub mod assets;
pub mod cache;
pub mod pages;
pub mod session;
pub mod status;
pub mod text;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::value::Kwargs;
use minijinja::{Environment, UndefinedBehavior};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::gateway;
use crate::state::AppState;
use api::Api;
use assets::Assets;
use session::Session;

/// Everything a page handler needs.
#[derive(Clone)]
pub struct WebState {
    pub app: AppState,
    pub api: Api,
    pub templates: Arc<Environment<'static>>,
    pub assets: Arc<Assets>,
    pub sessions: moka::sync::Cache<String, Session>,
    pub catalog_answers: cache::CatalogAnswers,
    pub tls: bool,
    pub session_ttl_seconds: u64,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("home.html", include_str!("templates/home.html")),
    ("category.html", include_str!("templates/category.html")),
    ("search.html", include_str!("templates/search.html")),
    ("product.html", include_str!("templates/product.html")),
    ("cart.html", include_str!("templates/cart.html")),
    ("checkout.html", include_str!("templates/checkout.html")),
    ("order.html", include_str!("templates/order.html")),
    ("account.html", include_str!("templates/account.html")),
    ("signin.html", include_str!("templates/signin.html")),
    ("message.html", include_str!("templates/message.html")),
    ("status.html", include_str!("templates/status.html")),
];

fn templates(assets: &Arc<Assets>) -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    env.add_function(
        "t",
        |key: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
            let values = kwargs
                .args()
                .map(|name| Ok((name, kwargs.get::<minijinja::Value>(name)?.to_string())))
                .collect::<Result<Vec<_>, minijinja::Error>>()?;
            Ok(text::message(key, &values))
        },
    );
    env.add_function("money", |minor: i64, currency: &str| -> String {
        match currency.parse() {
            Ok(currency) => text::money(minor, currency),
            Err(_) => format!("{minor} {currency}"),
        }
    });
    env.add_filter("urlencode", |value: &str| pages::encode(value));
    let urls = assets.clone();
    // The URLs are the shop's own (a fixed name and a hex hash): written as they are, not entity-escaped.
    env.add_function("asset", move |name: &str| -> minijinja::Value {
        urls.url(name).map_or(minijinja::Value::UNDEFINED, |url| {
            minijinja::Value::from_safe_string(url.to_owned())
        })
    });
    Ok(env)
}

/// The storefront (unless turned off) and the status page, with the API as the fallback for every other path.
pub fn app(state: AppState, api: Router) -> anyhow::Result<Router> {
    let config = state.config.clone();
    let assets = Arc::new(Assets::load(&config.storefront)?);
    let web = WebState {
        templates: Arc::new(templates(&assets)?),
        assets: assets.clone(),
        api: Api::new(api.clone()),
        sessions: moka::sync::Cache::builder()
            .max_capacity(200_000)
            .time_to_idle(config.session_ttl())
            .build(),
        catalog_answers: cache::CatalogAnswers::new(),
        tls: config.tls_cert.is_some(),
        session_ttl_seconds: config.session_ttl_seconds,
        app: state,
    };
    let mut pages = Router::new()
        .route("/status", get(status::page))
        .route("/status/ops", get(status::ops))
        .route("/status/ops/data", get(status::ops_data))
        .route("/status/ops/events", get(status::ops_events));
    if config.storefront.enabled {
        pages = pages
            .route("/", get(pages::home))
            .route("/c/{*category}", get(pages::category))
            .route("/search", get(pages::search))
            .route("/p/{sku}", get(pages::product))
            .route("/cart", get(pages::cart))
            .route("/cart/add", post(pages::cart_add))
            .route("/cart/update", post(pages::cart_update))
            .route("/checkout", get(pages::checkout).post(pages::place_order))
            .route("/checkout/address", post(pages::checkout_address))
            .route("/checkout/shipping", post(pages::checkout_shipping))
            .route("/checkout/discount", post(pages::checkout_discount))
            .route("/orders/{id}", get(pages::order))
            .route("/account", get(pages::account))
            .route(
                "/account/signin",
                get(pages::signin_page).post(pages::signin),
            )
            .route("/account/register", post(pages::register))
            .route("/account/signout", post(pages::signout));
    }
    let pages = pages
        .layer(from_fn_with_state(web.clone(), session::middleware))
        .layer(from_fn(server_timing))
        .with_state(web.clone())
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(config.request_timeout_seconds),
        ));
    let assets = Router::new()
        .route("/assets/{name}", get(assets::serve))
        .with_state(assets);
    let site = headers(pages.merge(assets), web.tls)
        .layer(CatchPanicLayer::new())
        .layer(from_fn(gateway::metrics::middleware))
        .layer(from_fn(gateway::request_id::middleware));
    Ok(site.fallback_service(api))
}

/// How long the server spent on a page (its session, API calls and
/// rendering), as a `Server-Timing` header: browser tools show it, and the
/// benchmark reads it to measure render time without the network's.
async fn server_timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={millis:.3}")) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("server-timing"), value);
    }
    response
}

/// The storefront's own headers: its content only from its own origin, never framed.
fn headers(router: Router, tls: bool) -> Router {
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; \
             object-src 'none'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    let mut router = router;
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    if tls {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    router
}
