//! Invoices and document templates in SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use shop_wire::documents::{DocumentKind, DocumentTemplate, InvoiceRecord};

use super::{SqliteStore, append, audit, from_millis, millis};
use crate::store::{
    DocumentStore, InvoiceIssue, StoreResult, invoice_issued, now, template_change,
};

fn invoice_row(row: &Row<'_>) -> rusqlite::Result<InvoiceRecord> {
    Ok(InvoiceRecord {
        number: row.get("number")?,
        sequence: row.get("sequence")?,
        issued_at: from_millis(row.get("issued_at")?)?,
    })
}

fn template_row(kind: DocumentKind) -> impl Fn(&Row<'_>) -> rusqlite::Result<DocumentTemplate> {
    move |row| {
        Ok(DocumentTemplate {
            kind,
            html: row.get("html")?,
            customized: true,
            updated_at: Some(from_millis(row.get("updated_at")?)?),
        })
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn issue_invoice(&self, issue: InvoiceIssue) -> StoreResult<(InvoiceRecord, bool)> {
        self.write(move |tx| {
            let order_id = issue.order_id.as_str();
            let issued = tx
                .prepare_cached("SELECT * FROM invoices WHERE order_id = ?1")?
                .query_row([order_id], invoice_row)
                .optional()?;
            if let Some(issued) = issued {
                return Ok((issued, false));
            }
            // The one writer runs this whole transaction alone, so max + 1
            // is the next number and no other issue can take it meanwhile.
            let sequence: i64 = tx
                .prepare_cached("SELECT coalesce(max(sequence), 0) + 1 FROM invoices")?
                .query_row([], |row| row.get(0))?;
            let invoice = InvoiceRecord {
                number: crate::services::documents::rules::invoice_number(&issue.prefix, sequence),
                sequence,
                issued_at: now(),
            };
            tx.prepare_cached(
                "INSERT INTO invoices (order_id, sequence, number, issued_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                order_id,
                invoice.sequence,
                invoice.number,
                millis(invoice.issued_at)
            ])?;
            audit::record(tx, [invoice_issued(&issue.order_id, &invoice)])?;
            append(tx, vec![(issue.event)(&invoice)])?;
            Ok((invoice, true))
        })
        .await
    }

    async fn document_template(&self, kind: DocumentKind) -> StoreResult<Option<DocumentTemplate>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT html, updated_at FROM document_templates WHERE kind = ?1")?
                .query_row([kind.as_str()], template_row(kind))
                .optional()
        })
        .await
    }

    async fn save_document_template(
        &self,
        kind: DocumentKind,
        html: String,
    ) -> StoreResult<DocumentTemplate> {
        self.write(move |tx| {
            let before: Option<String> = tx
                .prepare_cached("SELECT html FROM document_templates WHERE kind = ?1")?
                .query_row([kind.as_str()], |row| row.get(0))
                .optional()?;
            let saved = tx
                .prepare_cached(
                    "INSERT INTO document_templates (kind, html, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (kind) DO UPDATE SET html = excluded.html, updated_at = excluded.updated_at
                     RETURNING html, updated_at",
                )?
                .query_row(
                    params![kind.as_str(), html, millis(now())],
                    template_row(kind),
                )?;
            audit::record(
                tx,
                [template_change(
                    "document_template.saved",
                    kind,
                    before.as_deref(),
                    Some(&saved.html),
                )],
            )?;
            Ok(saved)
        })
        .await
    }

    async fn reset_document_template(&self, kind: DocumentKind) -> StoreResult<bool> {
        self.write(move |tx| {
            let before: Option<String> = tx
                .prepare_cached("DELETE FROM document_templates WHERE kind = ?1 RETURNING html")?
                .query_row([kind.as_str()], |row| row.get(0))
                .optional()?;
            audit::record(
                tx,
                [template_change(
                    "document_template.reset",
                    kind,
                    before.as_deref(),
                    None,
                )],
            )?;
            Ok(before.is_some())
        })
        .await
    }
}
