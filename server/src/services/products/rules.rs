//! Who sees which products, as plain functions.

/// Whether a product is shown to a caller: an archived product is staff's
/// business only, by id or SKU as in lists, so a customer never sees a
/// product page they could not reach from the catalog or buy.
pub fn visible(active: bool, staff: bool) -> bool {
    active || staff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archived_products_are_seen_by_staff_only() {
        assert!(visible(true, false));
        assert!(visible(false, true));
        assert!(!visible(false, false));
    }
}
