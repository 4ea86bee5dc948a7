package gateway

import (
	"slices"
	"strings"

	"github.com/ordo-pipeline/ordo/shard"
	"github.com/tidwall/gjson"
)

// Types are the event types, each with its endpoint /v1/<type>.
var Types = []string{"track", "identify", "page", "screen", "group", "alias"}

// required names the member each type needs besides userId or
// anonymousId.
var required = map[string]string{
	"track": "event",
	"group": "groupId",
	"alias": "previousId",
}

// anyValue lists the required members that may hold any JSON value but
// null or "": Segment SDKs may send a number as groupId or previousId.
// The others must be non-empty strings.
var anyValue = map[string]bool{"groupId": true, "previousId": true}

// event is a decoded and validated event.
type event struct {
	obj         *object
	shared      []field // members of the batch body it lacks, to add
	typ         string
	userID      string
	anonymousID string
	key         string // the ordering key: shard.OrderingKey(userID, anonymousID)
	messageID   string // "" when the client sent none
}

// validate checks obj as an event of type typ, or, when typ is "" (an
// element of a batch), of the type it names itself. The members of shared
// that obj lacks are added to it when it is enriched.
func validate(obj *object, typ string, shared []field) (*event, *httpError) {
	if typ == "" {
		t, present, herr := stringField(obj, "type")
		switch {
		case herr != nil:
			return nil, herr
		case !present:
			return nil, badRequest(`"type" is required: one of %s`, strings.Join(Types, ", "))
		case !slices.Contains(Types, t):
			return nil, badRequest(`"type" %q is not one of %s`, t, strings.Join(Types, ", "))
		}
		typ = t
	}
	ev := &event{obj: obj, typ: typ}
	for _, f := range shared {
		if _, ok := obj.get(f.key); !ok {
			ev.shared = append(ev.shared, f)
		}
	}
	var herr *httpError
	if ev.userID, _, herr = stringField(obj, "userId"); herr != nil {
		return nil, herr
	}
	if ev.anonymousID, _, herr = stringField(obj, "anonymousId"); herr != nil {
		return nil, herr
	}
	if ev.key = shard.OrderingKey(ev.userID, ev.anonymousID); ev.key == "" {
		return nil, badRequest(`"userId" or "anonymousId" is required (a non-empty string)`)
	}
	if ev.messageID, _, herr = stringField(obj, "messageId"); herr != nil {
		return nil, herr
	}
	if name := required[typ]; name != "" {
		if herr := requireField(obj, typ, name); herr != nil {
			return nil, herr
		}
	}
	return ev, nil
}

// requireField checks that obj, an event of type typ, holds its required
// member name.
func requireField(obj *object, typ, name string) *httpError {
	if anyValue[name] {
		f, ok := obj.get(name)
		if ok && f.typ != gjson.String && f.typ != gjson.Null {
			return nil // a number, object, array or boolean
		}
		if _, present, herr := stringField(obj, name); herr != nil || present {
			return herr
		}
		return badRequest(`%s event needs %q (any value but null or "")`, typ, name)
	}
	_, present, herr := stringField(obj, name)
	if herr != nil {
		return herr
	}
	if !present {
		return badRequest(`%s event needs %q (a non-empty string)`, typ, name)
	}
	return nil
}

// stringField returns the string value of obj's member name. A member that
// is absent, null or "" is not present; any other value than a string is
// an error naming the member, as is a string holding a NUL character,
// which Postgres text cannot store.
func stringField(obj *object, name string) (s string, present bool, herr *httpError) {
	f, ok := obj.get(name)
	if !ok || f.typ == gjson.Null {
		return "", false, nil
	}
	if f.typ != gjson.String {
		return "", false, badRequest("%q must be a string", name)
	}
	if strings.IndexByte(f.str, 0) >= 0 {
		return "", false, badRequest("%q must not hold a NUL character", name)
	}
	return f.str, f.str != "", nil
}
