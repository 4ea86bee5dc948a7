// Package deploy checks ordo's deployment files (compose.yaml, the Dockerfile, the Helm chart in helm/ordo) against the contract,
// and the Grafana dashboard (grafana/) and Prometheus alerting rules (prometheus/) against the metrics the programs serve.
package deploy
