package deadletter

import (
	"encoding/json"
	"time"
)

// Letter is one dead letter: an event one destination gave up on.
type Letter struct {
	Node         string          `json:"node"`
	Shard        int             `json:"shard"`
	Epoch        int64           `json:"epoch"`
	Seq          int64           `json:"seq"`
	MessageID    string          `json:"messageId"`
	Destination  string          `json:"destination"`
	Source       string          `json:"source"`
	OrderingKey  string          `json:"orderingKey"`
	ReceivedAt   time.Time       `json:"receivedAt"`
	FailedAt     time.Time       `json:"failedAt"`
	Attempts     int             `json:"attempts"`
	LastStatus   *int            `json:"lastStatus"` // nil: no response
	LastResponse string          `json:"lastResponse"`
	Reason       string          `json:"reason"`
	Event        json.RawMessage `json:"event"`
}

// NodeRead is how reading one node went.
type NodeRead struct {
	Node  string `json:"node"`
	Count int64  `json:"count"` // dead letters matching the filter
	Err   error  `json:"-"`
}

// MarshalJSON adds the error as text.
func (r NodeRead) MarshalJSON() ([]byte, error) {
	type plain NodeRead
	var msg string
	if r.Err != nil {
		msg = r.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(r), msg})
}

// Group is the number of dead letters of one node, destination, reason
// and last status.
type Group struct {
	Node        string    `json:"node"`
	Destination string    `json:"destination"`
	Reason      string    `json:"reason"`
	LastStatus  *int      `json:"lastStatus"`
	Count       int64     `json:"count"`
	Oldest      time.Time `json:"oldest"`
	Newest      time.Time `json:"newest"`
}
