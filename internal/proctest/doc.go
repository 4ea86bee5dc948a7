// Package proctest runs programs as processes for tests that start a
// stack of them (e2e, sdktest): each started program runs until the test
// ends, with its output in a log file whose end is shown when the test
// fails. It also holds what such tests need around the programs: a free
// listen address, waiting for a URL to answer, and writing the JSON files
// (workspaces) the programs read.
package proctest
