// Package deploy checks ordo's deployment files (compose.yaml, the Dockerfile, the Helm chart in helm/ordo) against the contract.
package deploy
