package sdktest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/proctest"
)

// jsScenario is one run of a JavaScript SDK (see run.mjs, node-sdks.mjs
// and browser.mjs).
type jsScenario struct {
	tracks int
	// ordered: the SDK's settings in this scenario keep the order of
	// one user's events (see docs/sdks.md), so the sink must get them in
	// the order they were sent.
	ordered bool
	// requests are answers the browser must have seen from the gateway,
	// as "METHOD path status".
	requests []string
}

var jsScenarioSpecs = map[string]jsScenario{
	"node-rudderstack":           {tracks: 30},
	"node-segment":               {tracks: 30},
	"browser-rudderstack":        {tracks: 10, requests: []string{"GET /sourceConfig/ 200", "POST /v1/identify 200", "POST /v1/track 200", "POST /v1/page 200", "POST /v1/group 200", "POST /v1/alias 200"}},
	"browser-rudderstack-beacon": {tracks: 10, requests: []string{"GET /sourceConfig/ 200", "POST /beacon/v1/batch 200"}},
	"browser-rudderstack-batch":  {tracks: 10, requests: []string{"GET /sourceConfig/ 200", "POST /v1/batch 200"}},
	"browser-segment":            {tracks: 10, requests: []string{"GET /v1/projects/" + sourceKey("browser-segment") + "/settings 200", "POST /v1/i 200", "POST /v1/t 200", "POST /v1/p 200", "POST /v1/s 200", "POST /v1/g 200", "POST /v1/a 200"}},
	"browser-segment-batching":   {tracks: 12, ordered: true, requests: []string{"GET /v1/projects/" + sourceKey("browser-segment-batching") + "/settings 200", "POST /v1/b 200"}},
}

// jsScenarios are the names of the JavaScript scenarios, for the
// workspace.
var jsScenarios = func() []string {
	var names []string
	for name := range jsScenarioSpecs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// jsReport is one line of run.mjs's output.
type jsReport struct {
	Scenario string `json:"scenario"`
	Result   struct {
		Screen bool     `json:"screen"`
		Errors []string `json:"errors"`
	} `json:"result"`
	Seen struct {
		Remote     []string `json:"remote"`
		Requests   []string `json:"requests"`
		Console    []string `json:"console"`
		PageErrors []string `json:"pageErrors"`
	} `json:"seen"`
}

// chromiumPath is where Debian's chromium package puts the browser.
func chromiumPath() string {
	if p := os.Getenv("SDKTEST_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// jsPrerequisites says what is missing to run the JavaScript SDKs.
func jsPrerequisites() error {
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install -y nodejs npm)")
	}
	if _, err := os.Stat("node_modules/playwright-core/package.json"); err != nil {
		missing = append(missing, "the npm packages (cd sdktest && npm ci)")
	}
	if _, err := os.Stat(chromiumPath()); err != nil {
		missing = append(missing, chromiumPath()+" (apt-get install -y chromium)")
	}
	if len(missing) > 0 {
		return errors.New("the JavaScript SDK tests need " + strings.Join(missing, ", ") + "; .ci/run installs them")
	}
	return nil
}

// testJS runs every JavaScript scenario in one node process and checks
// that the sink gets each one's events.
func testJS(t *testing.T, st *stack) {
	if err := jsPrerequisites(); err != nil {
		t.Fatal(err)
	}
	input := map[string]any{}
	for name, sc := range jsScenarioSpecs {
		input[name] = map[string]any{"writeKey": sourceKey(name), "userId": "user-" + name, "tracks": sc.tracks}
	}
	scenarios, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "run.mjs")
	cmd.Env = append(os.Environ(), "SDKTEST_GATEWAY="+st.gateway, "SDKTEST_SCENARIOS="+string(scenarios), "SDKTEST_CHROMIUM="+chromiumPath())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The pages keep sending until stdin closes; close it once every
	// scenario is checked, and on any way out.
	var closeOnce sync.Once
	closeStdin := func() { closeOnce.Do(func() { stdin.Close() }) }
	defer closeStdin()

	reports := map[string]*jsReport{}
	read := func(line string) *jsReport {
		var r jsReport
		if err := json.Unmarshal([]byte(line), &r); err != nil || jsScenarioSpecs[r.Scenario].tracks == 0 {
			t.Errorf("run.mjs printed %q (%v)", line, err)
			return nil
		}
		if old := reports[r.Scenario]; old != nil {
			old.Seen = r.Seen
			return old
		}
		reports[r.Scenario] = &r
		return &r
	}
	done := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var checks sync.WaitGroup
	for !done && sc.Scan() {
		if sc.Text() == "done" {
			done = true
			break
		}
		r := read(sc.Text())
		if r == nil {
			continue
		}
		// Each scenario's events are awaited as soon as its calls are
		// made, all at once; the subtests below report on them.
		checks.Add(1)
		go func() {
			defer checks.Done()
			st.waitDelivered(t, "user-"+r.Scenario, plan(r.Scenario, jsScenarioSpecs[r.Scenario].tracks, r.Result.Screen), 30*time.Second)
		}()
	}
	checks.Wait()
	closeStdin()
	for sc.Scan() { // what each page saw
		read(sc.Text())
	}
	werr := cmd.Wait()
	if !done || werr != nil {
		t.Fatalf("node run.mjs: %v (done: %v)\nstderr:\n%s", werr, done, proctest.LastLines(stderr.String(), 40))
	}

	for _, name := range jsScenarios {
		t.Run(name, func(t *testing.T) {
			r, ok := reports[name]
			if !ok {
				t.Fatalf("run.mjs reported nothing for %s", name)
			}
			checkJSReport(t, st, name, *r)
		})
	}
}

// checkJSReport checks one scenario: no SDK error, nothing loaded from
// anywhere but the page's origin and the gateway, the requests expected
// of the SDK's transport, and every event at the sink.
func checkJSReport(t *testing.T, st *stack, name string, r jsReport) {
	spec := jsScenarioSpecs[name]
	if len(r.Result.Errors) > 0 || len(r.Seen.PageErrors) > 0 {
		t.Errorf("SDK errors %v, page errors %v", r.Result.Errors, r.Seen.PageErrors)
	}
	if len(r.Seen.Remote) > 0 {
		t.Errorf("the page loaded from elsewhere than its origin and the gateway: %v", r.Seen.Remote)
	}
	for _, want := range spec.requests {
		if !slices.Contains(r.Seen.Requests, want) {
			t.Errorf("the browser never got %q from the gateway; it got %v", want, r.Seen.Requests)
		}
	}
	for _, req := range r.Seen.Requests {
		if !strings.HasSuffix(req, " 200") {
			t.Errorf("gateway answer %q", req)
		}
	}
	if len(r.Seen.Console) > 0 {
		t.Logf("browser console: %s", strings.Join(r.Seen.Console, "\n  "))
	}
	res := st.check(t, "user-"+name, plan(name, spec.tracks, r.Result.Screen), spec.ordered)
	t.Logf("%d events delivered; gateway answers: %s", len(res.firsts), summarize(r.Seen.Requests))
}

// summarize counts repeated lines.
func summarize(lines []string) string {
	counts := map[string]int{}
	var order []string
	for _, l := range lines {
		if counts[l] == 0 {
			order = append(order, l)
		}
		counts[l]++
	}
	var parts []string
	for _, l := range order {
		parts = append(parts, fmt.Sprintf("%s ×%d", l, counts[l]))
	}
	return strings.Join(parts, ", ")
}
