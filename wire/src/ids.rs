//! Prefixed, time-sortable identifiers (`usr_01JD...`).
//!
//! Each id is a type of its own, so a function that takes a [`UserId`] cannot be
//! handed a session id. The body is a ULID in Crockford base32: ids sort by
//! creation time, which keeps list pages and database indexes in order.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

/// The error for a string that is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId {
    pub expected_prefix: &'static str,
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected an id of the form {}_<26 base32 characters>",
            self.expected_prefix
        )
    }
}

impl std::error::Error for InvalidId {}

/// The next ULID of this process: later than every one before it, even
/// within one millisecond (a plain `Ulid::new()` is random there), so that
/// rows created in one batch list, page and export in creation order.
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
    // Fails only after 2^80 ids in one millisecond; a fresh random one is then as good as any.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        /// The prefix and a ULID, 26 Crockford base32 characters in either
        /// case, as `from_str` parses it.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")))
                    .examples([serde_json::json!(concat!($prefix, "_01JDQ6Z5R3K8V2N4M7P9T0W1XY"))])
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, ordered after every id made before it in this process.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, next_ulid()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let body = s
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or(InvalidId { expected_prefix: $prefix })?;
                ulid::Ulid::from_string(body).map_err(|_| InvalidId { expected_prefix: $prefix })?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A user account (`usr_`).
    UserId,
    "usr"
);
prefixed_id!(
    /// A login session, the unit that logout and revocation act on (`ses_`).
    SessionId,
    "ses"
);

prefixed_id!(
    /// A notification (`ntf_`).
    NotificationId,
    "ntf"
);

prefixed_id!(
    /// A catalog product (`prd_`).
    ProductId,
    "prd"
);

prefixed_id!(
    /// A hold on stock for a cart or an order (`res_`).
    ReservationId,
    "res"
);

prefixed_id!(
    /// A shopping cart, a user's or an anonymous visitor's (`crt_`).
    CartId,
    "crt"
);

prefixed_id!(
    /// An order (`ord_`); people use its number (`ORD-001042`) instead.
    OrderId,
    "ord"
);

prefixed_id!(
    /// One shipment of (some of) an order's lines (`ful_`).
    FulfillmentId,
    "ful"
);

prefixed_id!(
    /// A return of shipped units of an order (`ret_`).
    ReturnId,
    "ret"
);

prefixed_id!(
    /// One attempt to take a payment for an order (`pay_`).
    PaymentId,
    "pay"
);

prefixed_id!(
    /// A refund of (part of) a payment (`ref_`).
    RefundId,
    "ref"
);

prefixed_id!(
    /// An API key (`key_`); its secret is `shop_sk_...`.
    KeyId,
    "key"
);

prefixed_id!(
    /// An outbound webhook endpoint (`whk_`).
    WebhookId,
    "whk"
);

prefixed_id!(
    /// One event's delivery to one webhook endpoint (`msg_`): the
    /// `webhook-id` header, the same on every retry and replay of it, as
    /// Standard Webhooks calls a message id.
    WebhookDeliveryId,
    "msg"
);

prefixed_id!(
    /// A shipping zone: countries shipped to alike (`shz_`).
    ShippingZoneId,
    "shz"
);

prefixed_id!(
    /// A tax rate of a country or one of its regions (`txr_`).
    TaxRateId,
    "txr"
);

prefixed_id!(
    /// A discount code or automatic promotion (`dsc_`).
    DiscountId,
    "dsc"
);

prefixed_id!(
    /// An address of a customer's address book (`adr_`).
    AddressId,
    "adr"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_sort_by_time() {
        let first = UserId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = UserId::generate();
        assert!(first < second);
        assert_eq!(first.as_str().parse::<UserId>(), Ok(first.clone()));
        assert_eq!(first.as_str().len(), 4 + 26);
    }

    #[test]
    fn ids_made_in_the_same_millisecond_still_sort_in_creation_order() {
        let ids: Vec<UserId> = (0..1000).map(|_| UserId::generate()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn rejects_other_prefixes_and_garbage() {
        let session = SessionId::generate();
        assert!(session.as_str().parse::<UserId>().is_err());
        assert!("usr_not-a-ulid".parse::<UserId>().is_err());
        assert!("".parse::<UserId>().is_err());
        let err = serde_json::from_str::<UserId>("\"prd_01JDQ6Z5R3K8V2N4M7P9T0W1XY\"").unwrap_err();
        assert!(err.to_string().contains("usr_"));
    }
}
