//! Which scope an API key needs for each route: the one table.
//!
//! Routes are grouped by their first path segment under `/api`; reading
//! (`GET`, `HEAD`) needs `RESOURCE:read`, anything else `RESOURCE:write`.
//! A route that is not in the table is refused to keys (it fails closed), so
//! a new route is usable with a key only once it is named here. Keys never
//! reach accounts (`/api/users`) nor other keys (`/api/keys`): a key that
//! could make keys could outlive its own revocation.

use axum::http::Method;
use shop_wire::keys::{Access, Resource, Scope};

/// What a key needs to call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Scope(Scope),
    /// No key may call it, whatever its scopes.
    Refused,
}

/// The resource each area of the API belongs to.
fn resource(area: &str, rest: &str) -> Option<Resource> {
    Some(match area {
        "products" | "search" => Resource::Products,
        "inventory" => Resource::Inventory,
        // Analytics over orders are a report.
        "orders" if rest == "analytics" => Resource::Reports,
        // An order's invoice and packing slip are read with it, and their
        // templates are the orders' too.
        "orders" | "cart" | "returns" | "shipping" | "tax" | "discounts" | "documents" => {
            Resource::Orders
        }
        "payments" if rest == "analytics" => Resource::Reports,
        "payments" => Resource::Payments,
        "customers" => Resource::Customers,
        "notifications" => Resource::Notifications,
        // The event stream carries what webhooks deliver.
        "webhooks" | "events" => Resource::Webhooks,
        // The audit log also needs an admin as the key's creator.
        "reports" | "audit" => Resource::Reports,
        _ => return None,
    })
}

/// The scope `method path` needs, `path` being the full request path.
pub fn required(method: &Method, path: &str) -> Need {
    let Some(api) = path.strip_prefix("/api/") else {
        return Need::Refused;
    };
    let (area, rest) = api.split_once('/').unwrap_or((api, ""));
    let rest = rest.trim_end_matches('/');
    let Some(resource) = resource(area, rest) else {
        return Need::Refused;
    };
    let access = if matches!(*method, Method::GET | Method::HEAD) {
        Access::Read
    } else {
        Access::Write
    };
    Need::Scope(Scope::new(resource, access))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(method: Method, path: &str) -> Option<String> {
        match required(&method, path) {
            Need::Scope(scope) => Some(scope.to_string()),
            Need::Refused => None,
        }
    }

    #[test]
    fn each_area_maps_to_its_scope() {
        assert_eq!(
            need(Method::GET, "/api/products").as_deref(),
            Some("products:read")
        );
        assert_eq!(
            need(Method::POST, "/api/products").as_deref(),
            Some("products:write")
        );
        assert_eq!(
            need(Method::PUT, "/api/documents/templates/invoice").as_deref(),
            Some("orders:write")
        );
        assert_eq!(
            need(Method::PATCH, "/api/products/SKU-1").as_deref(),
            Some("products:write")
        );
        assert_eq!(
            need(Method::GET, "/api/search/suggest").as_deref(),
            Some("products:read")
        );
        assert_eq!(
            need(Method::POST, "/api/inventory/SKU-1/adjust").as_deref(),
            Some("inventory:write")
        );
        assert_eq!(
            need(Method::POST, "/api/orders/ord_1/ship").as_deref(),
            Some("orders:write")
        );
        assert_eq!(
            need(Method::GET, "/api/orders/analytics").as_deref(),
            Some("reports:read")
        );
        assert_eq!(
            need(Method::POST, "/api/payments/pay_1/refunds").as_deref(),
            Some("payments:write")
        );
        assert_eq!(
            need(Method::GET, "/api/events").as_deref(),
            Some("webhooks:read")
        );
        assert_eq!(
            need(Method::GET, "/api/audit").as_deref(),
            Some("reports:read")
        );
    }

    #[test]
    fn accounts_keys_and_unknown_areas_are_refused() {
        for path in [
            "/api/users",
            "/api/users/me",
            "/api/keys",
            "/api/keys/key_1",
            "/api/nothing",
            "/metrics",
        ] {
            assert_eq!(need(Method::GET, path), None, "{path}");
        }
    }
}
