package generator

import (
	"github.com/dave/jennifer/jen"
)

// Import paths of the runtime packages the typed Device compiles against.
const (
	thingPath    = "github.com/tplgen/tplgen/runtime/thing"
	templatePath = "github.com/tplgen/tplgen/runtime/template"
)

// genDevice emits the typed Device: the template-dependent Spec (template text, Handler
// method bindings), a Device type embedding *thing.Device (which carries every
// template-independent call), New, Template and one Post<Event> method per event.
//
// Emitted (names reserved in plan.pkg / plan.device, so template ids never take them):
//
//	var spec = thing.Spec[ControlProperties, Handler]{...}
//	func Template() *template.Template
//	type Device struct{ *thing.Device[Properties, ControlProperties] }
//	func New(conn thing.Transport, h Handler, opts ...thing.Option) (*Device, error)
//	func (d *Device) Post<Event>(ctx, e <Event>) error (one per event)
func genDevice(e *emitter) {
	f := e.f
	f.ImportName(thingPath, "thing")
	f.ImportName(templatePath, "template")
	ctx := func() *jen.Statement { return jen.Id("ctx").Qual(contextPath, "Context") }
	thingDevice := func() *jen.Statement {
		return jen.Qual(thingPath, "Device").Types(jen.Id("Properties"), jen.Id("ControlProperties"))
	}

	productID := jen.Lit("")
	if e.p.t.ProductID != "" {
		productID = jen.Id("ProductID")
	}
	f.Line()
	f.Comment("spec is the template-dependent part of Device: the template and the Handler methods that")
	f.Comment("control and each action reach. Everything else lives once in runtime/thing.")
	f.Var().Id("spec").Op("=").Qual(thingPath, "Spec").Types(jen.Id("ControlProperties"), jen.Id("Handler")).ValuesFunc(func(g *jen.Group) {
		kv := func(k string, v jen.Code) { g.Line().Id(k).Op(":").Add(v) }
		kv("ProductID", productID)
		if e.source != "" {
			kv("Source", jen.Lit(e.source))
		}
		kv("TemplateJSON", jen.Id("templateJSON"))
		kv("Control", jen.Id("Handler").Dot("Control"))
		if len(e.p.actions) > 0 {
			kv("Actions", jen.Index().Qual(thingPath, "Action").Types(jen.Id("Handler")).ValuesFunc(func(g *jen.Group) {
				for _, ap := range e.p.actions {
					g.Line().Qual(thingPath, "ActionOf").Call(jen.Lit(ap.act.ID), jen.Id("Handler").Dot(ap.base))
				}
				g.Line()
			}))
		}
		g.Line()
	})

	f.Line()
	f.Comment("Template returns the product's data template, parsed once from templateJSON. It is nil only")
	f.Comment("if that text does not parse with this runtime (New then returns the error).")
	f.Func().Id("Template").Params().Op("*").Qual(templatePath, "Template").Block(
		jen.Return(jen.Id("spec").Dot("Template").Call()),
	)

	f.Line()
	f.Comment("Device is the product's typed device. The embedded *thing.Device carries every call that")
	f.Comment("does not depend on the template: Report(ctx, Properties), GetStatus, GetPendingControl,")
	f.Comment("ClearControl, ReportInfo, PostEvents, BindAppToken, RequestUnbind, Thing and Close, and the")
	f.Comment("features beside the data template: Now (server time), OnRRPC, OnBroadcast, NewLogUploader")
	f.Comment("(an slog.Handler uploading to the cloud), NewFiles and NewResourceTasks. Device adds one")
	f.Comment("Post method per event of the template. Safe for concurrent use.")
	f.Type().Id("Device").Struct(jen.Op("*").Add(thingDevice()))

	f.Line()
	f.Comment("New starts the device on conn (an *explorer.Conn, or anything implementing thing.Transport):")
	f.Comment("it subscribes the data-template topics and, on every connect, applies control sent while")
	f.Comment("the device was offline through h.Control. Handler methods receive values already checked")
	f.Comment("against the template; their error (or action output) becomes the reply. New refuses a")
	f.Comment("device of another product. For a gateway's sub-device pass thing.WithDevice(productID,")
	f.Comment("deviceName); the gateway then applies its pending control once it is online.")
	f.Func().Id("New").Params(
		jen.Id("conn").Qual(thingPath, "Transport"),
		jen.Id("h").Id("Handler"),
		jen.Id("opts").Op("...").Qual(thingPath, "Option"),
	).Params(jen.Op("*").Id("Device"), jen.Error()).Block(
		jen.List(jen.Id("d"), jen.Err()).Op(":=").Qual(thingPath, "NewDevice").Types(jen.Id("Properties")).Call(
			jen.Id("conn"), jen.Op("&").Id("spec"), jen.Id("h"), jen.Id("opts").Op("...")),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
		jen.Return(jen.Op("&").Id("Device").Values(jen.Id("d")), jen.Nil()),
	)

	for _, ep := range e.p.events {
		ev := ep.ev
		f.Line()
		f.Comment(commentText("Post" + ep.name + " posts event \"" + ev.ID + "\"" + describe(ev.Name, ev.Desc) + " (type " + string(ev.Type) + ")"))
		f.Comment("and waits for the platform's event_reply. e is checked with its Validate method first.")
		f.Func().Params(jen.Id("d").Op("*").Id("Device")).Id("Post"+ep.name).Params(ctx(), jen.Id("e").Id(ep.name)).Error().Block(
			jen.Return(jen.Qual(thingPath, "PostEvent").Call(jen.Id("ctx"), jen.Id("d").Dot("Device"), jen.Id("e"))),
		)
	}
}
