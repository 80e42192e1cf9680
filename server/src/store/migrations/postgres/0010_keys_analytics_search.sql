-- API keys (SQLite's 0007; the audit log is in 0002 already) and search's
-- tables (SQLite's 0005 and 0006). Analytics reads the order and payment
-- tables and needs none of its own. Ids compare as bytes, as in 0002;
-- counts are bigint, times timestamptz.

-- Only the SHA-256 of a key's secret is kept; `prefix` is its first
-- characters, shown so a person can tell keys apart. The unique index on
-- the hash is also what `key_auth` reads by, on every API-key request.
CREATE TABLE api_keys (
    id            text COLLATE "C" PRIMARY KEY,
    name          text NOT NULL,
    user_id       text COLLATE "C" NOT NULL REFERENCES users (id),
    scopes        jsonb NOT NULL,          -- array of "resource:access"
    prefix        text NOT NULL,
    secret_hash   text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    CONSTRAINT api_keys_secret_hash_key UNIQUE (secret_hash)
);
CREATE INDEX api_keys_user ON api_keys (user_id, id);

-- The audit log is filtered by an actor's email in any case, as SQLite's
-- NOCASE does: 0002's index on the email as written cannot serve that.
CREATE INDEX audit_log_actor_email ON audit_log (lower(actor_email), id);

-- Every search, as it was asked. Products are referred to by id without a
-- foreign key here and below: a deleted product's history is harmless.
CREATE TABLE search_queries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Lower case, no accents, words separated by one space.
    query         text COLLATE "C" NOT NULL,
    -- As typed (trimmed, at most 200 characters).
    raw           text NOT NULL,
    filters       jsonb NOT NULL DEFAULT '{}',
    result_count  bigint NOT NULL,
    latency_us    bigint NOT NULL,
    cache_hit     boolean NOT NULL,
    at            timestamptz NOT NULL,
    -- A digest of who searched, to count distinct searchers.
    client        text
);
CREATE INDEX search_queries_at ON search_queries (at);

-- The same, counted per hour and query: analytics reads this instead of
-- scanning every search.
CREATE TABLE search_query_stats (
    hour          timestamptz NOT NULL,
    query         text COLLATE "C" NOT NULL,
    searches      bigint NOT NULL,
    zero_results  bigint NOT NULL,
    latency_us    bigint NOT NULL,
    cache_hits    bigint NOT NULL,
    PRIMARY KEY (hour, query)
);

-- Purchases (from `order.paid` events) and views per product.
CREATE TABLE product_popularity (
    product_id  text COLLATE "C" PRIMARY KEY,
    purchases   bigint NOT NULL DEFAULT 0,
    views       bigint NOT NULL DEFAULT 0
);

-- How often two products were bought in one order or viewed by one viewer;
-- both directions are stored, so one product's row range is all it needs.
CREATE TABLE product_pairs (
    product_id    text COLLATE "C" NOT NULL,
    other_id      text COLLATE "C" NOT NULL,
    co_purchases  bigint NOT NULL DEFAULT 0,
    co_views      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (product_id, other_id)
);

-- Recent views per viewer, to pair a view with the ones before it.
CREATE TABLE product_views (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session     text NOT NULL,
    product_id  text COLLATE "C" NOT NULL,
    at          timestamptz NOT NULL,
    client      text
);
CREATE INDEX product_views_session ON product_views (session, at);
CREATE INDEX product_views_at ON product_views (at);
CREATE INDEX product_views_client ON product_views (client, at);

-- Each signed-in viewer counts once per pair of products (the pair in id order).
CREATE TABLE product_pair_viewers (
    product_id  text COLLATE "C" NOT NULL,
    other_id    text COLLATE "C" NOT NULL,
    viewer      text NOT NULL,
    PRIMARY KEY (product_id, other_id, viewer)
);

-- How far each event consumer has read the log: `record_purchases` moves
-- search's cursor in its own transaction. The notifications migration may
-- have made it already, hence IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS event_cursors (
    consumer text PRIMARY KEY,
    event_id bigint NOT NULL
);
