// Package checker checks the history of an end-to-end run against the
// contract's delivery guarantees, in the manner of Jepsen's checkers: the
// test records what its clients sent and were acknowledged, and what its
// webhooks received; Check then says what went wrong, after the fact.
//
// A history holds three kinds of record:
//
//   - an [Event] per message id a client sent: its ordering key, the
//     destinations of its source, when the first request carrying it was
//     sent, and when a request carrying it was first answered 200 (zero
//     when none was);
//   - a [Delivery] per event a destination received and answered 2xx, with
//     its arrival order, and whether the destination held it past the
//     sender's timeout (the sender then took it for a failure and retries);
//   - a [DeadLetter] per event and destination found in ordo.dead_letters.
//
// [Check] reports, per pair of acknowledged event and destination of its
// source:
//
//   - lost: neither delivered nor dead-lettered (guarantee 1);
//   - out of order: for one destination and one ordering key, event B was
//     sent after event A was acknowledged, yet B was first delivered before
//     A's first delivery, or before A was dead-lettered (guarantee 2). An
//     A that is lost is reported as lost only;
//
// and over all deliveries:
//
//   - duplicates, each copy after the first of one event at one
//     destination, split by cause: after a timeout (an earlier copy was
//     held past the sender's timeout: inherent to at-least-once), resent
//     (the client sent the event in more than one request, which may have
//     stored it twice) and other (one stored row delivered again, as after
//     a worker's crash);
//   - delivered but never acknowledged: allowed (the client's request
//     failed after the commit, or was still in flight), but counted;
//   - unexpected: a delivery of a message id no client sent, to a
//     destination its source does not have, or under another ordering key.
//
// [History] collects the records from concurrent clients and webhooks;
// [Report.Problems] turns a report into the failures of a test.
package checker
