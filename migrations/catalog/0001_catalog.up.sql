-- The catalog: which Postgres nodes exist, where each shard lives, and the
-- moves that change that.
CREATE SCHEMA IF NOT EXISTS ordo_catalog;

-- cluster holds the facts fixed at bootstrap. One row.
CREATE TABLE ordo_catalog.cluster (
    id          int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    shard_count int NOT NULL CHECK (shard_count > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- nodes are the storage Postgres servers. A node leaving the cluster is
-- 'draining' until it holds no shard, then 'detached'.
CREATE TABLE ordo_catalog.nodes (
    name       text PRIMARY KEY,
    url        text NOT NULL,
    state      text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'detached')),
    added_at   timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- shards is the placement map. epoch grows by one on every move; state is
-- 'moving' between the cut-over to the target and the end of the copy.
CREATE TABLE ordo_catalog.shards (
    shard      int PRIMARY KEY CHECK (shard >= 0),
    node       text NOT NULL REFERENCES ordo_catalog.nodes (name),
    epoch      bigint NOT NULL DEFAULT 1 CHECK (epoch > 0),
    state      text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'moving')),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shards_node_idx ON ordo_catalog.shards (node);

-- moves records every shard move and the step it reached, so an interrupted
-- move resumes where it stopped.
CREATE TABLE ordo_catalog.moves (
    id          bigserial PRIMARY KEY,
    shard       int NOT NULL REFERENCES ordo_catalog.shards (shard),
    source      text NOT NULL REFERENCES ordo_catalog.nodes (name),
    target      text NOT NULL REFERENCES ordo_catalog.nodes (name),
    from_epoch  bigint NOT NULL,
    to_epoch    bigint NOT NULL,
    step        text NOT NULL DEFAULT 'planned',
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    rows_copied bigint NOT NULL DEFAULT 0,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
-- At most one unfinished move per shard.
CREATE UNIQUE INDEX moves_one_open_per_shard ON ordo_catalog.moves (shard)
    WHERE state IN ('pending', 'running');

-- workers is the heartbeat table workers use to count live workers for the
-- fair share of shards.
CREATE TABLE ordo_catalog.workers (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Any change to placement wakes gateways and workers listening on
-- ordo_placement; they also poll slowly in case a notification is missed.
CREATE FUNCTION ordo_catalog.notify_placement() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ordo_placement', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER shards_notify AFTER INSERT OR UPDATE OR DELETE ON ordo_catalog.shards
    FOR EACH STATEMENT EXECUTE FUNCTION ordo_catalog.notify_placement();
CREATE TRIGGER nodes_notify AFTER INSERT OR UPDATE OR DELETE ON ordo_catalog.nodes
    FOR EACH STATEMENT EXECUTE FUNCTION ordo_catalog.notify_placement();
CREATE TRIGGER workers_notify AFTER INSERT OR DELETE ON ordo_catalog.workers
    FOR EACH STATEMENT EXECUTE FUNCTION ordo_catalog.notify_placement();
