-- The catalog and its inventory: products, stock per SKU, the movement
-- ledger and reservations. The invariants of the inventory service are
-- CHECK constraints, so no code path (nor a hand-written UPDATE) can store
-- negative stock or reserve more than is on hand.

CREATE TABLE products (
    id           TEXT PRIMARY KEY,
    sku          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    -- A path such as 'furniture/chairs'; NULL when uncategorised.
    category     TEXT,
    price_cents  INTEGER NOT NULL CHECK (price_cents > 0),
    currency     TEXT NOT NULL,
    attributes   TEXT NOT NULL DEFAULT '{}',
    images       TEXT NOT NULL DEFAULT '[]',
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Category pages (a category and its subtree is a range of this index), and
-- the sorted listings; the id tie-break keeps paging stable.
CREATE INDEX products_category ON products (active, category, id);
CREATE INDEX products_price ON products (active, price_cents, id);
CREATE INDEX products_name ON products (active, name, id);
CREATE INDEX products_created ON products (active, created_at, id);

CREATE TABLE stock (
    sku                 TEXT PRIMARY KEY REFERENCES products (sku) ON DELETE CASCADE,
    on_hand             INTEGER NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved            INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    low_stock_threshold INTEGER NOT NULL CHECK (low_stock_threshold >= 0),
    -- Set when available fell to the threshold and `inventory.low_stock` was
    -- emitted; cleared when it rises above, so each crossing alerts once.
    low_alerted         INTEGER NOT NULL DEFAULT 0,
    updated_at          INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX stock_available ON stock (on_hand - reserved, sku);

CREATE TABLE stock_movements (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    sku              TEXT NOT NULL REFERENCES stock (sku) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    on_hand_before   INTEGER NOT NULL,
    on_hand_after    INTEGER NOT NULL,
    reserved_before  INTEGER NOT NULL,
    reserved_after   INTEGER NOT NULL,
    reason           TEXT,
    actor            TEXT,
    reference        TEXT,
    at               INTEGER NOT NULL
);

CREATE INDEX stock_movements_sku ON stock_movements (sku, id);

CREATE TABLE reservations (
    id          TEXT PRIMARY KEY,
    -- No cascade: a product with active reservations cannot be deleted.
    sku         TEXT NOT NULL REFERENCES stock (sku),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    status      TEXT NOT NULL CHECK (status IN ('active', 'committed', 'released', 'expired')),
    reference   TEXT,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'active';
CREATE INDEX reservations_sku ON reservations (sku, status);
CREATE INDEX reservations_reference ON reservations (reference) WHERE reference IS NOT NULL;
