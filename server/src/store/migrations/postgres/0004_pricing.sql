-- Pricing: shipping zones with their methods, tax rates, discounts and
-- their uses, and the codes applied to carts: the tables of SQLite's 0009
-- (the products' pricing columns are in 0002). Ids compare as bytes, as
-- in 0002, so "oldest first" (by id) is the same order on both backends.

CREATE TABLE shipping_zones (
    id          text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    currency    text NOT NULL,
    -- The methods: [{code,name,rate:{kind,...},estimated_days}].
    methods     jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);

-- A country is shipped to by at most one zone: the primary key keeps it so
-- when zones are added at the same time (the second insert waits for the
-- first and fails if it committed).
CREATE TABLE shipping_zone_countries (
    country     text PRIMARY KEY,
    zone_id     text COLLATE "C" NOT NULL REFERENCES shipping_zones (id) ON DELETE CASCADE
);
CREATE INDEX shipping_zone_countries_zone ON shipping_zone_countries (zone_id);

CREATE TABLE tax_rates (
    id           text COLLATE "C" PRIMARY KEY,
    country      text NOT NULL,
    region       text,
    name         text NOT NULL,
    rate_bps     bigint NOT NULL CHECK (rate_bps BETWEEN 0 AND 10000),
    tax_category text,
    created_at   timestamptz NOT NULL
);
-- One rate per country, region and category.
CREATE UNIQUE INDEX tax_rates_scope
    ON tax_rates (country, coalesce(region, ''), coalesce(tax_category, ''));

CREATE TABLE discounts (
    id                 text COLLATE "C" PRIMARY KEY,
    -- Upper case; NULL for an automatic promotion.
    code               text,
    kind               text NOT NULL CHECK (kind IN ('percent', 'fixed', 'free_shipping')),
    value              bigint NOT NULL CHECK (value >= 0),
    currency           text,
    min_subtotal_cents bigint,
    starts_at          timestamptz,
    ends_at            timestamptz,
    usage_limit        bigint,
    per_customer_limit bigint,
    automatic          boolean NOT NULL,
    active             boolean NOT NULL DEFAULT true,
    -- Kept by guarded updates: never past usage_limit, even under racing
    -- checkouts (each waits for the row lock of the one before it and
    -- checks the guard against what that one committed).
    times_used         bigint NOT NULL DEFAULT 0
        CHECK (times_used >= 0 AND (usage_limit IS NULL OR times_used <= usage_limit)),
    created_at         timestamptz NOT NULL,
    CONSTRAINT discounts_code_key UNIQUE (code)
);
CREATE INDEX discounts_automatic ON discounts (automatic) WHERE automatic;

-- Each order's use of a discount, for the per-customer limit and to give
-- the use back when the order is cancelled or fully refunded.
CREATE TABLE discount_uses (
    discount_id    text COLLATE "C" NOT NULL REFERENCES discounts (id),
    order_id       text COLLATE "C" NOT NULL,
    customer_email text NOT NULL,
    released       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (discount_id, order_id)
);
CREATE INDEX discount_uses_customer ON discount_uses (discount_id, customer_email) WHERE NOT released;
CREATE INDEX discount_uses_order ON discount_uses (order_id) WHERE NOT released;

-- Codes applied to a cart, used at its checkout; `applied` keeps the order
-- they were applied in (SQLite's rowid).
CREATE TABLE cart_discounts (
    cart_id  text COLLATE "C" NOT NULL,
    code     text NOT NULL,
    applied  bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (cart_id, code)
);
