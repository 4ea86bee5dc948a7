package deploy

import (
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ordo-pipeline/ordo/console"
	"github.com/ordo-pipeline/ordo/gateway"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/store"
	"github.com/ordo-pipeline/ordo/worker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// exported returns the name of every metric the programs serve, read from
// each package's own registry (so a renamed or removed metric shows here),
// with the series names a histogram or summary adds.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, reg := range []*prometheus.Registry{gateway.MetricRegistry(), store.MetricRegistry(), worker.MetricRegistry(),
		rebalance.MetricRegistry(), console.Registry()} {
		ch := make(chan *prometheus.Desc)
		go func() { reg.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
	}
	for _, must := range []string{"ordo_gateway_requests_total", "ordo_store_commit_seconds", "ordo_worker_shard_lag_seconds", "ordo_rebalance_moves_total", "ordo_console_requests_total"} {
		if !names[must] {
			t.Fatalf("the registries lack %s: reading them is broken (%d names)", must, len(names))
		}
	}
	return names
}

// metricsOf returns the metric names a PromQL expression selects.
func metricsOf(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q: %v", where, expr, err)
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			if name == "" {
				t.Errorf("%s: %q selects series without naming a metric", where, expr)
			}
			out = append(out, name)
		}
		return nil
	})
	if len(out) == 0 {
		t.Errorf("%s: %q names no metric", where, expr)
	}
	return out
}

func TestAlertRulesNameExistingMetrics(t *testing.T) {
	t.Parallel()
	names := exported(t)
	groups, errs := rulefmt.ParseFile("prometheus/ordo-alerts.yaml", false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("prometheus/ordo-alerts.yaml: %v", err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	alerted := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			for _, m := range metricsOf(t, "alert "+r.Alert, r.Expr) {
				if !names[m] {
					t.Errorf("alert %s names %s, which no program serves", r.Alert, m)
				}
				alerted[strings.TrimSuffix(m, "_bucket")] = true
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("alert %s has no summary", r.Alert)
			}
		}
	}
	// Every metric of docs/operations.md's alerting table has a rule.
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `(ordo_[a-z_]+)").FindAllStringSubmatch(string(doc), -1)
	if len(rows) < 5 {
		t.Fatalf("found %d rows in docs/operations.md's alerting table", len(rows))
	}
	for _, row := range rows {
		if !names[row[1]] {
			t.Errorf("docs/operations.md names %s, which no program serves", row[1])
		}
		if !alerted[row[1]] {
			t.Errorf("docs/operations.md's table has %s, but no alert uses it (have %v)", row[1], slices.Sorted(maps.Keys(alerted)))
		}
	}
}

// panel is the part of a Grafana panel the test reads.
type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func TestDashboardNamesExistingMetrics(t *testing.T) {
	t.Parallel()
	names := exported(t)
	data, err := os.ReadFile("grafana/ordo-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string  `json:"title"`
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("grafana/ordo-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard lacks a title or uid")
	}
	used := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				for _, m := range metricsOf(t, "panel "+p.Title, tg.Expr) {
					if !names[m] {
						t.Errorf("panel %q names %s, which no program serves", p.Title, m)
					}
					used[m] = true
				}
			}
		}
	}
	walk(d.Panels)
	if len(used) < 10 {
		t.Errorf("the dashboard uses only %d metrics", len(used))
	}
}
