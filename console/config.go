package console

import (
	"fmt"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

// MinTokenLength is the shortest ORDO_CONSOLE_TOKEN the console accepts.
const MinTokenLength = 16

// Config is the console's settings.
type Config struct {
	cli.CatalogConfig
	// Addr is the admin address the console listens on. Defaults to
	// 127.0.0.1:9190, reachable from this machine only.
	Addr string `env:"ORDO_CONSOLE_ADDR" envDefault:"127.0.0.1:9190"`
	// Token is the secret every API request must carry. Required; it is
	// removed from the environment once read.
	Token string `env:"ORDO_CONSOLE_TOKEN,unset"`
}

// Validate checks the settings.
func (c *Config) Validate() error {
	if err := c.CatalogConfig.Validate(); err != nil {
		return err
	}
	if c.Addr == "" {
		return &cli.SettingError{Var: "ORDO_CONSOLE_ADDR", Msg: "must not be empty"}
	}
	if c.Token == "" {
		return &cli.SettingError{Var: "ORDO_CONSOLE_TOKEN", Msg: "required: the console can replay and purge, so it does not start without a token (e.g. openssl rand -hex 24)"}
	}
	if len(c.Token) < MinTokenLength {
		return &cli.SettingError{Var: "ORDO_CONSOLE_TOKEN", Msg: fmt.Sprintf("too short: at least %d characters", MinTokenLength)}
	}
	return nil
}

// Settings is the settings help of `ordoctl console`.
const Settings = `  ORDO_CATALOG_URL    Postgres URL of the catalog database (required)
  ORDO_CONSOLE_ADDR   listen address (default 127.0.0.1:9190); port 0 picks a free one
  ORDO_CONSOLE_TOKEN  secret the page and API calls must present, at least 16 characters (required)
  ORDO_LOG_FORMAT     text or json (default text)
  ORDO_LOG_LEVEL      debug, info, warn or error (default info)
`
