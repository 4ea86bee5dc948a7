package gateway

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// receivedAtLayout is RFC 3339 in UTC with milliseconds, as RudderStack
// writes receivedAt.
const receivedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// enrich returns the event as it is stored: the members sent, in their
// order and with their values' bytes as sent, plus messageId (a new
// random UUID) where absent, receivedAt and type, which replace whatever
// the client sent for them. It sets e.messageID.
func (e *event) enrich(receivedAt time.Time) []byte {
	if e.messageID == "" {
		e.messageID = uuid.NewString()
		e.obj.set("messageId", quote(e.messageID))
	}
	e.obj.set("receivedAt", quote(receivedAt.UTC().Format(receivedAtLayout)))
	e.obj.set("type", quote(e.typ))

	n := 2
	for _, f := range e.obj {
		n += len(f.key) + len(f.value) + 4
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, f := range e.obj {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, f.key)
		out = append(out, ':')
		out = append(out, f.value...)
	}
	return append(out, '}')
}

// quote returns s as a JSON string.
func quote(s string) json.RawMessage { return appendString(nil, s) }

// appendString appends s, valid UTF-8, as a JSON string, escaping only
// what JSON requires (no HTML escaping).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(dst, '"')
}
