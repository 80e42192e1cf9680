//! The error answers every operation can give, added to the OpenAPI
//! document from what the gateway does in front of all of them, so that a
//! client generator or a fuzzer (schemathesis) meets no undocumented status.
//!
//! A handler documents the answers of its own rules (402 for a declined
//! payment, 409 for an illegal transition); the gateway's are the same
//! everywhere: 429 from the rate limits, 401/403 from the token checks, 400
//! for a query, path or body it cannot read, 404 for a path's unknown key,
//! 409 for an `Idempotency-Key` reused with another body, 413/415/422 for a
//! body too big, of another content type or of the wrong shape, 504 when the request timeout ends
//! the wait. Statuses an operation already documents are kept as they are.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// Routes that read no token and take no input: only the rate limit applies.
const BARE: &[&str] = &["/api/version", "/api/openapi.json", "/health", "/metrics"];

/// Adds the gateway's error answers to every operation of `doc`.
pub fn add_gateway_errors(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let bare = BARE.contains(&path.as_str());
        let keyed = path.contains('{');
        for (mutating, operation) in operations(item) {
            let takes_input = operation.request_body.is_some()
                || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let mut add = |status: &str, why: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(why));
            };
            add(
                "429",
                "Too many requests from this address or token; see Retry-After",
            );
            if bare {
                continue;
            }
            add("401", "No valid token, or its session has ended");
            add("403", "The token's role may not do this");
            if takes_input || keyed {
                add(
                    "400",
                    "A parameter or the body cannot be read or is not valid",
                );
            }
            if keyed {
                add("404", "Nothing with this id or key");
            }
            if mutating {
                add(
                    "409",
                    "The Idempotency-Key was used with another body, or the state forbids it",
                );
            }
            if operation.request_body.is_some() {
                add("413", "The body is larger than the configured limit");
                add(
                    "415",
                    "The body is not of a content type the operation reads",
                );
                add("422", "The body is JSON of the wrong shape");
            }
            add(
                "504",
                "The request timeout ended the wait; the change may still complete",
            );
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, item.get.as_mut()),
        (false, item.head.as_mut()),
        (false, item.options.as_mut()),
        (true, item.post.as_mut()),
        (true, item.put.as_mut()),
        (true, item.patch.as_mut()),
        (true, item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(mutating, operation)| operation.map(|operation| (mutating, operation)))
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}
