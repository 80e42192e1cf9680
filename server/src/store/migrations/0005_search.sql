-- Search (issue 5): what people searched for, and what they bought and
-- looked at together, for analytics, suggestions and recommendations.
-- Products are referred to by id without a foreign key: a deleted
-- product's history is harmless (readers skip products that no longer
-- exist) and deleting a product should not have to rewrite it.

-- Every search, as it was asked.
CREATE TABLE search_queries (
    id            INTEGER PRIMARY KEY,
    -- Lower case, no accents, words separated by one space.
    query         TEXT NOT NULL,
    -- As typed (trimmed, at most 200 characters).
    raw           TEXT NOT NULL,
    filters       TEXT NOT NULL DEFAULT '{}',
    result_count  INTEGER NOT NULL,
    latency_us    INTEGER NOT NULL,
    cache_hit     INTEGER NOT NULL CHECK (cache_hit IN (0, 1)),
    at            INTEGER NOT NULL
);
CREATE INDEX search_queries_at ON search_queries (at);

-- The same, counted per hour and query: top queries, zero-result queries
-- and volume read this instead of scanning every search.
CREATE TABLE search_query_stats (
    hour          INTEGER NOT NULL,
    query         TEXT NOT NULL,
    searches      INTEGER NOT NULL,
    zero_results  INTEGER NOT NULL,
    latency_us    INTEGER NOT NULL,
    cache_hits    INTEGER NOT NULL,
    PRIMARY KEY (hour, query)
) WITHOUT ROWID;

-- Purchases (from `order.paid` events) and views per product.
CREATE TABLE product_popularity (
    product_id  TEXT PRIMARY KEY,
    purchases   INTEGER NOT NULL DEFAULT 0,
    views       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- How often two products were bought in one order or viewed in one
-- session; both directions are stored, so one product's row range is all
-- it needs.
CREATE TABLE product_pairs (
    product_id    TEXT NOT NULL,
    other_id      TEXT NOT NULL,
    co_purchases  INTEGER NOT NULL DEFAULT 0,
    co_views      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (product_id, other_id)
) WITHOUT ROWID;

-- Recent views per session, to pair a view with the ones before it.
CREATE TABLE product_views (
    id          INTEGER PRIMARY KEY,
    session     TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX product_views_session ON product_views (session, at);
CREATE INDEX product_views_at ON product_views (at);
