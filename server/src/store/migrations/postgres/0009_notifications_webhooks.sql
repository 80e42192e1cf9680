-- Notifications and outbound webhooks: SQLite's 0002 and 0008.
--
-- Both queues are their tables, shared by every node's workers: a claim
-- locks the due rows it takes with FOR UPDATE SKIP LOCKED, so claims on
-- several nodes split the due rows between them without waiting on each
-- other, and a row is leased to one worker at a time. `seq` is insertion
-- order (FIFO within a priority; a delivery log newest first).

CREATE TABLE notifications (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text COLLATE "C" NOT NULL UNIQUE,
    channel      text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    recipient    text NOT NULL,
    template     text NOT NULL,
    vars         jsonb NOT NULL DEFAULT '{}',
    -- 0 urgent, 1 high, 2 normal, 3 low: ascending is the claim order.
    priority     smallint NOT NULL CHECK (priority BETWEEN 0 AND 3),
    status       text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'dead')),
    -- Counted by each claim, so a claim's count names it (see complete_attempts).
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error   text,
    subject      text,
    body         text,
    html         text,
    event_id     bigint,
    resent_from  text COLLATE "C",
    -- The earliest time the next attempt may start.
    send_at      timestamptz NOT NULL,
    -- While `sending`: the claim expires then, and the row goes back to the queue.
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    sent_at      timestamptz,
    -- One reaction per event, template and recipient, however many nodes
    -- see the event (NULL event ids never collide).
    CONSTRAINT notifications_reaction UNIQUE (event_id, template, recipient)
);

CREATE INDEX notifications_waiting ON notifications (channel, priority, seq)
    WHERE status IN ('queued', 'failed');
CREATE INDEX notifications_leased ON notifications (lease_until) WHERE status = 'sending';
CREATE INDEX notifications_status ON notifications (status);
CREATE INDEX notifications_template_created ON notifications (template, created_at);

CREATE TABLE notification_attempts (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id text COLLATE "C" NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    number          integer NOT NULL,
    at              timestamptz NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('sent', 'transient_error', 'permanent_error')),
    error           text,
    duration_ms     bigint NOT NULL
);

CREATE INDEX notification_attempts_by_notification ON notification_attempts (notification_id, seq);

-- What the local sinks delivered. The notification id is the key, so a
-- redelivery after a crash is never recorded twice.
CREATE TABLE notification_deliveries (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id text COLLATE "C" NOT NULL UNIQUE,
    channel         text NOT NULL,
    recipient       text NOT NULL,
    template        text NOT NULL,
    subject         text,
    body            text NOT NULL,
    html            text,
    delivered_at    timestamptz NOT NULL
);

CREATE TABLE notification_templates (
    name       text COLLATE "C" NOT NULL,
    channel    text COLLATE "C" NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    subject    text,
    body       text NOT NULL,
    html       text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (name, channel)
);

-- How far each event consumer has read the event log. It only moves
-- forward (GREATEST), so a node that read less cannot move it back. Starts
-- at the log's end, so a shop with history does not replay old events as
-- mail or deliveries.
CREATE TABLE event_cursors (
    consumer text COLLATE "C" PRIMARY KEY,
    event_id bigint NOT NULL CHECK (event_id >= 0)
);

INSERT INTO event_cursors (consumer, event_id)
    SELECT c.consumer, (SELECT coalesce(max(id), 0) FROM events)
    FROM (VALUES ('notifications'), ('webhooks')) AS c(consumer);

CREATE TABLE webhooks (
    id              text COLLATE "C" PRIMARY KEY,
    url             text NOT NULL,
    -- The event type patterns.
    events          text[] NOT NULL,
    description     text,
    secret          text NOT NULL,
    -- After a rotation the old secret also signs until then.
    previous_secret text,
    previous_until  timestamptz,
    status          text NOT NULL CHECK (status IN ('active', 'disabled')),
    disabled_reason text,
    -- Since when every attempt has failed; NULL while it answers.
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE webhook_deliveries (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text COLLATE "C" NOT NULL UNIQUE,
    webhook_id      text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        bigint NOT NULL,
    event_type      text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    response_status integer,
    last_error      text,
    duration_ms     bigint,
    -- Due time of the next attempt while pending or failed.
    next_attempt_at timestamptz,
    -- A claimed delivery is someone's until then; after it, anyone's again.
    -- The completion names it: a lapsed lease's late completion is dropped.
    lease_until     timestamptz,
    -- The retry window runs from here (the queueing, or the last replay).
    window_start    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    -- One delivery per event and endpoint, however often (and on however
    -- many nodes) the feeder reads the log.
    CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, event_id)
);

-- The claim: due deliveries in event order.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (event_id)
    WHERE status IN ('pending', 'failed');
-- An endpoint's delivery log, newest first, and its replays.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, seq);
