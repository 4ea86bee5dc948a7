-- Shard tables become the partitions of one parent, ordo.events, listed by
-- shard, so that a writer sends a whole batch in one COPY into the parent
-- however many shards it touches. Each partition keeps its name
-- (ordo.shard_N), its own primary key (epoch, seq), its own defaults for
-- writers that insert into it directly, and two constraints:
--   ordo_shard  CHECK (shard = N), so that ATTACH needs no scan;
--   ordo_epoch  CHECK (epoch = E OR copied), so that a writer whose shard
--               map is out of date (it names an older epoch for this node)
--               is refused instead of writing rows that would sort behind
--               the shard's current ones. Rows copied in by a move keep
--               their older epochs and carry copied = true.
-- Column order matches the per-shard tables of 0001 with shard and copied
-- appended, so that existing tables attach as they are and rows routed
-- through the parent need no conversion.
CREATE TABLE ordo.events (
    epoch            bigint NOT NULL,
    seq              bigint NOT NULL DEFAULT nextval('ordo.event_seq'),
    ordering_key     text NOT NULL,
    source_id        text NOT NULL,
    destination_id   text NOT NULL,
    message_id       text NOT NULL,
    received_at      timestamptz NOT NULL,
    event            json NOT NULL,
    attempts         int NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    next_attempt_at  timestamptz,
    last_status      int,
    last_response    text,
    shard            int NOT NULL,
    copied           boolean NOT NULL DEFAULT false
) PARTITION BY LIST (shard);

-- The fence is now a row trigger: statement triggers on a partition do not
-- fire for rows routed through the parent. The error names the table, so
-- that a writer knows which shard of its batch moved.
CREATE OR REPLACE FUNCTION ordo.fenced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ordo: %.% is fenced for a shard move; reload the placement map', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'OR001', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME;
END;
$$;

-- Attach every existing shard table, pending rows, retry state, open moves
-- and fences included.
DO $$
DECLARE
    t      record;
    shard  int;
    epoch  bigint;
    fenced boolean;
BEGIN
    FOR t IN
        SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'ordo' AND c.relkind = 'r' AND c.relname ~ '^shard_[0-9]+$'
        ORDER BY c.relname
    LOOP
        shard := substr(t.relname, 7)::int;
        SELECT pg_get_expr(d.adbin, d.adrelid)::bigint INTO epoch
        FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        WHERE d.adrelid = t.oid AND a.attname = 'epoch';
        IF epoch IS NULL THEN
            RAISE EXCEPTION 'ordo: table ordo.% has no epoch default; it is not a shard table', t.relname;
        END IF;
        SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t.oid AND tgname = 'ordo_fence') INTO fenced;
        -- Rows already there may carry older epochs (copied by a move):
        -- they all count as copied. New rows default to false.
        EXECUTE format('ALTER TABLE ordo.%I ADD COLUMN shard int NOT NULL DEFAULT %s, ADD COLUMN copied boolean NOT NULL DEFAULT true', t.relname, shard);
        EXECUTE format('ALTER TABLE ordo.%I ALTER COLUMN copied SET DEFAULT false', t.relname);
        EXECUTE format('ALTER TABLE ordo.%I ADD CONSTRAINT ordo_shard CHECK (shard = %s), ADD CONSTRAINT ordo_epoch CHECK (epoch = %s OR copied)', t.relname, shard, epoch);
        IF fenced THEN
            EXECUTE format('DROP TRIGGER ordo_fence ON ordo.%I', t.relname);
            EXECUTE format('CREATE TRIGGER ordo_fence BEFORE INSERT ON ordo.%I FOR EACH ROW EXECUTE FUNCTION ordo.fenced()', t.relname);
        END IF;
        EXECUTE format('ALTER TABLE ordo.events ATTACH PARTITION ordo.%I FOR VALUES IN (%s)', t.relname, shard);
    END LOOP;
END;
$$;
