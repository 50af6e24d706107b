package template

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// MaxFeatures is the platform's limit on feature definitions (properties + events + actions)
// per product; templates above it parse with a warning.
const MaxFeatures = 100

// ParseFile reads and parses the template at path; messages name the file as path.
func ParseFile(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a data-template JSON document as exported from the IoT Explorer console.
// file names the source in messages and may be empty.
//
// On failure the error is an ErrorList holding every problem found, each located as
// FILE:LINE:COL (1-based; the column counts Unicode characters, not bytes, so it matches what
// an editor shows on lines with Chinese labels). Values the platform accepts but that look
// wrong (a start value outside [min,max], a missing name, more than MaxFeatures features)
// are reported in Template.Warnings instead. Unknown keys are ignored.
func Parse(file string, data []byte) (*Template, error) {
	p := &parser{file: file, li: newLineIndex(data)}
	root, serr := parseTree(data, func(off int, key string) {
		p.errorf(off, "duplicate key %q in object", key)
	})
	if serr != nil {
		p.errorf(serr.off, "%s", serr.msg)
		p.errs.sort()
		return nil, p.errs
	}
	t := p.template(root)
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	sort.SliceStable(p.warns, func(i, j int) bool { return p.warns[i].Pos.Offset < p.warns[j].Pos.Offset })
	t.Warnings = p.warns
	t.idx = buildIndex(t)
	return t, nil
}

type parser struct {
	file  string
	li    *lineIndex
	errs  ErrorList
	warns []Diagnostic
}

func (p *parser) pos(off int) Pos { return p.li.pos(off) }

func (p *parser) errorf(off int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Pos: p.pos(off), Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(off int, format string, args ...any) {
	p.warns = append(p.warns, Diagnostic{File: p.file, Pos: p.pos(off), Msg: fmt.Sprintf(format, args...)})
}

// present returns the member value, treating an explicit null as absent.
func present(obj *node, key string) *node {
	if v := obj.get(key); v != nil && v.kind != kindNull {
		return v
	}
	return nil
}

// str reads an optional string member; a value of another kind is an error.
func (p *parser) str(obj *node, key, where string) (string, bool) {
	v := present(obj, key)
	if v == nil {
		return "", false
	}
	if v.kind != kindString {
		if uiOnly[key] {
			if v.kind == kindNumber {
				return v.str, true // a unit written as a number ("unit": 1) is still its text
			}
			p.warnf(v.off, "%s%s must be a string, got %s (ignored: it only drives the console UI)", where, key, v.kind)
			return "", false
		}
		p.errorf(v.off, "%s%s must be a string, got %s", where, key, v.kind)
		return "", false
	}
	return v.str, true
}

// list reads an optional array member.
func (p *parser) list(obj *node, key, where string) []*node {
	v := present(obj, key)
	if v == nil {
		return nil
	}
	if v.kind != kindArray {
		p.errorf(v.off, "%s%s must be an array, got %s", where, key, v.kind)
		return nil
	}
	return v.elems
}

func (p *parser) template(root *node) *Template {
	t := &Template{File: p.file}
	if root.kind != kindObject {
		p.errorf(root.off, "template must be a JSON object, got %s", root.kind)
		return t
	}
	t.Version, _ = p.str(root, "version", "")
	if prof := present(root, "profile"); prof != nil {
		if prof.kind != kindObject {
			p.errorf(prof.off, "profile must be an object, got %s", prof.kind)
		} else {
			// Older exports spell it productID.
			if id, ok := p.str(prof, "ProductId", "profile."); ok {
				t.ProductID = id
			} else if id, ok := p.str(prof, "productID", "profile."); ok {
				t.ProductID = id
			}
			if c := present(prof, "CategoryId"); c != nil {
				if c.kind == kindString || c.kind == kindNumber {
					t.CategoryID = c.str
				} else {
					p.errorf(c.off, "profile.CategoryId must be a string, got %s", c.kind)
				}
			}
		}
	}

	ids := map[string]int{}
	for i, n := range p.list(root, "properties", "") {
		if pr := p.property(n, i, ids); pr != nil {
			t.Properties = append(t.Properties, pr)
		}
	}
	ids = map[string]int{}
	for i, n := range p.list(root, "events", "") {
		if ev := p.event(n, i, ids); ev != nil {
			t.Events = append(t.Events, ev)
		}
	}
	ids = map[string]int{}
	for i, n := range p.list(root, "actions", "") {
		if a := p.action(n, i, ids); a != nil {
			t.Actions = append(t.Actions, a)
		}
	}

	if total := len(t.Properties) + len(t.Events) + len(t.Actions); total > MaxFeatures {
		var off int
		all := append(append(p.list(root, "properties", ""), p.list(root, "events", "")...), p.list(root, "actions", "")...)
		if len(all) > MaxFeatures {
			off = all[MaxFeatures].off
		}
		p.warnf(off, "template defines %d features; the platform allows at most %d per product", total, MaxFeatures)
	}
	return t
}

// head reads what every feature and parameter has: the object check, id (validated and
// checked for duplicates within ids), name and desc. ctx comes back as e.g.
// `properties[3] "brightness"`. ok is false when the element is unusable.
func (p *parser) head(n *node, section string, i int, ids map[string]int) (id, name, desc, ctx string, ok bool) {
	ctx = fmt.Sprintf("%s[%d]", section, i)
	if n.kind != kindObject {
		p.errorf(n.off, "%s: must be an object, got %s", ctx, n.kind)
		return "", "", "", ctx, false
	}
	idn := present(n, "id")
	switch {
	case idn == nil:
		p.errorf(n.off, "%s: id is missing", ctx)
		ok = false
	case idn.kind != kindString:
		p.errorf(idn.off, "%s: id must be a string, got %s", ctx, idn.kind)
	case !ValidID(idn.str):
		ctx = fmt.Sprintf("%s %q", ctx, idn.str)
		p.errorf(idn.off, "%s: id %q is not a valid identifier: it must match ^[A-Za-z_][A-Za-z0-9_]*$ because ids become JSON keys and Go names", ctx, idn.str)
	default:
		id = idn.str
		ctx = fmt.Sprintf("%s %q", ctx, id)
		if first, dup := ids[id]; dup {
			p.errorf(idn.off, "%s: duplicate id %q (already used by %s[%d])", ctx, id, section, first)
		} else {
			ids[id] = i
		}
		ok = true
	}
	var has bool
	if name, has = p.str(n, "name", ctx+": "); !has && n.get("name") == nil {
		p.warnf(n.off, "%s: name is missing", ctx)
	}
	desc, _ = p.str(n, "desc", ctx+": ")
	return id, name, desc, ctx, ok
}

// ValidID reports whether id is a valid template identifier, ^[A-Za-z_][A-Za-z0-9_]*$: ids are
// JSON keys on the wire and the generator derives Go names from them.
func ValidID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func (p *parser) required(n *node, ctx string) bool {
	v := present(n, "required")
	if v == nil {
		return false
	}
	if v.kind != kindBool {
		p.errorf(v.off, "%s: required must be true or false, got %s", ctx, v.kind)
		return false
	}
	return v.boolean
}

func (p *parser) property(n *node, i int, ids map[string]int) *Property {
	id, name, desc, ctx, ok := p.head(n, "properties", i, ids)
	if n.kind != kindObject {
		return nil
	}
	pr := &Property{ID: id, Name: name, Desc: desc, Pos: p.pos(n.off), Required: p.required(n, ctx)}
	switch m := present(n, "mode"); {
	case m == nil:
		p.errorf(n.off, "%s: mode is missing (must be r or rw)", ctx)
	case m.kind != kindString:
		p.errorf(m.off, "%s: mode must be a string, got %s", ctx, m.kind)
	case m.str != string(ModeRead) && m.str != string(ModeReadWrite):
		p.errorf(m.off, "%s: mode %q is not one of r, rw", ctx, m.str)
	default:
		pr.Mode = Mode(m.str)
	}
	pr.Define = p.defineMember(n, "define", ctx, false)
	if !ok {
		return nil
	}
	return pr
}

func (p *parser) event(n *node, i int, ids map[string]int) *Event {
	id, name, desc, ctx, ok := p.head(n, "events", i, ids)
	if n.kind != kindObject {
		return nil
	}
	ev := &Event{ID: id, Name: name, Desc: desc, Pos: p.pos(n.off), Required: p.required(n, ctx)}
	switch tv := present(n, "type"); {
	case tv == nil:
		p.errorf(n.off, "%s: type is missing (must be info, alert or fault)", ctx)
	case tv.kind != kindString:
		p.errorf(tv.off, "%s: type must be a string, got %s", ctx, tv.kind)
	case tv.str != string(EventInfo) && tv.str != string(EventAlert) && tv.str != string(EventFault):
		p.errorf(tv.off, "%s: type %q is not one of info, alert, fault", ctx, tv.str)
	default:
		ev.Type = EventType(tv.str)
	}
	ev.Params = p.params(n, "params", ctx)
	if !ok {
		return nil
	}
	return ev
}

func (p *parser) action(n *node, i int, ids map[string]int) *Action {
	id, name, desc, ctx, ok := p.head(n, "actions", i, ids)
	if n.kind != kindObject {
		return nil
	}
	a := &Action{ID: id, Name: name, Desc: desc, Pos: p.pos(n.off), Required: p.required(n, ctx)}
	a.Input = p.params(n, "input", ctx)
	a.Output = p.params(n, "output", ctx)
	if !ok {
		return nil
	}
	return a
}

// params reads an event's params or an action's input/output; ids are unique within the list.
func (p *parser) params(n *node, key, ctx string) []*Param {
	ids := map[string]int{}
	var out []*Param
	for i, e := range p.list(n, key, ctx+": ") {
		if pa := p.param(e, ctx+": "+key, i, ids, "define", false); pa != nil {
			out = append(out, pa)
		}
	}
	return out
}

// param reads one parameter or struct member; defKey is "define" or, for struct members,
// "dataType".
func (p *parser) param(n *node, section string, i int, ids map[string]int, defKey string, inStruct bool) *Param {
	id, name, desc, ctx, ok := p.head(n, section, i, ids)
	if n.kind != kindObject {
		return nil
	}
	pa := &Param{ID: id, Name: name, Desc: desc, Pos: p.pos(n.off)}
	pa.Define = p.defineMember(n, defKey, ctx, inStruct)
	if !ok {
		return nil
	}
	return pa
}

// defineMember reads the type definition stored under key of n.
func (p *parser) defineMember(n *node, key, ctx string, inStruct bool) *Define {
	d := present(n, key)
	if d == nil {
		if key == "dataType" && present(n, "define") != nil {
			p.errorf(n.off, `%s: dataType is missing (struct members use "dataType", not "define")`, ctx)
		} else {
			p.errorf(n.off, "%s: %s is missing", ctx, key)
		}
		return nil
	}
	if d.kind != kindObject {
		p.errorf(d.off, "%s: %s must be an object, got %s", ctx, key, d.kind)
		return nil
	}
	return p.define(d, ctx, key, inStruct, false)
}

// typeNames lists the accepted types in messages.
const typeNames = "bool, int, float, string, enum, stringenum, timestamp, struct, array"

// define reads a type definition object n. label is its path inside the element for messages
// ("define", "dataType", "define.arrayInfo").
func (p *parser) define(n *node, ctx, label string, inStruct, inArray bool) *Define {
	d := &Define{Pos: p.pos(n.off)}
	tv := present(n, "type")
	switch {
	case tv == nil:
		p.errorf(n.off, "%s: %s.type is missing", ctx, label)
		return nil
	case tv.kind != kindString:
		p.errorf(tv.off, "%s: %s.type must be a string, got %s", ctx, label, tv.kind)
		return nil
	}
	d.Type = Type(tv.str)
	switch d.Type {
	case TypeBool, TypeInt, TypeFloat, TypeString, TypeEnum, TypeStringEnum, TypeTimestamp, TypeStruct, TypeArray:
	default:
		p.errorf(tv.off, "%s: %s.type %q is not one of %s", ctx, label, tv.str, typeNames)
		return nil
	}
	switch {
	case inArray && d.Type == TypeArray:
		p.errorf(tv.off, "%s: %s.type: nested arrays are not supported", ctx, label)
		return nil
	case inArray && d.Type != TypeInt && d.Type != TypeFloat && d.Type != TypeString && d.Type != TypeStruct:
		p.errorf(tv.off, "%s: %s.type %q is not supported for array elements (the platform allows int, float, string, struct)", ctx, label, tv.str)
		return nil
	case inStruct && (d.Type == TypeStruct || d.Type == TypeArray):
		p.errorf(tv.off, "%s: %s.type: %s inside struct is not supported", ctx, label, tv.str)
		return nil
	}

	switch d.Type {
	case TypeInt, TypeFloat:
		p.numeric(d, n, ctx, label)
	case TypeString:
		p.lengths(d, n, ctx, label)
	case TypeBool, TypeEnum, TypeStringEnum:
		p.mapping(d, n, ctx, label)
	case TypeStruct:
		d.Specs = p.specs(n, ctx, label, inArray)
	case TypeArray:
		ai := present(n, "arrayInfo")
		if ai == nil {
			p.errorf(n.off, "%s: %s.arrayInfo is missing", ctx, label)
			return d
		}
		if ai.kind != kindObject {
			p.errorf(ai.off, "%s: %s.arrayInfo must be an object, got %s", ctx, label, ai.kind)
			return d
		}
		d.Elem = p.define(ai, ctx, label+".arrayInfo", false, true)
	}
	return d
}

func (p *parser) specs(n *node, ctx, label string, inArray bool) []*Param {
	sv := present(n, "specs")
	if sv == nil {
		p.errorf(n.off, "%s: %s.specs is missing (a struct needs its members)", ctx, label)
		return nil
	}
	if sv.kind != kindArray {
		p.errorf(sv.off, "%s: %s.specs must be an array, got %s", ctx, label, sv.kind)
		return nil
	}
	if len(sv.elems) == 0 {
		p.warnf(sv.off, "%s: %s.specs is empty (a struct without members)", ctx, label)
	}
	ids := map[string]int{}
	var out []*Param
	for i, e := range sv.elems {
		if pa := p.param(e, ctx+": "+label+".specs", i, ids, "dataType", true); pa != nil {
			out = append(out, pa)
		}
	}
	return out
}

// num is a numeric limit as written in the template.
type num struct {
	v    float64
	text string
	off  int
}

// uiOnly lists the define members that only drive the console's UI (slider start and step,
// unit text). The platform stores whatever they hold, and templates in the wild put "undefined"
// or the unit in "step", so a bad value there is a warning and the member is ignored; it never
// stops parsing or generation.
var uiOnly = map[string]bool{"start": true, "step": true, "unit": true, "unitDesc": true}

// number reads an optional numeric member given as a JSON number or a numeric string.
func (p *parser) number(n *node, key, ctx, label string) (num, bool) {
	v := present(n, key)
	if v == nil {
		return num{}, false
	}
	report := p.errorf
	if uiOnly[key] {
		report = func(off int, format string, args ...any) {
			p.warnf(off, format+" (ignored: it only drives the console UI)", args...)
		}
	}
	switch v.kind {
	case kindNumber:
	case kindString:
		if !isJSONNumber(v.str) {
			report(v.off, "%s: %s.%s %q is not a number", ctx, label, key, v.str)
			return num{}, false
		}
	default:
		report(v.off, "%s: %s.%s must be a number or numeric string, got %s", ctx, label, key, v.kind)
		return num{}, false
	}
	f, err := strconv.ParseFloat(v.str, 64)
	if err != nil || math.IsInf(f, 0) {
		report(v.off, "%s: %s.%s %s is out of range", ctx, label, key, v.str)
		return num{}, false
	}
	return num{v: f, text: v.str, off: v.off}, true
}

// isJSONNumber reports whether s is exactly a JSON number literal (no spaces, hex, NaN, Inf).
func isJSONNumber(s string) bool {
	sc := &scanner{data: []byte(s)}
	if _, _, err := sc.readNumber(); err != nil {
		return false
	}
	return sc.off == len(s)
}

// maxSafeInt bounds int limits so they convert to int64 exactly.
const maxSafeInt = 1 << 63

func (p *parser) integral(x num, key, ctx, label string) bool {
	if x.v != math.Trunc(x.v) {
		p.errorf(x.off, "%s: %s.%s %s is not an integer", ctx, label, key, x.text)
		return false
	}
	if x.v >= maxSafeInt || x.v < -maxSafeInt {
		p.errorf(x.off, "%s: %s.%s %s does not fit in a 64-bit integer", ctx, label, key, x.text)
		return false
	}
	return true
}

func (p *parser) numeric(d *Define, n *node, ctx, label string) {
	isInt := d.Type == TypeInt
	get := func(key string) (num, bool) {
		x, ok := p.number(n, key, ctx, label)
		if ok && isInt && key == "start" && x.v != math.Trunc(x.v) {
			p.warnf(x.off, "%s: %s.start %s is not an integer (ignored: it only drives the console UI)", ctx, label, x.text)
			return num{}, false
		}
		if ok && isInt && key != "step" && key != "start" && !p.integral(x, key, ctx, label) {
			return num{}, false
		}
		return x, ok
	}
	minV, hasMin := get("min")
	maxV, hasMax := get("max")
	start, hasStart := get("start")
	step, hasStep := get("step")
	d.Min, d.HasMin = minV.v, hasMin
	d.Max, d.HasMax = maxV.v, hasMax
	d.Start, d.HasStart = start.v, hasStart
	d.Step, d.HasStep = step.v, hasStep
	if hasMin && hasMax && minV.v > maxV.v {
		p.errorf(minV.off, "%s: %s.min %s > %s.max %s", ctx, label, minV.text, label, maxV.text)
	}
	// The platform keeps such values (several real exports have them), so they only warn.
	if hasStart && ((hasMin && start.v < minV.v) || (hasMax && start.v > maxV.v)) {
		p.warnf(start.off, "%s: %s.start %s is outside [%s,%s]", ctx, label, start.text, orInf(minV, hasMin, "-inf"), orInf(maxV, hasMax, "+inf"))
	}
	if hasStep && step.v <= 0 {
		p.warnf(step.off, "%s: %s.step %s is not positive", ctx, label, step.text)
	}
	d.Unit, _ = p.str(n, "unit", ctx+": "+label+".")
	d.UnitDesc, _ = p.str(n, "unitDesc", ctx+": "+label+".")
}

func orInf(x num, has bool, inf string) string {
	if has {
		return x.text
	}
	return inf
}

func (p *parser) lengths(d *Define, n *node, ctx, label string) {
	get := func(key string) (num, bool) {
		x, ok := p.number(n, key, ctx, label)
		if !ok || !p.integral(x, key, ctx, label) {
			return num{}, false
		}
		if x.v < 0 {
			p.errorf(x.off, "%s: %s.%s %s: a string length cannot be negative", ctx, label, key, x.text)
			return num{}, false
		}
		return x, true
	}
	minV, hasMin := get("min")
	maxV, hasMax := get("max")
	d.Min, d.HasMin = minV.v, hasMin
	d.Max, d.HasMax = maxV.v, hasMax
	if hasMin && hasMax && minV.v > maxV.v {
		p.errorf(minV.off, "%s: %s.min %s > %s.max %s", ctx, label, minV.text, label, maxV.text)
	}
}

func (p *parser) mapping(d *Define, n *node, ctx, label string) {
	m := present(n, "mapping")
	if m == nil {
		if d.Type != TypeBool { // bool values are 0/1 whether or not they are labelled
			p.errorf(n.off, "%s: %s.mapping is missing (%s needs its values)", ctx, label, d.Type)
		}
		return
	}
	if m.kind != kindObject {
		p.errorf(m.off, "%s: %s.mapping must be an object, got %s", ctx, label, m.kind)
		return
	}
	if len(m.members) == 0 && d.Type != TypeBool {
		p.errorf(m.off, "%s: %s.mapping is empty (%s needs at least one value)", ctx, label, d.Type)
		return
	}
	ints := map[int64]string{}
	for _, mem := range m.members {
		e := MappingEntry{Key: mem.key}
		if d.Type != TypeStringEnum {
			k, err := strconv.ParseInt(mem.key, 10, 64)
			switch {
			case d.Type == TypeBool && (err != nil || k != 0 && k != 1):
				// One message per mapping. On the wire a bool is 0 or 1 whatever its labels,
				// so the mapping only names the values: keep the type, drop the mapping.
				p.warnf(mem.keyOff, "%s: %s.mapping key %q: bool mapping keys should be 0 or 1; the mapping is ignored and the value is still sent as 0/1 (named values need type stringenum)", ctx, label, mem.key)
				d.Mapping = nil
				return
			case err != nil:
				p.errorf(mem.keyOff, "%s: %s.mapping key %q is not an integer", ctx, label, mem.key)
				continue
			}
			if prev, dup := ints[k]; dup {
				p.errorf(mem.keyOff, "%s: %s.mapping key %q duplicates key %q", ctx, label, mem.key, prev)
				continue
			}
			ints[k] = mem.key
			e.Int = k
		} else if strings.TrimSpace(mem.key) == "" {
			p.errorf(mem.keyOff, "%s: %s.mapping has an empty key", ctx, label)
			continue
		}
		switch mem.val.kind {
		case kindString:
			e.Label = mem.val.str
		case kindNumber:
			e.Label = mem.val.str
		default:
			p.errorf(mem.val.off, "%s: %s.mapping[%q] label must be a string, got %s", ctx, label, mem.key, mem.val.kind)
			continue
		}
		d.Mapping = append(d.Mapping, e)
	}
}
