//! Invoices and the shop's document templates.

use async_trait::async_trait;
use shop_wire::documents::{DocumentKind, DocumentTemplate, InvoiceRecord};
use shop_wire::orders::OrderId;

use super::{AuditChange, NewEvent, StoreResult};

/// What issuing an order's invoice needs.
pub struct InvoiceIssue {
    pub order_id: OrderId,
    /// Written in front of the sequence into the number (`INV-`); a later
    /// prefix never changes a number already issued.
    pub prefix: String,
    /// The `invoice.issued` event of the invoice, once it has its number;
    /// called again when a backend retries the issue's transaction.
    pub event: Box<dyn Fn(&InvoiceRecord) -> NewEvent + Send + Sync>,
}

#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// The invoice of the order, issuing it first when it has none: the
    /// next number of the shop's one sequence, with its event and audit
    /// entry. However many ask at once, for one order or for many, each
    /// order gets one number and the sequence has no gap and no repeat (a
    /// call that fails issues nothing). The flag says whether this call
    /// issued it.
    async fn issue_invoice(&self, issue: InvoiceIssue) -> StoreResult<(InvoiceRecord, bool)>;
    /// The shop's own template for a document, if it saved one.
    async fn document_template(&self, kind: DocumentKind) -> StoreResult<Option<DocumentTemplate>>;
    /// Saves the shop's own template for a document (audited), replacing any before it.
    async fn save_document_template(
        &self,
        kind: DocumentKind,
        html: String,
    ) -> StoreResult<DocumentTemplate>;
    /// Drops the shop's own template (audited), so the built-in one serves
    /// again; false when there was none.
    async fn reset_document_template(&self, kind: DocumentKind) -> StoreResult<bool>;
}

/// The audit entry of an order's invoice just issued.
pub(crate) fn invoice_issued(order_id: &OrderId, invoice: &InvoiceRecord) -> AuditChange {
    AuditChange::diff(
        "invoice.issued",
        "invoice",
        invoice.number.clone(),
        serde_json::Value::Null,
        serde_json::json!({
            "order_id": order_id.as_str(),
            "number": invoice.number,
            "sequence": invoice.sequence,
        }),
    )
}

/// The audit entry of a template `action` (`document_template.saved`,
/// `.reset`) changed from the `before` HTML to the `after` (none: the
/// built-in one).
pub(crate) fn template_change(
    action: &str,
    kind: DocumentKind,
    before: Option<&str>,
    after: Option<&str>,
) -> AuditChange {
    let audited = |html: Option<&str>| {
        html.map_or(
            serde_json::Value::Null,
            |html| serde_json::json!({ "html": html }),
        )
    };
    AuditChange::diff(
        action,
        "document_template",
        kind.as_str(),
        audited(before),
        audited(after),
    )
}
