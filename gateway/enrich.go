package gateway

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// receivedAtLayout is RFC 3339 in UTC with milliseconds, as RudderStack
// writes receivedAt.
const receivedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// enrich returns the event as it is stored: the members sent, in their
// order and with their values' bytes as sent, the members of the batch
// body it lacked, and messageId (a new random UUID) where absent,
// receivedAt and type, which replace whatever the client sent for them.
// It sets e.messageID.
//
// When nothing sent is replaced, the event's bytes are kept whole and the
// new members are appended before its closing brace; otherwise the
// members are written out again, each with its bytes as sent.
func (e *event) enrich(receivedAt time.Time) []byte {
	o := e.obj
	typ := quote(e.typ)
	keepType, replace := false, false
	if f, ok := o.get("type"); ok {
		keepType = f.raw == string(typ)
		replace = !keepType
	}
	if _, ok := o.get("receivedAt"); ok {
		replace = true
	}
	newID := e.messageID == ""
	if newID {
		e.messageID = uuid.NewString()
		if _, ok := o.get("messageId"); ok { // null or ""
			replace = true
		}
	}

	n := len(o.raw) + 96
	if replace || o.raw == "" {
		n = 2
		for _, f := range o.fields {
			n += len(f.kraw) + len(f.raw) + 2
		}
		n += 96
	}
	for _, f := range e.shared {
		n += len(f.kraw) + len(f.raw) + 2
	}
	out := make([]byte, 0, n)
	members := 0
	if !replace && o.raw != "" {
		end := strings.LastIndexByte(o.raw, '}')
		out = append(out, o.raw[:end]...)
		members = len(o.fields)
	} else {
		out = append(out, '{')
		for _, f := range o.fields {
			switch f.key {
			case "receivedAt":
				continue
			case "type":
				if !keepType {
					continue
				}
			case "messageId":
				if newID {
					continue
				}
			}
			out = appendMember(out, members, f.kraw, f.raw)
			members++
		}
	}
	for _, f := range e.shared {
		out = appendMember(out, members, f.kraw, f.raw)
		members++
	}
	if newID {
		out = appendMember(out, members, `"messageId"`, string(quote(e.messageID)))
		members++
	}
	out = appendMember(out, members, `"receivedAt"`, `"`+receivedAt.UTC().Format(receivedAtLayout)+`"`)
	if !keepType {
		out = appendMember(out, 1, `"type"`, string(typ))
	}
	return append(out, '}')
}

// appendMember appends one member, after a comma unless it is the first.
func appendMember(dst []byte, before int, key, value string) []byte {
	if before > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, key...)
	dst = append(dst, ':')
	return append(dst, value...)
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
