package migrations

import "context"

// NodeTo brings the node database at url to version, for upgrade tests.
func NodeTo(ctx context.Context, url string, version uint) error {
	return applyTo(ctx, url, nodeSet, version)
}
