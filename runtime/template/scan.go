package template

import (
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack; real templates nest
// at most six levels (properties > define > arrayInfo > specs > dataType).
const maxDepth = 64

// syntaxError is a JSON syntax problem at a byte offset.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

// scanner is a small byte-oriented JSON reader shared by the template parser (which builds a
// positioned tree) and the value checkers (which validate in place without building anything).
// It tracks only a byte offset; lines and columns are computed when an error is reported.
type scanner struct {
	data []byte
	off  int
}

func (s *scanner) errf(off int, format string, args ...any) *syntaxError {
	return &syntaxError{off: off, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) skipWS() {
	for s.off < len(s.data) {
		switch s.data[s.off] {
		case ' ', '\t', '\n', '\r':
			s.off++
		default:
			return
		}
	}
}

// eof skips white space and reports whether the input is exhausted.
func (s *scanner) eof() bool {
	s.skipWS()
	return s.off >= len(s.data)
}

// peek returns the next non-space byte, or 0 at end of input. A NUL byte in the input also
// reads as 0, so end of input must be tested with eof, never with peek.
func (s *scanner) peek() byte {
	s.skipWS()
	if s.off >= len(s.data) {
		return 0
	}
	return s.data[s.off]
}

// describe names the byte at off for messages ("end of input", `'x'`).
func (s *scanner) describe(off int) string {
	if off >= len(s.data) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(s.data[off:])
	if r == utf8.RuneError {
		return fmt.Sprintf("byte 0x%02x", s.data[off])
	}
	return fmt.Sprintf("%q", r)
}

// readString reads a JSON string starting at s.off (which must be '"'). raw is the content
// between the quotes; escaped reports whether raw contains backslash escapes; runes is the
// decoded rune count (an escaped surrogate pair counts as one rune).
func (s *scanner) readString() (raw []byte, escaped bool, runes int, err *syntaxError) {
	start := s.off
	i := s.off + 1
	d := s.data
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			s.off = i + 1
			return d[start+1 : i], escaped, runes, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return nil, false, 0, s.errf(i, "unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				runes++
			case 'u':
				r, ok := hex4(d, i+2)
				if !ok {
					return nil, false, 0, s.errf(i, `invalid \u escape in string`)
				}
				i += 6
				// A high surrogate followed by a low surrogate is one character.
				if r >= 0xD800 && r < 0xDC00 && i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
					if r2, ok := hex4(d, i+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
						i += 6
					}
				}
				runes++
			default:
				return nil, false, 0, s.errf(i, "invalid escape %q in string", "\\"+string(rune(d[i+1])))
			}
		case c < 0x20:
			if c == '\n' {
				return nil, false, 0, s.errf(start, "unterminated string (newline inside string)")
			}
			return nil, false, 0, s.errf(i, "control character 0x%02x inside string", c)
		case c < utf8.RuneSelf:
			i++
			runes++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, 0, s.errf(i, "invalid UTF-8 in string")
			}
			i += size
			runes++
		}
	}
	return nil, false, 0, s.errf(start, "unterminated string")
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unescape decodes the content of a JSON string already validated by readString.
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(raw, i+2)
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2, ok := hex4(raw, i+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError // lone surrogate
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, raw[i+1])
		}
		i += 2
	}
	return string(out)
}

// readNumber reads a JSON number at s.off. isInt reports an integer literal (no fraction or
// exponent).
func (s *scanner) readNumber() (lit []byte, isInt bool, err *syntaxError) {
	d := s.data
	start := s.off
	i := start
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
		if i < len(d) && d[i] >= '0' && d[i] <= '9' {
			return nil, false, s.errf(start, "invalid number: leading zeros are not allowed")
		}
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, false, s.errf(start, "invalid number")
	}
	isInt = true
	if i < len(d) && d[i] == '.' {
		isInt = false
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false, s.errf(start, "invalid number: digits expected after '.'")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		isInt = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false, s.errf(start, "invalid number: digits expected in exponent")
		}
	}
	s.off = i
	return d[start:i], isInt, nil
}

// readLiteral consumes true, false or null at s.off.
func (s *scanner) readLiteral() (word string, err *syntaxError) {
	for _, w := range [...]string{"true", "false", "null"} {
		if len(s.data)-s.off >= len(w) && string(s.data[s.off:s.off+len(w)]) == w {
			s.off += len(w)
			return w, nil
		}
	}
	return "", s.errf(s.off, "unexpected %s, expected a JSON value", s.describe(s.off))
}

// skipValue consumes one JSON value of any kind, validating its syntax.
func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return s.errf(s.off, "nesting deeper than %d levels", maxDepth)
	}
	switch c := s.peek(); {
	case c == '"':
		if _, _, _, err := s.readString(); err != nil {
			return err
		}
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		if _, _, err := s.readNumber(); err != nil {
			return err
		}
		return nil
	case c == '{':
		return s.eachMember(func(_ []byte, _ bool, _ int) error { return s.skipValue(depth + 1) })
	case c == '[':
		return s.eachElem(func(int) error { return s.skipValue(depth + 1) })
	default:
		if _, err := s.readLiteral(); err != nil {
			return err
		}
		return nil
	}
}

// nextKey advances to the i-th key of an object whose '{' is at s.off (i == 0) or that is
// being iterated. more is false once the closing '}' is consumed. After a key, the scanner is
// at the member's value, which the caller must consume before asking for the next key.
func (s *scanner) nextKey(i int) (key []byte, escaped, more bool, keyOff int, err *syntaxError) {
	if i == 0 {
		s.off++ // '{'
		if s.peek() == '}' {
			s.off++
			return nil, false, false, 0, nil
		}
	} else {
		switch s.peek() {
		case ',':
			comma := s.off
			s.off++
			if s.peek() == '}' {
				return nil, false, false, 0, s.errf(comma, "trailing comma before }")
			}
		case '}':
			s.off++
			return nil, false, false, 0, nil
		default:
			return nil, false, false, 0, s.errf(s.off, "unexpected %s, expected ',' or '}'", s.describe(s.off))
		}
	}
	if s.peek() != '"' {
		return nil, false, false, 0, s.errf(s.off, "unexpected %s, expected a string key", s.describe(s.off))
	}
	keyOff = s.off
	key, escaped, _, err = s.readString()
	if err != nil {
		return nil, false, false, 0, err
	}
	if s.peek() != ':' {
		return nil, false, false, 0, s.errf(s.off, "unexpected %s, expected ':' after key", s.describe(s.off))
	}
	s.off++
	s.skipWS()
	return key, escaped, true, keyOff, nil
}

// nextElem advances to the i-th element of an array whose '[' is at s.off (i == 0) or that is
// being iterated; more is false once the closing ']' is consumed.
func (s *scanner) nextElem(i int) (more bool, err *syntaxError) {
	if i == 0 {
		s.off++ // '['
		if s.peek() == ']' {
			s.off++
			return false, nil
		}
		return true, nil
	}
	switch s.peek() {
	case ',':
		comma := s.off
		s.off++
		if s.peek() == ']' {
			return false, s.errf(comma, "trailing comma before ]")
		}
		s.skipWS()
		return true, nil
	case ']':
		s.off++
		return false, nil
	default:
		return false, s.errf(s.off, "unexpected %s, expected ',' or ']'", s.describe(s.off))
	}
}

// eachMember iterates an object at s.off, calling fn with each key (raw, escaped) and the key's
// offset; fn must consume the member's value. Errors from fn are returned unchanged; syntax
// errors are *syntaxError.
func (s *scanner) eachMember(fn func(key []byte, escaped bool, keyOff int) error) error {
	for i := 0; ; i++ {
		key, esc, more, keyOff, err := s.nextKey(i)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		if err := fn(key, esc, keyOff); err != nil {
			return err
		}
	}
}

// eachElem iterates an array at s.off, calling fn(index) for each element; fn must consume it.
func (s *scanner) eachElem(fn func(i int) error) error {
	for i := 0; ; i++ {
		more, err := s.nextElem(i)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		if err := fn(i); err != nil {
			return err
		}
	}
}
