//! Which searches and views may steer what every shopper is shown, as
//! plain functions: suggestions and "viewed together" are public, so what
//! one client does alone must not reach them.

/// Whether a past query may be suggested: searched by at least
/// `min_clients` different clients, and every word of it one the catalog
/// itself uses (`known`), so a suggestion never carries words of the
/// searcher's own (an address, an advertisement).
pub fn query_suggestable(
    words: &[&str],
    known: impl Fn(&str) -> bool,
    clients: u64,
    min_clients: u32,
) -> bool {
    clients >= u64::from(min_clients) && !words.is_empty() && words.iter().all(|w| known(w))
}

/// Whether one more view of a client may pair products into co-views,
/// given how many of its views paired within the window (`cap` 0: no cap).
pub fn view_may_pair(client_views: u64, cap: u32) -> bool {
    cap == 0 || client_views < u64::from(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_suggested_when_several_clients_searched_catalog_words() {
        let catalog = ["chair", "oak", "desk"];
        let known = |w: &str| catalog.contains(&w);
        assert!(query_suggestable(&["oak", "chair"], known, 3, 3));
        assert!(!query_suggestable(&["oak", "chair"], known, 2, 3));
        assert!(!query_suggestable(
            &["chair", "buy", "cheaper", "at", "evilshop"],
            known,
            50,
            3
        ));
        assert!(!query_suggestable(&[], known, 50, 3));
    }

    #[test]
    fn a_client_pairs_views_up_to_its_cap() {
        assert!(view_may_pair(0, 20));
        assert!(view_may_pair(19, 20));
        assert!(!view_may_pair(20, 20));
        assert!(view_may_pair(1_000, 0));
    }
}
