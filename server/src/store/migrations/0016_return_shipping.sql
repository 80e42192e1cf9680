-- A return's refund may give back the order's shipping too (with its tax),
-- for at most one return of an order: the claim of a refund that takes it
-- checks, in its guarded statement, that no other return of the order has.
ALTER TABLE returns ADD COLUMN shipping_refund_cents INTEGER NOT NULL DEFAULT 0
    CHECK (shipping_refund_cents >= 0);
