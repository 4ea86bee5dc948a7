-- A storage node: one table per shard it holds (created by package schema,
-- not here), the sequence that orders rows within an epoch, and the dead
-- letters of its shards.
CREATE SCHEMA IF NOT EXISTS ordo;

-- event_seq orders the rows of every shard table on this node. Rows keep
-- their (epoch, seq) when copied to another node; a moved shard's new rows
-- get a higher epoch, so (epoch, seq) stays a total order per shard.
CREATE SEQUENCE ordo.event_seq AS bigint CACHE 1;

-- dead_letters keeps events that could not be delivered, with the last
-- status and response, until an operator removes them. They move with
-- their shard.
CREATE TABLE ordo.dead_letters (
    shard          int NOT NULL,
    epoch          bigint NOT NULL,
    seq            bigint NOT NULL,
    ordering_key   text NOT NULL,
    source_id      text NOT NULL,
    destination_id text NOT NULL,
    message_id     text NOT NULL,
    received_at    timestamptz NOT NULL,
    event          json NOT NULL,
    attempts       int NOT NULL,
    last_status    int,
    last_response  text,
    reason         text NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shard, epoch, seq)
);
CREATE INDEX dead_letters_destination_idx ON ordo.dead_letters (destination_id, failed_at);

-- fenced is the trigger function that fences a shard table during a move:
-- every insert fails with SQLSTATE OR001, which writers recognise, reload
-- the placement map and write to the shard's new node. Updates and
-- deletes of existing rows (workers acknowledging) still work.
CREATE FUNCTION ordo.fenced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ordo: %.% is fenced for a shard move; reload the placement map', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'OR001';
END;
$$;
