package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// exampleEvent is the body of the banner's curl command.
const exampleEvent = `{"userId":"u1","event":"Signed Up","properties":{"plan":"pro"}}`

// banner is what ordo-dev prints once the system is ready.
type banner struct {
	took       time.Duration
	gatewayURL string
	sinkURL    string
	workerURLs []string // admin servers, worker-1 first
	nodes      []namedURL
	workspace  string // path of the workspace file
	writeKey   string // for the curl command; "" for none
	dir        string
	keep       bool
	rebalance  string // path of the rebalance program, as the user would type it
}

// namedURL is a Postgres node and its URL.
type namedURL struct{ name, url string }

// String formats the banner.
func (b *banner) String() string {
	var s strings.Builder
	row := func(name, value string) { fmt.Fprintf(&s, "  %-10s %s\n", name, value) }

	fmt.Fprintf(&s, "\nordo is up (%s): %d Postgres nodes, a gateway, %d workers and the demo sink\n\n",
		b.took.Round(100*time.Millisecond), len(b.nodes), len(b.workerURLs))
	row("gateway", b.gatewayURL+"  (POST /v1/track, /v1/batch, ...; GET /ready, /metrics)")
	row("sink", b.sinkURL+"/events  (prints each event it receives: see the [sink] lines)")
	for i, u := range b.workerURLs {
		row(fmt.Sprintf("worker-%d", i+1), u+"/metrics")
	}
	for i, n := range b.nodes {
		note := ""
		if i == 0 {
			note = "  (also the catalog)"
		}
		row(n.name, n.url+note)
	}
	note := "write key " + b.writeKey
	if b.writeKey == "" {
		note = "no source"
	}
	row("workspace", b.workspace+"  ("+note+")")
	if b.keep {
		row("data", b.dir+"  (kept on exit, reused on the next start)")
	} else {
		row("data", b.dir+"  (removed on exit; -keep keeps it)")
	}

	if b.writeKey != "" {
		fmt.Fprintf(&s, "\nSend an event (the sink prints it):\n\n  %s\n", curlCommand(b.writeKey, b.gatewayURL))
	}
	catalog, nodes := "", make([]string, len(b.nodes))
	for i, n := range b.nodes {
		nodes[i] = n.name + "=" + n.url
	}
	if len(b.nodes) > 0 {
		catalog = b.nodes[0].url
	}
	fmt.Fprintf(&s, "\nSee the cluster from another shell:\n\n  export ORDO_CATALOG_URL=%s\n  export ORDO_NODES=%s\n  %s status\n",
		shellQuote(catalog), shellQuote(strings.Join(nodes, ",")), shellQuote(b.rebalance))
	s.WriteString("\nCtrl-C stops everything.\n\n")
	return s.String()
}

// curlCommand returns a shell command that sends exampleEvent as a track
// call with writeKey to the gateway at gatewayURL.
func curlCommand(writeKey, gatewayURL string) string {
	return fmt.Sprintf("curl -u %s -H 'Content-Type: application/json' -d %s %s/v1/track",
		shellQuote(writeKey+":"), shellQuote(exampleEvent), gatewayURL)
}

// shellSafe matches words that need no quoting in a POSIX shell.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote returns s as one word for a POSIX shell.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
