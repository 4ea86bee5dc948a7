package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// readyPoll is how often waitReady asks again.
const readyPoll = 100 * time.Millisecond

// waitReady returns once every URL of urls answers GET with 200, or with
// an error naming the first URL that does not once ctx is done.
func waitReady(ctx context.Context, urls []string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		var last string
		for {
			status, err := get(ctx, client, u)
			if status == http.StatusOK {
				break
			}
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("status %d", status)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready (last answer: %s): %w", u, last, context.Cause(ctx))
			case <-time.After(readyPoll):
			}
		}
	}
	return nil
}

// get returns the status of a GET of u.
func get(ctx context.Context, client *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
