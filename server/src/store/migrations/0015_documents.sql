-- Invoices and the shop's document templates.
--
-- An invoice's `sequence` is the shop's one gapless series: the writer
-- gives the next one (max + 1) in the transaction that inserts it, so a
-- rolled-back issue leaves no hole, and UNIQUE backs that up. `number` is
-- the prefix at issue plus the sequence, kept as issued.

CREATE TABLE invoices (
    order_id   TEXT PRIMARY KEY REFERENCES orders (id),
    sequence   INTEGER NOT NULL UNIQUE CHECK (sequence >= 1),
    number     TEXT NOT NULL UNIQUE,
    issued_at  INTEGER NOT NULL
);

CREATE TABLE document_templates (
    kind        TEXT PRIMARY KEY CHECK (kind IN ('invoice', 'packing_slip')),
    html        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
