package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ordo-pipeline/ordo/workspace"
)

// The generated workspace: one source whose events go to the demo sink.
const (
	devSourceID      = "web"
	devWriteKey      = "wk_dev_123"
	devDestinationID = "sink"
	workspaceName    = "workspace.json"
)

// devWorkspace returns the generated workspace file, whose webhook
// destination posts to sinkURL.
func devWorkspace(sinkURL string) ([]byte, error) {
	type source struct {
		ID           string   `json:"id"`
		WriteKey     string   `json:"writeKey"`
		Destinations []string `json:"destinations"`
	}
	type webhookConfig struct {
		URL          string `json:"url"`
		Timeout      string `json:"timeout"`
		MaxBatchSize int    `json:"maxBatchSize"`
	}
	type retry struct {
		InitialBackoff string `json:"initialBackoff"`
		MaxBackoff     string `json:"maxBackoff"`
	}
	type destination struct {
		ID     string        `json:"id"`
		Type   string        `json:"type"`
		Config webhookConfig `json:"config"`
		Retry  retry         `json:"retry"`
	}
	type file struct {
		Sources      []source      `json:"sources"`
		Destinations []destination `json:"destinations"`
	}
	data, err := json.MarshalIndent(file{
		Sources: []source{{ID: devSourceID, WriteKey: devWriteKey, Destinations: []string{devDestinationID}}},
		Destinations: []destination{{
			ID:     devDestinationID,
			Type:   "webhook",
			Config: webhookConfig{URL: sinkURL, Timeout: "10s", MaxBatchSize: 1},
			// Events for a sink that was down reach it soon after it is back.
			Retry: retry{InitialBackoff: "1s", MaxBackoff: "10s"},
		}},
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	if _, err := workspace.Parse(data); err != nil {
		return nil, fmt.Errorf("generated an invalid workspace: %w", err)
	}
	return data, nil
}

// writeDevWorkspace writes the generated workspace to path.
func writeDevWorkspace(path, sinkURL string) error {
	data, err := devWorkspace(sinkURL)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing workspace: %w", err)
	}
	return nil
}

// exampleWriteKey returns the write key for the curl command of the banner:
// that of the first source of ws with a destination, else of its first
// source, else "".
func exampleWriteKey(ws *workspace.Workspace) string {
	for _, s := range ws.Sources {
		if len(s.Destinations) > 0 {
			return s.WriteKey
		}
	}
	if len(ws.Sources) > 0 {
		return ws.Sources[0].WriteKey
	}
	return ""
}
