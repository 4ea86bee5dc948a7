DROP TABLE IF EXISTS ordo_catalog.shard_owners;
