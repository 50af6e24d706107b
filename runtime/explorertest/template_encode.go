package explorertest

import (
	"bytes"
	"strconv"

	"github.com/tplgen/tplgen/runtime/template"
)

// encodeTemplate writes tpl back in the console's export format (docs/PROTOCOL.md §3.4), in template
// order, so that --data can store a product and template.Parse can read it again. Numeric
// limits are written as strings, as the console exports them.
func encodeTemplate(pid string, tpl *template.Template) ([]byte, error) {
	var b bytes.Buffer
	w := &tplWriter{b: &b}
	b.WriteString(`{"version":`)
	w.str(orDefault(tpl.Version, "1.0"))
	b.WriteString(`,"profile":{"ProductId":`)
	w.str(pid)
	if tpl.CategoryID != "" {
		b.WriteString(`,"CategoryId":`)
		w.str(tpl.CategoryID)
	}
	b.WriteString(`},"properties":[`)
	for i, p := range tpl.Properties {
		w.comma(i)
		w.head(p.ID, p.Name, p.Desc)
		b.WriteString(`,"mode":`)
		w.str(string(p.Mode))
		b.WriteString(`,"required":` + strconv.FormatBool(p.Required) + `,"define":`)
		w.define(p.Define)
		b.WriteByte('}')
	}
	b.WriteString(`],"events":[`)
	for i, e := range tpl.Events {
		w.comma(i)
		w.head(e.ID, e.Name, e.Desc)
		b.WriteString(`,"type":`)
		w.str(string(e.Type))
		b.WriteString(`,"required":` + strconv.FormatBool(e.Required) + `,"params":`)
		w.params(e.Params, "define")
		b.WriteByte('}')
	}
	b.WriteString(`],"actions":[`)
	for i, a := range tpl.Actions {
		w.comma(i)
		w.head(a.ID, a.Name, a.Desc)
		b.WriteString(`,"required":` + strconv.FormatBool(a.Required) + `,"input":`)
		w.params(a.Input, "define")
		b.WriteString(`,"output":`)
		w.params(a.Output, "define")
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	return b.Bytes(), w.err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type tplWriter struct {
	b   *bytes.Buffer
	err error
}

func (w *tplWriter) str(s string) {
	v, err := marshalJSON(s)
	if err != nil && w.err == nil {
		w.err = err
	}
	w.b.Write(v)
}

func (w *tplWriter) comma(i int) {
	if i > 0 {
		w.b.WriteByte(',')
	}
}

func (w *tplWriter) head(id, name, desc string) {
	w.b.WriteString(`{"id":`)
	w.str(id)
	w.b.WriteString(`,"name":`)
	w.str(name)
	w.b.WriteString(`,"desc":`)
	w.str(desc)
}

func (w *tplWriter) params(ps []*template.Param, defKey string) {
	w.b.WriteByte('[')
	for i, p := range ps {
		w.comma(i)
		w.head(p.ID, p.Name, p.Desc)
		w.b.WriteString(`,"` + defKey + `":`)
		w.define(p.Define)
		w.b.WriteByte('}')
	}
	w.b.WriteByte(']')
}

func (w *tplWriter) num(key string, has bool, v float64) {
	if !has {
		return
	}
	w.b.WriteString(`,"` + key + `":`)
	w.str(strconv.FormatFloat(v, 'f', -1, 64))
}

func (w *tplWriter) define(d *template.Define) {
	if d == nil {
		w.b.WriteString(`null`)
		return
	}
	w.b.WriteString(`{"type":`)
	w.str(string(d.Type))
	w.num("min", d.HasMin, d.Min)
	w.num("max", d.HasMax, d.Max)
	w.num("start", d.HasStart, d.Start)
	w.num("step", d.HasStep, d.Step)
	if d.Unit != "" {
		w.b.WriteString(`,"unit":`)
		w.str(d.Unit)
	}
	if d.UnitDesc != "" {
		w.b.WriteString(`,"unitDesc":`)
		w.str(d.UnitDesc)
	}
	if len(d.Mapping) > 0 {
		w.b.WriteString(`,"mapping":{`)
		for i, m := range d.Mapping {
			w.comma(i)
			w.str(m.Key)
			w.b.WriteByte(':')
			w.str(m.Label)
		}
		w.b.WriteByte('}')
	}
	if d.Type == template.TypeStruct {
		w.b.WriteString(`,"specs":`)
		w.params(d.Specs, "dataType")
	}
	if d.Elem != nil {
		w.b.WriteString(`,"arrayInfo":`)
		w.define(d.Elem)
	}
	w.b.WriteByte('}')
}
