-- Limits against holding stock without buying (issue 20).

-- The client address that made an anonymous cart, so one address cannot
-- hold any number of carts (and their stock) at once.
ALTER TABLE carts ADD COLUMN client_ip TEXT;
CREATE INDEX carts_client ON carts (client_ip) WHERE status = 'active' AND client_ip IS NOT NULL;

-- Who searched (a digest of the client address), so a query becomes a
-- suggestion only once several clients searched it.
ALTER TABLE search_queries ADD COLUMN client TEXT;

-- Who viewed (a digest of the client address), to cap how much one client
-- can pair; and each signed-in account counts once per pair of products.
ALTER TABLE product_views ADD COLUMN client TEXT;
CREATE INDEX product_views_client ON product_views (client, at);
CREATE TABLE product_pair_viewers (
    product_id  TEXT NOT NULL,
    other_id    TEXT NOT NULL,
    viewer      TEXT NOT NULL,
    PRIMARY KEY (product_id, other_id, viewer)
) WITHOUT ROWID;
