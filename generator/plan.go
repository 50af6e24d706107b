package generator

import (
	"fmt"
	"strconv"

	"github.com/tplgen/tplgen/runtime/template"
)

// Package-level names the generated API uses. They are reserved before any template element
// is named, so a property called "Device" or "handler" can never shadow them; it gets
// "Device2" instead. The list is kept short on purpose: a common id like "status" keeps its
// natural name.
var reservedPackage = []string{
	"ProductID", "Properties", "ControlProperties", "Handler", "Device", "New", "Template",
}

// Field scopes hold method names of the generated types, which fields must not reuse.
var (
	reservedPropertyFields = []string{"Validate", "Properties", "AppendJSON", "String", "LogValue"}
	reservedStructFields   = []string{"Validate", "AppendJSON", "String", "LogValue"}
	reservedEventFields    = []string{"Validate", "AppendJSON", "EventID", "EventType"}
	reservedActionFields   = []string{"Validate", "AppendJSON", "ActionID"}
	// Handler methods: Control is fixed; every action adds one.
	reservedHandler = []string{"Control"}
	// The generated Device embeds *thing.Device (field name Device) and gets its methods;
	// Post<Event> methods must not shadow them. TestReservedDeviceNames keeps this list in
	// step with thing.Device's method set.
	reservedDevice = []string{"Device", "Report", "GetStatus", "GetPendingControl", "ClearControl",
		"SyncPendingControl", "ReportInfo", "PostEvents", "Thing", "ProductID", "DeviceName",
		"Template", "Close", "BindAppToken", "RequestUnbind", "Now", "OnRRPC", "OnBroadcast",
		"NewLogUploader", "NewFiles", "NewResourceTasks"}
)

// plan is the fully named shape of the generated file, computed before any code is emitted
// so that every name is settled in template order.
type plan struct {
	t       *template.Template
	pkg     *scope
	handler *scope
	device  *scope

	props   []*field // Properties fields, template order
	types   []*namedType
	events  []*eventPlan
	actions []*actionPlan

	errs  template.ErrorList
	warns []template.Diagnostic
}

// goType is the Go representation of one template define.
type goType struct {
	def   *template.Define
	named *namedType // enum, stringenum, struct
	elem  *goType    // array
}

// namedType is a package-level type generated for an enum, stringenum or struct define.
type namedType struct {
	name   string
	def    *template.Define
	doc    string
	consts []enumConst // enum / stringenum
	fields []*field    // struct
}

type enumConst struct {
	name  string
	entry template.MappingEntry
}

// field is one member of a generated struct, keyed on the wire by id.
type field struct {
	id, name, label, desc string
	getter                string // Get<Name> for pointer fields; "" for value fields
	typ                   *goType
	pos                   template.Pos
	writable              bool // properties only
}

type eventPlan struct {
	ev     *template.Event
	name   string // params struct type, and Post<name> on Device
	fields []*field
}

type actionPlan struct {
	act           *template.Action
	base          string // handler method; types base+"Input" / base+"Output"
	input, output []*field
}

func newPlan(t *template.Template) *plan {
	p := &plan{
		t:       t,
		pkg:     newScope(reservedPackage...),
		handler: newScope(reservedHandler...),
		device:  newScope(reservedDevice...),
	}
	fields := newScope(reservedPropertyFields...)
	for i, prop := range t.Properties {
		where := fmt.Sprintf("properties[%d]", i)
		if !p.checkID(prop.ID, prop.Pos, where) {
			continue
		}
		f := p.field(fields, true, "", "property", prop.ID, prop.Name, prop.Desc, prop.Define, prop.Pos, where)
		if f == nil {
			continue
		}
		f.writable = prop.Writable()
		p.props = append(p.props, f)
	}
	for i, ev := range t.Events {
		where := fmt.Sprintf("events[%d]", i)
		if !p.checkID(ev.ID, ev.Pos, where) {
			continue
		}
		base := GoName(ev.ID)
		name := claimGroup(base, affix{scope: p.pkg}, affix{scope: p.device, prefix: "Post"})
		p.noteRename(name, base, ev.Pos, where, ev.ID)
		ep := &eventPlan{ev: ev, name: name}
		ep.fields = p.params(name, "param", ev.Params, where+".params", false, reservedEventFields)
		p.events = append(p.events, ep)
	}
	for i, act := range t.Actions {
		where := fmt.Sprintf("actions[%d]", i)
		if !p.checkID(act.ID, act.Pos, where) {
			continue
		}
		base := GoName(act.ID)
		name := claimGroup(base, affix{scope: p.pkg, suffix: "Input"},
			affix{scope: p.pkg, suffix: "Output"}, affix{scope: p.handler})
		p.noteRename(name, base, act.Pos, where, act.ID)
		ap := &actionPlan{act: act, base: name}
		ap.input = p.params(name+"Input", "param", act.Input, where+".input", false, reservedActionFields)
		ap.output = p.params(name+"Output", "param", act.Output, where+".output", false, reservedActionFields)
		p.actions = append(p.actions, ap)
	}
	return p
}

// params names the members of an event's params or an action's input/output struct.
func (p *plan) params(parent, kind string, ps []*template.Param, where string, getters bool, reserved []string) []*field {
	fields := newScope(reserved...)
	var out []*field
	for i, pa := range ps {
		w := fmt.Sprintf("%s[%d]", where, i)
		if !p.checkID(pa.ID, pa.Pos, w) {
			continue
		}
		if f := p.field(fields, getters, parent, kind, pa.ID, pa.Name, pa.Desc, pa.Define, pa.Pos, w); f != nil {
			out = append(out, f)
		}
	}
	return out
}

// field names one struct member and plans its type. parent is the Go name of the enclosing
// type ("" for Properties, whose member types are named after the property alone).
func (p *plan) field(fields *scope, getter bool, parent, kind, id, label, desc string, d *template.Define, pos template.Pos, where string) *field {
	base := GoName(id)
	var name string
	if getter {
		// The field and its Get<Name> getter share one base.
		name = claimGroup(base, affix{scope: fields}, affix{scope: fields, prefix: "Get"})
	} else {
		name = fields.claim(base)
	}
	p.noteRename(name, base, pos, where, id)
	f := &field{id: id, name: name, label: label, desc: desc, pos: pos}
	if getter {
		f.getter = "Get" + name
	}
	origin := fmt.Sprintf("%s %q", kind, id)
	if parent != "" {
		origin += " of " + parent
	}
	f.typ = p.goType(parent+name, origin, d, pos, where, false)
	if f.typ == nil {
		return nil
	}
	return f
}

// goType plans the Go type of d; typeName is the name a named type would get and origin
// says where the define sits, for its doc comment.
func (p *plan) goType(typeName, origin string, d *template.Define, pos template.Pos, where string, inArray bool) *goType {
	if d == nil {
		p.errorf(pos, "%s: type definition is missing", where)
		return nil
	}
	if d.Pos.Line > 0 {
		pos = d.Pos
	}
	g := &goType{def: d}
	switch d.Type {
	case template.TypeBool, template.TypeInt, template.TypeFloat, template.TypeString, template.TypeTimestamp:
	case template.TypeEnum, template.TypeStringEnum:
		if !p.checkMapping(d, pos, where) {
			return nil
		}
		g.named = p.enumType(typeName, d, pos, where)
		g.named.doc = origin
	case template.TypeStruct:
		nt := &namedType{name: p.claimType(typeName, pos, where), def: d, doc: origin}
		p.types = append(p.types, nt)
		nt.fields = p.params(nt.name, "member", d.Specs, where+".specs", true, reservedStructFields)
		g.named = nt
	case template.TypeArray:
		if inArray {
			p.errorf(pos, "%s: nested arrays are not supported", where)
			return nil
		}
		// Elements that need a named type (array of struct) are called <Name>Item.
		g.elem = p.goType(typeName+"Item", "the elements of "+origin, d.Elem, pos, where+".arrayInfo", true)
		if g.elem == nil {
			return nil
		}
	default:
		p.errorf(pos, "%s: type %q is not supported", where, d.Type)
		return nil
	}
	return g
}

func (p *plan) claimType(base string, pos template.Pos, where string) string {
	name := p.pkg.claim(base)
	if name != base {
		p.warnf(pos, "%s: Go type name %s is taken, using %s", where, base, name)
	}
	return name
}

// enumType names an enum/stringenum type and its constants.
//
// Constant names are TypeName+label when every label of the mapping is clean ASCII text
// (cleanLabel) and the labels give distinct names; otherwise TypeName+key for every entry
// (negative int keys as N<abs>, stringenum keys through GoName's word rules). The choice is
// made per type so the constants of one type are named consistently, and it depends only on
// the mapping's file order, never on map iteration.
func (p *plan) enumType(typeName string, d *template.Define, pos template.Pos, where string) *namedType {
	nt := &namedType{name: p.claimType(typeName, pos, where), def: d}
	p.types = append(p.types, nt)
	suffixes := make([]string, len(d.Mapping))
	useLabels := true
	seen := map[string]bool{}
	for i, m := range d.Mapping {
		s := joinWords(m.Label)
		if !cleanLabel(m.Label) || s == "" || seen[s] {
			useLabels = false
			break
		}
		seen[s] = true
		suffixes[i] = s
	}
	if !useLabels {
		for i, m := range d.Mapping {
			suffixes[i] = keySuffix(d.Type, m)
		}
	}
	for i, m := range d.Mapping {
		nt.consts = append(nt.consts, enumConst{name: p.pkg.claim(nt.name + suffixes[i]), entry: m})
	}
	return nt
}

func keySuffix(t template.Type, m template.MappingEntry) string {
	if t == template.TypeEnum {
		if m.Int < 0 {
			return "N" + strconv.FormatUint(uint64(-(m.Int+1))+1, 10)
		}
		return strconv.FormatInt(m.Int, 10)
	}
	if s := joinWords(m.Key); s != "" {
		return s
	}
	return GoName(m.Key) // "X" + hex code points, or "X" for ""
}

// checkMapping rejects mappings that would generate duplicate switch cases or constants.
func (p *plan) checkMapping(d *template.Define, pos template.Pos, where string) bool {
	ok := true
	seenInt := map[int64]string{}
	seenKey := map[string]bool{}
	for _, m := range d.Mapping {
		if d.Type == template.TypeEnum {
			if prev, dup := seenInt[m.Int]; dup {
				p.errorf(pos, "%s: enum keys %q and %q are the same value %d", where, prev, m.Key, m.Int)
				ok = false
			}
			seenInt[m.Int] = m.Key
		} else {
			if seenKey[m.Key] {
				p.errorf(pos, "%s: duplicate stringenum key %q", where, m.Key)
				ok = false
			}
			seenKey[m.Key] = true
		}
	}
	return ok
}

// checkID rejects ids that cannot be a JSON key in a Go struct tag. template.Parse already
// enforces ^[A-Za-z_][A-Za-z0-9_]*$; models built in code get the same rule here.
func (p *plan) checkID(id string, pos template.Pos, where string) bool {
	if template.ValidID(id) {
		return true
	}
	p.errorf(pos, "%s: id %q is not a valid identifier: it must match ^[A-Za-z_][A-Za-z0-9_]*$", where, id)
	return false
}

func (p *plan) noteRename(got, base string, pos template.Pos, where, id string) {
	if got != base {
		p.warnf(pos, "%s: Go name %s for id %q is taken, using %s", where, base, id, got)
	}
}

func (p *plan) errorf(pos template.Pos, format string, args ...any) {
	p.errs = append(p.errs, &template.Error{File: p.t.File, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (p *plan) warnf(pos template.Pos, format string, args ...any) {
	p.warns = append(p.warns, template.Diagnostic{File: p.t.File, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}
