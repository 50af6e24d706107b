package template

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/goccy/go-json"
)

// CheckValue checks one decoded value against the definition, with the wire rules described
// at the top of check.go. v is what goccy/go-json produces with UseNumber: json.Number,
// string, bool, nil, map[string]any, []any; float64 and Go integer types are accepted too (a
// float64 with an integral value counts as an integer). Errors are *ValueError wrapping
// ErrInvalidValue, or ErrUnknownID for an undeclared struct member; the path is relative to
// v (".x", "[2]") and empty for v itself.
func (d *Define) CheckValue(v any) error {
	if ve := d.checkDecoded(v, 0); ve != nil {
		return ve
	}
	return nil
}

func (d *Define) checkDecoded(v any, depth int) *ValueError {
	if depth > maxDepth {
		return invalid("value nested deeper than " + strconv.Itoa(maxDepth) + " levels")
	}
	switch x := v.(type) {
	case nil:
		return d.checkScalar(scalar{kind: kindNull, lit: []byte("null")})
	case bool:
		return d.checkScalar(scalar{kind: kindBool, lit: []byte(strconv.FormatBool(x))})
	case string:
		return d.checkScalar(scalar{kind: kindString, lit: []byte(x), runes: utf8.RuneCountInString(x)})
	case json.Number:
		return d.checkNumberText(string(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return invalid(strconv.FormatFloat(x, 'g', -1, 64) + " is not a JSON number")
		}
		return d.checkNumberText(strconv.FormatFloat(x, 'f', -1, 64))
	case float32:
		return d.checkDecoded(float64(x), depth)
	case int:
		return d.checkNumberText(strconv.FormatInt(int64(x), 10))
	case int8:
		return d.checkNumberText(strconv.FormatInt(int64(x), 10))
	case int16:
		return d.checkNumberText(strconv.FormatInt(int64(x), 10))
	case int32:
		return d.checkNumberText(strconv.FormatInt(int64(x), 10))
	case int64:
		return d.checkNumberText(strconv.FormatInt(x, 10))
	case uint:
		return d.checkNumberText(strconv.FormatUint(uint64(x), 10))
	case uint8:
		return d.checkNumberText(strconv.FormatUint(uint64(x), 10))
	case uint16:
		return d.checkNumberText(strconv.FormatUint(uint64(x), 10))
	case uint32:
		return d.checkNumberText(strconv.FormatUint(uint64(x), 10))
	case uint64:
		return d.checkNumberText(strconv.FormatUint(x, 10))
	case map[string]any:
		if d == nil || d.Type != TypeStruct {
			return d.checkScalar(scalar{kind: kindObject})
		}
		return d.checkStructDecoded(x, depth)
	case []any:
		if d == nil || d.Type != TypeArray {
			return d.checkScalar(scalar{kind: kindArray})
		}
		for i, e := range x {
			var ve *ValueError
			if e == nil {
				ve = invalid("null element in array")
			} else {
				ve = d.Elem.checkDecoded(e, depth+1)
			}
			if ve != nil {
				return prefix(ve, "["+strconv.Itoa(i)+"]")
			}
		}
		return nil
	}
	return invalid(fmt.Sprintf("unsupported Go value of type %T", v))
}

func (d *Define) checkNumberText(lit string) *ValueError {
	if !isJSONNumber(lit) {
		return invalid(strconv.Quote(lit) + " is not a JSON number")
	}
	isInt := true
	for i := 0; i < len(lit); i++ {
		if c := lit[i]; c == '.' || c == 'e' || c == 'E' {
			isInt = false
			break
		}
	}
	return d.checkScalar(scalar{kind: kindNumber, lit: []byte(lit), isInt: isInt})
}

// checkStructDecoded checks members in declaration order, then reports undeclared keys, so the
// first error does not depend on map iteration order.
func (d *Define) checkStructDecoded(m map[string]any, depth int) *ValueError {
	known := 0
	for _, sp := range d.Specs {
		v, ok := m[sp.ID]
		if !ok {
			continue
		}
		known++
		if v == nil {
			continue
		}
		if ve := sp.Define.checkDecoded(v, depth+1); ve != nil {
			return prefix(ve, "."+sp.ID)
		}
	}
	if known == len(m) {
		return nil
	}
	// Report the smallest undeclared key for a deterministic message.
	var bad string
	found := false
	for k := range m {
		if findParam(d.Specs, []byte(k), false) < 0 && (!found || k < bad) {
			bad, found = k, true
		}
	}
	return &ValueError{Path: memberSeg(bad), Msg: "unknown struct member " + strconv.Quote(bad), Err: ErrUnknownID}
}
