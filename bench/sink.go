package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// sink is the webhook the workers deliver to: it answers 200 at once and
// counts the events it received.
type sink struct {
	url    string
	srv    *http.Server
	events atomic.Int64
	bad    atomic.Int64 // requests whose body was not an event or a batch

	mu    sync.Mutex
	first time.Time // of the first request since reset
	// arrived, when not nil, records when each messageId first arrived.
	arrived map[string]time.Time
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String() + "/events"}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // ends with close
	return s, nil
}

var batchPrefix = []byte(`{"batch"`)

// ServeHTTP counts one event, or the events of a {"batch": [...]} body.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.first.IsZero() {
		s.first = now
	}
	if s.arrived != nil {
		for _, id := range gjson.GetBytes(body, "messageId").Array() {
			if _, ok := s.arrived[id.Str]; !ok {
				s.arrived[id.Str] = now
			}
		}
	}
	s.mu.Unlock()
	n := int64(1)
	if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), batchPrefix) {
		var b struct {
			Batch []json.RawMessage `json:"batch"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			s.bad.Add(1)
		}
		n = int64(len(b.Batch))
	}
	s.events.Add(n)
	w.WriteHeader(http.StatusOK)
}

// track starts recording when each single-event request's messageId
// arrives, forgetting what it recorded before.
func (s *sink) track() {
	s.mu.Lock()
	s.arrived = map[string]time.Time{}
	s.mu.Unlock()
}

// arrival returns when messageId first arrived, if it has.
func (s *sink) arrival(messageID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrived[messageID]
	return t, ok
}

// reset zeroes the count and forgets the first request.
func (s *sink) reset() {
	s.events.Store(0)
	s.mu.Lock()
	s.first = time.Time{}
	s.mu.Unlock()
}

// firstAt returns when the first request since reset arrived.
func (s *sink) firstAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

func (s *sink) close() { s.srv.Close() }
