//! Payments: how an order is paid, each attempt's outcome, and refunds.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;
use crate::ids::OrderId;
pub use crate::ids::{PaymentId, RefundId};
use crate::money::Currency;

string_enum!(
    /// How a customer pays.
    MethodKind, "payment method" {
        Card => "card",
        ApplePay => "apple_pay",
        GooglePay => "google_pay",
        Paypal => "paypal",
        BankTransfer => "bank_transfer",
    }
);

impl MethodKind {
    pub fn is_wallet(self) -> bool {
        matches!(
            self,
            MethodKind::ApplePay | MethodKind::GooglePay | MethodKind::Paypal
        )
    }
}

/// The `payment` of a checkout or of `POST /api/orders/{id}/pay`: a card
/// (`card_number`, `exp_month`, `exp_year`, optional `cvc`), a wallet
/// (`token` from Apple Pay, Google Pay or PayPal), or `bank_transfer`
/// (pending until the transfer is settled).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    pub method: MethodKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_month: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl PaymentMethod {
    pub fn card(number: &str, exp_month: u32, exp_year: i32) -> Self {
        PaymentMethod {
            method: MethodKind::Card,
            card_number: Some(number.to_owned()),
            exp_month: Some(exp_month),
            exp_year: Some(exp_year),
            cvc: None,
            token: None,
        }
    }
}

/// Card numbers and secrets never reach a log: Debug shows the last four digits only.
impl std::fmt::Debug for PaymentMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last4 = self.card_number.as_deref().map(|n| {
            let digits: Vec<char> = n.chars().filter(char::is_ascii_digit).collect();
            let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("****{tail}")
        });
        f.debug_struct("PaymentMethod")
            .field("method", &self.method)
            .field("card_number", &last4)
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

string_enum!(
    /// `processing` while the provider is asked; `pending` for a bank
    /// transfer not yet settled; `refunded` once refunds reach the amount.
    PaymentStatus, "payment status" {
        Processing => "processing",
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
        Canceled => "canceled",
        Refunded => "refunded",
    }
);

string_enum!(
    RefundStatus, "refund status" {
        Processing => "processing",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refund {
    pub id: RefundId,
    pub payment_id: PaymentId,
    pub amount_cents: i64,
    pub currency: Currency,
    pub reason: Option<String>,
    pub status: RefundStatus,
    pub failure_message: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    /// The order's number (`ORD-001042`), which people use instead of its id.
    #[serde(default)]
    pub order_number: Option<String>,
    pub amount_cents: i64,
    /// The sum of succeeded refunds; never more than `amount_cents`.
    pub refunded_cents: i64,
    pub currency: Currency,
    pub method: MethodKind,
    pub status: PaymentStatus,
    /// `simulated` or `stripe`.
    pub provider: String,
    /// The provider's id for the charge (a PaymentIntent id for Stripe).
    pub provider_ref: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    /// Why it failed, e.g. `card_declined`, `insufficient_funds`.
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// Oldest first; only in single-payment answers, empty in lists.
    #[serde(default)]
    pub refunds: Vec<Refund>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST /api/payments/{id}/refunds` and `POST /api/orders/{id}/refund`:
/// refunds `amount_cents`, or all that is left when it is absent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Payment volume, success and refund rates, per currency and method.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentAnalytics {
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// succeeded / (succeeded + failed); 0 when nothing finished.
    pub success_rate: f64,
    /// Refunded amount / captured amount over all currencies' minor units; 0 when nothing was captured.
    pub refund_rate: f64,
    pub volume: Vec<CurrencyVolume>,
    pub by_method: Vec<MethodCount>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrencyVolume {
    pub currency: Currency,
    pub captured_cents: i64,
    pub refunded_cents: i64,
    pub payments: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MethodCount {
    pub method: MethodKind,
    pub attempts: u64,
    pub succeeded: u64,
}
