-- Every append to the event log notifies the nodes that listen, with the
-- id of its last event, when its transaction commits (PostgreSQL delivers
-- NOTIFY at commit and never for a rollback). A node that already
-- announced that id reads nothing; another reads the log from where it is.
-- A statement-level trigger costs one notification per change, whatever
-- its number of events, and no round trip.
CREATE FUNCTION notify_events_appended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shop_events', (SELECT max(id) FROM appended)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();
