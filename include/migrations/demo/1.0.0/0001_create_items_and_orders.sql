-- The schema and data version 1.0.0 runs on: 10 000 items and 50 000 orders.
CREATE TABLE items (
    id integer PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z'
);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    item_id integer NOT NULL REFERENCES items (id),
    quantity integer NOT NULL CHECK (quantity > 0)
);
INSERT INTO items (id, name)
SELECT g, 'item-' || lpad(g::text, 5, '0') FROM generate_series(1, 10000) AS g;
INSERT INTO orders (id, item_id, quantity)
SELECT g, 1 + (g * 7919) % 10000, 1 + g % 9 FROM generate_series(1, 50000) AS g;
-- The schema revision, as Alembic keeps it in alembic_version: each build knows the revisions it can run on
-- and refuses to start on any other (see include/demo_app/server.py).
CREATE TABLE schema_revision (revision text PRIMARY KEY);
INSERT INTO schema_revision VALUES ('1.0.0');
