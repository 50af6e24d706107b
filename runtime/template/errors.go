package template

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

// Error is one located problem in a template file.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

// Error formats the problem as FILE:LINE:COL: message (LINE:COL: message without a file name).
func (e *Error) Error() string { return formatPos(e.File, e.Pos) + e.Msg }

// ErrorList is every error found in one template, sorted by position.
type ErrorList []*Error

// Error joins the errors, one per line.
func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns l as an error, or nil when l is empty (avoiding a non-nil interface holding an
// empty list).
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Pos.Offset < l[j].Pos.Offset })
}

// String formats the diagnostic as FILE:LINE:COL: message.
func (d Diagnostic) String() string { return formatPos(d.File, d.Pos) + d.Msg }

// String formats the position as LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

func formatPos(file string, p Pos) string {
	if file == "" {
		return p.String() + ": "
	}
	return file + ":" + p.String() + ": "
}

// lineIndex converts byte offsets to 1-based line and rune columns.
type lineIndex struct {
	data   []byte
	starts []int // byte offset of the start of each line
	// The last answer, so that positions asked in file order (as the parser does) count only
	// the runes since then: minified one-line templates would otherwise cost O(n²).
	lastLine, lastOff, lastCol int
}

func newLineIndex(data []byte) *lineIndex {
	starts := []int{0}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		starts[0] = 3 // editors do not show a byte order mark as a column
	}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return &lineIndex{data: data, starts: starts, lastOff: starts[0], lastCol: 1}
}

func (li *lineIndex) pos(off int) Pos {
	if off > len(li.data) {
		off = len(li.data)
	}
	line := sort.Search(len(li.starts), func(i int) bool { return li.starts[i] > off }) - 1
	if line < 0 { // inside a byte order mark
		line = 0
	}
	from, col := li.starts[line], 1
	if line == li.lastLine && off >= li.lastOff && li.lastOff >= from {
		from, col = li.lastOff, li.lastCol
	}
	if off > from {
		col += utf8.RuneCount(li.data[from:off])
	}
	li.lastLine, li.lastOff, li.lastCol = line, off, col
	return Pos{Line: line + 1, Col: col, Offset: off}
}

// Sentinel errors wrapped by the value checks, so callers can map them to reply codes. They
// are the project's one value-error vocabulary, defined in runtime/tplwire (which generated
// code uses) and re-exported here: errors.Is matches the same values either way.
var (
	// ErrUnknownID: a property, event, action or struct member id not in the template
	// (the platform answers 403).
	ErrUnknownID = tplwire.ErrUnknownID
	// ErrInvalidValue: a value of the wrong type or out of its range, or a required parameter
	// missing (the platform answers 406).
	ErrInvalidValue = tplwire.ErrInvalidValue
	// ErrMalformed: the params payload is not JSON or not an object (the platform answers 400).
	ErrMalformed = tplwire.ErrMalformed
	// ErrReadOnly: a control tried to set a read-only ("r") property. Errors wrapping it also
	// wrap ErrInvalidValue.
	ErrReadOnly = tplwire.ErrReadOnly
)

// ValueError is a value-check failure: Path names the offending value (params.color,
// params.pos.x, params.list[2]) and Err is one of the sentinels above. It is
// tplwire.ValueError, the type generated Validate methods return too.
type ValueError = tplwire.ValueError
