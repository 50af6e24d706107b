package template

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

// The wire rules are listed in the package documentation (model.go).

// scalar describes one non-container JSON value for the type checks.
type scalar struct {
	kind  kind
	lit   []byte // number literal, string content (still escaped when esc), or true/false/null
	isInt bool   // number literal without fraction or exponent
	esc   bool   // string content contains escapes
	runes int    // string length in runes
}

func invalid(msg string) *ValueError { return &ValueError{Msg: msg, Err: ErrInvalidValue} }

// show renders a value for a message, shortened so hostile payloads stay readable.
func (v scalar) show() string {
	switch v.kind {
	case kindString:
		s := string(v.lit)
		if v.esc {
			s = unescape(v.lit)
		}
		if utf8.RuneCountInString(s) > 32 {
			s = string([]rune(s)[:32]) + "…"
		}
		return strconv.Quote(s)
	case kindObject, kindArray:
		return v.kind.String()
	}
	if len(v.lit) > 40 {
		return string(v.lit[:40]) + "…"
	}
	return string(v.lit)
}

// describe is "a string "12"", "an object", "true".
func (v scalar) describe() string {
	switch v.kind {
	case kindString:
		return "a string " + v.show()
	case kindNumber:
		return "the number " + v.show()
	}
	return v.show()
}

// inRange reports whether f is within the define's bounds (those given).
func (d *Define) inRange(f float64) bool {
	return !(d.HasMin && f < d.Min) && !(d.HasMax && f > d.Max)
}

// rangeErr is the message for a value outside the bounds; what names the checked quantity
// ("101", "length 70"). Only called on failure, so the success path builds no strings.
func (d *Define) rangeErr(f float64, what string) *ValueError {
	return invalid(tplwire.RangeMessage(what, f, d.HasMin, d.Min, d.HasMax, d.Max))
}

// parseInt parses an integer literal without allocating; ok is false on overflow.
func parseInt(lit []byte) (n int64, ok bool) {
	neg := len(lit) > 0 && lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var u uint64
	for _, c := range lit {
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

func parseFloat(v scalar) (float64, bool) {
	if v.isInt {
		if n, ok := parseInt(v.lit); ok {
			return float64(n), true
		}
	}
	f, err := strconv.ParseFloat(string(v.lit), 64)
	return f, err == nil
}

// mappingKeys lists the mapping keys for messages ("0,1,2" or "celsius,fahrenheit").
func (d *Define) mappingKeys() string {
	var b strings.Builder
	for i, e := range d.Mapping {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.Key)
	}
	return b.String()
}

// checkScalar checks a non-container value, and reports a container given where a scalar (or
// a scalar where a container) is expected.
func (d *Define) checkScalar(v scalar) *ValueError {
	if d == nil {
		return nil // an unusable define was already reported by Parse
	}
	switch d.Type {
	case TypeBool:
		if v.kind == kindNumber {
			if v.isInt && len(v.lit) == 1 && (v.lit[0] == '0' || v.lit[0] == '1') {
				return nil
			}
			return invalid(v.show() + " is not 0 or 1 (bool)")
		}
		if v.kind == kindBool {
			return invalid(v.show() + ": bool values are sent as 0 or 1, not true/false")
		}
		return invalid("expected 0 or 1 (bool), got " + v.describe())
	case TypeInt:
		if v.kind != kindNumber {
			return invalid("expected an integer, got " + v.describe())
		}
		if !v.isInt {
			return invalid(v.show() + " is not an integer")
		}
		n, ok := parseInt(v.lit)
		if !ok {
			return invalid(v.show() + " does not fit in a 64-bit integer")
		}
		if d.inRange(float64(n)) {
			return nil
		}
		return d.rangeErr(float64(n), v.show())
	case TypeFloat:
		if v.kind != kindNumber {
			return invalid("expected a number, got " + v.describe())
		}
		f, ok := parseFloat(v)
		if !ok {
			return invalid(v.show() + " is out of the float64 range")
		}
		if d.inRange(f) {
			return nil
		}
		return d.rangeErr(f, v.show())
	case TypeString:
		if v.kind != kindString {
			return invalid("expected a string, got " + v.describe())
		}
		if d.inRange(float64(v.runes)) {
			return nil
		}
		return d.rangeErr(float64(v.runes), "length "+strconv.Itoa(v.runes))
	case TypeEnum:
		if v.kind != kindNumber {
			return invalid("expected an enum value (one of " + d.mappingKeys() + "), got " + v.describe())
		}
		if v.isInt {
			if n, ok := parseInt(v.lit); ok {
				for i := range d.Mapping {
					if d.Mapping[i].Int == n {
						return nil
					}
				}
			}
		}
		return invalid(v.show() + " is not one of " + d.mappingKeys())
	case TypeStringEnum:
		if v.kind != kindString {
			return invalid("expected a string enum value (one of " + d.mappingKeys() + "), got " + v.describe())
		}
		s := v.lit
		if v.esc {
			s = []byte(unescape(v.lit))
		}
		for i := range d.Mapping {
			if d.Mapping[i].Key == string(s) {
				return nil
			}
		}
		return invalid(v.show() + " is not one of " + d.mappingKeys())
	case TypeTimestamp:
		switch {
		case v.kind == kindNumber && v.isInt && v.lit[0] != '-':
			if _, ok := parseInt(v.lit); ok {
				return nil
			}
		case v.kind == kindString && !v.esc && len(v.lit) > 0 && len(v.lit) <= 19 && allDigits(v.lit):
			return nil
		}
		return invalid("expected a timestamp (non-negative integer seconds or milliseconds, or a string of digits), got " + v.describe())
	case TypeStruct:
		return invalid("expected an object (struct), got " + v.describe())
	case TypeArray:
		return invalid("expected an array, got " + v.describe())
	}
	return invalid("unsupported type " + strconv.Quote(string(d.Type)))
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// prefix prepends a path segment to e's path (".x" or "[2]"), used as errors bubble up.
func prefix(e *ValueError, seg string) *ValueError {
	if e != nil {
		e.Path = seg + e.Path
	}
	return e
}

// member is the path segment for key: ".key", or a quoted form for keys that are not ids.
func memberSeg(key string) string {
	if ValidID(key) {
		return "." + key
	}
	return "[" + strconv.Quote(key) + "]"
}

// findParam looks a member/parameter up by its raw (possibly escaped) key.
func findParam(ps []*Param, key []byte, esc bool) int {
	if esc {
		key = []byte(unescape(key))
	}
	for i, p := range ps {
		if p.ID == string(key) {
			return i
		}
	}
	return -1
}

// bitset tracks which members were seen, without allocating for up to 128 members.
type bitset struct {
	small [2]uint64
	big   []uint64
}

func (b *bitset) init(n int) {
	if n > 128 {
		b.big = make([]uint64, (n+63)/64)
	}
}

func (b *bitset) words() []uint64 {
	if b.big != nil {
		return b.big
	}
	return b.small[:]
}

// set marks i and reports whether it was already set.
func (b *bitset) set(i int) bool {
	w := b.words()
	was := w[i/64]&(1<<(uint(i)%64)) != 0
	w[i/64] |= 1 << (uint(i) % 64)
	return was
}

func (b *bitset) has(i int) bool { return b.words()[i/64]&(1<<(uint(i)%64)) != 0 }

func (b *bitset) clear(i int) { b.words()[i/64] &^= 1 << (uint(i) % 64) }
