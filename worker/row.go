package worker

import (
	"encoding/json"
	"time"
)

// pos is a row's place in its shard's delivery order.
type pos struct{ epoch, seq int64 }

func (p pos) less(q pos) bool {
	return p.epoch < q.epoch || (p.epoch == q.epoch && p.seq < q.seq)
}

// row is one pending delivery: one event for one destination.
type row struct {
	pos
	key         string
	dest        string
	messageID   string
	receivedAt  time.Time
	event       json.RawMessage
	attempts    int
	nextAttempt time.Time // zero when none is recorded
}

// next returns the position right after p.
func (p pos) next() pos { return pos{p.epoch, p.seq + 1} }
