-- Accounts: users (with SQLite 0012's columns), their sessions, the
-- single-use tokens sent by email (0012), and address books (0011). Ids
-- compare as bytes, as in 0002.

CREATE TABLE users (
    id                          text COLLATE "C" PRIMARY KEY,
    email                       text NOT NULL,
    name                        text NOT NULL,
    role                        text NOT NULL CHECK (role IN ('admin', 'staff', 'customer')),
    password_hash               text NOT NULL,
    addresses                   jsonb NOT NULL DEFAULT '[]',
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    email_verified_at           timestamptz,
    -- When a reset email was last asked for (its event makes the email).
    password_reset_requested_at timestamptz
);

-- An email names one account whatever its case, as SQLite's NOCASE does.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_role ON users (role);

CREATE TABLE sessions (
    id            text COLLATE "C" PRIMARY KEY,
    user_id       text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash  text NOT NULL,
    user_agent    text,
    ip            text,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Only the SHA-256 of a token is kept: the token itself is in the email.
-- No foreign key: the notification reactor makes tokens from events, and
-- an event about an account that is gone must not stop it.
CREATE TABLE account_tokens (
    hash       text PRIMARY KEY,
    user_id    text NOT NULL,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expiry ON account_tokens (expires_at);

CREATE TABLE user_addresses (
    id               text COLLATE "C" PRIMARY KEY,
    user_id          text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The postal address as JSON: {name,line1,line2,city,region,postal_code,country,phone}.
    address          jsonb NOT NULL,
    default_shipping boolean NOT NULL DEFAULT false,
    default_billing  boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL
);
CREATE INDEX user_addresses_user ON user_addresses (user_id, id);
-- At most one default of each kind per user, even under racing saves.
CREATE UNIQUE INDEX user_addresses_default_shipping
    ON user_addresses (user_id) WHERE default_shipping;
CREATE UNIQUE INDEX user_addresses_default_billing
    ON user_addresses (user_id) WHERE default_billing;
