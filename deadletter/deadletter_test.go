package deadletter

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/schema"
)

func TestListCountReplayPurge(t *testing.T) {
	t.Parallel()
	tc := bootstrap(t, 4)
	ctx := t.Context()
	s1, s2 := tc.shardsOn("node1")[0], tc.shardsOn("node2")[0]
	k1, k2 := tc.keyFor(t, s1, "a"), tc.keyFor(t, s2, "b")

	// Key k1: two dead letters, then a pending event that came after them.
	tc.dead(t, "node1", k1, "hook", "m1", intp(400), "status 400", 3*time.Hour)
	tc.dead(t, "node1", k1, "hook", "m2", intp(400), "status 400", 2*time.Hour)
	tc.pend(t, "node1", k1, "hook", "p1")
	// Key k2 on the other node: one refused, one that got no response, one of another destination.
	tc.dead(t, "node2", k2, "hook", "m3", intp(400), "status 400", time.Hour)
	tc.dead(t, "node2", k2, "hook", "m4", nil, "max attempts reached: dial tcp: connection refused", 30*time.Minute)
	tc.dead(t, "node2", k2, "other", "m5", intp(410), "status 410", time.Minute)

	c := tc.open(t)
	all := c.List(ctx, Filter{}, 0, 0)
	if err := all.Err(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range all.Letters {
		ids = append(ids, l.Node+"/"+l.MessageID)
	}
	if want := []string{"node2/m5", "node2/m4", "node2/m3", "node1/m2", "node1/m1"}; !slices.Equal(ids, want) || all.Total != 5 {
		t.Errorf("list = %v (total %d), want %v newest first", ids, all.Total, want)
	}
	if l := all.Letters[1]; l.LastStatus != nil || l.Attempts != 3 || l.LastResponse != "bad request: no" || !json.Valid(l.Event) {
		t.Errorf("letter m4 = %+v", l)
	}
	page := c.List(ctx, Filter{}, 2, 2)
	if len(page.Letters) != 2 || page.Letters[0].MessageID != "m3" || page.Total != 5 {
		t.Errorf("page 2 = %+v", page.Letters)
	}
	hook400 := Filter{Destination: "hook", Status: intp(400)}
	if l := c.List(ctx, hook400, 0, 0); l.Total != 3 || len(l.Letters) != 3 {
		t.Errorf("hook/400: %d letters", l.Total)
	}
	if l := c.List(ctx, Filter{Status: intp(0)}, 0, 0); l.Total != 1 || l.Letters[0].MessageID != "m4" {
		t.Errorf("status none: %+v", l.Letters)
	}
	if l := c.List(ctx, Filter{Reason: "MAX ATTEMPTS"}, 0, 0); l.Total != 1 {
		t.Errorf("reason filter: %d", l.Total)
	}
	if l := c.List(ctx, Filter{Since: time.Now().Add(-90 * time.Minute)}, 0, 0); l.Total != 3 {
		t.Errorf("since 90m: %d, want 3", l.Total)
	}
	counts := c.Count(ctx, Filter{})
	if counts.Total != 5 || len(counts.Groups) != 4 || counts.Nodes[0].Count != 2 || counts.Nodes[1].Count != 3 {
		t.Errorf("count = %+v", counts)
	}

	// Dry run: counts, changes nothing.
	dry := c.Replay(ctx, hook400, true, nil)
	if dry.Err() != nil || dry.Done() != 3 || tc.deadCount(t, "node1") != 2 {
		t.Errorf("dry run: done %d, err %v, node1 still has %d", dry.Done(), dry.Err(), tc.deadCount(t, "node1"))
	}

	// Replay: back into the shard, behind the pending event, in order, fresh.
	o := c.Replay(ctx, hook400, false, nil)
	if err := o.Err(); err != nil || o.Done() != 3 {
		t.Fatalf("replay: done %d, err %v", o.Done(), err)
	}
	var out strings.Builder
	o.Print(&out)
	t.Logf("replay:\n%s", out.String())
	if got := tc.pending(t, "node1", s1); !slices.Equal(got, []string{"p1:0:true", "m1:0:true", "m2:0:true"}) {
		t.Errorf("shard %d rows = %v, want p1 then m1, m2 with 0 attempts and a fresh received_at", s1, got)
	}
	if got := tc.pending(t, "node2", s2); !slices.Equal(got, []string{"m3:0:true"}) {
		t.Errorf("shard %d rows = %v", s2, got)
	}
	if tc.deadCount(t, "node1") != 0 || tc.deadCount(t, "node2") != 2 {
		t.Errorf("dead letters left: node1 %d, node2 %d; want 0 and 2", tc.deadCount(t, "node1"), tc.deadCount(t, "node2"))
	}
	var event string
	if err := tc.conns["node1"].QueryRow(ctx, `SELECT event::text FROM `+schema.Table(s1).Sanitize()+` WHERE message_id = 'm1'`).Scan(&event); err != nil || !strings.Contains(event, `"messageId":"m1"`) {
		t.Errorf("replayed event = %s, %v", event, err)
	}
	// Twice: nothing more.
	if again := c.Replay(ctx, hook400, false, nil); again.Done() != 0 || again.Err() != nil {
		t.Errorf("second replay: done %d, err %v", again.Done(), again.Err())
	}

	// Purge with a filter, then what is left.
	if p := c.Purge(ctx, Filter{Destination: "other"}, true, nil); p.Done() != 1 || tc.deadCount(t, "node2") != 2 {
		t.Errorf("purge dry run: %d", p.Done())
	}
	if p := c.Purge(ctx, Filter{Destination: "other"}, false, nil); p.Done() != 1 || p.Err() != nil || tc.deadCount(t, "node2") != 1 {
		t.Errorf("purge: %d, %v, node2 has %d", p.Done(), p.Err(), tc.deadCount(t, "node2"))
	}
}

func TestReplayLeavesMovingAndStrayShards(t *testing.T) {
	t.Parallel()
	tc := bootstrap(t, 4)
	ctx := t.Context()
	on1, on2 := tc.shardsOn("node1"), tc.shardsOn("node2")
	moving, fenced, fine := on1[0], on1[1], on2[0]
	kMoving, kFenced, kFine := tc.keyFor(t, moving, "m"), tc.keyFor(t, fenced, "f"), tc.keyFor(t, fine, "ok")
	tc.dead(t, "node1", kMoving, "hook", "moving-1", intp(400), "status 400", time.Hour)
	tc.dead(t, "node1", kFenced, "hook", "fenced-1", intp(400), "status 400", time.Hour)
	tc.dead(t, "node2", kFine, "hook", "fine-1", intp(400), "status 400", time.Hour)
	// A stray: on node1, but its shard is node2's.
	tc.dead(t, "node1", kFine, "hook", "stray-1", intp(400), "status 400", time.Hour)

	catalog := pgtest.Connect(t, tc.catalog)
	if _, err := catalog.Exec(ctx, `UPDATE ordo_catalog.shards SET state = 'moving', node = 'node2' WHERE shard = $1`, moving); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, tc.conns["node1"], func(tx pgx.Tx) error { return schema.Fence(ctx, tx, fenced) }); err != nil {
		t.Fatal(err)
	}

	c := tc.open(t)
	for _, dry := range []bool{true, false} {
		o := c.Replay(ctx, Filter{}, dry, nil)
		var out strings.Builder
		o.Print(&out)
		t.Logf("replay (dry run %v):\n%s", dry, out.String())
		if o.Done() != 1 || o.LeftCount() != 3 || o.Err() == nil {
			t.Errorf("dry run %v: done %d, left %d, err %v; want 1, 3 and an error", dry, o.Done(), o.LeftCount(), o.Err())
		}
		text := out.String()
		for _, want := range []string{"is being moved to node node2", "is fenced for a move", "should have moved with it"} {
			if !strings.Contains(text, want) {
				t.Errorf("output lacks %q", want)
			}
		}
	}
	if got := tc.pending(t, "node2", fine); len(got) != 1 {
		t.Errorf("shard %d: %v, want the one replayed", fine, got)
	}
	if tc.deadCount(t, "node1") != 3 || tc.deadCount(t, "node2") != 0 {
		t.Errorf("left: node1 %d, node2 %d; want 3 and 0", tc.deadCount(t, "node1"), tc.deadCount(t, "node2"))
	}
	if p := c.Purge(ctx, Filter{}, false, nil); p.Done() != 0 || p.LeftCount() != 3 {
		t.Errorf("purge of moving, fenced and stray: done %d, left %d", p.Done(), p.LeftCount())
	}

	// An unreachable node changes nothing there and says so; the other is done.
	if _, err := catalog.Exec(ctx, `UPDATE ordo_catalog.nodes SET url = 'postgres://nobody@127.0.0.1:1/none?connect_timeout=2' WHERE name = 'node1'`); err != nil {
		t.Fatal(err)
	}
	tc.dead(t, "node2", kFine, "hook", "fine-2", intp(400), "status 400", time.Minute)
	c = tc.open(t)
	o := c.Replay(ctx, Filter{MessageID: "fine-2"}, false, nil)
	if o.Done() != 1 || o.Err() == nil || o.Nodes[0].Err == nil || !strings.Contains(o.Err().Error(), "nothing changed on node1") {
		t.Errorf("with node1 down: done %d, err %v", o.Done(), o.Err())
	}
	if l := c.List(ctx, Filter{}, 0, 0); l.Err() == nil || l.Total != 0 || strings.Contains(l.Err().Error(), "\n") {
		t.Errorf("list with node1 down: total %d, err %v", l.Total, l.Err())
	}
}
