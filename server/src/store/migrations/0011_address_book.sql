-- A customer's address book, and what a cart keeps for its checkout.

CREATE TABLE user_addresses (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The postal address as JSON: {name,line1,line2,city,region,postal_code,country,phone}.
    address          TEXT NOT NULL,
    default_shipping INTEGER NOT NULL DEFAULT 0 CHECK (default_shipping IN (0, 1)),
    default_billing  INTEGER NOT NULL DEFAULT 0 CHECK (default_billing IN (0, 1)),
    created_at       INTEGER NOT NULL
);
CREATE INDEX user_addresses_user ON user_addresses (user_id, id);
-- At most one default of each kind per user, even under racing saves.
CREATE UNIQUE INDEX user_addresses_default_shipping
    ON user_addresses (user_id) WHERE default_shipping = 1;
CREATE UNIQUE INDEX user_addresses_default_billing
    ON user_addresses (user_id) WHERE default_billing = 1;

-- A cart's addresses and shipping method as JSON ({shipping_address,
-- billing_address, shipping_method}); NULL until the customer gives them.
ALTER TABLE carts ADD COLUMN checkout TEXT;
