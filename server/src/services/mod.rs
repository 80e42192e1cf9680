//! The services behind the gateway, one module each, plus the cross-cutting
//! routes every service shares (health, events).

pub mod events;
pub mod health;
pub mod users;
