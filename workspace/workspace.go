package workspace

import (
	"encoding/json"
	"fmt"
	"os"
)

// Workspace is a loaded and validated workspace file.
type Workspace struct {
	// Sources are the sources in file order.
	Sources []Source

	// Destinations are the destinations in file order.
	Destinations []Destination

	sourceByWriteKey map[string]int
	destinationByID  map[string]int
}

// Source is what clients write to, authenticated by its write key.
type Source struct {
	// ID names the source; unique in the workspace.
	ID string

	// WriteKey authenticates the source's clients (the HTTP Basic user
	// name); unique in the workspace.
	WriteKey string

	// Destinations are the ids of the destinations that receive the
	// source's events, each an existing destination, none twice. May be
	// empty.
	Destinations []string
}

// Destination is where events go.
type Destination struct {
	// ID names the destination; unique in the workspace.
	ID string

	// Type is the destination type, one package deliver knows
	// (deliver.KnownType).
	Type string

	// Config is the destination's "config" object exactly as written, for
	// its type to parse (deliver.New); nil when absent or null. Its type
	// has validated it.
	Config json.RawMessage

	// Retry says how failed deliveries are retried.
	Retry RetryPolicy
}

// Load reads the workspace file at path and parses it with Parse.
func Load(path string) (*Workspace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	w, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("workspace: %s: %w", path, err)
	}
	return w, nil
}

// Parse parses and validates a workspace file, applying defaults. Errors
// start with "workspace: " and name the problem and the item, such as
//
//	workspace: source "web": unknown destination "hoook"
func Parse(data []byte) (*Workspace, error) {
	w, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	return w, nil
}

// SourceByWriteKey returns the source whose write key is key.
func (w *Workspace) SourceByWriteKey(key string) (*Source, bool) {
	i, ok := w.sourceByWriteKey[key]
	if !ok {
		return nil, false
	}
	return &w.Sources[i], true
}

// Destination returns the destination whose id is id.
func (w *Workspace) Destination(id string) (*Destination, bool) {
	i, ok := w.destinationByID[id]
	if !ok {
		return nil, false
	}
	return &w.Destinations[i], true
}
