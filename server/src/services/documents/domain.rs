//! Documents of orders: issuing invoices, rendering them and packing slips,
//! and the shop's own templates for both.

use serde_json::json;
use shop_wire::documents::{DocumentFormat, DocumentKind, DocumentTemplate, InvoiceRecord};
use shop_wire::events::{EventData, InvoiceEvent};
use shop_wire::orders::Order;

use super::rules::{self, DocumentRefusal, Seller};
use super::{pdf, templates};
use crate::auth::AuthUser;
use crate::services::error::{DomainError, DomainResult};
use crate::services::notifications::templates::TemplateError;
use crate::services::orders;
use crate::state::AppState;
use crate::store::{InvoiceIssue, NewEvent};

/// A rendered document, ready to send.
pub struct Document {
    pub body: Vec<u8>,
    pub format: DocumentFormat,
    /// `invoice-INV-000042.pdf`, for a download's name.
    pub filename: String,
}

fn refused(refusal: DocumentRefusal, order: &Order) -> DomainError {
    match refusal {
        DocumentRefusal::NotInvoiceable(status) => DomainError::conflict(
            "not_invoiceable",
            format!(
                "order {} is {status}: an invoice is issued once money was taken for an order",
                order.number
            ),
        ),
    }
}

fn seller(state: &AppState) -> Seller {
    let documents = &state.config.documents;
    Seller {
        name: state.config.storefront.name.clone(),
        address: documents.seller_address.clone(),
        tax_id: documents.tax_id.clone(),
        email: documents.email.clone(),
    }
}

/// The `invoice.issued` event of an order's invoice.
pub fn invoice_event(order: &Order, invoice: &InvoiceRecord) -> NewEvent {
    NewEvent::now(EventData::InvoiceIssued(InvoiceEvent {
        order_id: order.id.clone(),
        order_number: order.number.clone(),
        customer_email: order.customer_email.clone(),
        number: invoice.number.clone(),
        sequence: invoice.sequence,
        currency: order.currency,
        total_cents: order.total_cents,
        issued_at: invoice.issued_at,
    }))
}

/// The invoice of an order the caller may see, issuing its number the
/// first time it is asked for.
pub async fn invoice(
    state: &AppState,
    caller: &AuthUser,
    key: &str,
    format: DocumentFormat,
) -> DomainResult<Document> {
    let order = orders::domain::get(state, caller, key).await?;
    rules::invoiceable(&order).map_err(|refusal| refused(refusal, &order))?;
    let for_event = order.clone();
    let (invoice, issued) = state
        .store
        .issue_invoice(InvoiceIssue {
            order_id: order.id.clone(),
            prefix: state.config.documents.invoice_prefix.clone(),
            event: Box::new(move |invoice| invoice_event(&for_event, invoice)),
        })
        .await?;
    if issued {
        tracing::info!(order = %order.number, invoice = %invoice.number, "invoice issued");
    }
    let filename = rules::file_stem("invoice", &invoice.number);
    render(
        state,
        DocumentKind::Invoice,
        &order,
        Some(&invoice),
        format,
        filename,
    )
    .await
}

/// The packing slip of an order: what is left to pack, and where it goes.
pub async fn packing_slip(
    state: &AppState,
    caller: &AuthUser,
    key: &str,
    format: DocumentFormat,
) -> DomainResult<Document> {
    let order = orders::domain::get(state, caller, key).await?;
    let filename = rules::file_stem("packing-slip", &order.number);
    render(
        state,
        DocumentKind::PackingSlip,
        &order,
        None,
        format,
        filename,
    )
    .await
}

async fn render(
    state: &AppState,
    kind: DocumentKind,
    order: &Order,
    invoice: Option<&InvoiceRecord>,
    format: DocumentFormat,
    filename: String,
) -> DomainResult<Document> {
    let context = rules::context(kind, seller(state), order, invoice);
    let body = match format {
        DocumentFormat::Html => {
            let template = template(state, kind).await?;
            templates::render(&template.html, &context)
                .map_err(|err| DomainError::Conflict {
                    code: "document_template_failed",
                    message: format!(
                        "the shop's {kind} template does not render order {}: {err}; \
                             fix it, or reset it to the built-in one",
                        order.number
                    ),
                    details: json!({ "line": err.line }),
                })?
                .into_bytes()
        }
        DocumentFormat::Pdf => pdf::render(&context),
    };
    Ok(Document {
        body,
        format,
        filename: format!("{filename}.{}", format.as_str()),
    })
}

/// The template a document renders from: the shop's own, or the built-in one.
pub async fn template(state: &AppState, kind: DocumentKind) -> DomainResult<DocumentTemplate> {
    Ok(state
        .store
        .document_template(kind)
        .await?
        .unwrap_or_else(|| DocumentTemplate {
            kind,
            html: templates::builtin(kind).to_owned(),
            customized: false,
            updated_at: None,
        }))
}

pub async fn templates(state: &AppState) -> DomainResult<Vec<DocumentTemplate>> {
    let mut all = Vec::with_capacity(DocumentKind::ALL.len());
    for kind in DocumentKind::ALL {
        all.push(template(state, *kind).await?);
    }
    Ok(all)
}

fn invalid_template(err: TemplateError) -> DomainError {
    DomainError::Validation {
        message: format!("the template does not render: {err}"),
        fields: json!({ err.part: err.message }),
    }
}

/// Saves the shop's own template once it renders a sample order.
pub async fn save_template(
    state: &AppState,
    kind: DocumentKind,
    html: String,
) -> DomainResult<DocumentTemplate> {
    templates::check(kind, &html).map_err(invalid_template)?;
    Ok(state.store.save_document_template(kind, html).await?)
}

/// Goes back to the built-in template; answers the template now in use.
pub async fn reset_template(
    state: &AppState,
    kind: DocumentKind,
) -> DomainResult<DocumentTemplate> {
    state.store.reset_document_template(kind).await?;
    template(state, kind).await
}

/// A document kind named in a path: `invoice` or `packing_slip` (or `packing-slip`).
pub fn kind(raw: &str) -> DomainResult<DocumentKind> {
    raw.replace('-', "_").parse().map_err(|_| {
        DomainError::not_found(format!(
            "document kind `{raw}` (known: invoice, packing_slip)"
        ))
    })
}
