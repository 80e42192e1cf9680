//! The fixtures document that `shop fixtures load` and `shop serve --demo` read.

use serde::{Deserialize, Serialize};

use crate::products::ProductRequest;
use crate::users::Role;

/// A whole sample shop: users, then products with their stock.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    #[serde(default)]
    pub users: Vec<FixtureUser>,
    #[serde(default)]
    pub products: Vec<ProductRequest>,
}

/// A user to create. Without a password one is generated and not shown: the
/// account exists (for orders and notifications) but nobody can log in as it
/// until a password is set.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixtureUser {
    pub email: String,
    pub name: String,
    #[serde(default = "customer")]
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn customer() -> Role {
    Role::Customer
}
