-- The catalog and its stock, the ledger, reservations, and the audit log
-- the catalog's and inventory's changes write to: the tables of SQLite's
-- 0003, 0007 (audit_log) and 0009 (products' pricing columns) as they are
-- on main. Flags are boolean, counts bigint, times timestamptz; ids and
-- SKUs compare as bytes (COLLATE "C"), as SQLite's do, so pages in id or
-- SKU order are the same on both backends whatever the database's locale.

CREATE TABLE products (
    id                text COLLATE "C" PRIMARY KEY,
    sku               text COLLATE "C" NOT NULL,
    name              text NOT NULL,
    description       text NOT NULL DEFAULT '',
    -- A path such as 'furniture/chairs'; NULL when uncategorised.
    category          text,
    price_cents       bigint NOT NULL CHECK (price_cents > 0),
    currency          text NOT NULL,
    attributes        jsonb NOT NULL DEFAULT '{}',
    images            jsonb NOT NULL DEFAULT '[]',
    active            boolean NOT NULL DEFAULT true,
    version           bigint NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    weight_grams      bigint CHECK (weight_grams >= 0),
    -- Picks a reduced rate (e.g. 'books'); NULL: the standard rate.
    tax_category      text,
    requires_shipping boolean NOT NULL DEFAULT true,
    CONSTRAINT products_sku_key UNIQUE (sku)
);

-- A category and its subtree is a range of the first (`text_pattern_ops`
-- compares bytes, as the range bounds are built); the others serve the
-- sorted listings, the id tie-break keeping pages stable.
CREATE INDEX products_category ON products (active, category text_pattern_ops, id);
CREATE INDEX products_price ON products (active, price_cents, id);
CREATE INDEX products_name ON products (active, name, id);

CREATE TABLE stock (
    sku                 text COLLATE "C" PRIMARY KEY REFERENCES products (sku) ON DELETE CASCADE,
    on_hand             bigint NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved            bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    low_stock_threshold bigint NOT NULL CHECK (low_stock_threshold >= 0),
    -- Set when available fell to the threshold and `inventory.low_stock` was
    -- emitted; cleared when it rises above, so each crossing alerts once.
    low_alerted         boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL
);

CREATE INDEX stock_available ON stock ((on_hand - reserved), sku);

CREATE TABLE stock_movements (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku              text COLLATE "C" NOT NULL REFERENCES stock (sku) ON DELETE CASCADE,
    kind             text NOT NULL,
    on_hand_before   bigint NOT NULL,
    on_hand_after    bigint NOT NULL,
    reserved_before  bigint NOT NULL,
    reserved_after   bigint NOT NULL,
    reason           text,
    actor            text,
    reference        text,
    at               timestamptz NOT NULL
);

CREATE INDEX stock_movements_sku ON stock_movements (sku, id);

CREATE TABLE reservations (
    id          text COLLATE "C" PRIMARY KEY,
    -- No cascade: a product with active reservations cannot be deleted.
    sku         text COLLATE "C" NOT NULL REFERENCES stock (sku),
    quantity    bigint NOT NULL CHECK (quantity > 0),
    status      text NOT NULL CHECK (status IN ('active', 'committed', 'released', 'expired')),
    reference   text,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'active';
CREATE INDEX reservations_sku ON reservations (sku, status);
CREATE INDEX reservations_reference ON reservations (reference) WHERE reference IS NOT NULL;

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor_kind   text NOT NULL,
    actor_id     text,
    actor_email  text,
    ip           text,
    action       text NOT NULL,
    entity       text NOT NULL,
    entity_id    text NOT NULL,
    before       jsonb,
    after        jsonb,
    request_id   text
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor_email, id);
CREATE INDEX audit_log_at ON audit_log (at);

-- Append-only, below any route: the database itself refuses edits.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
