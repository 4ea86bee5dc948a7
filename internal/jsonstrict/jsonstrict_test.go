package jsonstrict

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	type cfg struct {
		URL     string            `json:"url"`
		N       int               `json:"n"`
		Headers map[string]string `json:"headers"`
		List    []string          `json:"list"`
	}
	var c cfg
	if err := Decode([]byte(`{"url":"u","n":3}`), &c); err != nil || c.URL != "u" || c.N != 3 {
		t.Fatalf("Decode(good) = %v, %+v", err, c)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"url": 5}`, "url must be a string, not JSON number"},
		{`{"n": "x"}`, "n must be a whole number, not JSON string"},
		{`{"list": {}}`, "list must be an array, not JSON object"},
		{`[]`, "must be an object, not JSON array"},
		{`{"nope": 1}`, `unknown field "nope"`},
		{`{} {}`, ErrTrailingData.Error()},
	} {
		err := Decode([]byte(tc.in), &c)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
	var syn *json.SyntaxError
	if err := Decode([]byte(`{"url": }`), &c); !errors.As(err, &syn) {
		t.Errorf("Decode(malformed) = %v, want one that unwraps to *json.SyntaxError", err)
	}
	var te *json.UnmarshalTypeError
	if err := Decode([]byte(`{"url": 5}`), &c); !errors.As(err, &te) || te.Field != "url" {
		t.Errorf("Decode(type error) = %v, want one that unwraps to *json.UnmarshalTypeError", err)
	}
}
