-- shard_owners says which worker holds which shard, and since when; a row
-- whose worker is NULL is a shard nobody has held since then. Workers
-- write it when they claim and release a shard, and when they end the
-- session of a silent holder; `rebalance status` reads it. It is a record
-- for operators, not the truth: the truth is the shard's advisory lock on
-- its node. No trigger: changes of ownership must not wake every gateway.
CREATE TABLE ordo_catalog.shard_owners (
    shard  int PRIMARY KEY,
    worker text,
    node   text,
    since  timestamptz NOT NULL DEFAULT now()
);
