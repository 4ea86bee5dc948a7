package gateway

import (
	"io"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli/clitest"
)

// TestParseConfig checks that flags override the environment, that a bad
// value is reported naming the flag or the variable it came from, and
// that --help works whatever the environment holds.
func TestParseConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) map[string]string {
		m := map[string]string{"ORDO_CATALOG_URL": "postgres://postgres@127.0.0.1:1/postgres", "ORDO_WORKSPACE_CONFIG": "ws.json"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	cfg, err := parseConfig(nil, env(), io.Discard)
	if err != nil || cfg.HTTPAddr != ":8080" {
		t.Errorf("parseConfig without flags = %q, %v; want :8080", cfg.HTTPAddr, err)
	}
	if cfg.MaxInflightMiB != 512 || cfg.ReadHeaderTimeout != 5*time.Second || cfg.ReadTimeout != 30*time.Second || cfg.IdleTimeout != time.Minute {
		t.Errorf("defaults: inflight %d MiB, timeouts %v %v %v", cfg.MaxInflightMiB, cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.IdleTimeout)
	}
	cfg, err = parseConfig(nil, env("ORDO_MAX_INFLIGHT_MIB", "64", "ORDO_READ_TIMEOUT", "2s"), io.Discard)
	if err != nil || cfg.MaxInflightMiB != 64 || cfg.ReadTimeout != 2*time.Second {
		t.Errorf("parseConfig = %d MiB, %v, %v; want 64 MiB, 2s", cfg.MaxInflightMiB, cfg.ReadTimeout, err)
	}
	cfg, err = parseConfig([]string{"-addr", "127.0.0.1:9100"}, env("ORDO_HTTP_ADDR", "127.0.0.1:9000"), io.Discard)
	if err != nil || cfg.HTTPAddr != "127.0.0.1:9100" {
		t.Errorf("parseConfig with -addr = %q, %v; want the flag's 127.0.0.1:9100", cfg.HTTPAddr, err)
	}
	cfg, err = parseConfig([]string{"--addr", "127.0.0.1:9100"}, env("ORDO_HTTP_ADDR", "nowhere"), io.Discard)
	if err != nil || cfg.HTTPAddr != "127.0.0.1:9100" {
		t.Errorf("parseConfig with --addr over a bad ORDO_HTTP_ADDR = %q, %v; want the flag's 127.0.0.1:9100", cfg.HTTPAddr, err)
	}

	clitest.CheckUsageErrors(t, parseConfig, []clitest.UsageCase{
		{Args: []string{"-addr", "nowhere"}, Environ: env(), Want: "-addr"},
		{Args: []string{"--addr", "127.0.0.1:99999"}, Environ: env(), Want: "-addr"},
		{Environ: env("ORDO_HTTP_ADDR", "nowhere"), Want: "ORDO_HTTP_ADDR"},
		{Args: []string{"-addr", ":8080"}, Want: "ORDO_CATALOG_URL"},
		{Environ: env("ORDO_BATCH_MAX_ROWS", "lots"), Want: "ORDO_BATCH_MAX_ROWS"},
		{Environ: env("ORDO_WRITE_TIMEOUT", "-1s"), Want: "ORDO_WRITE_TIMEOUT"},
		{Environ: env("ORDO_PUBLIC_URL", "events.example.com"), Want: "ORDO_PUBLIC_URL"},
		{Environ: env("ORDO_MAX_INFLIGHT_MIB", "8"), Want: "ORDO_MAX_INFLIGHT_MIB"},
		{Environ: env("ORDO_MAX_INFLIGHT_MIB", "lots"), Want: "ORDO_MAX_INFLIGHT_MIB"},
		{Environ: env("ORDO_READ_HEADER_TIMEOUT", "0s"), Want: "ORDO_READ_HEADER_TIMEOUT"},
		{Environ: env("ORDO_READ_TIMEOUT", "-1s"), Want: "ORDO_READ_TIMEOUT"},
		{Environ: env("ORDO_IDLE_TIMEOUT", "soon"), Want: "ORDO_IDLE_TIMEOUT"},
		{Args: []string{"-nope"}, Environ: env(), Want: "-nope"},
		{Args: []string{"serve"}, Environ: env(), Want: `"serve"`},
	})

	for _, environ := range []map[string]string{{}, env("ORDO_BATCH_MAX_ROWS", "lots")} {
		clitest.CheckHelp(t, parseConfig, []string{"-h"}, environ, "ORDO_CATALOG_URL", "ORDO_HTTP_ADDR", "-addr", "ORDO_MAX_INFLIGHT_MIB", "ORDO_READ_HEADER_TIMEOUT", "ORDO_READ_TIMEOUT", "ORDO_IDLE_TIMEOUT")
	}
}
