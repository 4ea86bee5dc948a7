package worker

import (
	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/workspace"
)

// destination is a workspace destination ready to send to.
type destination struct {
	id      string
	send    deliver.Destination
	retry   workspace.RetryPolicy
	metrics *destMetrics
	// sem bounds the requests in flight to this destination across the
	// whole worker, so a slow destination cannot take every slot.
	sem chan struct{}
}
