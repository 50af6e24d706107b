package template

// kind is the JSON kind of a node.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

func (k kind) String() string {
	return [...]string{"null", "a boolean", "a number", "a string", "an object", "an array"}[k]
}

// node is one JSON value of a template with the byte offset where it starts.
type node struct {
	kind    kind
	off     int
	str     string // string content (unescaped) or number literal
	isInt   bool   // number literal without fraction/exponent
	boolean bool
	members []member
	elems   []*node
}

type member struct {
	key    string
	keyOff int
	val    *node
}

// get returns the member value for key, or nil.
func (n *node) get(key string) *node {
	for i := range n.members {
		if n.members[i].key == key {
			return n.members[i].val
		}
	}
	return nil
}

// parseTree reads one JSON document into a positioned tree. Duplicate object keys are reported
// through dup (the JSON would otherwise silently keep one of them).
func parseTree(data []byte, dup func(keyOff int, key string)) (*node, *syntaxError) {
	s := &scanner{data: data}
	// A UTF-8 byte order mark is tolerated: some Windows editors add one.
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		s.off = 3
	}
	if s.eof() {
		return nil, s.errf(s.off, "empty input, expected a JSON object")
	}
	n, err := s.node(0, dup)
	if err != nil {
		return nil, err
	}
	if !s.eof() {
		return nil, s.errf(s.off, "unexpected %s after the end of the JSON value", s.describe(s.off))
	}
	return n, nil
}

func (s *scanner) node(depth int, dup func(int, string)) (*node, *syntaxError) {
	if depth > maxDepth {
		return nil, s.errf(s.off, "nesting deeper than %d levels", maxDepth)
	}
	n := &node{off: s.off}
	switch c := s.peek(); {
	case c == '"':
		raw, esc, _, err := s.readString()
		if err != nil {
			return nil, err
		}
		n.kind = kindString
		if esc {
			n.str = unescape(raw)
		} else {
			n.str = string(raw)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		lit, isInt, err := s.readNumber()
		if err != nil {
			return nil, err
		}
		n.kind, n.str, n.isInt = kindNumber, string(lit), isInt
	case c == '{':
		n.kind = kindObject
		seen := map[string]bool{} // a map keeps hostile objects with many keys linear
		err := s.eachMember(func(key []byte, esc bool, keyOff int) error {
			k := string(key)
			if esc {
				k = unescape(key)
			}
			if seen[k] && dup != nil {
				dup(keyOff, k)
			}
			seen[k] = true
			v, err := s.node(depth+1, dup)
			if err != nil {
				return err // a *syntaxError; returned as error only to fit eachMember
			}
			n.members = append(n.members, member{key: k, keyOff: keyOff, val: v})
			return nil
		})
		if err != nil {
			return nil, err.(*syntaxError)
		}
	case c == '[':
		n.kind = kindArray
		n.elems = []*node{}
		err := s.eachElem(func(int) error {
			v, err := s.node(depth+1, dup)
			if err != nil {
				return err
			}
			n.elems = append(n.elems, v)
			return nil
		})
		if err != nil {
			return nil, err.(*syntaxError)
		}
	default:
		w, err := s.readLiteral()
		if err != nil {
			return nil, err
		}
		switch w {
		case "true":
			n.kind, n.boolean = kindBool, true
		case "false":
			n.kind = kindBool
		default:
			n.kind = kindNull
		}
	}
	return n, nil
}
