-- Returns (RMA): shipped units a customer sends back, with a reason each.
--
-- A line's `returned_quantity` counts its units in returns that were not
-- rejected; a return grows it with a guarded statement that keeps it
-- within the line's shipped units, so returns that race never return a
-- unit twice (the CHECK backs the guard up).

ALTER TABLE order_items ADD COLUMN returned_quantity INTEGER NOT NULL DEFAULT 0
    CHECK (returned_quantity >= 0 AND returned_quantity <= shipped_quantity);

CREATE TABLE returns (
    id            TEXT PRIMARY KEY,
    order_id      TEXT NOT NULL REFERENCES orders (id),
    status        TEXT NOT NULL
        CHECK (status IN ('requested', 'approved', 'rejected', 'received', 'refunded')),
    note          TEXT,
    refund_cents  INTEGER NOT NULL CHECK (refund_cents >= 0),
    -- The refund of the order's payment claimed for it, once one was.
    refund_id     TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE INDEX returns_order ON returns (order_id, id);
CREATE INDEX returns_status ON returns (status, id);

-- The units of each order line (by its position) in a return.
CREATE TABLE return_items (
    return_id         TEXT NOT NULL REFERENCES returns (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,
    sku               TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    reason            TEXT NOT NULL,
    unit_price_cents  INTEGER NOT NULL,
    -- Set when received: whether its units went back on hand.
    restocked         INTEGER,
    PRIMARY KEY (return_id, position)
) WITHOUT ROWID;
