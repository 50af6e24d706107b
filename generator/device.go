package generator

import (
	"github.com/dave/jennifer/jen"
)

// Import paths of the runtime packages the typed Device compiles against.
const (
	thingPath    = "github.com/tplgen/tplgen/runtime/thing"
	explorerPath = "github.com/tplgen/tplgen/runtime/explorer"
	templatePath = "github.com/tplgen/tplgen/runtime/template"
	jsonPath     = "github.com/goccy/go-json"
)

// genDevice emits the typed Device: a thin wrapper over runtime/thing.Thing that adds the
// generated types. All protocol logic (validation against the template, correlation, replies)
// stays in runtime/thing; the wrapper only encodes and decodes.
//
// Emitted (names reserved in plan.pkg / plan.device, so template ids never take them):
//
//	func Template() *template.Template
//	type Device struct{ ... }
//	func New(conn *explorer.Conn, h Handler, opts ...thing.Option) (*Device, error)
//	func (d *Device) Report / GetStatus / GetPendingControl / ClearControl / ReportInfo
//	func (d *Device) Post<Event> (one per event), PostEvents (with an Event interface)
//	func (d *Device) Thing() *thing.Thing, Close(ctx)
//	type Status struct{ Reported Properties }
func genDevice(e *emitter) {
	f := e.f
	f.ImportName(thingPath, "thing")
	f.ImportName(explorerPath, "explorer")
	f.ImportName(templatePath, "template")
	f.ImportAlias(jsonPath, "json")
	ctx := func() *jen.Statement { return jen.Id("ctx").Qual(contextPath, "Context") }

	// The event interface name is claimed here, after the template's names, so an event
	// called "event" keeps its natural type name and the interface becomes Event2.
	eventIface := ""
	if len(e.p.events) > 0 {
		eventIface = e.p.pkg.claim("Event")
	}

	// Template(), parsed once.
	f.Line()
	f.Comment("parsedTemplate parses templateJSON once, on first use.")
	f.Var().Id("parsedTemplate").Op("=").Qual("sync", "OnceValues").Call(
		jen.Func().Params().Params(jen.Op("*").Qual(templatePath, "Template"), jen.Error()).Block(
			jen.Return(jen.Qual(templatePath, "Parse").Call(jen.Lit("templateJSON"), jen.Index().Byte().Call(jen.Id("templateJSON")))),
		),
	)
	f.Line()
	f.Comment("Template returns the product's data template, parsed once from the template embedded in")
	f.Comment("this file. It is nil only if that text does not parse with this runtime (New then")
	f.Comment("returns the error).")
	f.Func().Id("Template").Params().Op("*").Qual(templatePath, "Template").Block(
		jen.List(jen.Id("t"), jen.Id("_")).Op(":=").Id("parsedTemplate").Call(),
		jen.Return(jen.Id("t")),
	)

	// Device and New.
	f.Line()
	f.Comment("Device is the product's typed device: it reports and posts the generated types and")
	f.Comment("dispatches control and actions from the cloud to a Handler. It wraps a *thing.Thing,")
	f.Comment("which checks every value against the template and correlates replies. Safe for")
	f.Comment("concurrent use.")
	f.Type().Id("Device").Struct(jen.Id("t").Op("*").Qual(thingPath, "Thing"))

	f.Line()
	f.Comment("New starts the device on conn: it subscribes the data-template topics and, on every")
	f.Comment("connect, applies control sent while the device was offline through h.Control. Use")
	f.Comment("thing.WithDevice for a gateway's sub-device (the gateway then triggers that re-sync with")
	f.Comment("Thing().SyncPendingControl once the sub-device is online). Handler methods receive values")
	f.Comment("already checked against the template; their error (or action output) becomes the reply.")
	f.Func().Id("New").Params(
		jen.Id("conn").Op("*").Qual(explorerPath, "Conn"),
		jen.Id("h").Id("Handler"),
		jen.Id("opts").Op("...").Qual(thingPath, "Option"),
	).Params(jen.Op("*").Id("Device"), jen.Error()).BlockFunc(func(g *jen.Group) {
		g.List(jen.Id("tpl"), jen.Err()).Op(":=").Id("parsedTemplate").Call()
		g.If(jen.Err().Op("!=").Nil()).Block(
			jen.Return(jen.Nil(), jen.Qual("fmt", "Errorf").Call(jen.Lit("New: embedded data template: %w"), jen.Err())),
		)
		g.If(jen.Id("h").Op("==").Nil()).Block(
			jen.Return(jen.Nil(), jen.Qual("errors", "New").Call(jen.Lit("New: nil Handler"))),
		)
		g.Id("base").Op(":=").Index().Qual(thingPath, "Option").ValuesFunc(func(g *jen.Group) {
			g.Qual(thingPath, "WithControlHandler").Call(jen.Id("controlHandler").Call(jen.Id("h")))
			if len(e.p.actions) > 0 {
				g.Qual(thingPath, "WithActionHandler").Call(jen.Id("actionHandler").Call(jen.Id("h")))
			}
		})
		g.Comment("Caller options come last so they can override the handlers above.")
		g.List(jen.Id("t"), jen.Err()).Op(":=").Qual(thingPath, "New").Call(
			jen.Id("conn"), jen.Id("tpl"), jen.Append(jen.Id("base"), jen.Id("opts").Op("...")).Op("..."))
		g.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err()))
		g.Return(jen.Op("&").Id("Device").Values(jen.Dict{jen.Id("t"): jen.Id("t")}), jen.Nil())
	})

	// Typed dispatch.
	decodeFail := func(what string) *jen.Statement {
		// A validated message that does not decode means the template and the generated
		// types disagree; answer 406 like any other value problem.
		return jen.Qual(thingPath, "Errorf").Call(jen.Qual(thingPath, "CodeInvalidValue"), jen.Lit("decode "+what+": %v"), jen.Err())
	}
	f.Line()
	f.Comment("controlHandler decodes a validated control into ControlProperties for h.Control.")
	f.Func().Id("controlHandler").Params(jen.Id("h").Id("Handler")).Qual(thingPath, "ControlHandler").Block(
		jen.Return(jen.Func().Params(ctx(), jen.Id("params").Index().Byte()).Error().Block(
			jen.Var().Id("p").Id("ControlProperties"),
			jen.If(jen.Err().Op(":=").Qual(jsonPath, "Unmarshal").Call(jen.Id("params"), jen.Op("&").Id("p")), jen.Err().Op("!=").Nil()).Block(
				jen.Return(decodeFail("control")),
			),
			jen.Return(jen.Id("h").Dot("Control").Call(jen.Id("ctx"), jen.Id("p"))),
		)),
	)
	if len(e.p.actions) > 0 {
		f.Line()
		f.Comment("actionHandler decodes a validated action input and calls the Handler method of the action.")
		f.Func().Id("actionHandler").Params(jen.Id("h").Id("Handler")).Qual(thingPath, "ActionHandler").Block(
			jen.Return(jen.Func().Params(ctx(), jen.Id("actionID").String(), jen.Id("input").Index().Byte()).Params(jen.Any(), jen.Error()).Block(
				jen.Switch(jen.Id("actionID")).BlockFunc(func(g *jen.Group) {
					for _, ap := range e.p.actions {
						g.Case(jen.Lit(ap.act.ID)).Block(
							jen.Var().Id("in").Id(ap.base+"Input"),
							jen.If(jen.Err().Op(":=").Qual(jsonPath, "Unmarshal").Call(jen.Id("input"), jen.Op("&").Id("in")), jen.Err().Op("!=").Nil()).Block(
								jen.Return(jen.Nil(), decodeFail("action "+ap.act.ID+" input")),
							),
							jen.Return(jen.Id("h").Dot(ap.base).Call(jen.Id("ctx"), jen.Id("in"))),
						)
					}
				}),
				jen.Return(jen.Nil(), jen.Qual(thingPath, "Errorf").Call(jen.Qual(thingPath, "CodeUnknownID"), jen.Lit("unknown action %q"), jen.Id("actionID"))),
			)),
		)
	}

	recv := func() *jen.Statement { return jen.Id("d").Op("*").Id("Device") }
	method := func(name string, doc ...string) *jen.Statement {
		f.Line()
		for _, d := range doc {
			f.Comment(d)
		}
		return f.Func().Params(recv()).Id(name)
	}

	method("Report",
		"Report sends the properties that are set (non-nil fields) and waits for the platform's",
		"report_reply. Values are checked against the template first: an invalid one is a local",
		"error (thing.IsInvalidValue) and nothing is sent; a rejection by the platform is a",
		"*thing.ReplyError.",
	).Params(ctx(), jen.Id("p").Id("Properties")).Error().Block(
		jen.Return(jen.Id("d").Dot("t").Dot("Report").Call(jen.Id("ctx"), jen.Id("p"))),
	)

	f.Line()
	f.Comment("Status is the device's state as the platform holds it (get_status).")
	f.Type().Id("Status").Struct(
		jen.Comment("Reported holds the last reported value of every property the platform knows."),
		jen.Id("Reported").Id("Properties"),
	)
	method("GetStatus",
		"GetStatus asks the platform for the last reported property values.",
	).Params(ctx()).Params(jen.Id("Status"), jen.Error()).Block(
		jen.List(jen.Id("st"), jen.Err()).Op(":=").Id("d").Dot("t").Dot("GetStatus").Call(jen.Id("ctx"), jen.Qual(thingPath, "StatusReport"), jen.False()),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Id("Status").Values(), jen.Err())),
		jen.Var().Id("s").Id("Status"),
		jen.If(jen.Id("st").Dot("Reported").Op("!=").Nil()).Block(
			jen.If(jen.Err().Op(":=").Qual(jsonPath, "Unmarshal").Call(jen.Id("st").Dot("Reported"), jen.Op("&").Id("s").Dot("Reported")), jen.Err().Op("!=").Nil()).Block(
				jen.Return(jen.Id("Status").Values(), jen.Qual("fmt", "Errorf").Call(jen.Lit("Device.GetStatus: data.reported: %w"), jen.Err())),
			),
		),
		jen.Return(jen.Id("s"), jen.Nil()),
	)

	method("GetPendingControl",
		"GetPendingControl asks the platform for control sent while the device was offline and not",
		"yet cleared; ok is false when nothing is pending. New already applies pending control",
		"through the Handler on every connect; this is for devices that disable that.",
	).Params(ctx()).Params(jen.Id("p").Id("ControlProperties"), jen.Id("ok").Bool(), jen.Err().Error()).Block(
		jen.List(jen.Id("st"), jen.Err()).Op(":=").Id("d").Dot("t").Dot("GetStatus").Call(jen.Id("ctx"), jen.Qual(thingPath, "StatusControl"), jen.False()),
		jen.If(jen.Err().Op("!=").Nil().Op("||").Id("st").Dot("Control").Op("==").Nil()).Block(jen.Return(jen.Id("p"), jen.False(), jen.Err())),
		jen.If(jen.Err().Op(":=").Id("d").Dot("t").Dot("Template").Call().Dot("CheckProperties").Call(jen.Id("st").Dot("Control"), jen.True()), jen.Err().Op("!=").Nil()).Block(
			jen.Return(jen.Id("p"), jen.False(), jen.Qual("fmt", "Errorf").Call(jen.Lit("Device.GetPendingControl: %w"), jen.Err())),
		),
		jen.If(jen.Err().Op(":=").Qual(jsonPath, "Unmarshal").Call(jen.Id("st").Dot("Control"), jen.Op("&").Id("p")), jen.Err().Op("!=").Nil()).Block(
			jen.Return(jen.Id("p"), jen.False(), jen.Qual("fmt", "Errorf").Call(jen.Lit("Device.GetPendingControl: data.control: %w"), jen.Err())),
		),
		jen.Return(jen.Id("p"), jen.True(), jen.Nil()),
	)

	method("ClearControl",
		"ClearControl tells the platform the pending control was consumed (clear_control).",
	).Params(ctx()).Error().Block(
		jen.Return(jen.Id("d").Dot("t").Dot("ClearControl").Call(jen.Id("ctx"))),
	)

	method("ReportInfo",
		"ReportInfo sends the device's basic information (report_info): firmware version, module,",
		"IMEI, MAC, location, labels.",
	).Params(ctx(), jen.Id("info").Qual(thingPath, "DeviceInfo")).Error().Block(
		jen.Return(jen.Id("d").Dot("t").Dot("ReportInfo").Call(jen.Id("ctx"), jen.Id("info"))),
	)

	for _, ep := range e.p.events {
		ev := ep.ev
		method("Post"+ep.name,
			commentText("Post"+ep.name+" posts event \""+ev.ID+"\""+describe(ev.Name, ev.Desc)+" (type "+string(ev.Type)+")"),
			"and waits for the platform's event_reply. The params are checked against the template first.",
		).Params(ctx(), jen.Id("e").Id(ep.name)).Error().Block(
			jen.Return(jen.Id("d").Dot("t").Dot("PostEvent").Call(jen.Id("ctx"), jen.Lit(ev.ID), jen.Id("e"))),
		)
	}

	if eventIface != "" {
		f.Line()
		f.Commentf("%s is implemented by the params types of the product's events: %s.", eventIface, eventNames(e))
		f.Comment("PostEvents sends several of them in one message.")
		f.Type().Id(eventIface).Interface(
			jen.Comment("EventID returns the template id of the event."),
			jen.Id("EventID").Params().String(),
			jen.Comment("EventType returns the event's type (info, alert or fault)."),
			jen.Id("EventType").Params().String(),
		)
		method("PostEvents",
			"PostEvents posts several events in one events_post message and waits for the",
			"events_reply. Every event is checked first; nothing is sent if one is invalid.",
		).Params(ctx(), jen.Id("events").Op("...").Id(eventIface)).Error().Block(
			jen.Id("batch").Op(":=").Make(jen.Index().Qual(thingPath, "Event"), jen.Len(jen.Id("events"))),
			jen.For(jen.List(jen.Id("i"), jen.Id("ev")).Op(":=").Range().Id("events")).Block(
				jen.If(jen.Id("ev").Op("==").Nil()).Block(
					jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit("Device.PostEvents: events[%d] is nil"), jen.Id("i"))),
				),
				jen.Id("batch").Index(jen.Id("i")).Op("=").Qual(thingPath, "Event").Values(jen.Dict{
					jen.Id("ID"):     jen.Id("ev").Dot("EventID").Call(),
					jen.Id("Params"): jen.Id("ev"),
				}),
			),
			jen.Return(jen.Id("d").Dot("t").Dot("PostEvents").Call(jen.Id("ctx"), jen.Id("batch"))),
		)
	}

	method("Thing",
		"Thing returns the untyped engine, for raw-JSON access.",
	).Params().Op("*").Qual(thingPath, "Thing").Block(jen.Return(jen.Id("d").Dot("t")))

	method("Close",
		"Close unsubscribes the device's topics and waits (bounded by ctx) for running handlers.",
		"It does not close the connection.",
	).Params(ctx()).Error().Block(jen.Return(jen.Id("d").Dot("t").Dot("Close").Call(jen.Id("ctx"))))
}

// eventNames lists the event types for the Event interface's doc comment.
func eventNames(e *emitter) string {
	s := ""
	for i, ep := range e.p.events {
		if i > 0 {
			s += ", "
		}
		s += ep.name
	}
	return s
}
