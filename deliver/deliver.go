package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Event is one stored event to deliver: its JSON exactly as stored, and its
// ids.
type Event struct {
	// MessageID is the event's messageId, the same on every copy of it.
	MessageID string

	// Payload is the event object exactly as stored. Destinations send these
	// bytes unchanged.
	Payload json.RawMessage
}

// Result says what happened to one Send.
//
// Err is nil exactly when the destination accepted the events. When Err is
// not nil, Retryable says whether to try again later (true) or dead-letter
// the events at once (false).
type Result struct {
	// Status is the HTTP status of the response, or 0 if there was none
	// (connection error, timeout, canceled context).
	Status int

	// Body is the start of the response body, at most MaxResponseBody bytes,
	// made valid UTF-8 without NUL bytes so it can be stored as text.
	Body string

	// Err describes the failure, or is nil on success.
	Err error

	// Retryable is true when a failed Send may succeed if tried again.
	// It is false on success.
	Retryable bool
}

// OK reports whether the destination accepted the events.
func (r Result) OK() bool { return r.Err == nil }

// MaxResponseBody is how many bytes of a response body a Result keeps.
const MaxResponseBody = 2 << 10

// Destination is one configured destination of a workspace. Its methods are
// safe for concurrent use.
type Destination interface {
	// MaxBatchSize is how many events one Send may carry (>=1).
	MaxBatchSize() int

	// Send delivers events (1 <= len <= MaxBatchSize) as one unit; ctx
	// governs the whole request, response body included. A Send whose ctx
	// ends before it completes returns a retryable Result.
	Send(ctx context.Context, events []Event) Result
}

// destinationType is one entry of the registry.
type destinationType struct {
	validate func(config json.RawMessage) error
	new      func(config json.RawMessage) (Destination, error)
}

// types is the registry of destination types, by the name used in the
// workspace file's "type" field.
var types = map[string]destinationType{
	"webhook": {
		validate: func(config json.RawMessage) error {
			_, err := ParseWebhookConfig(config)
			return err
		},
		new: func(config json.RawMessage) (Destination, error) {
			cfg, err := ParseWebhookConfig(config)
			if err != nil {
				return nil, err
			}
			return NewWebhook(cfg)
		},
	},
}

// KnownType reports whether typ names a destination type.
func KnownType(typ string) bool {
	_, ok := types[typ]
	return ok
}

// Types returns the names of all destination types, sorted.
func Types() []string {
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ValidateConfig checks config (a destination's "config" object, which may
// be nil or JSON null when absent) for destination type typ, without
// building anything.
func ValidateConfig(typ string, config json.RawMessage) error {
	t, err := lookup(typ)
	if err != nil {
		return err
	}
	return t.validate(config)
}

// New builds a destination of type typ from its config.
func New(typ string, config json.RawMessage) (Destination, error) {
	t, err := lookup(typ)
	if err != nil {
		return nil, err
	}
	return t.new(config)
}

func lookup(typ string) (destinationType, error) {
	t, ok := types[typ]
	if !ok {
		return destinationType{}, fmt.Errorf("unknown destination type %q (known: %s)", typ, strings.Join(Types(), ", "))
	}
	return t, nil
}
