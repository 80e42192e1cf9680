-- Invoices and the shop's document templates: SQLite's 0015.
--
-- An invoice's `sequence` is the shop's one gapless series. A sequence
-- object would leave a hole for every issue that rolls back, so the next
-- number comes from the one row of `invoice_counter`, incremented in the
-- transaction that inserts the invoice: its row lock queues racing issues,
-- and a rolled-back issue rolls its increment back too. UNIQUE backs that
-- up. `number` is the prefix at issue plus the sequence, kept as issued.

CREATE TABLE invoice_counter (
    only_row       boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_sequence  bigint NOT NULL CHECK (last_sequence >= 0)
);

INSERT INTO invoice_counter (last_sequence) VALUES (0);

CREATE TABLE invoices (
    order_id   text COLLATE "C" PRIMARY KEY REFERENCES orders (id),
    sequence   bigint NOT NULL UNIQUE CHECK (sequence >= 1),
    number     text NOT NULL UNIQUE,
    issued_at  timestamptz NOT NULL
);

CREATE TABLE document_templates (
    kind        text PRIMARY KEY CHECK (kind IN ('invoice', 'packing_slip')),
    html        text NOT NULL,
    updated_at  timestamptz NOT NULL
);
