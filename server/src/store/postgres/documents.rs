//! Invoices and document templates in PostgreSQL.
//!
//! Writers run at once here, so an invoice cannot take `max + 1` as on
//! SQLite: two issues would read the same highest number. The next number
//! comes from the one row of `invoice_counter`, locked and incremented in
//! the issue's transaction, which queues racing issues behind it and rolls
//! back with it (a sequence would leave a hole for every rolled-back issue).

use async_trait::async_trait;
use shop_wire::documents::{DocumentKind, DocumentTemplate, InvoiceRecord};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{PgStore, audit};
use crate::services::documents::rules::invoice_number;
use crate::store::{
    DocumentStore, InvoiceIssue, NewEvent, StoreResult, invoice_issued, now, template_change,
};

fn invoice_row(row: &PgRow) -> StoreResult<InvoiceRecord> {
    Ok(InvoiceRecord {
        number: row.try_get("number")?,
        sequence: row.try_get("sequence")?,
        issued_at: row.try_get("issued_at")?,
    })
}

fn template_row(kind: DocumentKind, row: &PgRow) -> StoreResult<DocumentTemplate> {
    Ok(DocumentTemplate {
        kind,
        html: row.try_get("html")?,
        customized: true,
        updated_at: Some(row.try_get("updated_at")?),
    })
}

async fn find_invoice(conn: &mut PgConnection, order: &str) -> StoreResult<Option<InvoiceRecord>> {
    sqlx::query("SELECT number, sequence, issued_at FROM invoices WHERE order_id = $1")
        .bind(order)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(invoice_row)
        .transpose()
}

async fn issue(
    tx: &mut PgConnection,
    issue: &InvoiceIssue,
) -> StoreResult<((InvoiceRecord, bool), Vec<NewEvent>)> {
    let order_id = issue.order_id.as_str();
    // Most asks find the invoice issued already, and need no lock.
    if let Some(issued) = find_invoice(tx, order_id).await? {
        return Ok(((issued, false), Vec::new()));
    }
    // The counter's row lock queues racing issues. One that waited looks
    // again once it holds the lock, and finds the invoice a racing issue
    // of the same order committed meanwhile.
    let last: i64 = sqlx::query_scalar("SELECT last_sequence FROM invoice_counter FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    if let Some(issued) = find_invoice(tx, order_id).await? {
        return Ok(((issued, false), Vec::new()));
    }
    let sequence = last + 1;
    sqlx::query("UPDATE invoice_counter SET last_sequence = $1")
        .bind(sequence)
        .execute(&mut *tx)
        .await?;
    let invoice = InvoiceRecord {
        number: invoice_number(&issue.prefix, sequence),
        sequence,
        issued_at: now(),
    };
    sqlx::query(
        "INSERT INTO invoices (order_id, sequence, number, issued_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(order_id)
    .bind(invoice.sequence)
    .bind(&invoice.number)
    .bind(invoice.issued_at)
    .execute(&mut *tx)
    .await?;
    audit::record(tx, [invoice_issued(&issue.order_id, &invoice)]).await?;
    let event = (issue.event)(&invoice);
    Ok(((invoice, true), vec![event]))
}

#[async_trait]
impl DocumentStore for PgStore {
    async fn issue_invoice(&self, request: InvoiceIssue) -> StoreResult<(InvoiceRecord, bool)> {
        // Shared by the attempts of a retried transaction.
        let request = std::sync::Arc::new(request);
        let (issued, _) = self
            .write(move |tx| {
                let request = request.clone();
                Box::pin(async move { issue(tx, &request).await })
            })
            .await?;
        Ok(issued)
    }

    async fn document_template(&self, kind: DocumentKind) -> StoreResult<Option<DocumentTemplate>> {
        sqlx::query("SELECT html, updated_at FROM document_templates WHERE kind = $1")
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| template_row(kind, &row))
            .transpose()
    }

    async fn save_document_template(
        &self,
        kind: DocumentKind,
        html: String,
    ) -> StoreResult<DocumentTemplate> {
        let (saved, _) = self
            .write(move |tx| {
                let html = html.clone();
                Box::pin(async move {
                    // Locks a saved template, so racing saves audit what
                    // each replaced.
                    let before: Option<String> = sqlx::query_scalar(
                        "SELECT html FROM document_templates WHERE kind = $1 FOR UPDATE",
                    )
                    .bind(kind.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let row = sqlx::query(
                        "INSERT INTO document_templates (kind, html, updated_at) VALUES ($1, $2, $3)
                         ON CONFLICT (kind) DO UPDATE
                             SET html = excluded.html, updated_at = excluded.updated_at
                         RETURNING html, updated_at",
                    )
                    .bind(kind.as_str())
                    .bind(&html)
                    .bind(now())
                    .fetch_one(&mut *tx)
                    .await?;
                    let saved = template_row(kind, &row)?;
                    let change = template_change(
                        "document_template.saved",
                        kind,
                        before.as_deref(),
                        Some(&saved.html),
                    );
                    audit::record(tx, [change]).await?;
                    Ok((saved, Vec::new()))
                })
            })
            .await?;
        Ok(saved)
    }

    async fn reset_document_template(&self, kind: DocumentKind) -> StoreResult<bool> {
        let (reset, _) = self
            .write(move |tx| {
                Box::pin(async move {
                    let before: Option<String> = sqlx::query_scalar(
                        "DELETE FROM document_templates WHERE kind = $1 RETURNING html",
                    )
                    .bind(kind.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let change =
                        template_change("document_template.reset", kind, before.as_deref(), None);
                    audit::record(tx, [change]).await?;
                    Ok((before.is_some(), Vec::new()))
                })
            })
            .await?;
        Ok(reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing;

    #[tokio::test]
    async fn a_saved_template_serves_until_it_is_reset() {
        let (_database, store) = testing::open().await;
        let kind = DocumentKind::Invoice;
        assert!(store.document_template(kind).await.expect("read").is_none());
        store
            .save_document_template(kind, "<p>one</p>".to_owned())
            .await
            .expect("save");
        let saved = store
            .save_document_template(kind, "<p>two</p>".to_owned())
            .await
            .expect("save again");
        assert_eq!(
            (saved.html.as_str(), saved.customized),
            ("<p>two</p>", true)
        );
        let read = store.document_template(kind).await.expect("read");
        assert_eq!(read.map(|t| t.html).as_deref(), Some("<p>two</p>"));
        assert!(
            store
                .document_template(DocumentKind::PackingSlip)
                .await
                .expect("read")
                .is_none()
        );
        assert!(store.reset_document_template(kind).await.expect("reset"));
        assert!(
            !store
                .reset_document_template(kind)
                .await
                .expect("reset again")
        );
        assert!(store.document_template(kind).await.expect("read").is_none());
    }
}
