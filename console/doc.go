// Package console is ordo's web console, served by `ordoctl console` on an
// admin address (never by the gateway): the nodes with their shards,
// pending events, lag and dead letters; moves in progress with a progress
// bar; workers and the shards they hold; and the dead letters, browsable
// with filters, with replay and purge behind a confirmation.
//
// The page is plain HTML, JavaScript and CSS embedded in the binary (no
// build step). It polls a small JSON API under /api/, which answers only
// requests that carry the console token (ORDO_CONSOLE_TOKEN) as a bearer
// token; the console refuses to start without one. The token is typed
// into the page once (or passed in the URL's #token= fragment, which
// browsers do not send to the server) and kept in the tab's
// sessionStorage. Since the API takes the token from a header and never
// from a cookie, another site cannot make a visitor's browser replay or
// purge. /health and /metrics answer without it.
package console
