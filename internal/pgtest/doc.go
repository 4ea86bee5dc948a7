// Package pgtest starts throwaway PostgreSQL clusters for tests and for
// `make dev`.
//
// A cluster is one running Postgres server, reachable at [Cluster.URL] with
// trust authentication. Tests call [Start] to get several clusters (several
// nodes) that are stopped and deleted when the test ends; other programs call
// [StartCluster].
//
// Clusters come from the first available backend:
//
//  1. local: the PostgreSQL server binaries (initdb, postgres), found on PATH
//     or under /usr/lib/postgresql/*/bin. initdb runs once per process into a
//     template folder that is copied for each cluster. When running as root,
//     initdb and postgres run as the postgres system user.
//  2. docker: testcontainers-go's Postgres module, when a Docker engine is
//     reachable.
//  3. url: the server named by ORDO_TEST_DATABASE_URL; each cluster is then a
//     fresh database on that server, and Stop, StopImmediate, Start and Kill
//     return [ErrUnsupported].
//
// Local clusters live in folders under os.TempDir() (TMPDIR); on a machine
// with a slow disk, TMPDIR=/dev/shm makes starting them several times
// faster. Their settings favour speed over durability across a machine crash
// (fsync and full_page_writes off), but keep every acknowledged commit across
// a server crash such as [Cluster.Kill].
//
// When no backend is available, [Start] fails the test with [ErrNoPostgres]; it
// never skips. Set ORDO_TEST_PG_BACKEND to local, docker or url to force a
// backend, and ORDO_TEST_PG_KEEP=1 to keep the data folders of test clusters.
package pgtest
