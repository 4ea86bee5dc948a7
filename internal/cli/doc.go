// Package cli holds what every ordo program does the same way at start:
// reading its settings from the environment (exit status 2 and a one-line
// message naming the variable when one is missing or malformed), setting
// up log/slog, and turning SIGINT and SIGTERM into a cancelled context.
package cli
