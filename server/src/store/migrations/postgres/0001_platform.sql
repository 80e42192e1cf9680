-- The event log and idempotency records: the platform core, as the store
-- traits implemented on PostgreSQL so far need it. Times are timestamptz
-- (microseconds; the store writes milliseconds), ids of the log are given
-- by the append itself (see store/postgres/events.rs), not by a sequence.

CREATE TABLE events (
    id          bigint PRIMARY KEY,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb NOT NULL
);

CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    fingerprint  text NOT NULL,
    state        text NOT NULL CHECK (state IN ('in_progress', 'done')),
    status       integer,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
