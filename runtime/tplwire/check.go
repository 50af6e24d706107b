package tplwire

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// The project's one value-error vocabulary. Generated Validate methods, the typed Report and
// PostEvent paths, the template package's raw checks (runtime/template re-exports these names)
// and the in-process platform all fail with a *ValueError wrapping one of these sentinels, and
// all format the message the same way: "JSON.path: what is wrong".
var (
	// ErrInvalidValue: a value of the wrong type or outside the template's limits, or a
	// required value missing (the platform answers 406).
	ErrInvalidValue = errors.New("invalid value")
	// ErrUnknownID: a property, event, action, parameter or struct member id that is not in
	// the template (the platform answers 403).
	ErrUnknownID = errors.New("unknown id")
	// ErrMalformed: the params payload is not JSON, not an object, or repeats a key (the
	// platform answers 400).
	ErrMalformed = errors.New("malformed params")
	// ErrReadOnly: a control tried to set a read-only ("r") property. A *ValueError wrapping
	// it also matches ErrInvalidValue.
	ErrReadOnly = errors.New("read-only property")
)

// ValueError is one value that breaks the template, located by its JSON path
// ("params.brightness", "params.pos.x", "params.points[2]"). Err is one of the sentinels
// above; a ValueError with a nil Err counts as ErrInvalidValue.
type ValueError struct {
	Path string
	Msg  string
	Err  error
}

// Error returns "path: message".
func (e *ValueError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Unwrap returns the sentinel (and ErrInvalidValue as well for ErrReadOnly).
func (e *ValueError) Unwrap() []error {
	switch e.Err {
	case nil:
		return []error{ErrInvalidValue}
	case ErrReadOnly:
		return []error{ErrReadOnly, ErrInvalidValue}
	}
	return []error{e.Err}
}

// Invalid returns a *ValueError wrapping ErrInvalidValue.
func Invalid(path, msg string) *ValueError {
	return &ValueError{Path: path, Msg: msg, Err: ErrInvalidValue}
}

// Errors collects the problems found while validating one value, so Validate can report
// all of them at once. The zero value is ready to use.
type Errors struct {
	errs []error
}

// Add records err; nil is ignored.
func (e *Errors) Add(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// Err returns nil when nothing was added, the one error when one was added, else all of
// them joined (errors.Join, one per line).
func (e *Errors) Err() error {
	switch len(e.errs) {
	case 0:
		return nil
	case 1:
		return e.errs[0]
	}
	return errors.Join(e.errs...)
}

// Join appends an object key to a JSON path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index appends an array index to a JSON path.
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// at is the JSON path of a checked value: path, then key (if not ""), then [index] (if
// index >= 0). The check methods below build it only when a value fails, so validating a
// good value allocates nothing.
func at(path, key string, index int) string {
	if key != "" {
		path = Join(path, key)
	}
	if index >= 0 {
		path = Index(path, index)
	}
	return path
}

// The check methods record a problem with the value at path.key[index] (key "" and index
// -1 leave those parts out). Generated Validate methods call them with the template's
// limits; a limit the template leaves open is passed as the type's extreme
// (math.MinInt64/MaxInt64, ±math.MaxFloat64, math.MaxInt).

// CheckInt records v outside [min, max].
func (e *Errors) CheckInt(path, key string, index int, v, min, max int64) {
	if v < min || v > max {
		e.Add(CheckInt(at(path, key, index), v, min, max))
	}
}

// CheckFloat records a non-finite v or v outside [min, max].
func (e *Errors) CheckFloat(path, key string, index int, v, min, max float64) {
	if !(v >= min && v <= max) || math.IsInf(v, 0) {
		e.Add(CheckFloat(at(path, key, index), v, min, max))
	}
}

// CheckString records s that is not UTF-8 or whose length in characters is outside [min, max].
func (e *Errors) CheckString(path, key string, index int, s string, min, max int) {
	if min == 0 && len(s) <= max && utf8.ValidString(s) {
		return
	}
	e.Add(CheckString(at(path, key, index), s, min, max))
}

// CheckEnum records an enum value that is not a mapping key (valid is the generated type's
// Valid()); allowed lists the keys for the message.
func (e *Errors) CheckEnum(path, key string, index int, v int64, valid bool, allowed string) {
	if !valid {
		e.Add(NotOneOf(at(path, key, index), strconv.FormatInt(v, 10), allowed))
	}
}

// CheckStringEnum is CheckEnum for stringenum values.
func (e *Errors) CheckStringEnum(path, key string, index int, v string, valid bool, allowed string) {
	if !valid {
		e.Add(NotOneOf(at(path, key, index), strconv.Quote(v), allowed))
	}
}

// Missing records a required value left out (a required array left nil, which would go on
// the wire as null).
func (e *Errors) Missing(path, key string) {
	e.Add(Missing(at(path, key, -1)))
}

// CheckInt reports v outside [min, max] as a *ValueError at path (nil when v is in range).
func CheckInt(path string, v, min, max int64) error {
	if v >= min && v <= max {
		return nil
	}
	return Invalid(path, RangeMessage(strconv.FormatInt(v, 10), float64(v),
		min != math.MinInt64, float64(min), max != math.MaxInt64, float64(max)))
}

// CheckFloat reports a non-finite v or v outside [min, max].
func CheckFloat(path string, v, min, max float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Invalid(path, FormatNumber(v)+" is not a finite number")
	}
	if v >= min && v <= max {
		return nil
	}
	return Invalid(path, RangeMessage(FormatNumber(v), v, min != -math.MaxFloat64, min, max != math.MaxFloat64, max))
}

// CheckString reports s that is not valid UTF-8 or whose length in characters (runes) is
// outside [min, max].
func CheckString(path, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return Invalid(path, "string is not valid UTF-8")
	}
	n := utf8.RuneCountInString(s)
	if n >= min && n <= max {
		return nil
	}
	return Invalid(path, RangeMessage("length "+strconv.Itoa(n), float64(n), true, float64(min), max != math.MaxInt, float64(max)))
}

// RangeMessage is the one wording for a value outside its limits: "101 out of range
// [0,100]", "-1 is below the minimum 0", "7 is above the maximum 5". what is the checked
// quantity as shown ("101", "length 70"); v is its value.
func RangeMessage(what string, v float64, hasMin bool, min float64, hasMax bool, max float64) string {
	switch {
	case hasMin && hasMax:
		return what + " out of range [" + FormatNumber(min) + "," + FormatNumber(max) + "]"
	case hasMin && v < min:
		return what + " is below the minimum " + FormatNumber(min)
	default:
		return what + " is above the maximum " + FormatNumber(max)
	}
}

// FormatNumber renders a limit or value the way messages show it: shortest decimal, no
// exponent ("50.5", "100", "0.001").
func FormatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// NotOneOf is the error for an enum value that is not a mapping key; allowed lists the keys.
func NotOneOf(path, value, allowed string) error {
	return Invalid(path, value+" is not one of "+allowed)
}

// Missing is the error for a required value left out.
func Missing(path string) error {
	return Invalid(path, "missing")
}
