//! Storefront sessions: a random id in an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` under TLS) naming server-side state (the visitor's API tokens,
//! cart and CSRF token), and the CSRF check every form post passes through.
//!
//! Sessions live in memory, idle-expiring after the login session's
//! lifetime: a restart signs visitors out and forgets anonymous carts (their
//! stock holds expire as any abandoned cart's do).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Form, FromRequest, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use crate::gateway::ClientAddr;
use crate::web::{WebState, pages};

pub const COOKIE: &str = "shop_session";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Storefront forms are a few fields; anything larger is not one of ours.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The signed-in customer as the API described them at sign-in.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SignedIn {
    pub name: String,
    pub email: String,
    pub role: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl SignedIn {
    pub fn is_staff(&self) -> bool {
        matches!(self.role.as_str(), "staff" | "admin")
    }
}

#[derive(Debug, Default)]
pub struct SessionData {
    pub csrf: String,
    pub user: Option<SignedIn>,
    /// The visitor's cart and, while anonymous, the token that proves it is theirs.
    pub cart_id: Option<String>,
    pub cart_token: Option<String>,
    /// An order whose payment was declined: it holds the cart's items until paid.
    pub pending_order: Option<String>,
    /// Items in the cart as last seen, for the header.
    pub cart_count: i64,
    /// A note for the next page shown (`{kind, text}`), e.g. "added to your cart".
    pub flash: Option<serde_json::Value>,
}

pub type Session = Arc<Mutex<SessionData>>;

/// The current visitor: their session and address, put in each request's extensions.
#[derive(Clone)]
pub struct Visitor {
    /// The cookie's id for this session, replaced at sign-in and sign-out.
    pub id: Arc<Mutex<String>>,
    pub session: Session,
    pub addr: ClientAddr,
}

impl Visitor {
    pub fn with<T>(&self, f: impl FnOnce(&mut SessionData) -> T) -> T {
        let mut data = self.session.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut data)
    }
}

pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cookie_value(request: &Request) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Loads or starts the visitor's session, refuses a form post whose CSRF
/// token is not the session's, and sets the cookie on a new session.
pub async fn middleware(State(web): State<WebState>, request: Request, next: Next) -> Response {
    let addr = request
        .extensions()
        .get::<axum::extract::ConnectInfo<ClientAddr>>()
        .map(|info| info.0)
        .unwrap_or(ClientAddr(std::net::SocketAddr::from(([127, 0, 0, 1], 0))));
    let known = cookie_value(&request).and_then(|id| web.sessions.get(&id).map(|s| (id, s)));
    let (id, session, fresh) = match known {
        Some((id, session)) => (id, session, false),
        None => {
            let id = random_token();
            let session = Arc::new(Mutex::new(SessionData {
                csrf: random_token(),
                ..SessionData::default()
            }));
            (id, session, true)
        }
    };
    let visitor = Visitor {
        id: Arc::new(Mutex::new(id.clone())),
        session,
        addr,
    };
    let mut request = request;
    if request.method() == Method::POST {
        match check_csrf(&web, &visitor, request).await {
            Ok(checked) => request = checked,
            Err(refused) => return refused,
        }
    }
    request.extensions_mut().insert(visitor.clone());
    let mut response = next.run(request).await;
    let rotated = visitor
        .id
        .lock()
        .map(|current| *current != id)
        .unwrap_or(false);
    if fresh && !rotated {
        web.sessions.insert(id.clone(), visitor.session.clone());
        if let Ok(value) = HeaderValue::from_str(&web.cookie(&id)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

impl WebState {
    fn cookie(&self, id: &str) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            self.session_ttl_seconds
        )
    }

    /// Moves the visitor's session to a new id and form token, forgets the
    /// old id, and returns the cookie that names the new one.
    pub fn rotate(&self, visitor: &Visitor) -> String {
        let new_id = random_token();
        let old_id = {
            let mut current = visitor.id.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *current, new_id.clone())
        };
        self.sessions.invalidate(&old_id);
        visitor.with(|s| s.csrf = random_token());
        self.sessions
            .insert(new_id.clone(), visitor.session.clone());
        self.cookie(&new_id)
    }
}

/// Reads the form body, checks its CSRF field against the session's, and
/// hands the request on with the same body.
async fn check_csrf(
    web: &WebState,
    visitor: &Visitor,
    request: Request,
) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| pages::refused(web, visitor, "errors.form_too_large"))?;
    let probe = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    let fields: Vec<(String, String)> = match Form::from_request(probe, &()).await {
        Ok(Form(fields)) => fields,
        Err(rejection) => return Err(rejection.into_response()),
    };
    let expected = visitor.with(|s| s.csrf.clone());
    let given = fields
        .iter()
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.as_str());
    match given {
        Some(token) if same_token(token, &expected) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(pages::refused(web, visitor, "errors.csrf")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_every_byte() {
        let token = random_token();
        assert_eq!(token.len(), 64);
        assert!(same_token(&token, &token.clone()));
        assert!(!same_token(&token, &random_token()));
        assert!(!same_token(&token, &token[1..]));
        assert!(!same_token("", "a"));
    }
}
