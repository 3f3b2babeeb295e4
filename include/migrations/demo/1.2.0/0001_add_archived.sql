-- 1.2.0 archives old items and keeps a log of what it archived.
ALTER TABLE items ADD COLUMN archived boolean NOT NULL DEFAULT false;
UPDATE items SET archived = true WHERE id % 7 = 0;
CREATE TABLE item_archive_log (
    item_id integer PRIMARY KEY REFERENCES items (id),
    archived_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO item_archive_log (item_id) SELECT id FROM items WHERE archived;
UPDATE schema_revision SET revision = '1.2.0';
