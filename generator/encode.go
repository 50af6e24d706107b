package generator

import (
	"github.com/dave/jennifer/jen"

	"github.com/tplgen/tplgen/runtime/template"
)

const slogPath = "log/slog"

// appendJSONMethod emits AppendJSON for a struct type: the value as a JSON object, keys in
// template order, appended without reflection. optional types (pointer fields) leave nil
// fields out; the others write every field.
func (e *emitter) appendJSONMethod(typeName string, fields []*field, optional bool) {
	e.f.Line()
	e.f.Comment("AppendJSON appends x as the JSON object the platform expects (keys in template order,")
	if optional {
		e.f.Comment("nil fields left out) and returns the extended slice. It does not check limits: see Validate.")
	} else {
		e.f.Comment("every field present) and returns the extended slice. It does not check limits: see Validate.")
	}
	b := func() *jen.Statement { return jen.Id("b") }
	var body []jen.Code
	switch {
	case len(fields) == 0:
		body = append(body, jen.Return(jen.Append(b(), jen.Lit("{}").Op("..."))))
	case optional:
		body = append(body,
			b().Op("=").Append(b(), jen.LitRune('{')),
			jen.Id("start").Op(":=").Len(b()),
		)
		for _, f := range fields {
			fv := jen.Id("x").Dot(f.name)
			stmts := []jen.Code{
				b().Op("=").Append(jen.Qual(tplwirePath, "Comma").Call(b(), jen.Id("start")), jen.Lit(`"`+f.id+`":`).Op("...")),
			}
			stmts = append(stmts, appendValue(f.typ, jen.Op("*").Add(fv.Clone()), fv.Clone())...)
			body = append(body, jen.If(fv.Clone().Op("!=").Nil()).Block(stmts...))
		}
		body = append(body, jen.Return(jen.Append(b(), jen.LitRune('}'))))
	default:
		for i, f := range fields {
			key := `,"` + f.id + `":`
			if i == 0 {
				key = `{"` + f.id + `":`
			}
			fv := jen.Id("x").Dot(f.name)
			body = append(body, b().Op("=").Append(b(), jen.Lit(key).Op("...")))
			body = append(body, appendValue(f.typ, fv.Clone(), fv.Clone())...)
		}
		body = append(body, jen.Return(jen.Append(b(), jen.LitRune('}'))))
	}
	e.f.Func().Params(jen.Id("x").Id(typeName)).Id("AppendJSON").Params(jen.Id("b").Index().Byte()).Index().Byte().Block(body...)
}

// appendValue returns the statements appending one value: val is the value, recv the
// expression to call its methods on.
func appendValue(g *goType, val, recv *jen.Statement) []jen.Code {
	b := func() *jen.Statement { return jen.Id("b") }
	set := func(call jen.Code) []jen.Code { return []jen.Code{b().Op("=").Add(call)} }
	switch g.def.Type {
	case template.TypeBool, template.TypeTimestamp, template.TypeStruct:
		return set(recv.Clone().Dot("AppendJSON").Call(b()))
	case template.TypeInt:
		return set(jen.Qual(tplwirePath, "AppendInt").Call(b(), val))
	case template.TypeFloat:
		return set(jen.Qual(tplwirePath, "AppendFloat").Call(b(), val))
	case template.TypeString:
		return set(jen.Qual(tplwirePath, "AppendString").Call(b(), val))
	case template.TypeEnum:
		return set(jen.Qual(tplwirePath, "AppendInt").Call(b(), jen.Int64().Call(val)))
	case template.TypeStringEnum:
		return set(jen.Qual(tplwirePath, "AppendString").Call(b(), jen.String().Call(val)))
	case template.TypeArray:
		return []jen.Code{
			b().Op("=").Append(b(), jen.LitRune('[')),
			jen.For(jen.List(jen.Id("i"), jen.Id("el")).Op(":=").Range().Add(val)).Block(
				jen.If(jen.Id("i").Op(">").Lit(0)).Block(b().Op("=").Append(b(), jen.LitRune(','))),
				jen.Block(appendValue(g.elem, jen.Id("el"), jen.Id("el"))...),
			),
			b().Op("=").Append(b(), jen.LitRune(']')),
		}
	}
	panic("generator: appendValue: unplanned type " + string(g.def.Type))
}

// getters emits a nil-safe getter per field of a type with pointer fields, like protobuf's:
// GetX returns the value, or the zero value when the field (or the receiver) is nil. Struct
// fields return the pointer, so getters chain (p.GetPos().GetX()).
func (e *emitter) getters(typeName string, fields []*field) {
	for _, f := range fields {
		e.f.Line()
		fv := jen.Id("x").Dot(f.name)
		switch {
		case f.typ.def.Type == template.TypeStruct:
			e.f.Commentf("%s returns %s (nil when it is not set or x is nil).", f.getter, f.name)
			e.f.Func().Params(jen.Id("x").Op("*").Id(typeName)).Id(f.getter).Params().Op("*").Add(typeExpr(f.typ)).Block(
				jen.If(jen.Id("x").Op("==").Nil()).Block(jen.Return(jen.Nil())),
				jen.Return(fv),
			)
		default:
			e.f.Commentf("%s returns %s, or %s when it is not set or x is nil.", f.getter, f.name, zeroText(f.typ))
			e.f.Func().Params(jen.Id("x").Op("*").Id(typeName)).Id(f.getter).Params().Add(typeExpr(f.typ)).Block(
				jen.If(jen.Id("x").Op("==").Nil().Op("||").Add(fv.Clone()).Op("==").Nil()).Block(jen.Return(zeroValue(f.typ))),
				jen.Return(jen.Op("*").Add(fv)),
			)
		}
	}
}

func zeroValue(g *goType) jen.Code {
	switch g.def.Type {
	case template.TypeBool:
		return jen.False()
	case template.TypeString, template.TypeStringEnum:
		return jen.Lit("")
	case template.TypeArray:
		return jen.Nil()
	}
	return jen.Lit(0)
}

func zeroText(g *goType) string {
	switch g.def.Type {
	case template.TypeBool:
		return "false"
	case template.TypeString, template.TypeStringEnum:
		return `""`
	case template.TypeArray:
		return "nil"
	}
	return "0"
}

// stringAndLogValue emits String (the JSON of the set fields, so %v and %+v show values, not
// pointer addresses) and LogValue (a slog group of the set fields) for a type with pointer
// fields.
func (e *emitter) stringAndLogValue(typeName string, fields []*field) {
	e.f.Line()
	e.f.Comment("String returns the fields that are set as JSON, so fmt's %v and %+v show values rather")
	e.f.Comment("than pointer addresses.")
	e.f.Func().Params(jen.Id("x").Id(typeName)).Id("String").Params().String().Block(
		jen.Return(jen.String().Call(jen.Id("x").Dot("AppendJSON").Call(jen.Nil()))),
	)
	e.f.Line()
	e.f.Comment("LogValue implements slog.LogValuer: a group of the fields that are set, by template id.")
	var body []jen.Code
	if len(fields) == 0 {
		body = append(body, jen.Return(jen.Qual(slogPath, "GroupValue").Call()))
	} else {
		body = append(body, jen.Id("attrs").Op(":=").Make(jen.Index().Qual(slogPath, "Attr"), jen.Lit(0), jen.Lit(len(fields))))
		for _, f := range fields {
			fv := jen.Id("x").Dot(f.name)
			body = append(body, jen.If(fv.Clone().Op("!=").Nil()).Block(
				jen.Id("attrs").Op("=").Append(jen.Id("attrs"), logAttr(f.id, f.typ, jen.Op("*").Add(fv.Clone()), fv.Clone())),
			))
		}
		body = append(body, jen.Return(jen.Qual(slogPath, "GroupValue").Call(jen.Id("attrs").Op("..."))))
	}
	e.f.Func().Params(jen.Id("x").Id(typeName)).Id("LogValue").Params().Qual(slogPath, "Value").Block(body...)
}

func logAttr(key string, g *goType, val, ptr *jen.Statement) jen.Code {
	k := jen.Lit(key)
	switch g.def.Type {
	case template.TypeBool:
		return jen.Qual(slogPath, "Bool").Call(k, jen.Bool().Call(val))
	case template.TypeInt:
		return jen.Qual(slogPath, "Int64").Call(k, val)
	case template.TypeFloat:
		return jen.Qual(slogPath, "Float64").Call(k, val)
	case template.TypeString:
		return jen.Qual(slogPath, "String").Call(k, val)
	case template.TypeTimestamp:
		return jen.Qual(slogPath, "Time").Call(k, ptr.Clone().Dot("Time").Call())
	case template.TypeEnum:
		return jen.Qual(slogPath, "String").Call(k, ptr.Clone().Dot("String").Call())
	case template.TypeStringEnum:
		return jen.Qual(slogPath, "String").Call(k, jen.String().Call(val))
	case template.TypeStruct:
		return jen.Qual(slogPath, "Any").Call(k, ptr) // a LogValuer itself
	}
	return jen.Qual(slogPath, "Any").Call(k, val) // arrays
}
