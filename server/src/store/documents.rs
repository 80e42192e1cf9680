//! Invoices and the shop's document templates.

use async_trait::async_trait;
use shop_wire::documents::{DocumentKind, DocumentTemplate, InvoiceRecord};
use shop_wire::orders::OrderId;

use super::{NewEvent, StoreResult};

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
