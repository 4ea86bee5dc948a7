ALTER TABLE ordo_catalog.moves DROP COLUMN IF EXISTS heartbeat_at;
