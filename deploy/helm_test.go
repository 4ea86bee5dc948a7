package deploy

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "helm/ordo"
	releaseName = "demo"
	namespace   = "ordo"
	// fullname is the prefix of every object name for release "demo".
	fullname = releaseName + "-ordo"
)

// manifests holds the objects a chart rendering produced, by name.
type manifests struct {
	objects     []string // "Kind/name", in no particular order
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	jobs        map[string]*batchv1.Job
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	notes       string
}

// renderChart renders the chart as `helm install demo -n ordo -f overrides` would.
func renderChart(t *testing.T, overrides string) (*manifests, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading chart: %v", err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(overrides), &vals); err != nil {
		t.Fatalf("parsing overrides: %v", err)
	}
	renderVals, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, renderVals)
	if err != nil {
		return nil, err
	}

	m := &manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		jobs:        map[string]*batchv1.Job{},
		hpas:        map[string]*autoscalingv2.HorizontalPodAutoscaler{},
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		switch path.Ext(name) {
		case ".txt":
			m.notes = files[name]
			continue
		case ".tpl":
			continue
		}
		for doc := range strings.SplitSeq(files[name], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if err := m.add([]byte(doc)); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
		}
	}
	return m, nil
}

// mustRender renders the chart and fails the test on error.
func mustRender(t *testing.T, overrides string) *manifests {
	t.Helper()
	m, err := renderChart(t, overrides)
	if err != nil {
		t.Fatalf("rendering chart: %v", err)
	}
	return m
}

// add decodes one YAML document strictly into its Kubernetes type, so that a misspelt
// or misplaced field fails the test.
func (m *manifests) add(doc []byte) error {
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	var (
		obj   metav1.Object
		store func(name string)
	)
	switch gvk := meta.APIVersion + " " + meta.Kind; gvk {
	case "apps/v1 Deployment":
		obj, store = kept(m.deployments)
	case "v1 Service":
		obj, store = kept(m.services)
	case "v1 ConfigMap":
		obj, store = kept(m.configMaps)
	case "batch/v1 Job":
		obj, store = kept(m.jobs)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		obj, store = kept(m.hpas)
	default:
		return fmt.Errorf("unexpected object %s", gvk)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	name := obj.GetName()
	if obj.GetNamespace() != "" {
		return fmt.Errorf("%s/%s sets namespace %q; helm -n should decide", meta.Kind, name, obj.GetNamespace())
	}
	store(name)
	m.objects = append(m.objects, meta.Kind+"/"+name)
	return nil
}

// kept returns a new object to decode into, and a func that keeps it in
// into under its name.
func kept[T any, PT interface {
	*T
	metav1.Object
}](into map[string]PT) (metav1.Object, func(name string)) {
	obj := PT(new(T))
	return obj, func(name string) { into[name] = obj }
}

func (m *manifests) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	return rendered(t, m, "Deployment", m.deployments, name)
}

func (m *manifests) job(t *testing.T, name string) *batchv1.Job {
	t.Helper()
	return rendered(t, m, "Job", m.jobs, name)
}

// rendered returns the object of kind named name among objects, failing
// the test when the chart rendered none.
func rendered[T any](t *testing.T, m *manifests, kind string, objects map[string]T, name string) T {
	t.Helper()
	obj, ok := objects[name]
	if !ok {
		t.Fatalf("no %s %s among %v", kind, name, m.objects)
	}
	return obj
}

// containerEnv returns a container's env as values, with "" for variables taken from
// elsewhere (valueFrom).
func containerEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func onlyContainer(t *testing.T, what string, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(spec.Containers) != 1 {
		t.Fatalf("%s has %d containers, want 1", what, len(spec.Containers))
	}
	return spec.Containers[0]
}

const threeNodesHPA = `
gateway:
  hpa: {enabled: true, min: 3, max: 12, targetCPU: 60}
worker:
  replicas: 5
shards: 256
log: {format: text, level: debug}
nodes:
  - {name: alpha, secretName: pg-alpha, secretKey: dsn}
  - {name: beta, secretName: pg-beta, secretKey: dsn}
  - {name: gamma, secretName: pg-gamma, secretKey: url}
`

func TestHelmObjects(t *testing.T) {
	t.Parallel()

	base := []string{
		"ConfigMap/" + fullname + "-workspace",
		"Deployment/" + fullname + "-gateway",
		"Deployment/" + fullname + "-worker",
		"Job/" + fullname + "-rebalance",
		"Service/" + fullname + "-gateway",
	}
	for _, tt := range []struct {
		name, overrides string
		want            []string
	}{
		{"Defaults", "", base},
		{"ThreeNodesHPA", threeNodesHPA, append(slices.Clone(base), "HorizontalPodAutoscaler/"+fullname+"-gateway")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := mustRender(t, tt.overrides)
			got := slices.Sorted(slices.Values(m.objects))
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("rendered objects = %v, want %v", got, want)
			}
			if !strings.Contains(m.notes, "port-forward svc/"+fullname+"-gateway") {
				t.Errorf("NOTES.txt does not tell how to reach the gateway:\n%s", m.notes)
			}
		})
	}
}

func TestHelmReplicas(t *testing.T) {
	t.Parallel()

	m := mustRender(t, "")
	gw := m.deployment(t, fullname+"-gateway")
	if gw.Spec.Replicas == nil || *gw.Spec.Replicas != 2 {
		t.Errorf("gateway replicas = %v, want 2", gw.Spec.Replicas)
	}
	if w := m.deployment(t, fullname+"-worker"); w.Spec.Replicas == nil || *w.Spec.Replicas != 2 {
		t.Errorf("worker replicas = %v, want 2", w.Spec.Replicas)
	}
	if len(m.hpas) != 0 {
		t.Errorf("HPA rendered with hpa.enabled=false")
	}

	m = mustRender(t, threeNodesHPA)
	if gw := m.deployment(t, fullname+"-gateway"); gw.Spec.Replicas != nil {
		t.Errorf("gateway replicas = %d with the HPA enabled, want unset so the HPA owns it", *gw.Spec.Replicas)
	}
	if w := m.deployment(t, fullname+"-worker"); w.Spec.Replicas == nil || *w.Spec.Replicas != 5 {
		t.Errorf("worker replicas = %v, want 5", w.Spec.Replicas)
	}
	hpa, ok := m.hpas[fullname+"-gateway"]
	if !ok {
		t.Fatalf("no HPA with hpa.enabled=true")
	}
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != fullname+"-gateway" || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA scales %+v, want the gateway Deployment", ref)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 12 {
		t.Errorf("HPA min/max = %v/%d, want 3/12", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil ||
		hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
		hpa.Spec.Metrics[0].Resource.Target.AverageUtilization == nil ||
		*hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 {
		t.Errorf("HPA metrics = %+v, want CPU utilisation 60%%", hpa.Spec.Metrics)
	}
	gwc := onlyContainer(t, "gateway", m.deployment(t, fullname+"-gateway").Spec.Template.Spec)
	if _, ok := gwc.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Errorf("gateway requests no CPU, so a CPU utilisation HPA cannot work")
	}
}

func TestHelmRebalanceJob(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name, overrides string
		nodes           [][3]string // name, secret, key
		shards          string
	}{
		{"Defaults", "", [][3]string{{"node1", "ordo-node1", "url"}, {"node2", "ordo-node2", "url"}}, "128"},
		{"ThreeNodes", threeNodesHPA, [][3]string{{"alpha", "pg-alpha", "dsn"}, {"beta", "pg-beta", "dsn"}, {"gamma", "pg-gamma", "url"}}, "256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job := mustRender(t, tt.overrides).job(t, fullname+"-rebalance")

			wantAnnotations := map[string]string{
				"helm.sh/hook":               "post-install,post-upgrade",
				"helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
			}
			for k, want := range wantAnnotations {
				if got := job.Annotations[k]; got != want {
					t.Errorf("Job annotation %s = %q, want %q", k, got, want)
				}
			}
			if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit < 1 {
				t.Errorf("Job backoffLimit = %v, want a positive limit", job.Spec.BackoffLimit)
			}
			if p := job.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
				t.Errorf("Job restartPolicy = %q, want Never or OnFailure", p)
			}

			c := onlyContainer(t, "rebalance Job", job.Spec.Template.Spec)
			env := containerEnv(c)
			if env["ORDO_SHARDS"] != tt.shards {
				t.Errorf("ORDO_SHARDS = %q, want %q", env["ORDO_SHARDS"], tt.shards)
			}
			nodes, err := parseNodes(env["ORDO_NODES"])
			if err != nil {
				t.Fatalf("ORDO_NODES = %q: %v", env["ORDO_NODES"], err)
			}
			if len(nodes) != len(tt.nodes) {
				t.Fatalf("ORDO_NODES = %q lists %d nodes, want %d", env["ORDO_NODES"], len(nodes), len(tt.nodes))
			}

			// Each node's URL is a $(VAR) reference to a variable defined earlier, read
			// from the node's Secret: Kubernetes expands only variables defined before.
			index := map[string]int{}
			for i, e := range c.Env {
				index[e.Name] = i
			}
			ordoNodes := index["ORDO_NODES"]
			for i, n := range nodes {
				want := tt.nodes[i]
				if n.name != want[0] {
					t.Errorf("ORDO_NODES node %d is %q, want %q", i, n.name, want[0])
				}
				ref := regexp.MustCompile(`^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$`).FindStringSubmatch(n.url)
				if ref == nil {
					t.Errorf("node %s URL = %q, want a $(VAR) reference to a Secret", n.name, n.url)
					continue
				}
				j, ok := index[ref[1]]
				if !ok || j > ordoNodes {
					t.Errorf("node %s refers to $(%s), which is not defined before ORDO_NODES", n.name, ref[1])
					continue
				}
				sk := secretRef(c.Env[j])
				if sk == nil || sk.Name != want[1] || sk.Key != want[2] {
					t.Errorf("%s = %+v, want secretKeyRef %s/%s", ref[1], c.Env[j].ValueFrom, want[1], want[2])
				}
			}
			checkProgramEnv(t, "rebalance Job", path.Base(c.Command[0]), env)
		})
	}
}

func secretRef(e corev1.EnvVar) *corev1.SecretKeySelector {
	if e.ValueFrom == nil {
		return nil
	}
	return e.ValueFrom.SecretKeyRef
}

// TestHelmSecrets checks that no Postgres URL appears in a pod spec: every one is read
// from a Secret.
func TestHelmSecrets(t *testing.T) {
	t.Parallel()
	m := mustRender(t, threeNodesHPA)

	specs := map[string]corev1.PodSpec{}
	for name, d := range m.deployments {
		specs["Deployment/"+name] = d.Spec.Template.Spec
	}
	for name, j := range m.jobs {
		specs["Job/"+name] = j.Spec.Template.Spec
	}
	secretVars := 0
	for what, spec := range specs {
		c := onlyContainer(t, what, spec)
		for _, e := range c.Env {
			if strings.Contains(e.Value, "postgres://") || strings.Contains(e.Value, "postgresql://") {
				t.Errorf("%s sets %s to a literal Postgres URL, want a secretKeyRef", what, e.Name)
			}
			if e.Name == "ORDO_CATALOG_URL" || strings.HasPrefix(e.Name, "NODE_URL_") {
				if sk := secretRef(e); sk == nil || sk.Name == "" || sk.Key == "" {
					t.Errorf("%s takes %s from %+v, want a secretKeyRef", what, e.Name, e.ValueFrom)
				} else {
					secretVars++
				}
			}
		}
	}
	// The catalog in 3 pods, plus 3 nodes.
	if secretVars != 6 {
		t.Errorf("found %d DSNs read from Secrets, want 6", secretVars)
	}
}

// TestHelmWorkloads checks each program's pods: the image, the env the contract allows,
// probes on /health and /ready at the port the program listens on, the workspace mount.
func TestHelmWorkloads(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "")
	bins := dockerfileBinaries(t)

	for _, tt := range []struct {
		deployment, program, addrVar string
	}{
		{fullname + "-gateway", "gateway", "ORDO_HTTP_ADDR"},
		{fullname + "-worker", "worker", "ORDO_ADMIN_ADDR"},
	} {
		d := m.deployment(t, tt.deployment)
		spec := d.Spec.Template.Spec
		c := onlyContainer(t, tt.deployment, spec)
		env := containerEnv(c)

		if got := path.Base(c.Command[0]); got != tt.program || !slices.Contains(bins, got) {
			t.Errorf("%s runs %v, want %s from the image", tt.deployment, c.Command, tt.program)
		}
		if c.Image != "ghcr.io/ordo-pipeline/ordo:0.1.0" {
			t.Errorf("%s image = %q, want the chart's appVersion tag", tt.deployment, c.Image)
		}
		checkProgramEnv(t, tt.deployment, tt.program, env)

		sel, err := metav1.LabelSelectorAsMap(d.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range sel {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("%s selector %s=%s does not match its pod labels %v", tt.deployment, k, v, d.Spec.Template.Labels)
			}
		}

		port, err := listenPort(env[tt.addrVar])
		if err != nil {
			t.Fatalf("%s %s: %v", tt.deployment, tt.addrVar, err)
		}
		portNames := map[string]int32{}
		for _, p := range c.Ports {
			portNames[p.Name] = p.ContainerPort
		}
		for probe, want := range map[string]string{"liveness": "/health", "readiness": "/ready"} {
			p := c.LivenessProbe
			if probe == "readiness" {
				p = c.ReadinessProbe
			}
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s has no HTTP %s probe", tt.deployment, probe)
				continue
			}
			if p.HTTPGet.Path != want {
				t.Errorf("%s %s probe path = %s, want %s", tt.deployment, probe, p.HTTPGet.Path, want)
			}
			got := p.HTTPGet.Port.IntVal
			if p.HTTPGet.Port.StrVal != "" {
				got = portNames[p.HTTPGet.Port.StrVal]
			}
			if int(got) != port {
				t.Errorf("%s %s probe port = %v, want %d from %s", tt.deployment, probe, p.HTTPGet.Port.String(), port, tt.addrVar)
			}
		}

		// ORDO_WORKSPACE_CONFIG is a file of the workspace ConfigMap.
		file := env["ORDO_WORKSPACE_CONFIG"]
		mounted := false
		for _, vm := range c.VolumeMounts {
			if vm.MountPath != filepath.Dir(file) {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name != vm.Name || v.ConfigMap == nil || v.ConfigMap.Name != fullname+"-workspace" {
					continue
				}
				for _, item := range v.ConfigMap.Items {
					if item.Path == filepath.Base(file) && item.Key == "workspace.json" {
						mounted = true
					}
				}
			}
		}
		if !mounted {
			t.Errorf("%s: ORDO_WORKSPACE_CONFIG=%s is not the workspace ConfigMap's workspace.json", tt.deployment, file)
		}
	}

	svc := m.services[fullname+"-gateway"]
	gw := m.deployment(t, fullname+"-gateway")
	for k, v := range svc.Spec.Selector {
		if gw.Spec.Template.Labels[k] != v {
			t.Errorf("gateway Service selector %s=%s does not match gateway pods", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("gateway Service ports = %+v, want one targeting the http port", svc.Spec.Ports)
	}
	if wc := onlyContainer(t, "worker", m.deployment(t, fullname+"-worker").Spec.Template.Spec); wc.Env == nil {
		t.Errorf("worker has no env")
	}
}

// TestHelmWorkspace checks the ConfigMap holds the workspace, in the contract's shape,
// and that a change of workspace rolls the pods.
func TestHelmWorkspace(t *testing.T) {
	t.Parallel()

	m := mustRender(t, "")
	cm, ok := m.configMaps[fullname+"-workspace"]
	if !ok {
		t.Fatalf("no workspace ConfigMap among %v", m.objects)
	}
	if _, err := parseWorkspace([]byte(cm.Data["workspace.json"])); err != nil {
		t.Errorf("ConfigMap workspace.json: %v\n%s", err, cm.Data["workspace.json"])
	}

	const custom = `{"sources":[{"id":"app","writeKey":"wk_app","destinations":["d"]}],` +
		`"destinations":[{"id":"d","type":"webhook","config":{"url":"https://example.com/in","maxBatchSize":50}}]}`
	asText := mustRender(t, "workspace: "+strconv.Quote(custom)+"\n")
	if data := asText.configMaps[fullname+"-workspace"].Data["workspace.json"]; strings.TrimSpace(data) != custom {
		t.Errorf("ConfigMap workspace.json = %s, want the workspace value %s", data, custom)
	}

	for _, d := range []string{fullname + "-gateway", fullname + "-worker"} {
		before := m.deployment(t, d).Spec.Template.Annotations["checksum/workspace"]
		after := asText.deployment(t, d).Spec.Template.Annotations["checksum/workspace"]
		if before == "" || before == after {
			t.Errorf("%s checksum/workspace = %q then %q, want it to change with the workspace", d, before, after)
		}
	}
}

// TestHelmRefusesBadValues checks that values which would break the cluster fail at
// render time, with a message that says what is wrong.
func TestHelmRefusesBadValues(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name, overrides, want string
	}{
		{"NoNodes", "nodes: []", "nodes"},
		{"DuplicateNode", "nodes: [{name: a, secretName: s, secretKey: k}, {name: a, secretName: t, secretKey: k}]", "twice"},
		{"NodeNameWithEquals", "nodes: [{name: 'a=b', secretName: s, secretKey: k}]", "name"},
		{"NodeWithoutSecret", "nodes: [{name: a, secretKey: k}]", "secretName"},
		{"WorkspaceNotJSON", "workspace: '{not json'", "workspace"},
		{"WorkspaceAsMap", "workspace: {sources: []}", "workspace"},
		{"HPAMinAboveMax", "gateway: {hpa: {enabled: true, min: 5, max: 2}}", "hpa"},
		{"LogFormat", "log: {format: xml}", "format"},
		{"Typo", "gatway: {replicas: 3}", "gatway"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := renderChart(t, tt.overrides)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("rendering with %s: error = %v, want one mentioning %q", tt.overrides, err, tt.want)
			}
		})
	}
}

// TestHelmLint runs `helm lint`'s checks with the default values and the overrides.
func TestHelmLint(t *testing.T) {
	t.Parallel()

	for name, overrides := range map[string]string{"Defaults": "", "ThreeNodesHPA": threeNodesHPA} {
		vals := map[string]any{}
		if err := yaml.Unmarshal([]byte(overrides), &vals); err != nil {
			t.Fatal(err)
		}
		linter := lint.All(chartDir, vals, namespace, false)
		for _, msg := range linter.Messages {
			if msg.Severity > support.InfoSev {
				t.Errorf("helm lint (%s): %v", name, msg)
			}
		}
	}
}
