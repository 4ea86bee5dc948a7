// Package workspace reads the workspace file: the sources clients write to,
// each with its write key, and the destinations their events go to, each
// with its type, config and retry policy.
//
// [Load] and [Parse] validate the whole file and refuse it, naming the
// problem and the item, when anything is wrong: malformed JSON, unknown
// fields, missing or duplicate ids and write keys, a source listing an
// unknown destination, an unknown destination type, a config its type
// refuses (checked by package deliver) or an invalid retry policy. A
// Workspace that loaded is therefore safe to use as is; it is not modified
// afterwards and may be shared between goroutines.
package workspace
