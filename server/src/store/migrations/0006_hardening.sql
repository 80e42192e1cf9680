-- Limits against holding stock without buying (issue 20).

-- The client address that made an anonymous cart, so one address cannot
-- hold any number of carts (and their stock) at once.
ALTER TABLE carts ADD COLUMN client_ip TEXT;
CREATE INDEX carts_client ON carts (client_ip) WHERE status = 'active' AND client_ip IS NOT NULL;
