-- Carts, orders and payments: the money path. As in the inventory, the
-- rules that must never break are CHECK constraints, so no code path can
-- store a refund above what was captured or an order line of 0 units.

CREATE TABLE carts (
    id          TEXT PRIMARY KEY,
    -- NULL for an anonymous cart, which is reached by its token instead.
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of an anonymous cart's secret token; the token is never stored.
    token_hash  TEXT UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ('active', 'checked_out', 'merged', 'expired')),
    currency    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK (user_id IS NOT NULL OR token_hash IS NOT NULL)
);

-- A user has at most one active cart.
CREATE UNIQUE INDEX carts_active_user ON carts (user_id) WHERE status = 'active' AND user_id IS NOT NULL;
CREATE INDEX carts_due ON carts (expires_at) WHERE status = 'active';

CREATE TABLE cart_items (
    cart_id           TEXT NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    sku               TEXT NOT NULL,
    name              TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents  INTEGER NOT NULL CHECK (unit_price_cents > 0),
    -- The stock this line holds; resized with the line.
    reservation_id    TEXT NOT NULL REFERENCES reservations (id),
    position          INTEGER NOT NULL,
    PRIMARY KEY (cart_id, sku)
) WITHOUT ROWID;

CREATE TABLE orders (
    id               TEXT PRIMARY KEY,
    number           INTEGER NOT NULL UNIQUE,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    customer_email   TEXT NOT NULL,
    user_id          TEXT,
    cart_id          TEXT,
    currency         TEXT NOT NULL,
    total_cents      INTEGER NOT NULL CHECK (total_cents > 0),
    refunded_cents   INTEGER NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents),
    payment_id       TEXT,
    payment_error_code     TEXT,
    payment_error_message  TEXT,
    tracking_number  TEXT,
    -- The checkout's Idempotency-Key with the caller: a retried checkout finds its order.
    idempotency_key  TEXT UNIQUE,
    -- When the order's stock is released if it is still unpaid.
    pay_by           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_customer ON orders (customer_email, id);
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_unpaid ON orders (pay_by) WHERE status = 'pending';

CREATE TABLE order_items (
    order_id          TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,
    sku               TEXT NOT NULL,
    name              TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents  INTEGER NOT NULL CHECK (unit_price_cents > 0),
    -- The stock held for this line until the order is paid (then committed) or cancelled.
    reservation_id    TEXT REFERENCES reservations (id),
    PRIMARY KEY (order_id, position)
) WITHOUT ROWID;

CREATE INDEX order_items_sku ON order_items (sku);

CREATE TABLE order_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    actor        TEXT NOT NULL,
    note         TEXT,
    at           INTEGER NOT NULL
);

CREATE INDEX order_history_order ON order_history (order_id, id);

CREATE TABLE payments (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders (id),
    amount_cents     INTEGER NOT NULL CHECK (amount_cents > 0),
    refunded_cents   INTEGER NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
    currency         TEXT NOT NULL,
    method           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('processing', 'pending', 'succeeded', 'failed', 'canceled', 'refunded')),
    provider         TEXT NOT NULL,
    provider_ref     TEXT,
    card_brand       TEXT,
    card_last4       TEXT,
    failure_code     TEXT,
    failure_message  TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_status ON payments (status, id);

CREATE TABLE refunds (
    id               TEXT PRIMARY KEY,
    payment_id       TEXT NOT NULL REFERENCES payments (id),
    amount_cents     INTEGER NOT NULL CHECK (amount_cents > 0),
    currency         TEXT NOT NULL,
    reason           TEXT,
    status           TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    -- Cancel the order (and restock) once this refund succeeds.
    cancels_order    INTEGER NOT NULL DEFAULT 0,
    actor            TEXT,
    provider_ref     TEXT,
    failure_message  TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE INDEX refunds_payment ON refunds (payment_id, id);
CREATE INDEX refunds_processing ON refunds (status) WHERE status = 'processing';
