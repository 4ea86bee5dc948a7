// Package sdktest holds ordo's tests with the real RudderStack and Segment
// SDKs, unchanged: the Go SDKs (rudderlabs/analytics-go, segmentio/analytics-go)
// in Go tests, the Node SDKs (@rudderstack/rudder-sdk-node,
// @segment/analytics-node) and the browser SDKs (@rudderstack/analytics-js,
// @segment/analytics-next, bundled with esbuild and driven in headless
// Chromium through playwright-core) in the JavaScript beside this file,
// which the Go tests run with node. Each SDK is configured as its own
// documentation tells a user to point it at a self-hosted data plane, and
// every event it sends must reach the demo sink through a real gateway,
// Postgres and worker.
//
// The JavaScript needs node and npm (run npm ci here) and Debian's
// chromium; without them the tests fail saying what to install.
package sdktest
