package cli

import "github.com/ordo-pipeline/ordo/internal/dsn"

// CatalogConfig is the settings of a program that needs only the catalog:
// ORDO_CATALOG_URL and the log settings.
type CatalogConfig struct {
	// CatalogURL is the Postgres URL of the catalog database. Required.
	CatalogURL string `env:"ORDO_CATALOG_URL,required,notEmpty"`
	Log        LogConfig
}

// Validate checks the catalog URL and the log settings.
func (c *CatalogConfig) Validate() error {
	if err := dsn.Check(c.CatalogURL); err != nil {
		return &SettingError{Var: "ORDO_CATALOG_URL", Msg: err.Error()}
	}
	return c.Log.Validate()
}
