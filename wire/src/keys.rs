//! API keys: long-lived, scoped credentials for other systems.
//!
//! A key's secret (`shop_sk_...`) is sent as `Authorization: Bearer`, like
//! an access token. A key carries scopes `RESOURCE:read|write`; a write
//! scope implies read of the same resource.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{KeyId, UserId};

/// What every key secret starts with, so a bearer is told apart from a JWT
/// without trying to decode it, and secret scanners can find leaked keys.
pub const SECRET_PREFIX: &str = "shop_sk_";

/// Whether a bearer credential is an API key rather than an access token.
pub fn is_key_secret(token: &str) -> bool {
    token.starts_with(SECRET_PREFIX)
}

macro_rules! resources {
    ($($variant:ident = $name:literal,)+) => {
        /// What a scope grants access to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Resource {
            $($variant,)+
        }

        impl Resource {
            pub const ALL: &'static [Resource] = &[$(Resource::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Resource::$variant => $name,)+
                }
            }
        }
    };
}

resources! {
    Products = "products",
    Inventory = "inventory",
    Orders = "orders",
    Payments = "payments",
    Customers = "customers",
    Notifications = "notifications",
    Webhooks = "webhooks",
    Reports = "reports",
}

/// Read, or read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One scope, `RESOURCE:read|write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub resource: Resource,
    pub access: Access,
}

impl Scope {
    pub const fn new(resource: Resource, access: Access) -> Self {
        Scope { resource, access }
    }

    /// Whether holding `self` allows what `needed` names: the same resource,
    /// and write where write is needed (write implies read).
    pub fn grants(self, needed: Scope) -> bool {
        self.resource == needed.resource
            && (self.access == Access::Write || needed.access == Access::Read)
    }

    /// Every scope there is, in a stable order (for help text and errors).
    pub fn all() -> impl Iterator<Item = Scope> {
        Resource::ALL.iter().flat_map(|&resource| {
            [Access::Read, Access::Write]
                .into_iter()
                .map(move |access| Scope { resource, access })
        })
    }
}

/// Whether any of `held` grants `needed`.
pub fn granted(held: &[Scope], needed: Scope) -> bool {
    held.iter().any(|scope| scope.grants(needed))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource.as_str(), self.access.as_str())
    }
}

/// A scope that is not `RESOURCE:read|write` with a known resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScope(pub String);

impl fmt::Display for InvalidScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Resource::ALL.iter().map(|r| r.as_str()).collect();
        write!(
            f,
            "unknown scope {:?}: scopes are RESOURCE:read or RESOURCE:write, RESOURCE one of {}",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for InvalidScope {}

impl FromStr for Scope {
    type Err = InvalidScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidScope(s.to_owned());
        let (resource, access) = s.split_once(':').ok_or_else(invalid)?;
        let resource = Resource::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == resource)
            .ok_or_else(invalid)?;
        let access = match access {
            "read" => Access::Read,
            "write" => Access::Write,
            _ => return Err(invalid()),
        };
        Ok(Scope { resource, access })
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An API key as listed: never its secret.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: KeyId,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, example = json!(["products:read"])))]
    pub scopes: Vec<Scope>,
    /// The first characters of the secret, to recognise it (`shop_sk_ab12cd34`).
    pub prefix: String,
    /// The user who made it; the key never acts with more than their current role.
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Updated at most once a minute per key.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A key just made, with its secret: the only time the secret is shown.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// `shop_sk_...`: store it now; the server keeps only its hash.
    pub secret: String,
}

/// `POST /api/keys`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewKey {
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 100,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(min_items = 1, example = json!(["products:read", "orders:write"])))]
    pub scopes: Vec<Scope>,
    /// An RFC 3339 time in the future. The pattern keeps to strings shaped
    /// like times (`format` alone is an annotation that validators and
    /// fuzzers may ignore); a day the month lacks (02-30) still gets a 400.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"))]
    pub expires_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_write_implies_read() {
        let write: Scope = "orders:write".parse().expect("scope");
        let read: Scope = "orders:read".parse().expect("scope");
        assert_eq!(write.to_string(), "orders:write");
        assert!(write.grants(read));
        assert!(write.grants(write));
        assert!(!read.grants(write));
        assert!(!write.grants("products:read".parse().expect("scope")));
        for bad in ["orders", "orders:admin", "users:read", ":read", ""] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
        assert_eq!(Scope::all().count(), 16);
    }
}
