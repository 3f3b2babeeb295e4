-- 1.1.0 shows each item's priority.
ALTER TABLE items ADD COLUMN priority integer NOT NULL DEFAULT 3;
UPDATE items SET priority = 1 + id % 5;
UPDATE schema_revision SET revision = '1.1.0';
