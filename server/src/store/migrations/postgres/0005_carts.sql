-- Carts: the first step of the money path, with SQLite's 0004 (carts and
-- their lines), 0006 (the client address of an anonymous cart) and 0011
-- (what a cart keeps for its checkout). Each line holds its stock through
-- one reservation, resized with the line in the same transaction.

CREATE TABLE carts (
    id          text COLLATE "C" PRIMARY KEY,
    -- NULL for an anonymous cart, which is reached by its token instead.
    user_id     text COLLATE "C" REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of an anonymous cart's secret token; the token is never stored.
    token_hash  text UNIQUE,
    status      text NOT NULL CHECK (status IN ('active', 'checked_out', 'merged', 'expired')),
    currency    text NOT NULL,
    version     bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    -- The client address that made an anonymous cart, so one address
    -- cannot hold any number of carts (and their stock) at once.
    client_ip   text,
    -- What the cart keeps for its checkout (addresses, method), as JSON.
    checkout    jsonb,
    CHECK (user_id IS NOT NULL OR token_hash IS NOT NULL)
);

-- A user has at most one active cart.
CREATE UNIQUE INDEX carts_active_user ON carts (user_id) WHERE status = 'active' AND user_id IS NOT NULL;
CREATE INDEX carts_due ON carts (expires_at) WHERE status = 'active';
CREATE INDEX carts_client ON carts (client_ip) WHERE status = 'active' AND client_ip IS NOT NULL;

CREATE TABLE cart_items (
    cart_id           text COLLATE "C" NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    sku               text COLLATE "C" NOT NULL,
    name              text NOT NULL,
    quantity          bigint NOT NULL CHECK (quantity > 0),
    unit_price_cents  bigint NOT NULL CHECK (unit_price_cents > 0),
    -- The stock this line holds; resized with the line.
    reservation_id    text COLLATE "C" NOT NULL REFERENCES reservations (id),
    position          bigint NOT NULL,
    PRIMARY KEY (cart_id, sku)
);
