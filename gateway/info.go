package gateway

import (
	"net/http"
	"runtime/debug"
)

// clusterInfo answers GET /cluster-info, which RudderStack's server SDKs
// call (after a 451, or at start) to split their batches between the data
// plane's nodes. ordo routes each event to its shard itself, so the
// answer is always one node.
func clusterInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"nodeCount": 1})
}

// versionInfo is the answer to GET /version, in rudder-server's shape.
type versionInfo struct {
	Version   string `json:"Version"`
	Commit    string `json:"Commit"`
	BuildDate string `json:"BuildDate"`
	GoVersion string `json:"GoVersion"`
}

// buildVersion reads what the Go toolchain recorded in the binary: the
// module version ("(devel)" for a build from a checkout) and, when built
// with VCS stamping, the commit and its time.
func buildVersion() versionInfo {
	v := versionInfo{Version: "(unknown)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Version, v.GoVersion = bi.Main.Version, bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.BuildDate = s.Value
		case "vcs.modified":
			if s.Value == "true" && v.Commit != "" {
				v.Commit += "-dirty"
			}
		}
	}
	return v
}

// version answers GET /version.
func version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, buildVersion())
}
