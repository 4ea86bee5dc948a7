package store

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/ordo-pipeline/ordo/schema"
)

// The batch's rows in Postgres's binary COPY format, encoded here rather
// than by pgx's CopyFrom: pgx encodes each value through its type map
// (about 1 µs a row, a tenth of the gateway's CPU at full load in the
// profile), while these eight columns have fixed types. The format:
// https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format".

// copySQL is the COPY statement the encoded rows are for: schema.Parent's
// schema.RoutedColumns, which are text ×4, timestamptz, json, int4, int8.
var copySQL = "COPY " + schema.Parent.Sanitize() + " (" + strings.Join(schema.RoutedColumns, ", ") + ") FROM STDIN WITH (FORMAT binary)"

// copyHeader is the binary format's signature, flags and header extension
// length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// pgEpoch is where timestamptz counts microseconds from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// encodeRows returns the binary COPY data of batch: one row per event and
// destination, request by request, in order.
func encodeRows(batch []*request) []byte {
	size := len(copyHeader) + 2
	for _, r := range batch {
		for i := range r.events {
			ev := r.events[i].ev
			row := 2 + 8*4 + len(ev.OrderingKey) + len(ev.SourceID) + len(ev.MessageID) + 8 + len(ev.JSON) + 4 + 8
			for _, d := range ev.Destinations {
				size += row + len(d)
			}
		}
	}
	b := make([]byte, 0, size)
	b = append(b, copyHeader...)
	for _, r := range batch {
		for i := range r.events {
			rt := &r.events[i]
			ev := rt.ev
			at := ev.ReceivedAt.UnixMicro() - pgEpoch
			for _, d := range ev.Destinations {
				b = binary.BigEndian.AppendUint16(b, uint16(len(schema.RoutedColumns)))
				b = appendField(b, ev.OrderingKey)
				b = appendField(b, ev.SourceID)
				b = appendField(b, d)
				b = appendField(b, ev.MessageID)
				b = binary.BigEndian.AppendUint32(b, 8)
				b = binary.BigEndian.AppendUint64(b, uint64(at))
				b = binary.BigEndian.AppendUint32(b, uint32(len(ev.JSON)))
				b = append(b, ev.JSON...)
				b = binary.BigEndian.AppendUint32(b, 4)
				b = binary.BigEndian.AppendUint32(b, uint32(int32(rt.shard)))
				b = binary.BigEndian.AppendUint32(b, 8)
				b = binary.BigEndian.AppendUint64(b, uint64(rt.epoch))
			}
		}
	}
	// The trailer: a field count of -1.
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

// appendField appends a text value: its length, then its bytes.
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
