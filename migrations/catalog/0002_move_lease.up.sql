-- heartbeat_at is the lease of a move's executor: the process that holds
-- the move's lock refreshes it every second. A move whose lock is held
-- but whose lease is old has a silent executor (cut off from the network,
-- or frozen): workers end its catalog session so that the move's lock is
-- free and another process resumes the move.
ALTER TABLE ordo_catalog.moves ADD COLUMN heartbeat_at timestamptz;
