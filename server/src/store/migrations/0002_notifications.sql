-- Notifications: a durable priority queue, its delivery history, the local
-- sinks' records, user-defined templates and the event consumer's cursor.

CREATE TABLE notifications (
    -- Insertion order: FIFO within a priority.
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    recipient    TEXT NOT NULL,
    template     TEXT NOT NULL,
    vars         TEXT NOT NULL DEFAULT '{}',
    -- 0 urgent, 1 high, 2 normal, 3 low: ascending is the claim order.
    priority     INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
    status       TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    subject      TEXT,
    body         TEXT,
    html         TEXT,
    event_id     INTEGER,
    resent_from  TEXT,
    -- The earliest time the next attempt may start.
    send_at      INTEGER NOT NULL,
    -- While `sending`: the claim expires then, and the row goes back to the queue.
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    -- One reaction per event, template and recipient (NULL event ids never collide).
    UNIQUE (event_id, template, recipient)
) STRICT;

CREATE INDEX notifications_waiting ON notifications (channel, priority, seq)
    WHERE status IN ('queued', 'failed');
CREATE INDEX notifications_leased ON notifications (lease_until) WHERE status = 'sending';
CREATE INDEX notifications_status ON notifications (status);

CREATE TABLE notification_attempts (
    notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('sent', 'transient_error', 'permanent_error')),
    error           TEXT,
    duration_ms     INTEGER NOT NULL
) STRICT;

CREATE INDEX notification_attempts_by_notification ON notification_attempts (notification_id);

-- What the local sinks delivered. The notification id is the key, so a
-- redelivery after a crash is never recorded twice.
CREATE TABLE notification_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT NOT NULL UNIQUE,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    template        TEXT NOT NULL,
    subject         TEXT,
    body            TEXT NOT NULL,
    html            TEXT,
    delivered_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE notification_templates (
    name       TEXT NOT NULL,
    channel    TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    subject    TEXT,
    body       TEXT NOT NULL,
    html       TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (name, channel)
) STRICT;

-- How far each event consumer has read the event log. Starts at the log's
-- end, so upgrading a shop with history does not replay old events as mail.
CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    event_id INTEGER NOT NULL
) STRICT;

INSERT INTO event_cursors (consumer, event_id)
    SELECT 'notifications', coalesce(max(id), 0) FROM events;
