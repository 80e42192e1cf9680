//! The services behind the gateway, one module each, plus the cross-cutting
//! routes every service shares (health, events).

pub mod events;
pub mod health;
pub mod notifications;
pub mod users;

/// The eight services of SPEC section 2, by the name in their base path
/// `/api/<name>`; metrics and health are labelled with these.
pub const NAMES: [&str; 8] = [
    "users",
    "products",
    "search",
    "cart",
    "inventory",
    "orders",
    "payments",
    "notifications",
];
