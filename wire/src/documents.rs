//! Documents of an order: its invoice and its packing slip, rendered from
//! templates the shop may edit (`/api/documents/templates/{kind}`).
//!
//! An invoice has a number from one gapless sequence per shop, given the
//! first time the invoice of an order that took money is asked for, and
//! never changed after.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;

string_enum!(
    /// Which document a template renders.
    DocumentKind, "document kind" {
        Invoice => "invoice",
        PackingSlip => "packing_slip",
    }
);

string_enum!(
    /// How a document is sent: the template's HTML, or a PDF of the same figures.
    DocumentFormat, "document format" {
        Html => "html",
        Pdf => "pdf",
    }
);

/// The template a document is rendered from: the shop's own, or the built-in one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentTemplate {
    pub kind: DocumentKind,
    /// A minijinja (Jinja2) template of a whole HTML page; variables are HTML-escaped.
    pub html: String,
    /// False while the built-in template is in use.
    pub customized: bool,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<OffsetDateTime>,
}

/// `PUT /api/documents/templates/{kind}`: the shop's own template for a document.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DocumentTemplateRequest {
    /// At most 256 KiB; it must render an invoice of a sample order.
    pub html: String,
}

/// An issued invoice: its number is the order's for good.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvoiceRecord {
    /// The configured prefix and the sequence, e.g. `INV-000042`.
    pub number: String,
    /// The position in the shop's sequence, from 1, without gaps.
    pub sequence: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}
