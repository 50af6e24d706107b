// Package tpldiff compares two versions of a product's data template and classifies every
// change by what it does to devices already in the field and to the apps that talk to them.
//
// A change is breaking when a message that was valid under the old template can be refused
// under the new one, in either direction: a deployed device's report, event or action reply,
// or an app's control or action call (the wire rules are runtime/template's value checks).
// Everything else is compatible: additions a deployed device simply never sends, wider
// ranges, and documentation (names, descriptions, units, enum labels).
//
// Breaking:
//   - a property, event or action removed; an event parameter, action input or output, or
//     struct member removed
//   - a type changed (a property, parameter, struct member or array element)
//   - a property's mode narrowed from rw to r
//   - a numeric range narrowed (min raised or added, max lowered or added), a string length
//     range narrowed the same way
//   - an enum, stringenum or bool value removed
//   - an event's type changed (info, alert, fault)
//   - an action input or output added: every declared input must be present in a call, so
//     existing apps are refused, and every output in a reply, so deployed devices are refused
//
// Compatible: a property, event or action added; an event parameter or struct member added
// (both may be omitted); rw granted to a read-only property; a range or length widened; an
// enum value added; a name, description, unit, enum label, start, step or required flag
// changed; a different product id or format version.
//
// Features, parameters and members are matched by id: a rename is a removal plus an addition.
// Each Change is located in the new file, except removals, which are located in the old file.
package tpldiff

import (
	"fmt"
	"strconv"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// Kind names the rule a Change falls under.
type Kind string

// The kinds of change, each with a fixed classification (see Breaking).
const (
	Removed          Kind = "removed"            // feature, parameter or member removed (breaking)
	Added            Kind = "added"              // compatible, except action inputs and outputs
	TypeChanged      Kind = "type-changed"       // breaking
	ModeNarrowed     Kind = "mode-narrowed"      // rw -> r (breaking)
	ModeWidened      Kind = "mode-widened"       // r -> rw
	RangeNarrowed    Kind = "range-narrowed"     // numeric min raised/added or max lowered/added (breaking)
	RangeWidened     Kind = "range-widened"      // numeric min lowered/removed or max raised/removed
	LengthNarrowed   Kind = "length-narrowed"    // string length range narrowed (breaking)
	LengthWidened    Kind = "length-widened"     // string length range widened
	ValueRemoved     Kind = "value-removed"      // enum/stringenum/bool key removed (breaking)
	ValueAdded       Kind = "value-added"        // enum/stringenum/bool key added
	EventTypeChanged Kind = "event-type-changed" // info/alert/fault changed (breaking)
	LabelChanged     Kind = "label-changed"      // a name or an enum label
	DescChanged      Kind = "description-changed"
	UnitChanged      Kind = "unit-changed"     // unit or unitDesc
	StartChanged     Kind = "start-changed"    // the console's default value
	StepChanged      Kind = "step-changed"     // the console's slider step
	RequiredChanged  Kind = "required-changed" // the standard-feature flag
	ProductChanged   Kind = "product-changed"  // profile.ProductId or CategoryId
	VersionChanged   Kind = "version-changed"  // the format version
)

// Change is one classified difference between two templates.
type Change struct {
	Kind     Kind
	Breaking bool
	// Path names the changed element in the template's JSON vocabulary:
	// properties.brightness, events.alarm.params.level, actions.blink.input.time,
	// properties.position.define.specs.x, properties.list.define.arrayInfo.
	Path string
	// Message says what changed in words, e.g. `property "brightness": max lowered from 100 to 50`.
	Message string
	// Old and New are the changed value as written in each template (empty when absent).
	Old, New string
	// File and Pos locate the change: in the new template, or in the old one for a removal.
	File string
	Pos  template.Pos
}

// String formats the change as FILE:LINE:COL: breaking|compatible: message.
func (c Change) String() string {
	class := "compatible"
	if c.Breaking {
		class = "breaking"
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", c.File, c.Pos.Line, c.Pos.Col, class, c.Message)
}

// MarshalJSON encodes the change with its position as line and col (1-based; col counts
// characters).
func (c Change) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Kind     Kind   `json:"kind"`
		Breaking bool   `json:"breaking"`
		Path     string `json:"path"`
		Message  string `json:"message"`
		Old      string `json:"old,omitempty"`
		New      string `json:"new,omitempty"`
		File     string `json:"file"`
		Line     int    `json:"line"`
		Col      int    `json:"col"`
	}{c.Kind, c.Breaking, c.Path, c.Message, c.Old, c.New, c.File, c.Pos.Line, c.Pos.Col})
}

// HasBreaking reports whether any change is breaking.
func HasBreaking(changes []Change) bool {
	for _, c := range changes {
		if c.Breaking {
			return true
		}
	}
	return false
}

// Diff lists the changes from old to new (an empty, non-nil slice when there are none): per
// section (properties, events, actions) the features of new in file order with their changes,
// then the features removed from old. The templates' File fields name the files in the changes.
func Diff(old, new *template.Template) []Change {
	d := &differ{oldFile: old.File, newFile: new.File, out: []Change{}}
	d.profile(old, new)
	d.properties(old, new)
	d.events(old, new)
	d.actions(old, new)
	return d.out
}

type differ struct {
	oldFile, newFile string
	out              []Change
}

// at is where a change is reported: the subject in words and its path.
type at struct {
	subject string // property "brightness" member "x"
	path    string
}

func (a at) sub(subject, path string) at {
	return at{a.subject + " " + subject, a.path + "." + path}
}

func (d *differ) add(k Kind, breaking bool, where at, file string, pos template.Pos, oldV, newV, format string, args ...any) {
	d.out = append(d.out, Change{
		Kind: k, Breaking: breaking, Path: where.path,
		Message: where.subject + ": " + fmt.Sprintf(format, args...),
		Old:     oldV, New: newV, File: file, Pos: pos,
	})
}

// added reports an element only in new.
func (d *differ) added(where at, pos template.Pos, breaking bool, why string) {
	msg := "added"
	if why != "" {
		msg += " (" + why + ")"
	}
	d.add(Added, breaking, where, d.newFile, pos, "", "", "%s", msg)
}

// removed reports an element only in old, located in the old file.
func (d *differ) removed(where at, pos template.Pos) {
	d.add(Removed, true, where, d.oldFile, pos, "", "", "removed")
}

func (d *differ) profile(old, new *template.Template) {
	top := template.Pos{Line: 1, Col: 1}
	if old.ProductID != new.ProductID && old.ProductID != "" && new.ProductID != "" {
		d.add(ProductChanged, false, at{"template", "profile.ProductId"}, d.newFile, top, old.ProductID, new.ProductID,
			"product id changed from %s to %s (these templates belong to different products)", old.ProductID, new.ProductID)
	}
	if old.CategoryID != new.CategoryID && old.CategoryID != "" && new.CategoryID != "" {
		d.add(ProductChanged, false, at{"template", "profile.CategoryId"}, d.newFile, top, old.CategoryID, new.CategoryID,
			"category id changed from %s to %s", old.CategoryID, new.CategoryID)
	}
	if old.Version != new.Version {
		d.add(VersionChanged, false, at{"template", "version"}, d.newFile, top, old.Version, new.Version,
			"format version changed from %q to %q", old.Version, new.Version)
	}
}

// docs compares what only people read: name, description.
func (d *differ) docs(where at, pos template.Pos, oldName, newName, oldDesc, newDesc string) {
	if oldName != newName {
		d.add(LabelChanged, false, where, d.newFile, pos, oldName, newName, "name changed from %q to %q", oldName, newName)
	}
	if oldDesc != newDesc {
		d.add(DescChanged, false, where, d.newFile, pos, oldDesc, newDesc, "description changed from %q to %q", oldDesc, newDesc)
	}
}

func (d *differ) required(where at, pos template.Pos, o, n bool) {
	if o != n {
		d.add(RequiredChanged, false, where, d.newFile, pos, strconv.FormatBool(o), strconv.FormatBool(n),
			"required changed from %t to %t", o, n)
	}
}

func (d *differ) properties(old, new *template.Template) {
	for _, np := range new.Properties {
		where := at{fmt.Sprintf("property %q", np.ID), "properties." + np.ID}
		op := old.Property(np.ID)
		if op == nil {
			d.added(where, np.Pos, false, "")
			continue
		}
		d.docs(where, np.Pos, op.Name, np.Name, op.Desc, np.Desc)
		d.required(where, np.Pos, op.Required, np.Required)
		switch {
		case op.Mode == template.ModeReadWrite && np.Mode == template.ModeRead:
			d.add(ModeNarrowed, true, where, d.newFile, np.Pos, string(op.Mode), string(np.Mode),
				"mode narrowed from rw to r (apps can no longer control it)")
		case op.Mode == template.ModeRead && np.Mode == template.ModeReadWrite:
			d.add(ModeWidened, false, where, d.newFile, np.Pos, string(op.Mode), string(np.Mode),
				"mode widened from r to rw (apps may now control it)")
		}
		d.define(where.sub("", "define"), op.Define, np.Define, np.Pos)
	}
	for _, op := range old.Properties {
		if new.Property(op.ID) == nil {
			d.removed(at{fmt.Sprintf("property %q", op.ID), "properties." + op.ID}, op.Pos)
		}
	}
}

func (d *differ) events(old, new *template.Template) {
	for _, ne := range new.Events {
		where := at{fmt.Sprintf("event %q", ne.ID), "events." + ne.ID}
		oe := old.Event(ne.ID)
		if oe == nil {
			d.added(where, ne.Pos, false, "")
			continue
		}
		d.docs(where, ne.Pos, oe.Name, ne.Name, oe.Desc, ne.Desc)
		d.required(where, ne.Pos, oe.Required, ne.Required)
		if oe.Type != ne.Type {
			d.add(EventTypeChanged, true, where, d.newFile, ne.Pos, string(oe.Type), string(ne.Type),
				"type changed from %s to %s", oe.Type, ne.Type)
		}
		d.params(where, "param", "params", oe.Params, ne.Params, "")
	}
	for _, oe := range old.Events {
		if new.Event(oe.ID) == nil {
			d.removed(at{fmt.Sprintf("event %q", oe.ID), "events." + oe.ID}, oe.Pos)
		}
	}
}

func (d *differ) actions(old, new *template.Template) {
	for _, na := range new.Actions {
		where := at{fmt.Sprintf("action %q", na.ID), "actions." + na.ID}
		oa := old.Action(na.ID)
		if oa == nil {
			d.added(where, na.Pos, false, "")
			continue
		}
		d.docs(where, na.Pos, oa.Name, na.Name, oa.Desc, na.Desc)
		d.required(where, na.Pos, oa.Required, na.Required)
		d.params(where, "input", "input", oa.Input, na.Input,
			"every input is required: existing apps' calls without it are refused")
		d.params(where, "output", "output", oa.Output, na.Output,
			"every output is required: deployed devices' replies without it are refused")
	}
	for _, oa := range old.Actions {
		if new.Action(oa.ID) == nil {
			d.removed(at{fmt.Sprintf("action %q", oa.ID), "actions." + oa.ID}, oa.Pos)
		}
	}
}

// params compares a parameter list (event params, action input or output, struct members).
// A non-empty addedBreaks makes an addition breaking and says why.
func (d *differ) params(parent at, noun, key string, old, new []*template.Param, addedBreaks string) {
	find := func(list []*template.Param, id string) *template.Param {
		for _, p := range list {
			if p.ID == id {
				return p
			}
		}
		return nil
	}
	for _, np := range new {
		where := parent.sub(fmt.Sprintf("%s %q", noun, np.ID), key+"."+np.ID)
		op := find(old, np.ID)
		if op == nil {
			d.added(where, np.Pos, addedBreaks != "", addedBreaks)
			continue
		}
		d.docs(where, np.Pos, op.Name, np.Name, op.Desc, np.Desc)
		defKey := "define"
		if noun == "member" {
			defKey = "dataType"
		}
		d.define(where.sub("", defKey), op.Define, np.Define, np.Pos)
	}
	for _, op := range old {
		if find(new, op.ID) == nil {
			d.removed(parent.sub(fmt.Sprintf("%s %q", noun, op.ID), key+"."+op.ID), op.Pos)
		}
	}
}

// define compares two type definitions; owner is the position of the element that holds them
// (used when a definition has no position of its own).
func (d *differ) define(where at, o, n *template.Define, owner template.Pos) {
	where.subject = trimSpace(where.subject)
	if o == nil || n == nil { // only in templates built by hand
		return
	}
	pos := n.Pos
	if pos.Line == 0 {
		pos = owner
	}
	if o.Type != n.Type {
		d.add(TypeChanged, true, where, d.newFile, pos, string(o.Type), string(n.Type),
			"type changed from %s to %s", o.Type, n.Type)
		return
	}
	switch n.Type {
	case template.TypeInt, template.TypeFloat:
		d.bounds(where, pos, o, n, RangeNarrowed, RangeWidened, "")
		if o.HasStart != n.HasStart || o.Start != n.Start {
			d.add(StartChanged, false, where, d.newFile, pos, optNum(o.Start, o.HasStart), optNum(n.Start, n.HasStart),
				"start changed from %s to %s", orNone(o.Start, o.HasStart), orNone(n.Start, n.HasStart))
		}
		if o.HasStep != n.HasStep || o.Step != n.Step {
			d.add(StepChanged, false, where, d.newFile, pos, optNum(o.Step, o.HasStep), optNum(n.Step, n.HasStep),
				"step changed from %s to %s", orNone(o.Step, o.HasStep), orNone(n.Step, n.HasStep))
		}
		if o.Unit != n.Unit {
			d.add(UnitChanged, false, where, d.newFile, pos, o.Unit, n.Unit, "unit changed from %q to %q", o.Unit, n.Unit)
		}
		if o.UnitDesc != n.UnitDesc {
			d.add(UnitChanged, false, where, d.newFile, pos, o.UnitDesc, n.UnitDesc, "unitDesc changed from %q to %q", o.UnitDesc, n.UnitDesc)
		}
	case template.TypeString:
		d.bounds(where, pos, o, n, LengthNarrowed, LengthWidened, "length ")
	case template.TypeBool, template.TypeEnum, template.TypeStringEnum:
		d.mapping(where, pos, o, n)
	case template.TypeStruct:
		d.params(where, "member", "specs", o.Specs, n.Specs, "")
	case template.TypeArray:
		elem := at{where.subject + " element", where.path + ".arrayInfo"}
		if o.Elem != nil && n.Elem != nil && o.Elem.Type != n.Elem.Type {
			d.add(TypeChanged, true, elem, d.newFile, n.Elem.Pos, string(o.Elem.Type), string(n.Elem.Type),
				"element type changed from %s to %s", o.Elem.Type, n.Elem.Type)
			return
		}
		d.define(elem, o.Elem, n.Elem, pos)
	}
}

// bounds compares min and max. A bound added where there was none narrows; a bound removed
// widens.
func (d *differ) bounds(where at, pos template.Pos, o, n *template.Define, narrowed, widened Kind, what string) {
	cmp := func(name string, ov, nv float64, oh, nh bool, lowIsWide bool) {
		if oh == nh && ov == nv {
			return
		}
		oldS, newS := optNum(ov, oh), optNum(nv, nh)
		switch {
		case !nh:
			d.add(widened, false, where, d.newFile, pos, oldS, "", "%s%s %s removed", what, name, oldS)
		case !oh:
			d.add(narrowed, true, where, d.newFile, pos, "", newS, "%s%s %s added", what, name, newS)
		case (nv < ov) == lowIsWide:
			verb := "raised"
			if nv < ov {
				verb = "lowered"
			}
			d.add(widened, false, where, d.newFile, pos, oldS, newS, "%s%s %s from %s to %s", what, name, verb, oldS, newS)
		default:
			verb := "raised"
			if nv < ov {
				verb = "lowered"
			}
			d.add(narrowed, true, where, d.newFile, pos, oldS, newS, "%s%s %s from %s to %s", what, name, verb, oldS, newS)
		}
	}
	cmp("min", o.Min, n.Min, o.HasMin, n.HasMin, true)
	cmp("max", o.Max, n.Max, o.HasMax, n.HasMax, false)
}

// mapping compares the keys and labels of bool, enum and stringenum values.
func (d *differ) mapping(where at, pos template.Pos, o, n *template.Define) {
	label := func(m []template.MappingEntry, key string) (string, bool) {
		for _, e := range m {
			if e.Key == key {
				return e.Label, true
			}
		}
		return "", false
	}
	for _, ne := range n.Mapping {
		ol, ok := label(o.Mapping, ne.Key)
		switch {
		case !ok:
			d.add(ValueAdded, false, where, d.newFile, pos, "", ne.Key, "value %s (%q) added", ne.Key, ne.Label)
		case ol != ne.Label:
			d.add(LabelChanged, false, where, d.newFile, pos, ol, ne.Label, "label of value %s changed from %q to %q", ne.Key, ol, ne.Label)
		}
	}
	for _, oe := range o.Mapping {
		if _, ok := label(n.Mapping, oe.Key); !ok {
			d.add(ValueRemoved, true, where, d.newFile, pos, oe.Key, "", "value %s (%q) removed", oe.Key, oe.Label)
		}
	}
}

func optNum(v float64, has bool) string {
	if !has {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func orNone(v float64, has bool) string {
	if !has {
		return "none"
	}
	return optNum(v, true)
}

// trimSpace drops the trailing space left by at.sub with an empty subject.
func trimSpace(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}
