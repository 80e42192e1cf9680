-- Fulfilments: an order ships line by line, in one shipment or several,
-- each with its carrier, tracking number and tracking URL.
--
-- A line's `shipped_quantity` is what its shipments took so far; a
-- shipment grows it with a guarded statement that keeps it within the
-- line's quantity, so shipments that race never ship a unit twice.

ALTER TABLE order_items ADD COLUMN shipped_quantity INTEGER NOT NULL DEFAULT 0
    CHECK (shipped_quantity >= 0 AND shipped_quantity <= quantity);

CREATE TABLE fulfillments (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    carrier          TEXT,
    tracking_number  TEXT,
    tracking_url     TEXT,
    shipped_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);

CREATE INDEX fulfillments_order ON fulfillments (order_id, shipped_at);

-- The units of each order line (by its position) in a shipment.
CREATE TABLE fulfillment_items (
    fulfillment_id  TEXT NOT NULL REFERENCES fulfillments (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    sku             TEXT NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (fulfillment_id, position)
) WITHOUT ROWID;

-- Orders shipped before this migration went out whole, in one shipment
-- named after the order (`ord_X` ships as `ful_X`), when their history says.
UPDATE order_items SET shipped_quantity = quantity
WHERE order_id IN (SELECT id FROM orders WHERE status IN ('shipped', 'delivered'));

INSERT INTO fulfillments (id, order_id, carrier, tracking_number, tracking_url, shipped_at, delivered_at)
SELECT 'ful_' || substr(o.id, 5), o.id, NULL, o.tracking_number, NULL,
       coalesce((SELECT max(h.at) FROM order_history h
                 WHERE h.order_id = o.id AND h.to_status = 'shipped'), o.updated_at),
       CASE WHEN o.status = 'delivered' THEN
           coalesce((SELECT max(h.at) FROM order_history h
                     WHERE h.order_id = o.id AND h.to_status = 'delivered'), o.updated_at)
       END
FROM orders o WHERE o.status IN ('shipped', 'delivered');

INSERT INTO fulfillment_items (fulfillment_id, position, sku, quantity)
SELECT 'ful_' || substr(i.order_id, 5), i.position, i.sku, i.quantity
FROM order_items i JOIN orders o ON o.id = i.order_id
WHERE o.status IN ('shipped', 'delivered');
