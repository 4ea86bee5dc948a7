package rebalance

import (
	"fmt"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/dsn"
)

// MaxShards bounds ORDO_SHARDS: every shard is a table on some node.
const MaxShards = 16384

// Config is rebalance's settings, read from the environment.
type Config struct {
	// CatalogURL is the Postgres URL of the catalog database. Required.
	CatalogURL string `env:"ORDO_CATALOG_URL,required,notEmpty"`
	// Nodes is the desired storage nodes, comma-separated name=postgres-url
	// pairs. Required.
	Nodes string `env:"ORDO_NODES,required,notEmpty"`
	// Shards is the number of virtual shards, fixed at bootstrap. Defaults
	// to 128.
	Shards int `env:"ORDO_SHARDS" envDefault:"128"`
	Log    cli.LogConfig

	// nodes is Nodes parsed by Validate.
	nodes []dsn.Node
}

// Validate checks the settings and parses the node list.
func (c *Config) Validate() error {
	if err := dsn.Check(c.CatalogURL); err != nil {
		return &cli.SettingError{Var: "ORDO_CATALOG_URL", Msg: err.Error()}
	}
	nodes, err := dsn.ParseNodes(c.Nodes)
	if err != nil {
		return &cli.SettingError{Var: "ORDO_NODES", Msg: err.Error()}
	}
	c.nodes = nodes
	if c.Shards < 1 || c.Shards > MaxShards {
		return &cli.SettingError{Var: "ORDO_SHARDS", Msg: fmt.Sprintf("must be between 1 and %d, not %d", MaxShards, c.Shards)}
	}
	return c.Log.Validate()
}

// DesiredNodes returns the parsed ORDO_NODES.
func (c *Config) DesiredNodes() []dsn.Node { return c.nodes }
