//! The storefront's pages. Each handler asks the API what the page shows,
//! turns the visitor's form into an API call, and renders a template; the
//! rules (stock, prices, who sees which order) are the API's.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shop_wire::ProductId;
use shop_wire::money::{Currency, parse_amount};

use crate::web::WebState;
use crate::web::api::{Answer, Caller};
use crate::web::session::{SignedIn, Visitor};
use crate::web::text::message;

/// Products on one category or search page.
const PAGE_SIZE: u32 = 24;
/// The category tree, which the home page and every category page show.
const CATEGORIES: &str = "/api/products/categories";

// ---------------------------------------------------------------- rendering

/// Renders `template` with the page's own values and what every page shows
/// (the shop, the visitor, their cart count and the form token).
pub fn render(
    web: &WebState,
    visitor: &Visitor,
    status: StatusCode,
    template: &str,
    page: Value,
) -> Response {
    let (user, csrf, cart_count, flash) = visitor.with(|s| {
        (
            s.user
                .as_ref()
                .map(|u| json!({"name": u.name, "email": u.email, "staff": u.is_staff()})),
            s.csrf.clone(),
            s.cart_count,
            s.flash.take(),
        )
    });
    let config = &web.app.config.storefront;
    let context = json!({
        "shop": {"name": config.name, "logo": web.assets.url("logo")},
        "user": user,
        "csrf": csrf,
        "cart_count": cart_count,
        "flash": flash,
        "storefront": config.enabled,
        "page": page,
    });
    let rendered = web
        .templates
        .get_template(template)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&context))));
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(template, error = %format!("{err:#}"), "a storefront template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(message("errors.internal", &[])),
            )
                .into_response()
        }
    }
}

/// A page that only says something: an error, a refusal, a missing thing.
pub fn message_page(
    web: &WebState,
    visitor: &Visitor,
    status: StatusCode,
    key: &str,
    detail: &str,
) -> Response {
    render(
        web,
        visitor,
        status,
        "message.html",
        json!({"title": message(key, &[]), "detail": detail}),
    )
}

/// A form post refused before it reached its handler (a missing or wrong CSRF token).
pub fn refused(web: &WebState, visitor: &Visitor, key: &str) -> Response {
    message_page(
        web,
        visitor,
        StatusCode::FORBIDDEN,
        key,
        &message("errors.reload", &[]),
    )
}

fn not_found(web: &WebState, visitor: &Visitor) -> Response {
    message_page(web, visitor, StatusCode::NOT_FOUND, "errors.not_found", "")
}

/// An API refusal the page has no better words for: the API's own message, which is written for people.
fn failed(web: &WebState, visitor: &Visitor, answer: &Answer) -> Response {
    if answer.status == StatusCode::NOT_FOUND {
        return not_found(web, visitor);
    }
    let status = if answer.status.is_server_error() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        answer.status
    };
    message_page(web, visitor, status, "errors.refused", answer.message())
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn flash(visitor: &Visitor, kind: &str, text: String) {
    visitor.with(|s| s.flash = Some(json!({"kind": kind, "text": text})));
}

/// Percent-encodes a value for a path segment or a query string.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Only paths on this site: an open redirect would let a link send a signed-in customer anywhere.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

// ---------------------------------------------------------------- API calls

impl WebState {
    /// Calls the API as the visitor; an expired access token is refreshed once and the call repeated.
    pub async fn call(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let answer = self
            .call_once(visitor, method.clone(), path, body.clone())
            .await;
        if answer.status != StatusCode::UNAUTHORIZED {
            return answer;
        }
        let Some(refresh) = visitor.with(|s| s.user.as_ref().map(|u| u.refresh_token.clone()))
        else {
            return answer;
        };
        let caller = Caller {
            addr: visitor.addr,
            access_token: None,
            cart_token: None,
        };
        let renewed = self
            .api
            .send(
                caller,
                Method::POST,
                "/api/users/refresh",
                json!({"refresh_token": refresh}),
            )
            .await;
        let tokens = (
            renewed.body["access_token"].as_str(),
            renewed.body["refresh_token"].as_str(),
        );
        match (renewed.ok(), tokens) {
            (true, (Some(access), Some(refresh))) => {
                visitor.with(|s| {
                    if let Some(user) = s.user.as_mut() {
                        user.access_token = access.to_owned();
                        user.refresh_token = refresh.to_owned();
                    }
                });
                self.call_once(visitor, method, path, body).await
            }
            _ => {
                // The login session ended (expired or revoked): the visitor is anonymous again.
                visitor.with(|s| {
                    s.user = None;
                    s.cart_id = None;
                    s.cart_count = 0;
                });
                answer
            }
        }
    }

    async fn call_once(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let (access, cart) = visitor.with(|s| {
            (
                s.user.as_ref().map(|u| u.access_token.clone()),
                s.cart_token.clone(),
            )
        });
        let caller = Caller {
            addr: visitor.addr,
            access_token: access.as_deref(),
            cart_token: cart.as_deref(),
        };
        match body {
            Some(body) => self.api.send(caller, method, path, body).await,
            None => self.api.get(caller, path).await,
        }
    }

    async fn get(&self, visitor: &Visitor, path: &str) -> Answer {
        self.call(visitor, Method::GET, path, None).await
    }

    /// Units available to sell now, from the search index the search API answers from.
    fn available(&self, product: &Value) -> Option<i64> {
        let id: ProductId = product["id"].as_str()?.parse().ok()?;
        self.app.search.read().available(&id)
    }

    /// Products with what a card shows: availability beside each.
    fn with_stock<'a>(&self, products: impl Iterator<Item = &'a Value>) -> Vec<Value> {
        products
            .map(|p| json!({"product": p, "available": self.available(p)}))
            .collect()
    }
}

// ---------------------------------------------------------------- browsing

pub async fn home(State(web): State<WebState>, Extension(visitor): Extension<Visitor>) -> Response {
    let (categories, popular) = tokio::join!(
        web.catalog_get(&visitor, CATEGORIES),
        web.get(&visitor, "/api/search?limit=8"),
    );
    let categories = match categories {
        Ok(categories) => categories,
        Err(refused) => return failed(&web, &visitor, &refused),
    };
    let top: Vec<&Value> = categories["items"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["depth"] == 1).collect())
        .unwrap_or_default();
    let popular: Vec<Value> = popular.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| json!({"product": i["product"], "available": i["available"]}))
                .collect()
        })
        .unwrap_or_default();
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "home.html",
        json!({"categories": top, "popular": popular}),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    q: Option<String>,
    category: Option<String>,
    sort: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    in_stock: Option<String>,
    page: Option<u32>,
}

impl Filters {
    /// The API query for these filters; a price that is not an amount is reported, not guessed.
    fn api_query(&self, currency: Currency) -> Result<Vec<(&'static str, String)>, String> {
        let mut query = Vec::new();
        for (name, raw) in [
            ("min_price", &self.min_price),
            ("max_price", &self.max_price),
        ] {
            if let Some(text) = raw.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                query.push((name, parse_amount(text, currency)?.to_string()));
            }
        }
        if self.in_stock.as_deref() == Some("true") {
            query.push(("in_stock", "true".to_owned()));
        }
        let page = self.page.unwrap_or(1).clamp(1, 400);
        query.push(("limit", PAGE_SIZE.to_string()));
        query.push(("offset", ((page - 1) * PAGE_SIZE).to_string()));
        Ok(query)
    }

    /// The filters as a query string without the page, for the links to other pages.
    fn without_page(&self) -> String {
        [
            ("q", &self.q),
            ("category", &self.category),
            ("sort", &self.sort),
            ("min_price", &self.min_price),
            ("max_price", &self.max_price),
            ("in_stock", &self.in_stock),
        ]
        .iter()
        .filter_map(|(name, value)| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{name}={}", encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn to_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn paging(total: u64, filters: &Filters) -> Value {
    let page = filters.page.unwrap_or(1).max(1);
    let pages = total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    json!({"page": page, "pages": pages, "total": total, "query": filters.without_page()})
}

const SORTS: [&str; 5] = ["created_at", "price", "-price", "name", "-name"];

pub async fn category(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Path(path): Path<String>,
    Query(filters): Query<Filters>,
) -> Response {
    let sort = filters
        .sort
        .as_deref()
        .filter(|s| SORTS.contains(s))
        .unwrap_or("created_at");
    let mut query = match filters.api_query(Currency::USD) {
        Ok(query) => query,
        Err(problem) => {
            return message_page(
                &web,
                &visitor,
                StatusCode::BAD_REQUEST,
                "errors.bad_filter",
                &problem,
            );
        }
    };
    query.push(("category", path.clone()));
    query.push(("sort", sort.to_owned()));
    let list = format!("/api/products?{}", to_query(&query));
    let (products, categories) = tokio::join!(
        web.get(&visitor, &list),
        web.catalog_get(&visitor, CATEGORIES),
    );
    if !products.ok() {
        return failed(&web, &visitor, &products);
    }
    let categories = match categories {
        Ok(categories) => categories,
        Err(refused) => return failed(&web, &visitor, &refused),
    };
    let all = categories["items"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(current) = all.iter().find(|c| c["path"] == path.as_str()) else {
        return not_found(&web, &visitor);
    };
    let prefix = format!("{path}/");
    let children: Vec<&Value> = all
        .iter()
        .filter(|c| {
            c["path"].as_str().is_some_and(|p| p.starts_with(&prefix))
                && c["depth"] == current["depth"].as_u64().unwrap_or(0) + 1
        })
        .collect();
    let items = products.body["items"]
        .as_array()
        .map(|i| web.with_stock(i.iter()))
        .unwrap_or_default();
    let total = products.body["total"].as_u64().unwrap_or(0);
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "category.html",
        json!({
            "category": current,
            "children": children,
            "items": items,
            "sort": sort,
            "sorts": SORTS,
            "filters": {"min_price": filters.min_price, "max_price": filters.max_price, "in_stock": filters.in_stock.as_deref() == Some("true")},
            "paging": paging(total, &filters),
        }),
    )
}

pub async fn search(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Query(filters): Query<Filters>,
) -> Response {
    let q = filters.q.clone().unwrap_or_default();
    let mut query = match filters.api_query(Currency::USD) {
        Ok(query) => query,
        Err(problem) => {
            return message_page(
                &web,
                &visitor,
                StatusCode::BAD_REQUEST,
                "errors.bad_filter",
                &problem,
            );
        }
    };
    query.push(("q", q.clone()));
    if let Some(category) = filters.category.as_deref().filter(|c| !c.is_empty()) {
        query.push(("category", category.to_owned()));
    }
    let results = web
        .get(&visitor, &format!("/api/search?{}", to_query(&query)))
        .await;
    if !results.ok() {
        return failed(&web, &visitor, &results);
    }
    let items: Vec<Value> = results.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| json!({"product": i["product"], "available": i["available"]}))
                .collect()
        })
        .unwrap_or_default();
    let total = results.body["total"].as_u64().unwrap_or(0);
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "search.html",
        json!({
            "q": q,
            "items": items,
            "facets": results.body["facets"],
            "matching": results.body["matching"],
            "filters": {"category": filters.category, "min_price": filters.min_price, "max_price": filters.max_price, "in_stock": filters.in_stock.as_deref() == Some("true")},
            "paging": paging(total, &filters),
        }),
    )
}

pub async fn product(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Path(sku): Path<String>,
) -> Response {
    let key = encode(&sku);
    let (one, recommendations) = (
        format!("/api/products/{key}"),
        format!("/api/search/recommendations/{key}?limit=4"),
    );
    let (product, recommended) = tokio::join!(
        web.get(&visitor, &one),
        web.catalog_get(&visitor, &recommendations)
    );
    if !product.ok() {
        return failed(&web, &visitor, &product);
    }
    // Popularity and co-views count the page; the visitor need not wait for it.
    let (viewer, id) = (visitor.clone(), product.body["id"].clone());
    let counter = web.clone();
    tokio::spawn(async move {
        let session = viewer.with(|s| s.csrf.clone());
        let body = json!({"product": id, "session": &session[..16]});
        let answer = counter
            .call(
                &viewer,
                Method::POST,
                "/api/search/analytics/view",
                Some(body),
            )
            .await;
        if !answer.ok() {
            tracing::debug!(status = %answer.status, "a product view was not counted");
        }
    });
    let available = web.available(&product.body);
    let images: Vec<&Value> = product.body["images"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter(|url| {
                    url.as_str()
                        .is_some_and(|u| u.starts_with('/') && !u.starts_with("//"))
                })
                .collect()
        })
        .unwrap_or_default();
    // The page stands without recommendations when they cannot be had.
    let recommended = recommended.unwrap_or_default();
    let recommended: Vec<&Value> = recommended["items"]
        .as_array()
        .map(|i| i.iter().map(|r| &r["product"]).collect())
        .unwrap_or_default();
    let attributes: BTreeMap<String, Value> =
        serde_json::from_value(product.body["attributes"].clone()).unwrap_or_default();
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "product.html",
        json!({
            "product": product.body,
            "available": available,
            "images": images,
            "attributes": attributes,
            "recommended": web.with_stock(recommended.into_iter()),
        }),
    )
}

// ---------------------------------------------------------------- cart

#[derive(Debug, Deserialize)]
pub struct CartLine {
    sku: String,
    quantity: Option<String>,
    /// Where to go back to after adding (the product page).
    back: Option<String>,
}

fn quantity(raw: Option<&str>, default: i64) -> Result<i64, String> {
    match raw.map(str::trim).filter(|q| !q.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|q| (0..=999).contains(q))
            .ok_or_else(|| message("cart.bad_quantity", &[("value", text.to_owned())])),
    }
}

fn remember_cart(visitor: &Visitor, cart: &Value) {
    visitor.with(|s| {
        s.cart_id = cart["id"].as_str().map(str::to_owned);
        if let Some(token) = cart["token"].as_str() {
            s.cart_token = Some(token.to_owned());
        }
        s.cart_count = cart["item_count"].as_i64().unwrap_or(0);
    });
}

pub async fn cart_add(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(line): Form<CartLine>,
) -> Response {
    let back = local_path(line.back.as_deref()).to_owned();
    let quantity = match quantity(line.quantity.as_deref(), 1) {
        Ok(q) if q > 0 => q,
        Ok(_) => return see_other(&back),
        Err(problem) => {
            flash(&visitor, "error", problem);
            return see_other(&back);
        }
    };
    let item = json!({"sku": line.sku, "quantity": quantity});
    let cart_id = visitor.with(|s| s.cart_id.clone());
    let mut answer = match &cart_id {
        Some(id) => {
            web.call(
                &visitor,
                Method::POST,
                &format!("/api/cart/{}/items", encode(id)),
                Some(item.clone()),
            )
            .await
        }
        None => {
            web.call(
                &visitor,
                Method::POST,
                "/api/cart",
                Some(json!({"items": [item.clone()]})),
            )
            .await
        }
    };
    // A cart that expired or was ordered is gone: start a new one with this item.
    if cart_id.is_some()
        && matches!(
            answer.code(),
            "cart_expired" | "cart_not_active" | "not_found"
        )
    {
        visitor.with(|s| {
            s.cart_id = None;
            s.cart_token = None;
        });
        answer = web
            .call(
                &visitor,
                Method::POST,
                "/api/cart",
                Some(json!({"items": [item]})),
            )
            .await;
    }
    if answer.ok() {
        remember_cart(&visitor, &answer.body);
        flash(&visitor, "ok", message("cart.added", &[]));
        see_other("/cart")
    } else if answer.status.is_client_error() {
        flash(&visitor, "error", answer.message().to_owned());
        see_other(&back)
    } else {
        failed(&web, &visitor, &answer)
    }
}

pub async fn cart_update(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(line): Form<CartLine>,
) -> Response {
    let Some(cart_id) = visitor.with(|s| s.cart_id.clone()) else {
        return see_other("/cart");
    };
    let quantity = match quantity(line.quantity.as_deref(), 0) {
        Ok(q) => q,
        Err(problem) => {
            flash(&visitor, "error", problem);
            return see_other("/cart");
        }
    };
    let path = format!("/api/cart/{}/items/{}", encode(&cart_id), encode(&line.sku));
    let answer = web
        .call(
            &visitor,
            Method::PATCH,
            &path,
            Some(json!({"quantity": quantity})),
        )
        .await;
    if answer.ok() {
        remember_cart(&visitor, &answer.body);
    } else {
        flash(&visitor, "error", answer.message().to_owned());
    }
    see_other("/cart")
}

/// What the visitor is about to buy: a pending order whose payment was
/// declined (it holds the items until paid), else their cart.
async fn basket(web: &WebState, visitor: &Visitor) -> Option<Value> {
    if let Some(order_id) = visitor.with(|s| s.pending_order.clone()) {
        let order = web
            .get(visitor, &format!("/api/orders/{}", encode(&order_id)))
            .await;
        if order.ok() && order.body["status"] == "pending" {
            visitor.with(|s| s.cart_count = order.body["item_count"].as_i64().unwrap_or(0));
            return Some(
                json!({"pending": true, "order": order.body, "items": order.body["items"], "item_count": order.body["item_count"], "total_cents": order.body["total_cents"], "currency": order.body["currency"]}),
            );
        }
        visitor.with(|s| s.pending_order = None);
    }
    let cart_id = visitor.with(|s| s.cart_id.clone())?;
    let cart = web
        .get(visitor, &format!("/api/cart/{}", encode(&cart_id)))
        .await;
    if !cart.ok() || cart.body["status"] != "active" {
        visitor.with(|s| {
            s.cart_id = None;
            s.cart_count = 0;
        });
        return None;
    }
    remember_cart(visitor, &cart.body);
    Some(
        json!({"pending": false, "items": cart.body["items"], "item_count": cart.body["item_count"], "total_cents": cart.body["subtotal_cents"], "currency": cart.body["currency"], "expires_at": cart.body["expires_at"]}),
    )
}

pub async fn cart(State(web): State<WebState>, Extension(visitor): Extension<Visitor>) -> Response {
    let basket = basket(&web, &visitor).await;
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "cart.html",
        json!({"basket": basket}),
    )
}

// ---------------------------------------------------------------- checkout

#[derive(Debug, Default, Deserialize)]
pub struct Payment {
    email: String,
    card_number: String,
    exp_month: String,
    exp_year: String,
    cvc: String,
}

pub async fn checkout(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    checkout_page(&web, &visitor, StatusCode::OK, None, BTreeMap::new(), None).await
}

/// What the checkout shows of the cart's pricing: where it goes (the
/// cart's checkout and the customer's saved addresses), its codes, and the
/// quote (the methods that ship it there and the figures it will be charged).
async fn pricing(web: &WebState, visitor: &Visitor, basket: &Value) -> Value {
    if basket["pending"] == true {
        // An order awaiting payment is priced already: it shows its own figures.
        return json!({"quote": basket["order"]});
    }
    let Some(cart_id) = visitor.with(|s| s.cart_id.clone()) else {
        return Value::Null;
    };
    let cart = web
        .get(visitor, &format!("/api/cart/{}", encode(&cart_id)))
        .await;
    let book = web.get(visitor, "/api/users/me/addresses").await;
    let quote = web
        .call(
            visitor,
            Method::POST,
            "/api/orders/quote",
            Some(json!({"cart_id": cart_id})),
        )
        .await;
    // The saved address the cart ships to, if it is one of them: the form
    // then shows that choice picked rather than "another address".
    let ship_to = &cart.body["checkout"]["shipping_address"];
    let saved = book.body["items"].as_array().and_then(|items| {
        items
            .iter()
            .find(|item| !ship_to.is_null() && item["address"] == *ship_to)
            .map(|item| item["id"].clone())
    });
    json!({
        "checkout": cart.body["checkout"],
        "codes": cart.body["discount_codes"],
        "book": book.body["items"],
        "saved": saved,
        "quote": quote.ok().then(|| quote.body.clone()),
        "quote_error": (!quote.ok()).then(|| quote.message().to_owned()),
    })
}

/// What a checkout page shows besides the cart: a refusal, the fields it
/// names, and what the visitor typed, to show again.
#[derive(Default)]
struct Shown<'a> {
    error: Option<String>,
    fields: BTreeMap<String, String>,
    form: Option<&'a Payment>,
    address: Option<&'a AddressForm>,
    code: Option<(String, String)>,
}

async fn checkout_page(
    web: &WebState,
    visitor: &Visitor,
    status: StatusCode,
    error: Option<String>,
    fields: BTreeMap<String, String>,
    form: Option<&Payment>,
) -> Response {
    let shown = Shown {
        error,
        fields,
        form,
        ..Shown::default()
    };
    checkout_showing(web, visitor, status, shown).await
}

async fn checkout_showing(
    web: &WebState,
    visitor: &Visitor,
    status: StatusCode,
    shown: Shown<'_>,
) -> Response {
    let Shown {
        error,
        fields,
        form,
        address,
        code,
    } = shown;
    let Some(email) = visitor.with(|s| s.user.as_ref().map(|u| u.email.clone())) else {
        flash(visitor, "info", message("checkout.sign_in_first", &[]));
        return see_other("/account/signin?next=/checkout");
    };
    let Some(basket) = basket(web, visitor).await else {
        return see_other("/cart");
    };
    let form = form.map_or_else(
        || json!({"email": email}),
        |f| json!({"email": f.email, "exp_month": f.exp_month, "exp_year": f.exp_year}),
    );
    let pricing = pricing(web, visitor, &basket).await;
    let (code, code_error) = code.unzip();
    render(
        web,
        visitor,
        status,
        "checkout.html",
        json!({"basket": basket, "pricing": pricing, "error": error, "fields": fields,
               "form": form, "address": address, "code": code, "code_error": code_error}),
    )
}

/// The checkout's address form: a saved address's id, or one written out.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct AddressForm {
    #[serde(default)]
    saved: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    line1: String,
    #[serde(default)]
    line2: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    phone: String,
}

impl AddressForm {
    /// The address as the API takes it; blank optional parts are left out.
    fn address(&self) -> Value {
        let optional = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
        json!({
            "name": self.name, "line1": self.line1, "line2": optional(&self.line2),
            "city": self.city, "region": optional(&self.region),
            "postal_code": self.postal_code, "country": self.country.trim().to_uppercase(),
            "phone": optional(&self.phone),
        })
    }
}

/// The fields a 400 names, by the form's names (`shipping_address.city` is `city`).
fn named_fields(answer: &Answer) -> BTreeMap<String, String> {
    answer.body["error"]["details"]["fields"]
        .as_object()
        .map(|f| {
            f.iter()
                .map(|(k, v)| {
                    let name = k.rsplit('.').next().unwrap_or(k).to_owned();
                    (
                        name,
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces the cart's checkout with `change` applied to what it keeps now.
async fn set_cart_checkout(
    web: &WebState,
    visitor: &Visitor,
    cart_id: &str,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> Answer {
    let path = format!("/api/cart/{}/checkout", encode(cart_id));
    let cart = web
        .get(visitor, &format!("/api/cart/{}", encode(cart_id)))
        .await;
    let mut body: serde_json::Map<String, Value> = cart.body["checkout"]
        .as_object()
        .map(|kept| {
            kept.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    change(&mut body);
    web.call(visitor, Method::PUT, &path, Some(Value::Object(body)))
        .await
}

pub async fn checkout_address(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<AddressForm>,
) -> Response {
    let Some(cart_id) = visitor.with(|s| s.cart_id.clone()) else {
        return see_other("/cart");
    };
    let saved = form.saved.trim().to_owned();
    let address = form.address();
    let answer = set_cart_checkout(&web, &visitor, &cart_id, |body| {
        body.remove("shipping_address");
        // Another address may not be shipped by the method chosen for the last.
        body.remove("shipping_method");
        if saved.is_empty() {
            body.insert("shipping_address".to_owned(), address);
        } else {
            body.insert("shipping_address_id".to_owned(), json!(saved));
        }
    })
    .await;
    if answer.ok() {
        return see_other("/checkout");
    }
    let shown = Shown {
        fields: named_fields(&answer),
        error: (answer.status != StatusCode::BAD_REQUEST).then(|| answer.message().to_owned()),
        address: Some(&form),
        ..Shown::default()
    };
    checkout_showing(&web, &visitor, StatusCode::BAD_REQUEST, shown).await
}

#[derive(Debug, Deserialize)]
pub struct MethodForm {
    #[serde(default)]
    method: String,
}

pub async fn checkout_shipping(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<MethodForm>,
) -> Response {
    let Some(cart_id) = visitor.with(|s| s.cart_id.clone()) else {
        return see_other("/cart");
    };
    if form.method.trim().is_empty() {
        let fields = BTreeMap::from([(
            "shipping_method".to_owned(),
            message("checkout.choose_method", &[]),
        )]);
        return checkout_page(&web, &visitor, StatusCode::BAD_REQUEST, None, fields, None).await;
    }
    let method = form.method.trim().to_owned();
    let answer = set_cart_checkout(&web, &visitor, &cart_id, |body| {
        body.insert("shipping_method".to_owned(), json!(method));
    })
    .await;
    if answer.ok() {
        return see_other("/checkout");
    }
    let text = answer.message().to_owned();
    checkout_page(
        &web,
        &visitor,
        answer.status,
        Some(text),
        BTreeMap::new(),
        None,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn checkout_discount(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(cart_id) = visitor.with(|s| s.cart_id.clone()) else {
        return see_other("/cart");
    };
    let answer = web
        .call(
            &visitor,
            Method::POST,
            &format!("/api/cart/{}/discounts", encode(&cart_id)),
            Some(json!({"code": form.code.trim()})),
        )
        .await;
    if answer.ok() {
        return see_other("/checkout");
    }
    // The server's reason (expired, used up, minimum not met) is the one to show.
    let shown = Shown {
        code: Some((form.code.clone(), answer.message().to_owned())),
        ..Shown::default()
    };
    let status = if answer.status.is_server_error() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        answer.status
    };
    checkout_showing(&web, &visitor, status, shown).await
}

fn card(form: &Payment) -> Result<Value, (String, String)> {
    let number = |field: &str, raw: &str| -> Result<i64, (String, String)> {
        raw.trim()
            .parse::<i64>()
            .map_err(|_| (field.to_owned(), message("checkout.not_a_number", &[])))
    };
    let digits: String = form
        .card_number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mut card = json!({
        "method": "card",
        "card_number": digits,
        "exp_month": number("exp_month", &form.exp_month)?,
        "exp_year": number("exp_year", &form.exp_year)?,
    });
    if !form.cvc.trim().is_empty() {
        card["cvc"] = json!(form.cvc.trim());
    }
    Ok(card)
}

pub async fn place_order(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<Payment>,
) -> Response {
    if visitor.with(|s| s.user.is_none()) {
        return see_other("/account/signin?next=/checkout");
    }
    let payment = match card(&form) {
        Ok(card) => card,
        Err((field, problem)) => {
            let fields = BTreeMap::from([(field, problem)]);
            return checkout_page(
                &web,
                &visitor,
                StatusCode::BAD_REQUEST,
                None,
                fields,
                Some(&form),
            )
            .await;
        }
    };
    let (pending, cart_id) = visitor.with(|s| (s.pending_order.clone(), s.cart_id.clone()));
    let answer = match (pending, cart_id) {
        (Some(order), _) => {
            web.call(
                &visitor,
                Method::POST,
                &format!("/api/orders/{}/pay", encode(&order)),
                Some(payment),
            )
            .await
        }
        (None, Some(cart)) => {
            let body =
                json!({"cart_id": cart, "customer_email": form.email.trim(), "payment": payment});
            web.call(&visitor, Method::POST, "/api/orders", Some(body))
                .await
        }
        (None, None) => return see_other("/cart"),
    };
    if answer.ok() {
        let id = answer.body["id"].as_str().unwrap_or_default().to_owned();
        visitor.with(|s| {
            s.pending_order = None;
            s.cart_id = None;
            s.cart_count = 0;
        });
        return see_other(&format!("/orders/{}?placed=1", encode(&id)));
    }
    match answer.status {
        StatusCode::PAYMENT_REQUIRED => {
            // The order exists and holds the items; paying it again is the way on.
            if let Some(order) = answer.body["error"]["details"]["order_id"].as_str() {
                visitor.with(|s| {
                    s.pending_order = Some(order.to_owned());
                    s.cart_id = None;
                });
            }
            let key = format!("payment.{}", answer.code());
            let text = match message(&key, &[]) {
                unknown if unknown == key => answer.message().to_owned(),
                known => known,
            };
            checkout_page(
                &web,
                &visitor,
                StatusCode::PAYMENT_REQUIRED,
                Some(text),
                BTreeMap::new(),
                Some(&form),
            )
            .await
        }
        StatusCode::BAD_REQUEST => {
            let fields = named_fields(&answer);
            let error = fields.is_empty().then(|| answer.message().to_owned());
            checkout_page(
                &web,
                &visitor,
                StatusCode::BAD_REQUEST,
                error,
                fields,
                Some(&form),
            )
            .await
        }
        StatusCode::SERVICE_UNAVAILABLE if answer.code() == "payment_provider_unavailable" => {
            // Recorded: the recovery worker finishes the payment, and the order page shows how it went.
            visitor.with(|s| {
                s.cart_id = None;
                s.cart_count = 0;
            });
            let order = answer.body["error"]["details"]["order_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            flash(&visitor, "info", answer.message().to_owned());
            see_other(&format!("/orders/{}", encode(&order)))
        }
        _ => {
            let text = answer.message().to_owned();
            checkout_page(
                &web,
                &visitor,
                answer.status,
                Some(text),
                BTreeMap::new(),
                Some(&form),
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Placed {
    placed: Option<String>,
}

pub async fn order(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Query(placed): Query<Placed>,
) -> Response {
    if visitor.with(|s| s.user.is_none()) {
        return see_other(&format!("/account/signin?next=/orders/{}", encode(&id)));
    }
    let order = web
        .get(&visitor, &format!("/api/orders/{}", encode(&id)))
        .await;
    if !order.ok() {
        return failed(&web, &visitor, &order);
    }
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "order.html",
        json!({"order": order.body, "placed": placed.placed.is_some()}),
    )
}

// ---------------------------------------------------------------- account

pub async fn account(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    if visitor.with(|s| s.user.is_none()) {
        return see_other("/account/signin?next=/account");
    }
    let orders = web.get(&visitor, "/api/orders?limit=50").await;
    if !orders.ok() {
        return failed(&web, &visitor, &orders);
    }
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "account.html",
        json!({"orders": orders.body["items"]}),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

pub async fn signin_page(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Query(next): Query<Next>,
) -> Response {
    let next = local_path(next.next.as_deref()).to_owned();
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "signin.html",
        json!({"next": next, "fields": {}, "form": {}}),
    )
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
    name: Option<String>,
    next: Option<String>,
}

/// Signs in through the API, handing it the anonymous cart's token so the
/// cart merges into the customer's, then takes up the customer's cart.
async fn sign_in(
    web: &WebState,
    visitor: &Visitor,
    email: &str,
    password: &str,
) -> Result<(), Answer> {
    let answer = web
        .call(
            visitor,
            Method::POST,
            "/api/users/login",
            Some(json!({"email": email, "password": password})),
        )
        .await;
    if !answer.ok() {
        return Err(answer);
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let user = &answer.body["user"];
    let signed_in = SignedIn {
        name: text(&user["name"]),
        email: text(&user["email"]),
        role: text(&user["role"]),
        access_token: text(&answer.body["access_token"]),
        refresh_token: text(&answer.body["refresh_token"]),
    };
    visitor.with(|s| {
        s.user = Some(signed_in);
        s.cart_token = None;
        s.cart_id = None;
        s.cart_count = 0;
    });
    // Staff have no cart to take up.
    if visitor.with(|s| s.user.as_ref().is_some_and(|u| !u.is_staff())) {
        let cart = web.call(visitor, Method::GET, "/api/cart", None).await;
        if cart.ok() && cart.body["status"] == "active" {
            remember_cart(visitor, &cart.body);
        }
    }
    Ok(())
}

fn signed_in_response(web: &WebState, visitor: &Visitor, next: &str) -> Response {
    let mut response = see_other(next);
    // A new session id at sign-in: an id planted before it (session fixation) is worth nothing after.
    if let Ok(cookie) = HeaderValue::from_str(&web.rotate(visitor)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn signin_form(
    web: &WebState,
    visitor: &Visitor,
    status: StatusCode,
    form: &Credentials,
    register: bool,
    error: Option<String>,
    fields: Value,
) -> Response {
    let next = local_path(form.next.as_deref()).to_owned();
    render(
        web,
        visitor,
        status,
        "signin.html",
        json!({"next": next, "register": register, "error": error, "fields": fields, "form": {"email": form.email, "name": form.name}}),
    )
}

pub async fn signin(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<Credentials>,
) -> Response {
    match sign_in(&web, &visitor, form.email.trim(), &form.password).await {
        Ok(()) => signed_in_response(&web, &visitor, local_path(form.next.as_deref())),
        Err(answer) if answer.status == StatusCode::UNAUTHORIZED => signin_form(
            &web,
            &visitor,
            StatusCode::UNAUTHORIZED,
            &form,
            false,
            Some(message("account.wrong_password", &[])),
            json!({}),
        ),
        Err(answer) => {
            let text = answer.message().to_owned();
            signin_form(
                &web,
                &visitor,
                answer.status,
                &form,
                false,
                Some(text),
                json!({}),
            )
        }
    }
}

pub async fn register(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<Credentials>,
) -> Response {
    let body = json!({"email": form.email.trim(), "password": form.password, "name": form.name.as_deref().unwrap_or("").trim()});
    let created = web
        .call(&visitor, Method::POST, "/api/users/register", Some(body))
        .await;
    if !created.ok() {
        let fields = created.body["error"]["details"]["fields"].clone();
        let error = fields.is_null().then(|| created.message().to_owned());
        let status = if created.status.is_server_error() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            created.status
        };
        return signin_form(&web, &visitor, status, &form, true, error, fields);
    }
    match sign_in(&web, &visitor, form.email.trim(), &form.password).await {
        Ok(()) => signed_in_response(&web, &visitor, local_path(form.next.as_deref())),
        Err(answer) => failed(&web, &visitor, &answer),
    }
}

pub async fn signout(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    if visitor.with(|s| s.user.is_some()) {
        let answer = web
            .call(&visitor, Method::POST, "/api/users/logout", Some(json!({})))
            .await;
        if !answer.ok() {
            tracing::debug!(status = %answer.status, "signing out: the API session had already ended");
        }
    }
    let cookie = web.rotate(&visitor);
    visitor.with(|s| {
        s.user = None;
        s.cart_id = None;
        s.cart_token = None;
        s.pending_order = None;
        s.cart_count = 0;
    });
    let mut response = see_other("/");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(local_path(Some("/checkout")), "/checkout");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn quantities_are_whole_and_bounded() {
        assert_eq!(quantity(None, 1), Ok(1));
        assert_eq!(quantity(Some(" 3 "), 1), Ok(3));
        assert!(quantity(Some("-1"), 1).is_err());
        assert!(quantity(Some("two"), 1).is_err());
        assert!(quantity(Some("1000"), 1).is_err());
    }

    #[test]
    fn filters_turn_typed_prices_into_minor_units() {
        let filters = Filters {
            min_price: Some("10".into()),
            max_price: Some("19.99".into()),
            in_stock: Some("true".into()),
            page: Some(2),
            ..Filters::default()
        };
        let query = filters.api_query(Currency::USD).expect("valid");
        assert!(query.contains(&("min_price", "1000".to_owned())));
        assert!(query.contains(&("max_price", "1999".to_owned())));
        assert!(query.contains(&("offset", "24".to_owned())));
        let bad = Filters {
            min_price: Some("ten".into()),
            ..Filters::default()
        };
        assert!(bad.api_query(Currency::USD).is_err());
    }
}
