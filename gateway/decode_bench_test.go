package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// wideEvent has members top-level keys; flatEvent is an event of about the
// same size with a handful of members, one of them a long string.
func wideEvent(members int) []byte {
	var b strings.Builder
	b.WriteString(`{"userId":"u1","event":"e"`)
	for i := range members {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i%10)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func flatEvent(size int) []byte {
	pad := max(0, size-len(`{"userId":"u1","event":"e","p":""}`))
	return []byte(`{"userId":"u1","event":"e","p":"` + strings.Repeat("x", pad) + `"}`)
}

// BenchmarkDecodeShape decodes, validates and enriches wide events and a
// flat one of the same size as the widest. Decoding is linear in the
// members: twice the members cost twice the time, not four times.
func BenchmarkDecodeShape(b *testing.B) {
	wide := wideEvent(2900)
	for _, c := range []struct {
		name string
		data []byte
	}{{"wide-725-keys", wideEvent(725)}, {"wide-1450-keys", wideEvent(1450)}, {"wide-2900-keys", wide}, {"flat-same-size", flatEvent(len(wide))}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			at := time.Now()
			for b.Loop() {
				ev, herr := decodeEvent(c.data, "track", nil)
				if herr != nil {
					b.Fatal(herr.msg)
				}
				ev.enrich(at)
			}
		})
	}
}
