// Package e2e holds ordo's end-to-end tests: they build the real programs,
// run them as processes against several throwaway Postgres clusters, kill
// them with SIGKILL, and check the contract's guarantees on what a test
// webhook received. It has no code outside its tests.
package e2e
