package generator

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/tplgen/tplgen/runtime/template"
)

func (e *emitter) properties() {
	p := e.p
	e.f.Line()
	e.f.Comment("Properties holds property values of the product. Every field is a pointer: nil means")
	e.f.Comment("\"not present\", so a report carries only the fields that are set. Get<Name> methods read")
	e.f.Comment("a field nil-safely.")
	e.f.Type().Id("Properties").Struct(structFields(p.props, true, "property")...)
	e.getters("Properties", p.props)
	e.validateMethods("Properties", p.props, true, "the properties that are set", "params")
	e.appendJSONMethod("Properties", p.props, true)
	e.stringAndLogValue("Properties", p.props)

	var writable []*field
	for _, f := range p.props {
		if f.writable {
			writable = append(writable, f)
		}
	}
	e.f.Line()
	e.f.Comment("ControlProperties holds the writable (mode \"rw\") properties: the only ones the cloud can")
	e.f.Comment("set with a control message, and what Handler.Control receives. nil means \"not sent\".")
	e.f.Type().Id("ControlProperties").Struct(structFields(writable, true, "property")...)
	e.getters("ControlProperties", writable)
	e.f.Line()
	e.f.Comment("Properties returns the control values as Properties, e.g. to report them back.")
	e.f.Func().Params(jen.Id("x").Id("ControlProperties")).Id("Properties").Params().Id("Properties").Block(
		jen.Return(jen.Id("Properties").ValuesFunc(func(g *jen.Group) {
			for _, f := range writable {
				g.Line().Id(f.name).Op(":").Id("x").Dot(f.name)
			}
			if len(writable) > 0 {
				g.Line()
			}
		})),
	)
	e.f.Line()
	e.f.Comment("Validate checks the values that are set against the template's limits (see Properties.Validate).")
	e.f.Func().Params(jen.Id("x").Id("ControlProperties")).Id("Validate").Params().Error().Block(
		jen.Return(jen.Id("x").Dot("Properties").Call().Dot("Validate").Call()),
	)
	e.f.Line()
	e.f.Comment("AppendJSON appends the values that are set as a JSON object (see Properties.AppendJSON).")
	e.f.Func().Params(jen.Id("x").Id("ControlProperties")).Id("AppendJSON").Params(jen.Id("b").Index().Byte()).Index().Byte().Block(
		jen.Return(jen.Id("x").Dot("Properties").Call().Dot("AppendJSON").Call(jen.Id("b"))),
	)
	e.f.Line()
	e.f.Comment("String returns the values that are set as JSON (see Properties.String).")
	e.f.Func().Params(jen.Id("x").Id("ControlProperties")).Id("String").Params().String().Block(
		jen.Return(jen.Id("x").Dot("Properties").Call().Dot("String").Call()),
	)
	e.f.Line()
	e.f.Comment("LogValue implements slog.LogValuer (see Properties.LogValue).")
	e.f.Func().Params(jen.Id("x").Id("ControlProperties")).Id("LogValue").Params().Qual(slogPath, "Value").Block(
		jen.Return(jen.Id("x").Dot("Properties").Call().Dot("LogValue").Call()),
	)
}

// namedTypes emits the enum, stringenum and struct types in the order they were named.
func (e *emitter) namedTypes() {
	for _, nt := range e.p.types {
		e.f.Line()
		switch nt.def.Type {
		case template.TypeEnum:
			e.enum(nt)
		case template.TypeStringEnum:
			e.stringEnum(nt)
		case template.TypeStruct:
			e.f.Commentf("%s is the struct type of %s.", nt.name, nt.doc)
			e.f.Comment("Members are pointers because the platform accepts partial structs (nil = not present).")
			e.f.Type().Id(nt.name).Struct(structFields(nt.fields, true, "member")...)
			e.getters(nt.name, nt.fields)
			e.validateMethods(nt.name, nt.fields, true, "the members that are set", "")
			e.appendJSONMethod(nt.name, nt.fields, true)
			e.stringAndLogValue(nt.name, nt.fields)
		}
	}
}

func (e *emitter) enum(nt *namedType) {
	e.f.Commentf("%s is the enum type of %s; on the wire it is the integer key.", nt.name, nt.doc)
	e.f.Type().Id(nt.name).Int64()
	e.f.Line()
	if len(nt.consts) > 0 {
		e.f.Commentf("Values of %s (label in the comment).", nt.name)
		e.f.Const().DefsFunc(func(g *jen.Group) {
			for _, c := range nt.consts {
				g.Id(c.name).Id(nt.name).Op("=").Id(strconv.FormatInt(c.entry.Int, 10)).Comment(commentOr(c.entry.Label))
			}
		})
		e.f.Line()
	}
	e.f.Commentf("String returns the template's label for v, or %s(N) for a value not in the template.", nt.name)
	e.f.Func().Params(jen.Id("v").Id(nt.name)).Id("String").Params().String().Block(
		jen.Switch(jen.Id("v")).BlockFunc(func(g *jen.Group) {
			for _, c := range nt.consts {
				g.Case(jen.Id(c.name)).Block(jen.Return(jen.Lit(c.entry.Label)))
			}
		}),
		jen.Return(jen.Lit(nt.name+"(").Op("+").Qual("strconv", "FormatInt").Call(jen.Int64().Call(jen.Id("v")), jen.Lit(10)).Op("+").Lit(")")),
	)
	e.validMethod(nt)
}

func (e *emitter) stringEnum(nt *namedType) {
	e.f.Commentf("%s is the string enum type of %s; on the wire it is the key.", nt.name, nt.doc)
	e.f.Type().Id(nt.name).String()
	e.f.Line()
	if len(nt.consts) > 0 {
		e.f.Commentf("Values of %s (label in the comment).", nt.name)
		e.f.Const().DefsFunc(func(g *jen.Group) {
			for _, c := range nt.consts {
				g.Id(c.name).Id(nt.name).Op("=").Lit(c.entry.Key).Comment(commentOr(c.entry.Label))
			}
		})
		e.f.Line()
	}
	e.validMethod(nt)
}

func (e *emitter) validMethod(nt *namedType) {
	e.f.Line()
	e.f.Comment("Valid reports whether v is one of the template's values.")
	var body []jen.Code
	if len(nt.consts) > 0 {
		cases := make([]jen.Code, len(nt.consts))
		for i, c := range nt.consts {
			cases[i] = jen.Id(c.name)
		}
		body = append(body, jen.Switch(jen.Id("v")).Block(jen.Case(cases...).Block(jen.Return(jen.True()))))
	}
	body = append(body, jen.Return(jen.False()))
	e.f.Func().Params(jen.Id("v").Id(nt.name)).Id("Valid").Params().Bool().Block(body...)
}

func commentOr(label string) string {
	if s := commentText(label); s != "" {
		return s
	}
	return "(no label)"
}

func (e *emitter) events() {
	for _, ep := range e.p.events {
		ev := ep.ev
		e.f.Line()
		e.f.Commentf("%s is the params of event %q%s. Type %s.", ep.name, ev.ID, describe(ev.Name, ev.Desc), commentOr(string(ev.Type)))
		e.f.Type().Id(ep.name).Struct(structFields(ep.fields, false, "param")...)
		e.f.Line()
		e.f.Comment("EventID returns the template id of the event.")
		e.f.Func().Params(jen.Id(ep.name)).Id("EventID").Params().String().Block(jen.Return(jen.Lit(ev.ID)))
		e.f.Line()
		e.f.Comment("EventType returns the event's type (info, alert or fault).")
		e.f.Func().Params(jen.Id(ep.name)).Id("EventType").Params().String().Block(jen.Return(jen.Lit(string(ev.Type))))
		e.validateMethods(ep.name, ep.fields, false, "the params", "params")
		e.appendJSONMethod(ep.name, ep.fields, false)
	}
}

func (e *emitter) actions() {
	for _, ap := range e.p.actions {
		a := ap.act
		for _, part := range []struct {
			suffix, what string
			fields       []*field
		}{{"Input", "input", ap.input}, {"Output", "output (the action_reply response)", ap.output}} {
			name := ap.base + part.suffix
			e.f.Line()
			e.f.Commentf("%s is the %s of action %q%s.", name, part.what, a.ID, describe(a.Name, a.Desc))
			e.f.Type().Id(name).Struct(structFields(part.fields, false, "param")...)
			e.f.Line()
			e.f.Comment("ActionID returns the template id of the action.")
			e.f.Func().Params(jen.Id(name)).Id("ActionID").Params().String().Block(jen.Return(jen.Lit(a.ID)))
			e.validateMethods(name, part.fields, false, "the "+strings.Fields(part.what)[0], "params")
			e.appendJSONMethod(name, part.fields, false)
		}
	}
}

func (e *emitter) handler() {
	e.f.Line()
	e.f.Comment("Handler is implemented by the device application: it receives what the cloud sends.")
	e.f.Comment("Calls carry validated values; the returned error (or output) becomes the reply. A Handler")
	e.f.Comment("that also has the method Binding(ctx, thing.BindingNotice) learns when a user binds or")
	e.f.Comment("unbinds the device; one with Service(ctx, method string, msg []byte) gets the other")
	e.f.Comment("messages of the service topic (thing.BindingObserver, thing.ServiceObserver).")
	e.f.Type().Id("Handler").InterfaceFunc(func(g *jen.Group) {
		g.Comment("Control applies writable properties sent by the cloud; only the fields sent are set.")
		g.Comment("A non-nil error is reported back as a failed control_reply.")
		g.Id("Control").Params(jen.Id("ctx").Qual(contextPath, "Context"), jen.Id("p").Id("ControlProperties")).Error()
		for _, ap := range e.p.actions {
			g.Commentf("%s runs action %q%s.", ap.base, ap.act.ID, describe(ap.act.Name, ap.act.Desc))
			g.Id(ap.base).Params(jen.Id("ctx").Qual(contextPath, "Context"), jen.Id("in").Id(ap.base+"Input")).
				Params(jen.Id(ap.base+"Output"), jen.Error())
		}
	})
}

// typeInfo summarises a type's template limits for a doc comment ("Range [0, 100] %.").
func typeInfo(g *goType) string {
	d := g.def
	switch d.Type {
	case template.TypeBool:
		if len(d.Mapping) == 0 {
			return "Wire value 0/1."
		}
		return "Wire value 0/1: " + mappingText(d) + "."
	case template.TypeInt, template.TypeFloat:
		s := ""
		if d.HasMin || d.HasMax {
			s = "Range " + boundsText(d) + "."
		}
		if u := commentText(d.Unit); u != "" {
			s = strings.TrimSpace(s + " Unit " + u + ".")
		}
		return s
	case template.TypeString:
		if d.HasMin || d.HasMax {
			return "Length " + boundsText(d) + " characters."
		}
	case template.TypeEnum, template.TypeStringEnum:
		return "One of: " + mappingText(d) + "."
	case template.TypeTimestamp:
		return "Unix seconds."
	case template.TypeArray:
		if s := typeInfo(g.elem); s != "" {
			return "Elements: " + s
		}
	}
	return ""
}

func boundsText(d *template.Define) string {
	lo, hi := "-inf", "+inf"
	if d.HasMin {
		lo = formatFloat(d.Min)
	}
	if d.HasMax {
		hi = formatFloat(d.Max)
	}
	return "[" + lo + ", " + hi + "]"
}

func mappingText(d *template.Define) string {
	const maxEntries = 12
	var parts []string
	for i, m := range d.Mapping {
		if i == maxEntries {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(d.Mapping)-maxEntries))
			break
		}
		key := m.Key
		if d.Type == template.TypeStringEnum {
			key = strconv.Quote(m.Key)
		}
		parts = append(parts, commentText(key)+" = "+commentOr(m.Label))
	}
	return strings.Join(parts, ", ")
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
