package sdktest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
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
// the gateway as its README says: NewWithConfig with DataPlaneUrl.
func testGoRudderStack(t *testing.T, st *stack, scenario string) {
	sendGoPlan[rudder.Message](t, st, scenario, func(cb *callbacks[rudder.Message]) (goClient[rudder.Message], error) {
		return rudder.NewWithConfig(sourceKey(scenario), rudder.Config{DataPlaneUrl: st.gateway, Callback: cb})
	}, rudder.Identify{}, rudder.Track{}, rudder.Page{}, rudder.Screen{}, rudder.Group{}, rudder.Alias{})
}

// testGoSegment sends the plan with segmentio/analytics-go, pointed at the
// gateway as its docs say: NewWithConfig with Endpoint.
func testGoSegment(t *testing.T, st *stack, scenario string) {
	sendGoPlan[segment.Message](t, st, scenario, func(cb *callbacks[segment.Message]) (goClient[segment.Message], error) {
		return segment.NewWithConfig(sourceKey(scenario), segment.Config{Endpoint: st.gateway, Callback: cb})
	}, segment.Identify{}, segment.Track{}, segment.Page{}, segment.Screen{}, segment.Group{}, segment.Alias{})
}

// goClient is what the test uses of a Go SDK's client, whose messages are
// of type M.
type goClient[M any] interface {
	Enqueue(M) error
	Close() error
}

// sendGoPlan sends the plan of scenario with a Go SDK: a client from
// newClient, reporting to the callbacks it is given, and the SDK's message
// types kinds (Identify, Track, Page, Screen, Group, Alias). It checks what
// the SDK reported and what reached the sink. Close sends what is queued as
// one batch, so the events arrive in order.
func sendGoPlan[M any](t *testing.T, st *stack, scenario string, newClient func(*callbacks[M]) (goClient[M], error), kinds ...M) {
	t.Helper()
	user := "user-" + scenario
	calls := plan(scenario, goTracks, true)
	cb := &callbacks[M]{}
	client, err := newClient(cb)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if err := client.Enqueue(goMessage(t, kinds, user, c)); err != nil {
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

// goMessage returns call c, made as user, as a message of the SDK whose
// message types are kinds. Both Go SDKs (RudderStack's is a fork of
// Segment's) name those types after the call and tag their fields with the
// names of the JSON they send, so the call's fields as that JSON fill the
// SDK's own type.
func goMessage[M any](t *testing.T, kinds []M, user string, c sent) M {
	t.Helper()
	fields := map[string]any{"userId": user}
	switch c.Type {
	case "identify":
		fields["traits"] = map[string]any{"plan": c.Mark}
	case "track":
		fields["event"], fields["properties"] = c.Mark, map[string]any{"sdk": "analytics-go"}
	case "page", "screen":
		fields["name"] = c.Mark
	case "group":
		fields["groupId"] = c.Mark
	case "alias":
		fields["previousId"] = c.Mark
	}
	data, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		if typ := reflect.TypeOf(k); strings.EqualFold(typ.Name(), c.Type) {
			m := reflect.New(typ)
			if err := json.Unmarshal(data, m.Interface()); err != nil {
				t.Fatalf("%s as %s: %v", c, typ, err)
			}
			return m.Elem().Interface().(M)
		}
	}
	t.Fatalf("the SDK has no message type for %s", c)
	var none M
	return none
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
