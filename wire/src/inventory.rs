//! Inventory: stock per SKU, its movement ledger, and reservations.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;
pub use crate::ids::ReservationId;

/// `GET /api/inventory/{sku}`. `available` = `on_hand` - `reserved`, never below 0.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stock {
    pub sku: String,
    /// The product's name, for people (none once the product is deleted).
    #[serde(default)]
    pub name: Option<String>,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// At or below this many available, the SKU is low on stock.
    pub low_stock_threshold: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Stock {
    pub fn is_low(&self) -> bool {
        self.available <= self.low_stock_threshold
    }
}

/// `PUT /api/inventory/{sku}`: sets the count on hand (a stocktake).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub on_hand: i64,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 500,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub low_stock_threshold: Option<i64>,
}

/// `POST /api/inventory/{sku}/adjustments`: adds to or takes from the count on hand.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdjustStock {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::nonzero_stock_delta))]
    pub delta: i64,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 500,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub reason: String,
}

string_enum!(
    /// What changed a SKU's stock.
    MovementKind, "movement kind" {
        Set => "set",
        Adjust => "adjust",
        Reserve => "reserve",
        Release => "release",
        Commit => "commit",
        Expire => "expire",
        Reconcile => "reconcile",
    }
);

/// One entry of the stock ledger: who changed what, when, why, from and to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Movement {
    pub id: u64,
    pub sku: String,
    pub kind: MovementKind,
    pub on_hand_before: i64,
    pub on_hand_after: i64,
    pub reserved_before: i64,
    pub reserved_after: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The email of the user who made the change; none for the system (the sweeper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The reservation, or the reservation's reference, the movement belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

string_enum!(
    /// `active` holds stock; `committed` turned it into a sale; `released` and
    /// `expired` gave it back.
    ReservationStatus, "reservation status" {
        Active => "active",
        Committed => "committed",
        Released => "released",
        Expired => "expired",
    }
);

/// `POST /api/inventory/{sku}/reservations`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub quantity: i64,
    /// How long the hold lasts unless committed or released (default 900; at
    /// most `max_reservation_ttl_seconds`, a week unless configured otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604_800))]
    pub ttl_seconds: Option<u64>,
    /// What the hold is for, e.g. a cart or order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = r"^[\s\S]*\S[\s\S]*$")
    )]
    pub reference: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reservation {
    pub id: ReservationId,
    pub sku: String,
    pub quantity: i64,
    pub status: ReservationStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One broken invariant found by `POST /api/inventory/reconcile`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drift {
    pub sku: String,
    /// `reserved_matches_reservations` (reserved equals the sum of active
    /// reservations) or `ledger_matches_on_hand` (the latest ledger entry ends
    /// at the count on hand). Negative stock and over-reservation cannot be
    /// stored at all: the schema refuses them.
    pub check: String,
    pub expected: i64,
    pub found: i64,
    pub fixed: bool,
}

/// `POST /api/inventory/reconcile` `{"fix": bool}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconcileRequest {
    #[serde(default)]
    pub fix: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconcileReport {
    /// True when no drift was found (before any fix).
    pub consistent: bool,
    pub skus_checked: u64,
    pub reservations_checked: u64,
    pub drift: Vec<Drift>,
}
