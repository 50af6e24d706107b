package tplwire

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// ErrInvalidValue is matched (errors.Is) by every *ValueError: a value outside the limits
// the data template declares — what the platform answers with code 406.
var ErrInvalidValue = errors.New("invalid value")

// ValueError is one value that breaks a template limit, located by its JSON path
// ("brightness", "struct.int_param", "arrStruct[2].intM").
type ValueError struct {
	Path string
	Msg  string
}

// Error returns "path: message".
func (e *ValueError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Is reports whether target is ErrInvalidValue.
func (e *ValueError) Is(target error) bool { return target == ErrInvalidValue }

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

// Err returns nil when nothing was added, else all added errors joined (errors.Join).
func (e *Errors) Err() error { return errors.Join(e.errs...) }

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

// CheckInt reports v outside [min, max]. Generated code passes math.MinInt64/MaxInt64 for
// a bound the template leaves open.
func CheckInt(path string, v, min, max int64) error {
	if v < min || v > max {
		return &ValueError{Path: path, Msg: strconv.FormatInt(v, 10) + " is out of range " + intRange(min, max)}
	}
	return nil
}

// CheckFloat reports a non-finite v or v outside [min, max]. Generated code passes
// ±math.MaxFloat64 for a bound the template leaves open.
func CheckFloat(path string, v, min, max float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return &ValueError{Path: path, Msg: formatFloat(v) + " is not a finite number"}
	}
	if v < min || v > max {
		return &ValueError{Path: path, Msg: formatFloat(v) + " is out of range " + floatRange(min, max)}
	}
	return nil
}

// CheckString reports s that is not valid UTF-8 or whose length in characters (runes) is
// outside [min, max]. Generated code passes math.MaxInt for an open maximum.
func CheckString(path, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return &ValueError{Path: path, Msg: "string is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		return &ValueError{Path: path, Msg: "length " + strconv.Itoa(n) + " is out of range " +
			intRange(int64(min), int64(max)) + " characters"}
	}
	return nil
}

// NotOneOf is the error for an enum value that is not a mapping key; allowed lists the keys.
func NotOneOf(path, value, allowed string) error {
	return &ValueError{Path: path, Msg: value + " is not one of " + allowed}
}

// Missing is the error for a required array left nil, which would go on the wire as null.
func Missing(path string) error {
	return &ValueError{Path: path, Msg: "is missing (a nil slice encodes as null; use an empty slice)"}
}

func intRange(min, max int64) string {
	lo, hi := "-inf", "+inf"
	if min != math.MinInt64 {
		lo = strconv.FormatInt(min, 10)
	}
	if max != math.MaxInt64 && max != math.MaxInt {
		hi = strconv.FormatInt(max, 10)
	}
	return "[" + lo + ", " + hi + "]"
}

func floatRange(min, max float64) string {
	lo, hi := "-inf", "+inf"
	if min != -math.MaxFloat64 {
		lo = formatFloat(min)
	}
	if max != math.MaxFloat64 {
		hi = formatFloat(max)
	}
	return "[" + lo + ", " + hi + "]"
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// CheckEnum is the error for an enum value v that is not a mapping key (valid is the
// generated type's Valid()); allowed lists the keys for the message.
func CheckEnum(path string, v int64, valid bool, allowed string) error {
	if valid {
		return nil
	}
	return NotOneOf(path, strconv.FormatInt(v, 10), allowed)
}

// CheckStringEnum is CheckEnum for stringenum values.
func CheckStringEnum(path, v string, valid bool, allowed string) error {
	if valid {
		return nil
	}
	return NotOneOf(path, strconv.Quote(v), allowed)
}
