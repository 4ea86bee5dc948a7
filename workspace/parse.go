package workspace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/internal/jsonstrict"
)

// file is the top level of the workspace file as written. Its items are
// decoded one by one so that errors can name the item.
type file struct {
	Sources      []json.RawMessage `json:"sources"`
	Destinations []json.RawMessage `json:"destinations"`
}

type rawSource struct {
	ID           string   `json:"id"`
	WriteKey     string   `json:"writeKey"`
	Destinations []string `json:"destinations"`
}

type rawDestination struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"`
	Config json.RawMessage `json:"config"`
	Retry  json.RawMessage `json:"retry"`
}

func parse(data []byte) (*Workspace, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("file is empty")
	}
	// A first pass finds syntax errors, with their position, anywhere in
	// the file, trailing data included.
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return nil, fmt.Errorf("%s: malformed JSON: %w", position(data, syntaxErr.Offset), err)
		}
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	var f file
	if err := jsonstrict.Decode(data, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("%s: %w", position(data, typeErr.Offset), err)
		}
		return nil, err
	}

	w := &Workspace{
		Sources:          make([]Source, 0, len(f.Sources)),
		Destinations:     make([]Destination, 0, len(f.Destinations)),
		sourceByWriteKey: make(map[string]int, len(f.Sources)),
		destinationByID:  make(map[string]int, len(f.Destinations)),
	}

	for i, item := range f.Destinations {
		name := itemName("destination", i, item)
		d, err := parseDestination(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if j, dup := w.destinationByID[d.ID]; dup {
			return nil, fmt.Errorf("%s: duplicate id (destinations[%d] and destinations[%d])", name, j, i)
		}
		w.destinationByID[d.ID] = len(w.Destinations)
		w.Destinations = append(w.Destinations, d)
	}

	if len(f.Sources) == 0 {
		return nil, errors.New("no sources")
	}
	sourceIDs := make(map[string]int, len(f.Sources))
	for i, item := range f.Sources {
		name := itemName("source", i, item)
		s, err := w.parseSource(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if j, dup := sourceIDs[s.ID]; dup {
			return nil, fmt.Errorf("%s: duplicate id (sources[%d] and sources[%d])", name, j, i)
		}
		sourceIDs[s.ID] = i
		// The write key is a credential: errors name sources, never keys.
		if j, dup := w.sourceByWriteKey[s.WriteKey]; dup {
			return nil, fmt.Errorf("%s: duplicate writeKey, also the writeKey of source %q", name, w.Sources[j].ID)
		}
		w.sourceByWriteKey[s.WriteKey] = len(w.Sources)
		w.Sources = append(w.Sources, s)
	}
	return w, nil
}

// parseSource parses one source, checking it against the destinations
// already parsed.
func (w *Workspace) parseSource(item json.RawMessage) (Source, error) {
	var raw rawSource
	if err := jsonstrict.Decode(item, &raw); err != nil {
		return Source{}, err
	}
	if err := checkName("id", raw.ID); err != nil {
		return Source{}, err
	}
	if err := checkName("writeKey", raw.WriteKey); err != nil {
		return Source{}, err
	}
	if strings.Contains(raw.WriteKey, ":") {
		return Source{}, errors.New("writeKey may not contain ':' (it is the HTTP Basic user name)")
	}
	listed := make(map[string]bool, len(raw.Destinations))
	for _, id := range raw.Destinations {
		if _, ok := w.destinationByID[id]; !ok {
			return Source{}, fmt.Errorf("unknown destination %q", id)
		}
		if listed[id] {
			return Source{}, fmt.Errorf("destination %q listed twice", id)
		}
		listed[id] = true
	}
	if raw.Destinations == nil {
		raw.Destinations = []string{}
	}
	return Source(raw), nil
}

// parseDestination parses one destination.
func parseDestination(item json.RawMessage) (Destination, error) {
	var raw rawDestination
	if err := jsonstrict.Decode(item, &raw); err != nil {
		return Destination{}, err
	}
	if err := checkName("id", raw.ID); err != nil {
		return Destination{}, err
	}
	if raw.Type == "" {
		return Destination{}, errors.New("type is required")
	}
	if !deliver.KnownType(raw.Type) {
		return Destination{}, fmt.Errorf("unknown type %q (known: %s)", raw.Type, strings.Join(deliver.Types(), ", "))
	}
	if err := deliver.ValidateConfig(raw.Type, raw.Config); err != nil {
		return Destination{}, err
	}
	retry, err := parseRetry(raw.Retry)
	if err != nil {
		return Destination{}, fmt.Errorf("retry: %w", err)
	}
	config := raw.Config
	if bytes.Equal(config, []byte("null")) {
		config = nil
	}
	return Destination{ID: raw.ID, Type: raw.Type, Config: config, Retry: retry}, nil
}

// position returns "line L, column C" for an error offset of encoding/json
// in data, which points just past the offending byte.
func position(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	if col > 1 {
		col-- // the offset is past the offending byte
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// itemName names the i-th source or destination for an error message: by
// its id when it has a usable one, by its index otherwise.
func itemName(kind string, i int, item json.RawMessage) string {
	var v struct{ ID string }
	if err := json.Unmarshal(item, &v); err == nil && v.ID != "" {
		return fmt.Sprintf("%s %q", kind, v.ID)
	}
	return fmt.Sprintf("%ss[%d]", kind, i)
}

// checkName checks an id or write key: required, without control
// characters or surrounding white space.
func checkName(field, value string) error {
	switch {
	case value == "":
		return fmt.Errorf("%s is required", field)
	case strings.TrimSpace(value) != value:
		return fmt.Errorf("%s has leading or trailing white space", field)
	case strings.ContainsFunc(value, unicode.IsControl):
		return fmt.Errorf("%s holds control characters", field)
	}
	return nil
}
