package template

import (
	"strconv"
)

// The raw checks walk the payload bytes once, validating in place: no decoding into maps, no
// reflection, and no allocation unless something is wrong. Value problems are *ValueError with
// a path relative to the value being checked (prefixed as they bubble up); JSON syntax
// problems are *syntaxError and end the check. After the first value problem the rest of the
// payload is still scanned, so a syntax error anywhere is reported as malformed, as the
// platform would (it parses before it validates).

// checkRaw checks the JSON value at s against d, consuming it.
func (d *Define) checkRaw(s *scanner, depth int) (*ValueError, *syntaxError) {
	if depth > maxDepth {
		return nil, s.errf(s.off, "nesting deeper than %d levels", maxDepth)
	}
	switch c := s.peek(); {
	case c == '"':
		raw, esc, runes, err := s.readString()
		if err != nil {
			return nil, err
		}
		return d.checkScalar(scalar{kind: kindString, lit: raw, esc: esc, runes: runes}), nil
	case c == '-' || (c >= '0' && c <= '9'):
		lit, isInt, err := s.readNumber()
		if err != nil {
			return nil, err
		}
		return d.checkScalar(scalar{kind: kindNumber, lit: lit, isInt: isInt}), nil
	case c == '{':
		if d == nil || d.Type != TypeStruct {
			return d.skipWrong(s, depth, kindObject)
		}
		return d.checkStructRaw(s, depth)
	case c == '[':
		if d == nil || d.Type != TypeArray {
			return d.skipWrong(s, depth, kindArray)
		}
		return d.checkArrayRaw(s, depth)
	default:
		w, err := s.readLiteral()
		if err != nil {
			return nil, err
		}
		k := kindBool
		if w == "null" {
			k = kindNull
		}
		return d.checkScalar(scalar{kind: k, lit: s.data[s.off-len(w) : s.off]}), nil
	}
}

// skipWrong consumes a container given where d expects something else.
func (d *Define) skipWrong(s *scanner, depth int, k kind) (*ValueError, *syntaxError) {
	if err := skip(s, depth); err != nil {
		return nil, err
	}
	return d.checkScalar(scalar{kind: k}), nil
}

func skip(s *scanner, depth int) *syntaxError {
	if err := s.skipValue(depth); err != nil {
		return err.(*syntaxError)
	}
	return nil
}

func (d *Define) checkArrayRaw(s *scanner, depth int) (*ValueError, *syntaxError) {
	var first *ValueError
	for i := 0; ; i++ {
		more, err := s.nextElem(i)
		if err != nil {
			return nil, err
		}
		if !more {
			return first, nil
		}
		if first != nil {
			if err := skip(s, depth+1); err != nil {
				return nil, err
			}
			continue
		}
		var ve *ValueError
		if s.peek() == 'n' {
			if _, err := s.readLiteral(); err != nil {
				return nil, err
			}
			ve = invalid("null element in array")
		} else if ve, err = d.Elem.checkRaw(s, depth+1); err != nil {
			return nil, err
		}
		if ve != nil {
			first = prefix(ve, "["+strconv.Itoa(i)+"]")
		}
	}
}

func (d *Define) checkStructRaw(s *scanner, depth int) (*ValueError, *syntaxError) {
	var first *ValueError
	var seen bitset
	seen.init(len(d.Specs))
	for n := 0; ; n++ {
		key, esc, more, _, err := s.nextKey(n)
		if err != nil {
			return nil, err
		}
		if !more {
			return first, nil
		}
		if first != nil {
			if err := skip(s, depth+1); err != nil {
				return nil, err
			}
			continue
		}
		i := findParam(d.Specs, key, esc)
		switch {
		case i < 0:
			k := keyString(key, esc)
			first = &ValueError{Path: memberSeg(k), Msg: "unknown struct member " + strconv.Quote(k), Err: ErrUnknownID}
		case seen.set(i):
			first = &ValueError{Path: "." + d.Specs[i].ID, Msg: "duplicate key", Err: ErrMalformed}
		case s.peek() == 'n': // null member: absent
			if _, err := s.readLiteral(); err != nil {
				return nil, err
			}
			continue
		default:
			ve, err := d.Specs[i].Define.checkRaw(s, depth+1)
			if err != nil {
				return nil, err
			}
			if ve != nil {
				first = prefix(ve, "."+d.Specs[i].ID)
			}
			continue
		}
		if err := skip(s, depth+1); err != nil {
			return nil, err
		}
	}
}

func keyString(key []byte, esc bool) string {
	if esc {
		return unescape(key)
	}
	return string(key)
}

// CheckProperties checks a report's or control's params object (raw JSON) against the
// properties: every key must be a property and every non-null value valid for it; with
// writableOnly (a control) read-only properties are refused too. An empty payload or null
// counts as an empty object. Errors are *ValueError naming the path (params.brightness) and
// wrapping ErrUnknownID, ErrInvalidValue (and ErrReadOnly), or ErrMalformed.
func (t *Template) CheckProperties(params []byte, writableOnly bool) error {
	r := resolver{t: t, props: true, writableOnly: writableOnly}
	return r.check(params)
}

// CheckEventParams checks an event_post's params (raw JSON) against the event's parameters.
// Parameters may be omitted; unknown ones are refused. An unknown eventID wraps ErrUnknownID.
func (t *Template) CheckEventParams(eventID string, params []byte) error {
	ev := t.Event(eventID)
	if ev == nil {
		return &ValueError{Path: "eventId", Msg: "unknown event " + strconv.Quote(eventID), Err: ErrUnknownID}
	}
	r := resolver{t: t, params: ev.Params, owner: "event", ownerID: eventID}
	return r.check(params)
}

// CheckActionInput checks an action's params (raw JSON) against its input parameters; every
// declared input must be present (as the official SDKs require).
func (t *Template) CheckActionInput(actionID string, params []byte) error {
	return t.checkAction(actionID, params, false)
}

// CheckActionOutput checks an action_reply's response object (raw JSON) against the action's
// output parameters; every declared output must be present. Paths start with "params" like
// the other checks.
func (t *Template) CheckActionOutput(actionID string, params []byte) error {
	return t.checkAction(actionID, params, true)
}

// checkAction checks params against an action's input or output; all are required.
func (t *Template) checkAction(actionID string, params []byte, output bool) error {
	a := t.Action(actionID)
	if a == nil {
		return &ValueError{Path: "actionId", Msg: "unknown action " + strconv.Quote(actionID), Err: ErrUnknownID}
	}
	r := resolver{t: t, params: a.Input, owner: "input of action", ownerID: actionID, all: true}
	if output {
		r.params, r.owner = a.Output, "output of action"
	}
	return r.check(params)
}

// resolver maps the keys of one params object to their defines.
type resolver struct {
	t            *Template
	props        bool // keys are properties (else params)
	writableOnly bool
	params       []*Param
	owner        string // "event", "input of action", ...
	ownerID      string
	all          bool // every param must be present
}

// lookup returns the define for key and its index (for duplicate tracking).
func (r *resolver) lookup(key []byte, esc bool) (*Define, int, *ValueError) {
	if !r.props {
		i := findParam(r.params, key, esc)
		if i < 0 {
			return nil, 0, &ValueError{Msg: "unknown parameter " + strconv.Quote(keyString(key, esc)) + " of " + r.owner + " " + strconv.Quote(r.ownerID), Err: ErrUnknownID}
		}
		return r.params[i].Define, i, nil
	}
	t := r.t
	i := -1
	if t.idx != nil {
		var ok bool
		if esc {
			i, ok = t.idx.props[unescape(key)]
		} else {
			i, ok = t.idx.props[string(key)]
		}
		if !ok {
			i = -1
		}
	} else {
		for j, p := range t.Properties {
			if p.ID == keyString(key, esc) {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return nil, 0, &ValueError{Msg: "unknown property " + strconv.Quote(keyString(key, esc)), Err: ErrUnknownID}
	}
	p := t.Properties[i]
	if r.writableOnly && !p.Writable() {
		return nil, 0, &ValueError{Msg: "property " + strconv.Quote(p.ID) + " is read-only and cannot be controlled", Err: ErrReadOnly}
	}
	return p.Define, i, nil
}

func (r *resolver) check(params []byte) error {
	s := &scanner{data: params}
	if s.eof() {
		return r.missing(nil)
	}
	switch s.peek() {
	case '{':
	case 'n':
		if w, err := s.readLiteral(); err == nil && w == "null" && s.eof() {
			return r.missing(nil)
		}
		return malformed(s.errf(s.off, "unexpected %s", s.describe(s.off)))
	default:
		if err := skip(s, 0); err != nil {
			return malformed(err)
		}
		return &ValueError{Path: "params", Msg: "must be a JSON object", Err: ErrMalformed}
	}
	n := len(r.params)
	if r.props {
		n = len(r.t.Properties)
	}
	var seen bitset
	seen.init(n)
	var first *ValueError
	for m := 0; ; m++ {
		key, esc, more, _, err := s.nextKey(m)
		if err != nil {
			return malformed(err)
		}
		if !more {
			break
		}
		if first != nil {
			if err := skip(s, 1); err != nil {
				return malformed(err)
			}
			continue
		}
		d, i, ve := r.lookup(key, esc)
		switch {
		case ve != nil:
		case seen.set(i):
			ve = &ValueError{Msg: "duplicate key", Err: ErrMalformed}
		case s.peek() == 'n':
			if _, err := s.readLiteral(); err != nil {
				return malformed(err)
			}
			seen.clear(i) // null means absent
			continue
		default:
			ve, err = d.checkRaw(s, 1)
			if err != nil {
				return malformed(err)
			}
			if ve != nil {
				first = prefix(ve, "params"+memberSeg(keyString(key, esc)))
			}
			continue
		}
		first = prefix(ve, "params"+memberSeg(keyString(key, esc)))
		if err := skip(s, 1); err != nil {
			return malformed(err)
		}
	}
	if !s.eof() {
		return malformed(s.errf(s.off, "unexpected %s after the params object", s.describe(s.off)))
	}
	if first != nil {
		return first
	}
	return r.missing(&seen)
}

// missing reports the first declared parameter absent from the payload when all are required.
func (r *resolver) missing(seen *bitset) error {
	if !r.all {
		return nil
	}
	for i, p := range r.params {
		if seen == nil || !seen.has(i) {
			return &ValueError{Path: "params." + p.ID, Msg: "missing (required by " + r.owner + " " + strconv.Quote(r.ownerID) + ")", Err: ErrInvalidValue}
		}
	}
	return nil
}

func malformed(err *syntaxError) error {
	return &ValueError{Path: "params", Msg: "not valid JSON: " + err.msg + " at byte " + strconv.Itoa(err.off), Err: ErrMalformed}
}
