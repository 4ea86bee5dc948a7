package pgtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
)

// A `make dev` command keeps its cluster between runs.
func ExampleStartCluster() {
	ctx := context.Background()
	c, err := pgtest.StartCluster(ctx, pgtest.Options{
		Name:    "dev",
		Port:    5433,
		DataDir: ".dev/postgres",
		Keep:    true,
		Logf:    log.Printf,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Remove() // stops the server; Keep leaves the data
	fmt.Println(c.URL())
}
