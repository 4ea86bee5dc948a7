package sdktest

import (
	"fmt"
	"sync"
	"testing"

	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"
)

// goTracks is how many track events each Go scenario sends.
const goTracks = 20

// plan is the calls every scenario makes, in order, as userID: identify,
// tracks "Step 1" to "Step n", page, screen (when withScreen), group and
// alias.
func plan(scenario string, tracks int, withScreen bool) []sent {
	calls := []sent{{"identify", "plan-" + scenario}}
	for i := 1; i <= tracks; i++ {
		calls = append(calls, sent{"track", fmt.Sprintf("Step %d", i)})
	}
	calls = append(calls, sent{"page", "Home"})
	if withScreen {
		calls = append(calls, sent{"screen", "Main"})
	}
	return append(calls, sent{"group", "group-" + scenario}, sent{"alias", "prev-" + scenario})
}

// callbacks counts the SDK's reports, which both Go SDKs make through
// the same interface shape.
type callbacks[M any] struct {
	mu        sync.Mutex
	successes int
	failures  []error
}

func (c *callbacks[M]) Success(M) {
	c.mu.Lock()
	c.successes++
	c.mu.Unlock()
}

func (c *callbacks[M]) Failure(_ M, err error) {
	c.mu.Lock()
	c.failures = append(c.failures, err)
	c.mu.Unlock()
}

func (c *callbacks[M]) check(t *testing.T, want int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.successes != want || len(c.failures) > 0 {
		t.Errorf("SDK reported %d successes and failures %v, want %d successes", c.successes, c.failures, want)
	}
}

// testGoRudderStack sends the plan with rudderlabs/analytics-go, pointed at
// the gateway as its README says: NewWithConfig with DataPlaneUrl. Close
// sends what is queued as one batch, so the events arrive in order.
func testGoRudderStack(t *testing.T, st *stack, scenario string) {
	user := "user-" + scenario
	calls := plan(scenario, goTracks, true)
	cb := &callbacks[rudder.Message]{}
	client, err := rudder.NewWithConfig(sourceKey(scenario), rudder.Config{DataPlaneUrl: st.gateway, Callback: cb})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		var m rudder.Message
		switch c.Type {
		case "identify":
			m = rudder.Identify{UserId: user, Traits: rudder.NewTraits().Set("plan", c.Mark)}
		case "track":
			m = rudder.Track{UserId: user, Event: c.Mark, Properties: rudder.NewProperties().Set("sdk", "analytics-go")}
		case "page":
			m = rudder.Page{UserId: user, Name: c.Mark}
		case "screen":
			m = rudder.Screen{UserId: user, Name: c.Mark}
		case "group":
			m = rudder.Group{UserId: user, GroupId: c.Mark}
		case "alias":
			m = rudder.Alias{UserId: user, PreviousId: c.Mark}
		}
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("Enqueue %s: %v", c, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	cb.check(t, len(calls))
	r := st.check(t, user, calls, true)
	checkLibrary(t, r, "analytics-go")
}

// testGoSegment sends the plan with segmentio/analytics-go, pointed at the
// gateway as its docs say: NewWithConfig with Endpoint.
func testGoSegment(t *testing.T, st *stack, scenario string) {
	user := "user-" + scenario
	calls := plan(scenario, goTracks, true)
	cb := &callbacks[segment.Message]{}
	client, err := segment.NewWithConfig(sourceKey(scenario), segment.Config{Endpoint: st.gateway, Callback: cb})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		var m segment.Message
		switch c.Type {
		case "identify":
			m = segment.Identify{UserId: user, Traits: segment.NewTraits().Set("plan", c.Mark)}
		case "track":
			m = segment.Track{UserId: user, Event: c.Mark, Properties: segment.NewProperties().Set("sdk", "analytics-go")}
		case "page":
			m = segment.Page{UserId: user, Name: c.Mark}
		case "screen":
			m = segment.Screen{UserId: user, Name: c.Mark}
		case "group":
			m = segment.Group{UserId: user, GroupId: c.Mark}
		case "alias":
			m = segment.Alias{UserId: user, PreviousId: c.Mark}
		}
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("Enqueue %s: %v", c, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	cb.check(t, len(calls))
	r := st.check(t, user, calls, true)
	checkLibrary(t, r, "analytics-go")
}

// checkLibrary checks every delivered event names the SDK that sent it
// in context.library.name, as the SDK set it.
func checkLibrary(t *testing.T, r scenarioResult, want string) {
	t.Helper()
	for _, ev := range r.events {
		ctx, _ := ev["context"].(map[string]any)
		lib, _ := ctx["library"].(map[string]any)
		if lib["name"] != want {
			t.Errorf("event %v: context.library %v, want name %q", ev["messageId"], lib, want)
			return
		}
	}
}
