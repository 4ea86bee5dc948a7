package rebalance

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestSessionsNoticeSilentPeers checks the settings of every kind of
// session rebalance opens, as the server sees them: keepalives and a user
// timeout on the server's end (so a rebalance cut off from the network
// loses its sessions, and with them a move's locks, in seconds, not the
// kernel's two hours), the timeouts, and the name workers look for.
func TestSessionsNoticeSilentPeers(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	ctx := t.Context()
	pool, err := catalogPool(ctx, b.catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pooled, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pooled.Release()
	catalog, err := connectCatalog(ctx, b.catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close(context.Background())
	node, err := connectNode(ctx, b.nodes[0].URL())
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(context.Background())

	common := map[string]string{
		"tcp_keepalives_idle":                 "2",
		"tcp_keepalives_interval":             "2",
		"tcp_keepalives_count":                "2",
		"tcp_user_timeout":                    "6000",
		"application_name":                    AppName,
		"idle_in_transaction_session_timeout": "5min",
	}
	catalogWant := map[string]string{"statement_timeout": "1min", "lock_timeout": "30s"}
	nodeWant := map[string]string{"statement_timeout": "0", "lock_timeout": "10s"}
	for _, c := range []struct {
		name string
		conn *pgx.Conn
		want map[string]string
	}{
		{"catalog pool", pooled.Conn(), catalogWant},
		{"catalog session", catalog, catalogWant},
		{"node session", node, nodeWant},
	} {
		for _, want := range []map[string]string{common, c.want} {
			for setting, value := range want {
				var got string
				if err := c.conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != value {
					t.Errorf("%s: %s = %q, want %q", c.name, setting, got, value)
				}
			}
		}
	}
}
