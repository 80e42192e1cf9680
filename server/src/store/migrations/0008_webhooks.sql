-- Outbound webhooks: endpoints, and a durable delivery queue fed from the
-- event log by the `webhooks` cursor (in event_cursors).

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    -- A JSON array of event type patterns.
    events          TEXT NOT NULL,
    description     TEXT,
    secret          TEXT NOT NULL,
    -- After a rotation the old secret also signs until then.
    previous_secret TEXT,
    previous_until  INTEGER,
    status          TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    disabled_reason TEXT,
    -- Since when every attempt has failed; NULL while it answers.
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    last_error      TEXT,
    duration_ms     INTEGER,
    -- Due time of the next attempt while pending or failed.
    next_attempt_at INTEGER,
    -- A claimed delivery is someone's until then; after it, anyone's again.
    lease_until     INTEGER,
    -- The retry window runs from here (the queueing, or the last replay).
    window_start    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    -- One delivery per event and endpoint, however often the feeder reads the log.
    UNIQUE (webhook_id, event_id)
);

-- The claim: due deliveries in event order.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (event_id)
    WHERE status IN ('pending', 'failed');
-- An endpoint's delivery log, newest first, and its replays.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, seq);

-- The feeder starts at the log's end: an upgrade does not deliver history.
INSERT INTO event_cursors (consumer, event_id)
    SELECT 'webhooks', coalesce(max(id), 0) FROM events;
