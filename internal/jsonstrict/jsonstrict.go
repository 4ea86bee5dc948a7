// Package jsonstrict decodes JSON settings strictly: one value, no unknown
// fields, nothing after it, with errors said in JSON terms ("timeout must
// be a string, not JSON number") rather than Go's. The workspace file and
// destination configs use it.
package jsonstrict

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// ErrTrailingData is returned for data after the JSON value.
var ErrTrailingData = errors.New("unexpected data after the JSON value")

// Decode decodes the one JSON value of data into v, refusing unknown
// fields and trailing data. A type error is described in JSON terms and
// still unwraps to the *json.UnmarshalTypeError; malformed JSON unwraps to
// the *json.SyntaxError.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailingData
	}
	return nil
}

// typeError is a described *json.UnmarshalTypeError.
type typeError struct {
	msg string
	err *json.UnmarshalTypeError
}

func (e *typeError) Error() string { return e.msg }
func (e *typeError) Unwrap() error { return e.err }

func describe(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return &typeError{fmt.Sprintf("must be %s, not JSON %s", TypeName(typeErr.Type), typeErr.Value), typeErr}
	case errors.As(err, &typeErr):
		return &typeError{fmt.Sprintf("%s must be %s, not JSON %s", typeErr.Field, TypeName(typeErr.Type), typeErr.Value), typeErr}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// DisallowUnknownFields makes an untyped error.
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return fmt.Errorf("malformed JSON: %w", err)
}

// TypeName says in JSON terms what a Go type wants.
func TypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Pointer, reflect.Map:
		return "an object"
	}
	return t.String()
}
