//! HTTP for documents: each handler translates the request to a call of
//! [`super::domain`] and sends the document with its type.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shop_wire::ErrorBody;
use shop_wire::documents::{DocumentFormat, DocumentTemplate, DocumentTemplateRequest};

use super::domain::{self, Document};
use crate::auth::{AuthUser, Staff};
use crate::error::AppResult;
use crate::gateway::json::{ApiJson, ApiQuery};
use crate::state::AppState;

const TAG: &str = "documents";

/// A document may style itself and show inline images, never run a script
/// (a template is the shop's own HTML, and its variables are customers').
const DOCUMENT_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'";

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DocumentParams {
    /// `html` (default: the shop's template) or `pdf`.
    #[param(nullable = false)]
    format: Option<DocumentFormat>,
}

fn send(document: Document) -> Response {
    let content_type = match document.format {
        DocumentFormat::Html => "text/html; charset=utf-8",
        DocumentFormat::Pdf => "application/pdf",
    };
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{}\"", document.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCUMENT_POLICY),
            ),
        ],
        document.body,
    )
        .into_response()
}

/// The invoice of an order, for staff or the order's customer. The first
/// request issues its number, the next of the shop's gapless sequence
/// (`invoice.issued`); it never changes after. 409 `not_invoiceable` for an
/// order no money was taken for.
#[utoipa::path(get, path = "/{key}/invoice", tag = TAG, security(("bearer" = [])),
    params(("key" = String, Path, description = "order id or number"), DocumentParams),
    responses((status = 200, description = "the invoice", content((String = "text/html"), (Vec<u8> = "application/pdf"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn invoice(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    ApiQuery(params): ApiQuery<DocumentParams>,
) -> AppResult<Response> {
    let format = params.format.unwrap_or(DocumentFormat::Html);
    Ok(send(domain::invoice(&state, &caller, &key, format).await?))
}

/// The packing slip of an order (staff): where it goes, and each line's
/// units ordered, shipped and left to pack.
#[utoipa::path(get, path = "/{key}/packing-slip", tag = TAG, security(("bearer" = [])),
    params(("key" = String, Path, description = "order id or number"), DocumentParams),
    responses((status = 200, description = "the packing slip", content((String = "text/html"), (Vec<u8> = "application/pdf"))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn packing_slip(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(key): Path<String>,
    ApiQuery(params): ApiQuery<DocumentParams>,
) -> AppResult<Response> {
    let format = params.format.unwrap_or(DocumentFormat::Html);
    Ok(send(
        domain::packing_slip(&state, &caller, &key, format).await?,
    ))
}

/// The templates invoices and packing slips render from (staff).
#[utoipa::path(get, path = "/templates", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<DocumentTemplate>), (status = 403, body = ErrorBody)))]
pub async fn templates(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<Vec<DocumentTemplate>>> {
    Ok(ApiJson(domain::templates(&state).await?))
}

/// One document's template (staff): the shop's own, or the built-in one.
#[utoipa::path(get, path = "/templates/{kind}", tag = TAG, security(("bearer" = [])),
    params(("kind" = String, Path, description = "`invoice` or `packing_slip`")),
    responses((status = 200, body = DocumentTemplate), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn template(
    State(state): State<AppState>,
    _: Staff,
    Path(kind): Path<String>,
) -> AppResult<ApiJson<DocumentTemplate>> {
    let kind = domain::kind(&kind)?;
    Ok(ApiJson(domain::template(&state, kind).await?))
}

/// Replace a document's template with the shop's own (staff). It must
/// render a sample order: 422 names the line of a template that does not.
#[utoipa::path(put, path = "/templates/{kind}", tag = TAG, security(("bearer" = [])),
    request_body = DocumentTemplateRequest,
    params(("kind" = String, Path, description = "`invoice` or `packing_slip`")),
    responses((status = 200, body = DocumentTemplate), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn save_template(
    State(state): State<AppState>,
    _: Staff,
    Path(kind): Path<String>,
    ApiJson(request): ApiJson<DocumentTemplateRequest>,
) -> AppResult<ApiJson<DocumentTemplate>> {
    let kind = domain::kind(&kind)?;
    Ok(ApiJson(
        domain::save_template(&state, kind, request.html).await?,
    ))
}

/// Go back to the built-in template (staff); answers it.
#[utoipa::path(delete, path = "/templates/{kind}", tag = TAG, security(("bearer" = [])),
    params(("kind" = String, Path, description = "`invoice` or `packing_slip`")),
    responses((status = 200, body = DocumentTemplate), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_template(
    State(state): State<AppState>,
    _: Staff,
    Path(kind): Path<String>,
) -> AppResult<ApiJson<DocumentTemplate>> {
    let kind = domain::kind(&kind)?;
    Ok(ApiJson(domain::reset_template(&state, kind).await?))
}
