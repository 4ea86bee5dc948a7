package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
)

// nodeName returns the name of node i, counting from 1.
func nodeName(i int) string { return fmt.Sprintf("node%d", i) }

// startNodes starts n Postgres nodes, node1 to nodeN, in parallel, with
// their data in dir/node1 and so on; a folder that holds a cluster already
// (kept by an earlier -keep run) is started with its data. firstPort is
// node1's port, the next node takes the next one; 0 picks free ports. With
// keep, removing a node leaves its data. ctx bounds the start only. On
// error, the nodes already started are removed.
func startNodes(ctx context.Context, dir string, n, firstPort int, keep bool, logger *slog.Logger) ([]*pgtest.Cluster, error) {
	nodes := make([]*pgtest.Cluster, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		port := 0
		if firstPort != 0 {
			port = firstPort + i
		}
		wg.Go(func() {
			nodes[i], errs[i] = pgtest.StartCluster(ctx, pgtest.Options{
				Name:    nodeName(i + 1),
				Port:    port,
				DataDir: filepath.Join(dir, nodeName(i+1)),
				Keep:    keep,
				Logf: func(format string, args ...any) {
					logger.Debug(fmt.Sprintf(format, args...))
				},
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = removeNodes(nodes, logger) // the start error says more
		return nil, err
	}
	return nodes, nil
}

// removeNodes stops the nodes, in parallel, and deletes their data unless
// they were started to keep it. Nil entries are skipped.
func removeNodes(nodes []*pgtest.Cluster, logger *slog.Logger) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, c := range nodes {
		if c == nil {
			continue
		}
		wg.Go(func() {
			if errs[i] = c.Remove(); errs[i] != nil {
				if tail := strings.TrimSpace(c.LogTail()); tail != "" {
					logger.Debug("end of the server log", "node", c.Name(), "log", tail)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// keptData reports whether dir holds the data of node1 from an earlier run.
func keptData(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, nodeName(1), "PG_VERSION"))
	return err == nil
}

// checkServerCanEnter returns an error when ordo-dev runs as root and dir,
// an absolute path, or a folder on the way to it is closed to other users: Postgres then runs as
// the postgres user (initdb refuses root) and could not reach its data.
func checkServerCanEnter(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("cannot use %s: Postgres runs as the postgres user when ordo-dev runs as root, and cannot enter %s (mode %v): choose another -dir, or chmod o+x %s", dir, d, fi.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
