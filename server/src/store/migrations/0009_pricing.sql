-- Pricing at checkout: what products weigh and how they are taxed,
-- shipping zones with their methods, and tax rates.

ALTER TABLE products ADD COLUMN weight_grams INTEGER CHECK (weight_grams >= 0);
-- Picks a reduced rate (e.g. 'books'); NULL: the standard rate.
ALTER TABLE products ADD COLUMN tax_category TEXT;
-- 0 for goods nobody ships (downloads, gift cards).
ALTER TABLE products ADD COLUMN requires_shipping INTEGER NOT NULL DEFAULT 1
    CHECK (requires_shipping IN (0, 1));

CREATE TABLE shipping_zones (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL,
    -- A JSON array of methods: {code,name,rate:{kind,...},estimated_days}.
    methods     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- A country is shipped to by at most one zone: the primary key keeps it so
-- when zones are added at the same time.
CREATE TABLE shipping_zone_countries (
    country     TEXT PRIMARY KEY,
    zone_id     TEXT NOT NULL REFERENCES shipping_zones (id) ON DELETE CASCADE
);
CREATE INDEX shipping_zone_countries_zone ON shipping_zone_countries (zone_id);

CREATE TABLE tax_rates (
    id           TEXT PRIMARY KEY,
    country      TEXT NOT NULL,
    region       TEXT,
    name         TEXT NOT NULL,
    rate_bps     INTEGER NOT NULL CHECK (rate_bps BETWEEN 0 AND 10000),
    tax_category TEXT,
    created_at   INTEGER NOT NULL
);
-- One rate per country, region and category.
CREATE UNIQUE INDEX tax_rates_scope
    ON tax_rates (country, coalesce(region, ''), coalesce(tax_category, ''));

-- What an order costs, broken down, frozen when it is placed: the parts of
-- total_cents as columns (for reports), and the whole breakdown (tax lines,
-- discounts, addresses, the shipping method) as JSON. Orders from before
-- have their total as their subtotal.
ALTER TABLE orders ADD COLUMN subtotal_cents INTEGER;
ALTER TABLE orders ADD COLUMN discount_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN shipping_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN tax_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN pricing TEXT;
UPDATE orders SET subtotal_cents = total_cents;

CREATE TABLE discounts (
    id                 TEXT PRIMARY KEY,
    -- Upper case; NULL for an automatic promotion.
    code               TEXT UNIQUE,
    kind               TEXT NOT NULL CHECK (kind IN ('percent', 'fixed', 'free_shipping')),
    value              INTEGER NOT NULL CHECK (value >= 0),
    currency           TEXT,
    min_subtotal_cents INTEGER,
    starts_at          INTEGER,
    ends_at            INTEGER,
    usage_limit        INTEGER,
    per_customer_limit INTEGER,
    automatic          INTEGER NOT NULL CHECK (automatic IN (0, 1)),
    active             INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    -- Kept by guarded updates: never past usage_limit, even under racing checkouts.
    times_used         INTEGER NOT NULL DEFAULT 0
        CHECK (times_used >= 0 AND (usage_limit IS NULL OR times_used <= usage_limit)),
    created_at         INTEGER NOT NULL
);
CREATE INDEX discounts_automatic ON discounts (automatic) WHERE automatic = 1;

-- Each order's use of a discount, for the per-customer limit and to give
-- the use back when the order is cancelled or fully refunded.
CREATE TABLE discount_uses (
    discount_id    TEXT NOT NULL REFERENCES discounts (id),
    order_id       TEXT NOT NULL,
    customer_email TEXT NOT NULL,
    released       INTEGER NOT NULL DEFAULT 0 CHECK (released IN (0, 1)),
    PRIMARY KEY (discount_id, order_id)
);
CREATE INDEX discount_uses_customer ON discount_uses (discount_id, customer_email) WHERE released = 0;
CREATE INDEX discount_uses_order ON discount_uses (order_id) WHERE released = 0;

-- Codes applied to a cart, used at its checkout.
CREATE TABLE cart_discounts (
    cart_id  TEXT NOT NULL,
    code     TEXT NOT NULL,
    PRIMARY KEY (cart_id, code)
);
