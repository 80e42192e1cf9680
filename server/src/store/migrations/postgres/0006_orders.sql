-- Orders, their lines, history and shipments, payments and refunds: the
-- tables of SQLite's 0004, 0009 (what an order costs), 0010 (financial
-- status) and 0013 (fulfilments) as they are on main. The rules that must
-- never break are CHECK constraints, as there, so no code path can store a
-- refund above what was captured or ship a unit twice. Order numbers come
-- from a sequence, so racing checkouts never read the same highest number.

CREATE SEQUENCE order_numbers START WITH 1001;

CREATE TABLE orders (
    id                     text COLLATE "C" PRIMARY KEY,
    number                 bigint NOT NULL UNIQUE,
    status                 text NOT NULL
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    financial_status       text NOT NULL DEFAULT 'pending'
        CHECK (financial_status IN ('pending', 'paid', 'partially_refunded', 'refunded', 'voided')),
    customer_email         text NOT NULL,
    user_id                text COLLATE "C",
    cart_id                text COLLATE "C",
    currency               text NOT NULL,
    total_cents            bigint NOT NULL CHECK (total_cents > 0),
    refunded_cents         bigint NOT NULL DEFAULT 0
        CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents),
    payment_id             text COLLATE "C",
    payment_error_code     text,
    payment_error_message  text,
    tracking_number        text,
    -- The checkout's Idempotency-Key with the caller: a retried checkout finds its order.
    idempotency_key        text UNIQUE,
    -- When the order's stock is released if it is still unpaid.
    pay_by                 timestamptz NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    -- What the order costs, broken down, frozen when it is placed: the
    -- parts of total_cents as columns (for reports), and the whole
    -- breakdown as JSON.
    subtotal_cents         bigint,
    discount_cents         bigint NOT NULL DEFAULT 0,
    shipping_cents         bigint NOT NULL DEFAULT 0,
    tax_cents              bigint NOT NULL DEFAULT 0,
    pricing                jsonb
);

CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_financial_status ON orders (financial_status, id);
CREATE INDEX orders_customer ON orders (lower(customer_email), id);
CREATE INDEX orders_user ON orders (user_id, status);
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_unpaid ON orders (pay_by) WHERE status = 'pending';

CREATE TABLE order_items (
    order_id          text COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position          bigint NOT NULL,
    sku               text COLLATE "C" NOT NULL,
    name              text NOT NULL,
    quantity          bigint NOT NULL CHECK (quantity > 0),
    unit_price_cents  bigint NOT NULL CHECK (unit_price_cents > 0),
    -- The stock held for this line until the order is paid (then committed) or cancelled.
    reservation_id    text COLLATE "C" REFERENCES reservations (id),
    -- What the line's shipments took so far; grown by a guarded statement.
    shipped_quantity  bigint NOT NULL DEFAULT 0
        CHECK (shipped_quantity >= 0 AND shipped_quantity <= quantity),
    PRIMARY KEY (order_id, position)
);

CREATE INDEX order_items_sku ON order_items (sku);

CREATE TABLE order_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     text COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status  text,
    to_status    text NOT NULL,
    actor        text NOT NULL,
    note         text,
    at           timestamptz NOT NULL
);

CREATE INDEX order_history_order ON order_history (order_id, id);

CREATE TABLE fulfillments (
    id               text COLLATE "C" PRIMARY KEY,
    order_id         text COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    carrier          text,
    tracking_number  text,
    tracking_url     text,
    shipped_at       timestamptz NOT NULL,
    delivered_at     timestamptz
);

CREATE INDEX fulfillments_order ON fulfillments (order_id, shipped_at);

-- The units of each order line (by its position) in a shipment.
CREATE TABLE fulfillment_items (
    fulfillment_id  text COLLATE "C" NOT NULL REFERENCES fulfillments (id) ON DELETE CASCADE,
    position        bigint NOT NULL,
    sku             text COLLATE "C" NOT NULL,
    quantity        bigint NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (fulfillment_id, position)
);

CREATE TABLE payments (
    id               text COLLATE "C" PRIMARY KEY,
    order_id         text COLLATE "C" NOT NULL REFERENCES orders (id),
    amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
    refunded_cents   bigint NOT NULL DEFAULT 0
        CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
    currency         text NOT NULL,
    method           text NOT NULL,
    status           text NOT NULL
        CHECK (status IN ('processing', 'pending', 'succeeded', 'failed', 'canceled', 'refunded')),
    provider         text NOT NULL,
    provider_ref     text,
    card_brand       text,
    card_last4       text,
    failure_code     text,
    failure_message  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_status ON payments (status, id);

CREATE TABLE refunds (
    id               text COLLATE "C" PRIMARY KEY,
    payment_id       text COLLATE "C" NOT NULL REFERENCES payments (id),
    amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
    currency         text NOT NULL,
    reason           text,
    status           text NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    -- Cancel the order (and restock) once this refund succeeds.
    cancels_order    boolean NOT NULL DEFAULT false,
    actor            text,
    provider_ref     text,
    failure_message  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE INDEX refunds_payment ON refunds (payment_id, id);
CREATE INDEX refunds_processing ON refunds (status) WHERE status = 'processing';
