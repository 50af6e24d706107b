package main

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// assignment is one KEY=VALUE argument of ctl control and ctl action.
type assignment struct {
	key, value string
}

func parseAssignments(args []string) ([]assignment, error) {
	seen := map[string]bool{}
	out := make([]assignment, 0, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("%q: want KEY=VALUE", a)
		}
		if seen[k] {
			return nil, usagef("%q: %s given twice", a, k)
		}
		seen[k] = true
		out = append(out, assignment{k, v})
	}
	return out, nil
}

// paramsJSON encodes the assignments as a params object in argument order. define returns the
// type of a key (nil when no template is known: the value is then a JSON literal if it parses
// as one, else a string, and the emulator checks it).
func paramsJSON(as []assignment, define func(key string) (*template.Define, error)) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, a := range as {
		d, err := define(a.key)
		if err != nil {
			return nil, err
		}
		var v any
		if d == nil {
			v = untypedValue(a.value)
		} else if v, err = typedValue(d, a.value); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", a.key, a.value, err)
		}
		k, _ := json.Marshal(a.key)
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", a.key, a.value, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func untypedValue(s string) any {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return s
}

// typedValue converts the text of a value to its wire form by the template's type:
//
//	bool        1 0 true false on off yes no, or a mapping label
//	int float   a number
//	string      the text as is
//	enum        a key (integer) or its label
//	stringenum  a key or its label
//	timestamp   Unix seconds (or milliseconds), "now", or RFC 3339 (sent as seconds)
//	struct array  JSON
//
// and checks it against the definition (range, length, keys).
func typedValue(d *template.Define, s string) (any, error) {
	var v any
	switch d.Type {
	case template.TypeBool:
		switch strings.ToLower(s) {
		case "1", "true", "on", "yes":
			v = 1
		case "0", "false", "off", "no":
			v = 0
		default:
			e, ok := byLabel(d, s)
			if !ok {
				return nil, fmt.Errorf("bool: want 1, 0, true, false, on, off or a label (%s)", mappingList(d))
			}
			v = e.Int
		}
	case template.TypeInt:
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return nil, fmt.Errorf("int: %q is not an integer", s)
		}
		v = json.Number(s)
	case template.TypeFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("float: %q is not a number", s)
		}
		v = json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	case template.TypeString:
		v = s
	case template.TypeEnum:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			v = n
		} else if e, ok := byLabel(d, s); ok {
			v = e.Int
		} else {
			return nil, fmt.Errorf("enum: want one of %s", mappingList(d))
		}
	case template.TypeStringEnum:
		v = s
		if !hasKey(d, s) {
			if e, ok := byLabel(d, s); ok {
				v = e.Key
			}
		}
	case template.TypeTimestamp:
		switch {
		case s == "now":
			v = time.Now().Unix()
		default:
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				v = n
			} else if t, err := time.Parse(time.RFC3339, s); err == nil {
				v = t.Unix()
			} else {
				return nil, fmt.Errorf("timestamp: want Unix seconds, now, or RFC 3339 like 2026-01-02T15:04:05Z")
			}
		}
	default: // struct, array
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil || dec.More() {
			return nil, fmt.Errorf("%s: want JSON, e.g. %s", d.Type, jsonExample(d))
		}
	}
	if err := d.CheckValue(v); err != nil {
		return nil, err
	}
	return v, nil
}

func byLabel(d *template.Define, s string) (template.MappingEntry, bool) {
	for _, e := range d.Mapping {
		if strings.EqualFold(e.Label, s) {
			return e, true
		}
	}
	return template.MappingEntry{}, false
}

func hasKey(d *template.Define, s string) bool {
	for _, e := range d.Mapping {
		if e.Key == s {
			return true
		}
	}
	return false
}

func mappingList(d *template.Define) string {
	parts := make([]string, 0, len(d.Mapping))
	for _, e := range d.Mapping {
		parts = append(parts, fmt.Sprintf("%s (%s)", e.Key, e.Label))
	}
	return strings.Join(parts, ", ")
}

func jsonExample(d *template.Define) string {
	if d.Type == template.TypeArray {
		return "[...]"
	}
	var keys []string
	for _, m := range d.Specs {
		keys = append(keys, fmt.Sprintf("%q:...", m.ID))
	}
	return "{" + strings.Join(keys, ",") + "}"
}

// The emulator's view of a product's template (GET /api/products/{pid}): numbers as numbers,
// mappings as ordered key/label lists, array elements under "elem".
type productView struct {
	ProductID  string `json:"product_id"`
	Properties []struct {
		ID       string      `json:"id"`
		Name     string      `json:"name"`
		Desc     string      `json:"desc"`
		Mode     string      `json:"mode"`
		Required bool        `json:"required"`
		Define   *defineView `json:"define"`
	} `json:"properties"`
	Events []struct {
		ID     string      `json:"id"`
		Name   string      `json:"name"`
		Desc   string      `json:"desc"`
		Type   string      `json:"type"`
		Params []paramView `json:"params"`
	} `json:"events"`
	Actions []struct {
		ID     string      `json:"id"`
		Name   string      `json:"name"`
		Desc   string      `json:"desc"`
		Input  []paramView `json:"input"`
		Output []paramView `json:"output"`
	} `json:"actions"`
}

type paramView struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Define *defineView `json:"define"`
}

type defineView struct {
	Type    string   `json:"type"`
	Min     *float64 `json:"min"`
	Max     *float64 `json:"max"`
	Start   *float64 `json:"start"`
	Step    *float64 `json:"step"`
	Unit    string   `json:"unit"`
	Mapping []struct {
		Key   string `json:"key"`
		Label string `json:"label"`
	} `json:"mapping"`
	Specs []paramView `json:"specs"`
	Elem  *defineView `json:"elem"`
}

// templateJSON writes the view back in the data-template format, so that template.Parse
// builds the model the value checks use (mapping order kept).
func (v *productView) templateJSON() []byte {
	var b bytes.Buffer
	str := func(s string) { q, _ := json.Marshal(s); b.Write(q) }
	var define func(d *defineView)
	params := func(ps []paramView, defKey string) {
		b.WriteByte('[')
		for i, p := range ps {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"id":`)
			str(p.ID)
			b.WriteString(`,"name":`)
			str(p.Name)
			b.WriteString(`,"` + defKey + `":`)
			define(p.Define)
			b.WriteByte('}')
		}
		b.WriteByte(']')
	}
	define = func(d *defineView) {
		if d == nil {
			b.WriteString("null")
			return
		}
		b.WriteString(`{"type":`)
		str(d.Type)
		for _, n := range []struct {
			k string
			v *float64
		}{{"min", d.Min}, {"max", d.Max}, {"start", d.Start}, {"step", d.Step}} {
			if n.v != nil {
				b.WriteString(`,"` + n.k + `":`)
				str(strconv.FormatFloat(*n.v, 'f', -1, 64))
			}
		}
		if d.Unit != "" {
			b.WriteString(`,"unit":`)
			str(d.Unit)
		}
		if len(d.Mapping) > 0 {
			b.WriteString(`,"mapping":{`)
			for i, m := range d.Mapping {
				if i > 0 {
					b.WriteByte(',')
				}
				str(m.Key)
				b.WriteByte(':')
				str(m.Label)
			}
			b.WriteByte('}')
		}
		if d.Type == string(template.TypeStruct) {
			b.WriteString(`,"specs":`)
			params(d.Specs, "dataType")
		}
		if d.Elem != nil {
			b.WriteString(`,"arrayInfo":`)
			define(d.Elem)
		}
		b.WriteByte('}')
	}
	b.WriteString(`{"version":"1.0","profile":{"ProductId":`)
	str(v.ProductID)
	b.WriteString(`},"properties":[`)
	for i, p := range v.Properties {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":`)
		str(p.ID)
		b.WriteString(`,"name":`)
		str(p.Name)
		b.WriteString(`,"desc":`)
		str(p.Desc)
		b.WriteString(`,"mode":`)
		str(p.Mode)
		fmt.Fprintf(&b, `,"required":%t,"define":`, p.Required)
		define(p.Define)
		b.WriteByte('}')
	}
	b.WriteString(`],"events":[`)
	for i, e := range v.Events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":`)
		str(e.ID)
		b.WriteString(`,"name":`)
		str(e.Name)
		b.WriteString(`,"desc":`)
		str(e.Desc)
		b.WriteString(`,"type":`)
		str(e.Type)
		b.WriteString(`,"params":`)
		params(e.Params, "define")
		b.WriteByte('}')
	}
	b.WriteString(`],"actions":[`)
	for i, a := range v.Actions {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":`)
		str(a.ID)
		b.WriteString(`,"name":`)
		str(a.Name)
		b.WriteString(`,"desc":`)
		str(a.Desc)
		b.WriteString(`,"input":`)
		params(a.Input, "define")
		b.WriteString(`,"output":`)
		params(a.Output, "define")
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes()
}
