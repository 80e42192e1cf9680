-- Returns (RMA): SQLite's 0014 and 0016.
--
-- A line's `returned_quantity` counts its units in returns that were not
-- rejected; a return grows it with a guarded statement that keeps it
-- within the line's shipped units, so returns that race never return a
-- unit twice (the CHECK backs the guard up). A return's refund may give
-- back the order's shipping (`shipping_refund_cents`), for at most one
-- return of an order: the claim checks no other return of the order has,
-- under the order's row lock.

ALTER TABLE order_items ADD COLUMN returned_quantity bigint NOT NULL DEFAULT 0;
ALTER TABLE order_items ADD CONSTRAINT order_items_returned_within_shipped
    CHECK (returned_quantity >= 0 AND returned_quantity <= shipped_quantity);

CREATE TABLE returns (
    id                     text COLLATE "C" PRIMARY KEY,
    order_id               text COLLATE "C" NOT NULL REFERENCES orders (id),
    status                 text NOT NULL
        CHECK (status IN ('requested', 'approved', 'rejected', 'received', 'refunded')),
    note                   text,
    refund_cents           bigint NOT NULL CHECK (refund_cents >= 0),
    shipping_refund_cents  bigint NOT NULL DEFAULT 0 CHECK (shipping_refund_cents >= 0),
    -- The refund of the order's payment claimed for it, once one was.
    refund_id              text COLLATE "C",
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);

CREATE INDEX returns_order ON returns (order_id, id);
CREATE INDEX returns_status ON returns (status, id);

-- The units of each order line (by its position) in a return.
CREATE TABLE return_items (
    return_id         text COLLATE "C" NOT NULL REFERENCES returns (id) ON DELETE CASCADE,
    position          bigint NOT NULL,
    sku               text COLLATE "C" NOT NULL,
    quantity          bigint NOT NULL CHECK (quantity > 0),
    reason            text NOT NULL,
    unit_price_cents  bigint NOT NULL,
    -- Set when received: whether its units went back on hand.
    restocked         boolean,
    PRIMARY KEY (return_id, position)
);
