// Package gateway is ordo's HTTP ingest server, compatible with the
// RudderStack and Segment HTTP tracking APIs.
//
// A request goes through, in order: the method check (405), write-key
// authentication against the workspace file (401: HTTP Basic, else
// ?writeKey=, else the body's "writeKey"), a bounded
// read of the body, gunzipped when Content-Encoding is gzip (413 over
// MaxBodyBytes, before or after decompression), decoding (400), the size
// of each event (413 over MaxEventBytes), validation (400, naming the
// batch index for /v1/batch), enrichment (messageId, receivedAt and type;
// every other field is kept as sent) and the durable write through package
// store. 200 means every event of the request is committed in Postgres;
// when the store cannot take the write the answer is 503 with Retry-After,
// as it is when the requests in flight already hold what
// ORDO_MAX_INFLIGHT_MIB allows (inflight.go): a request reserves its body's
// size times four and 2 KiB per event of a batch. A client that takes
// longer than ORDO_READ_HEADER_TIMEOUT for its headers is disconnected, one
// that takes longer than ORDO_READ_TIMEOUT for its body gets 408.
// Errors carry a JSON body {"error": "..."}, and a request answered with an
// error stored nothing, except in the case package store documents: a
// request whose events span several nodes, one of which failed.
//
// /health answers 200 while the process runs; /ready answers 200 once the
// shard map is loaded and was reloaded from the catalog recently; /metrics
// serves Prometheus metrics from the gateway's own registry.
//
// Besides the RudderStack and Segment tracking endpoints, the gateway
// serves what their browser SDKs load first: RudderStack's source config
// (/sourceConfig/) and Segment's project settings
// (/v1/projects/{writeKey}/settings), and the rest of the surface clients
// use: Segment's short paths, /beacon/v1/batch, pixel GETs answered with
// a GIF, /v1/import, /cluster-info and /version. /v1/merge and
// /v1/webhook are refused with 501. Every answer carries CORS headers for
// the request's Origin, and a preflight to any path is answered.
package gateway
