package cli

import (
	"io"
	"log/slog"
	"strings"
)

// LogConfig is the logging part of every program's settings.
type LogConfig struct {
	// Format is text or json. Defaults to text.
	Format string `env:"ORDO_LOG_FORMAT" envDefault:"text"`
	// Level is debug, info, warn or error. Defaults to info.
	Level string `env:"ORDO_LOG_LEVEL" envDefault:"info"`
}

// Validate checks the format and level.
func (c LogConfig) Validate() error {
	switch strings.ToLower(c.Format) {
	case "", "text", "json": // empty: a config built in code, not from the environment
	default:
		return &SettingError{Var: "ORDO_LOG_FORMAT", Msg: "must be text or json, not " + quote(c.Format)}
	}
	switch strings.ToLower(c.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		return &SettingError{Var: "ORDO_LOG_LEVEL", Msg: "must be debug, info, warn or error, not " + quote(c.Level)}
	}
	return nil
}

// Logger returns the logger c describes, writing to w, with the program
// name attached to every record. Call Validate first.
func (c LogConfig) Logger(w io.Writer, program string) *slog.Logger {
	var l slog.Level // info when Level is empty
	_ = l.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	if strings.EqualFold(c.Format, "json") {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("program", program)
}

func quote(s string) string { return `"` + s + `"` }
