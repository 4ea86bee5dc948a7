package cli

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// ExitUsage is the exit status for a missing or malformed setting.
const ExitUsage = 2

// Validator is a config that checks itself after parsing. Its error should
// name the variable at fault.
type Validator interface {
	Validate() error
}

// SettingError is a missing or malformed setting.
type SettingError struct {
	Var string // the environment variable, e.g. ORDO_NODES
	Msg string
}

func (e *SettingError) Error() string { return e.Var + ": " + e.Msg }

// ParseEnv fills a T from the environment (or from environ when not nil)
// and validates it. The error, if any, names the variable at fault.
func ParseEnv[T any](environ map[string]string) (T, error) {
	var cfg T
	opts := env.Options{Environment: environ}
	if err := env.ParseWithOptions(&cfg, opts); err != nil {
		return cfg, settingError(&cfg, err)
	}
	if v, ok := any(&cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// settingError turns env's errors (which name struct fields for parse
// errors) into one SettingError naming the variable.
func settingError(cfg any, err error) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var notSet env.VarIsNotSetError
	var empty env.EmptyVarError
	var parse env.ParseError
	switch {
	case errors.As(err, &notSet):
		return &SettingError{Var: notSet.Key, Msg: "required but not set"}
	case errors.As(err, &empty):
		return &SettingError{Var: empty.Key, Msg: "must not be empty"}
	case errors.As(err, &parse):
		return &SettingError{Var: envKey(reflect.TypeOf(cfg).Elem(), parse.Name), Msg: fmt.Sprintf("not a valid %s: %v", typeName(parse.Type), unwrapParse(parse.Err))}
	}
	return err
}

func envKey(t reflect.Type, field string) string {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == field {
			if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
				return k
			}
		}
		if f.Type.Kind() == reflect.Struct {
			if k := envKey(f.Type, field); k != field {
				return k
			}
		}
	}
	return field
}

func typeName(t reflect.Type) string {
	switch t.String() {
	case "time.Duration":
		return "duration (like 10s or 5m)"
	case "int", "int64", "int32":
		return "integer"
	case "bool":
		return "boolean"
	}
	return t.String()
}

func unwrapParse(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
