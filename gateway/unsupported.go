package gateway

import "net/http"

// Endpoints of rudder-server that ordo refuses, each with 501 and a
// message saying why and what to use instead.
var unsupported = map[string]string{
	// rudder-server stores a "merge" event (mergeProperties: identifiers
	// of one user) for its warehouse identity resolution. ordo keeps no
	// identity graph and its webhooks know no such type.
	"/v1/merge": "merge events are not supported: ordo delivers to webhooks and keeps no identity graph; " +
		"send an identify or alias event instead",
	// rudder-server's webhook source takes any third party's payload
	// (GET or POST) and turns it into events with per-source transformer
	// code. ordo has no transformers, so it cannot make events of them.
	"/v1/webhook": "webhook sources are not supported: ordo has no transformers to turn a third party's payload into events; " +
		"convert it to events and POST them to /v1/batch",
}

// refuse answers every request with 501 and msg.
func refuse(msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errorf(http.StatusNotImplemented, "%s", msg))
	}
}
