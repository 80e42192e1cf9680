-- After the sale: where an order's money stands, beside its fulfilment status.
-- The column is written by the store with the orders service's rule
-- (`rules::financial_status`) whenever the status or the refunds change; it
-- is stored so that lists can filter on it. The backfill below is that rule
-- once, for the orders that existed before it.

ALTER TABLE orders ADD COLUMN financial_status TEXT NOT NULL DEFAULT 'pending'
    CHECK (financial_status IN ('pending', 'paid', 'partially_refunded', 'refunded', 'voided'));

UPDATE orders SET financial_status = CASE
    WHEN refunded_cents > 0 AND refunded_cents >= total_cents THEN 'refunded'
    WHEN refunded_cents > 0 THEN 'partially_refunded'
    WHEN status = 'pending' THEN 'pending'
    WHEN status = 'cancelled' THEN 'voided'
    ELSE 'paid'
END;

CREATE INDEX orders_financial_status ON orders (financial_status, id);
