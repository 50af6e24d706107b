// Package template is the data-template (物模型) model shared by the generator, the device
// runtime and the in-process platform: it parses the JSON exported from the IoT Explorer
// console, validates it, and checks wire values against it.
//
// # Parsing
//
// Parse uses its own small JSON reader so that every problem is located as FILE:LINE:COL
// (columns count characters, not bytes). All independent problems are collected into an
// ErrorList, sorted by position; what the platform accepts but looks wrong (a start value
// outside [min,max], a missing name, more than MaxFeatures features) becomes a warning in
// Template.Warnings. Numeric limits may be JSON strings (as exported) or numbers.
//
// # Value checks
//
// CheckProperties, CheckEventParams, CheckActionInput and CheckActionOutput validate the raw
// params object of a message in one pass without decoding it; Define.CheckValue checks one
// decoded value. The wire rules (docs/PROTOCOL.md §2.3):
//
//   - bool: the integer 0 or 1. JSON true/false are refused, as the platform and the official
//     SDKs do, so a device that passes here does not fail on the real cloud.
//   - int: an integer literal (no fraction or exponent) within [min,max] when given.
//   - float: any number within [min,max] when given.
//   - string: a string whose length in characters (runes) is within [min,max] when given.
//   - enum: an integer that is a mapping key; stringenum: a string that is a mapping key.
//   - timestamp: a non-negative integer (seconds or milliseconds) or a string of digits.
//   - struct: an object whose keys are declared members; members may be omitted.
//   - array: an array whose elements all pass the element check; null elements are invalid.
//
// A null value for a params key or struct member means "absent" and is skipped; an empty or
// null params payload is an empty object. Event parameters may be omitted; every declared
// action input (and output) must be present, as the official SDKs require. A repeated key is
// malformed. Failures are *ValueError with the path of the value (params.today_ec.ec,
// params.points[1].x) wrapping ErrUnknownID (the platform's 403), ErrInvalidValue (406) or
// ErrMalformed (400).
package template

// Type is a data-template value type as spelled in the template's "type" field.
type Type string

// The value types of the data-template format (docs/PROTOCOL.md §3.4).
const (
	TypeBool       Type = "bool"
	TypeInt        Type = "int"
	TypeFloat      Type = "float"
	TypeString     Type = "string"
	TypeEnum       Type = "enum"
	TypeStringEnum Type = "stringenum"
	TypeTimestamp  Type = "timestamp"
	TypeStruct     Type = "struct"
	TypeArray      Type = "array"
)

// Mode is a property's access mode.
type Mode string

// Property access modes.
const (
	ModeRead      Mode = "r"
	ModeReadWrite Mode = "rw"
)

// EventType is the severity class of an event.
type EventType string

// Event types accepted by the platform.
const (
	EventInfo  EventType = "info"
	EventAlert EventType = "alert"
	EventFault EventType = "fault"
)

// Pos is a location in a template file: 1-based Line and Col, where Col counts Unicode
// characters (runes) from the start of the line, so it matches editors on lines with Chinese
// text; Offset is the 0-based byte offset.
type Pos struct {
	Line, Col, Offset int
}

// Template is a parsed product data template.
type Template struct {
	// File is the name the template was parsed from (for messages); may be empty.
	File string
	// Version is the template format version ("1.0").
	Version string
	// ProductID comes from profile.ProductId or the older profile.productID; may be empty.
	ProductID string
	// CategoryID comes from profile.CategoryId; may be empty.
	CategoryID string
	Properties []*Property
	Events     []*Event
	Actions    []*Action
	// Warnings are located notes about values the platform accepts but that look wrong
	// (for example a start value outside [min,max]).
	Warnings []Diagnostic

	// idx speeds up id lookups in the value checks; Parse builds it. A Template built by hand
	// has none and is searched linearly. Treat a Template as read-only once in use.
	idx *index
}

// Property is one entry of "properties".
type Property struct {
	ID       string
	Name     string
	Desc     string
	Mode     Mode
	Required bool
	Define   *Define
	Pos      Pos
}

// Writable reports whether the cloud may control the property.
func (p *Property) Writable() bool { return p.Mode == ModeReadWrite }

// Event is one entry of "events".
type Event struct {
	ID       string
	Name     string
	Desc     string
	Type     EventType
	Required bool
	Params   []*Param
	Pos      Pos
}

// Action is one entry of "actions".
type Action struct {
	ID       string
	Name     string
	Desc     string
	Required bool
	Input    []*Param
	Output   []*Param
	Pos      Pos
}

// Param is an event parameter, an action input/output, or a struct member.
type Param struct {
	ID     string
	Name   string
	Desc   string
	Define *Define
	Pos    Pos
}

// MappingEntry is one key/label pair of a bool, enum or stringenum mapping, in file order.
type MappingEntry struct {
	// Key is the wire value as written in the template ("0", "1", "celsius").
	Key string
	// Int is Key parsed as an integer (bool and enum only).
	Int   int64
	Label string
}

// Define is a type definition ("define" of a property/param, "dataType" of a struct member,
// "arrayInfo" of an array).
type Define struct {
	Type Type
	// Min and Max bound int/float values and string lengths; HasMin/HasMax say whether
	// the template gave them.
	Min, Max       float64
	HasMin, HasMax bool
	// Start and Step as given (int/float); HasStart/HasStep say whether present.
	Start, Step       float64
	HasStart, HasStep bool
	Unit              string
	UnitDesc          string
	// Mapping lists bool/enum/stringenum entries in file order.
	Mapping []MappingEntry
	// Specs lists struct members (struct, and array of struct via Elem).
	Specs []*Param
	// Elem is the element definition of an array (from "arrayInfo").
	Elem *Define
	Pos  Pos
}

// Diagnostic is a located message about a template file.
type Diagnostic struct {
	File string
	Pos  Pos
	Msg  string
}

// Property returns the property with the given id, or nil.
func (t *Template) Property(id string) *Property {
	if t.idx != nil {
		if i, ok := t.idx.props[id]; ok {
			return t.Properties[i]
		}
		return nil
	}
	for _, p := range t.Properties {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Event returns the event with the given id, or nil.
func (t *Template) Event(id string) *Event {
	if t.idx != nil {
		if i, ok := t.idx.events[id]; ok {
			return t.Events[i]
		}
		return nil
	}
	for _, e := range t.Events {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// Action returns the action with the given id, or nil.
func (t *Template) Action(id string) *Action {
	if t.idx != nil {
		if i, ok := t.idx.actions[id]; ok {
			return t.Actions[i]
		}
		return nil
	}
	for _, a := range t.Actions {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// index maps ids to positions in the Template's slices.
type index struct {
	props, events, actions map[string]int
}

func buildIndex(t *Template) *index {
	idx := &index{
		props:   make(map[string]int, len(t.Properties)),
		events:  make(map[string]int, len(t.Events)),
		actions: make(map[string]int, len(t.Actions)),
	}
	for i, p := range t.Properties {
		idx.props[p.ID] = i
	}
	for i, e := range t.Events {
		idx.events[e.ID] = i
	}
	for i, a := range t.Actions {
		idx.actions[a.ID] = i
	}
	return idx
}
