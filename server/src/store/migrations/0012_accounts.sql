-- Accounts: a proved email address, and the single-use tokens sent by email
-- to prove it (with the welcome email) or to reset a forgotten password.
--
-- Accounts that existed before this migration start unverified: nothing
-- proved their addresses, which is the bug this fixes. A password reset
-- proves the address too, so they have a way to verify.

ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
-- When a reset email was last asked for: the request is a change of its
-- own, logged with its event (which the notification reactor turns into
-- the email and its token).
ALTER TABLE users ADD COLUMN password_reset_requested_at INTEGER;

-- Only the SHA-256 of a token is kept: the token itself is in the email.
-- No foreign key: the notification reactor makes tokens from events, and
-- an event about an account that is gone must not stop it.
CREATE TABLE account_tokens (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expiry ON account_tokens (expires_at);
