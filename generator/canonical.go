package generator

import (
	"bytes"
	"strconv"

	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// CanonicalJSON serialises a template model back to data-template JSON in one fixed layout:
// compact except for one line per feature (parsers that locate positions by line stay fast
// on large templates), keys in the order of docs/PROTOCOL.md §3, numeric limits as strings, mappings in file
// order, absent optional fields left out. Generated code embeds this (not the original
// bytes) as templateJSON, so the embedded text is exactly the model the code was generated
// from, independent of the source file's formatting, key order or trailing commas, and
// template.Parse reads it back to an equal model.
func CanonicalJSON(t *template.Template) []byte {
	w := &jsonWriter{}
	w.raw("{")
	first := true
	field := func(key string) {
		if !first {
			w.raw(",")
		}
		first = false
		w.str(key)
		w.raw(":")
	}
	if t.Version != "" {
		field("version")
		w.str(t.Version)
	}
	if t.ProductID != "" || t.CategoryID != "" {
		field("profile")
		w.object(func(f func(string)) {
			if t.ProductID != "" {
				f("ProductId")
				w.str(t.ProductID)
			}
			if t.CategoryID != "" {
				f("CategoryId")
				w.str(t.CategoryID)
			}
		})
	}
	field("properties")
	w.raw("[")
	for i, p := range t.Properties {
		w.comma(i)
		w.raw("\n")
		w.object(func(f func(string)) {
			w.head(f, p.ID, p.Name, p.Desc)
			f("mode")
			w.str(string(p.Mode))
			f("required")
			w.boolean(p.Required)
			f("define")
			w.define(p.Define)
		})
	}
	w.raw("]")
	field("events")
	w.raw("[")
	for i, e := range t.Events {
		w.comma(i)
		w.raw("\n")
		w.object(func(f func(string)) {
			w.head(f, e.ID, e.Name, e.Desc)
			f("type")
			w.str(string(e.Type))
			f("required")
			w.boolean(e.Required)
			f("params")
			w.params(e.Params, "define")
		})
	}
	w.raw("]")
	field("actions")
	w.raw("[")
	for i, a := range t.Actions {
		w.comma(i)
		w.raw("\n")
		w.object(func(f func(string)) {
			w.head(f, a.ID, a.Name, a.Desc)
			f("required")
			w.boolean(a.Required)
			f("input")
			w.params(a.Input, "define")
			f("output")
			w.params(a.Output, "define")
		})
	}
	w.raw("]")
	w.raw("}")
	return w.buf.Bytes()
}

type jsonWriter struct {
	buf bytes.Buffer
}

func (w *jsonWriter) raw(s string) { w.buf.WriteString(s) }

func (w *jsonWriter) comma(i int) {
	if i > 0 {
		w.raw(",")
	}
}

func (w *jsonWriter) str(s string) {
	w.buf.Write(tplwire.AppendString(nil, s))
}

func (w *jsonWriter) boolean(v bool) { w.raw(strconv.FormatBool(v)) }

func (w *jsonWriter) num(v float64) { w.str(strconv.FormatFloat(v, 'f', -1, 64)) }

// object writes {...}; body receives a function that writes the separator and a key.
func (w *jsonWriter) object(body func(field func(key string))) {
	w.raw("{")
	first := true
	body(func(key string) {
		if !first {
			w.raw(",")
		}
		first = false
		w.str(key)
		w.raw(":")
	})
	w.raw("}")
}

func (w *jsonWriter) head(f func(string), id, name, desc string) {
	f("id")
	w.str(id)
	f("name")
	w.str(name)
	f("desc")
	w.str(desc)
}

func (w *jsonWriter) params(ps []*template.Param, defKey string) {
	w.raw("[")
	for i, p := range ps {
		w.comma(i)
		w.object(func(f func(string)) {
			w.head(f, p.ID, p.Name, p.Desc)
			f(defKey)
			w.define(p.Define)
		})
	}
	w.raw("]")
}

func (w *jsonWriter) define(d *template.Define) {
	if d == nil {
		w.raw("null")
		return
	}
	w.object(func(f func(string)) {
		f("type")
		w.str(string(d.Type))
		switch d.Type {
		case template.TypeInt, template.TypeFloat, template.TypeString:
			if d.HasMin {
				f("min")
				w.num(d.Min)
			}
			if d.HasMax {
				f("max")
				w.num(d.Max)
			}
			if d.HasStart {
				f("start")
				w.num(d.Start)
			}
			if d.HasStep {
				f("step")
				w.num(d.Step)
			}
			if d.Unit != "" {
				f("unit")
				w.str(d.Unit)
			}
			if d.UnitDesc != "" {
				f("unitDesc")
				w.str(d.UnitDesc)
			}
		case template.TypeBool, template.TypeEnum, template.TypeStringEnum:
			f("mapping")
			w.object(func(mf func(string)) {
				for _, m := range d.Mapping {
					mf(m.Key)
					w.str(m.Label)
				}
			})
		case template.TypeStruct:
			f("specs")
			w.params(d.Specs, "dataType")
		case template.TypeArray:
			f("arrayInfo")
			w.define(d.Elem)
		}
	})
}
