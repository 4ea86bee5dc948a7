-- Back to standalone shard tables: detach every partition, drop the
-- columns and constraints 0002 added, and fence with statement triggers.
DO $$
DECLARE
    t      record;
    fenced boolean;
BEGIN
    FOR t IN
        SELECT c.oid, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'ordo.events'::regclass
    LOOP
        SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t.oid AND tgname = 'ordo_fence') INTO fenced;
        EXECUTE format('ALTER TABLE ordo.events DETACH PARTITION ordo.%I', t.relname);
        EXECUTE format('ALTER TABLE ordo.%I DROP CONSTRAINT ordo_epoch, DROP CONSTRAINT ordo_shard, DROP COLUMN copied, DROP COLUMN shard', t.relname);
        IF fenced THEN
            EXECUTE format('DROP TRIGGER ordo_fence ON ordo.%I', t.relname);
            EXECUTE format('CREATE TRIGGER ordo_fence BEFORE INSERT ON ordo.%I FOR EACH STATEMENT EXECUTE FUNCTION ordo.fenced()', t.relname);
        END IF;
    END LOOP;
END;
$$;
DROP TABLE ordo.events;
CREATE OR REPLACE FUNCTION ordo.fenced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ordo: %.% is fenced for a shard move; reload the placement map', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'OR001';
END;
$$;
