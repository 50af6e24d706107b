// Package console is the platform emulator's web console: plain HTML, CSS and JavaScript
// embedded in the binary (no build step), served at "/" of the platform's HTTP listener.
//
// The page is a client of the platform's JSON API and of its live event stream
// (GET /api/stream, package stream); it holds no state of its own beyond the API token a
// non-loopback platform asks for, kept in the browser's localStorage. What it shows:
// the device list (online, product, last seen), a device page with the data template rendered
// (names, units, enum labels, ranges), live reported properties and events, a control form
// built from the read-write properties (checked in the browser and again by the server, errors
// shown inline), action invocation with typed inputs and the output, pending control, OTA
// (upload, push, live progress, result), gateway topology (with bind/unbind of sub-devices and
// the cloud-initiated search, describe and unbind-all with the gateway's acknowledgement),
// RRPC and product broadcast, app binding (bind, unbind, app tokens), resources (upload to the
// product's library, push over file management or resource tasks, live transfer progress,
// delete, the device's reported list, its uploads as download links), device logs with the
// cloud log level, and the platform log ("log" events on the stream).
//
// The page applies stream events as they come and refetches API documents only when an event
// says they changed; an answer requested before a later event is never shown over it.
//
// browser_test.go drives the page in headless Chromium against the in-process platform and a
// generated device (skipped, saying why, when no Chromium is found; .ci/run requires it).
//
// The package also renders a data template as the JSON document the page works from
// (TemplateView), so the page never has to understand the export format's quirks (string
// limits, mapping objects).
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/tplgen/tplgen/runtime/template"
)

//go:embed assets
var assets embed.FS

// Handler serves the console: "/" is the page, "/console/*" its assets. Anything else answers
// a JSON 404, so an unknown URL is never mistaken for the page.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/console/", http.FileServer(http.FS(sub)))
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path+" (the console is read with GET)")
			return
		}
		setSecurityHeaders(w)
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/index.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(index)
		case strings.HasPrefix(r.URL.Path, "/console/"):
			w.Header().Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		default:
			writeError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path+" (the console is at /, the API under /api/, its description at /api/openapi.json)")
		}
	})
}

// setSecurityHeaders keeps the page from being framed and limits it to its own scripts.
func setSecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(quoteJSON(msg, []byte(`{"error":`)), '}', '\n'))
}

// quoteJSON appends s as a JSON string (no HTML escaping needed: served as application/json).
func quoteJSON(s string, b []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
		default:
			b = append(b, string(r)...)
		}
	}
	return append(b, '"')
}

// TemplateDoc is the console's view of a product's data template (GET /api/products/{pid}).
type TemplateDoc struct {
	ProductID  string         `json:"product_id"`
	Properties []PropertyView `json:"properties"`
	Events     []EventView    `json:"events"`
	Actions    []ActionView   `json:"actions"`
}

// PropertyView is one property: Mode is "r" or "rw".
type PropertyView struct {
	ID       string      `json:"id"`
	Name     string      `json:"name,omitempty"`
	Desc     string      `json:"desc,omitempty"`
	Mode     string      `json:"mode"`
	Required bool        `json:"required,omitempty"`
	Define   *DefineView `json:"define"`
}

// EventView is one event with its parameters.
type EventView struct {
	ID     string      `json:"id"`
	Name   string      `json:"name,omitempty"`
	Desc   string      `json:"desc,omitempty"`
	Type   string      `json:"type"`
	Params []ParamView `json:"params"`
}

// ActionView is one action with its inputs and outputs.
type ActionView struct {
	ID     string      `json:"id"`
	Name   string      `json:"name,omitempty"`
	Desc   string      `json:"desc,omitempty"`
	Input  []ParamView `json:"input"`
	Output []ParamView `json:"output"`
}

// ParamView is an event parameter, action input/output or struct member.
type ParamView struct {
	ID     string      `json:"id"`
	Name   string      `json:"name,omitempty"`
	Define *DefineView `json:"define"`
}

// MappingView is one labelled value of a bool/enum/stringenum.
type MappingView struct {
	Key   string `json:"key"`
	Label string `json:"label"`
}

// DefineView is a type definition with numbers as numbers; absent limits are omitted.
type DefineView struct {
	Type    string        `json:"type"`
	Min     *float64      `json:"min,omitempty"`
	Max     *float64      `json:"max,omitempty"`
	Start   *float64      `json:"start,omitempty"`
	Step    *float64      `json:"step,omitempty"`
	Unit    string        `json:"unit,omitempty"`
	Mapping []MappingView `json:"mapping,omitempty"`
	Specs   []ParamView   `json:"specs,omitempty"`
	Elem    *DefineView   `json:"elem,omitempty"`
}

// TemplateView renders tpl (registered as product pid) for the console, in template order.
func TemplateView(pid string, tpl *template.Template) TemplateDoc {
	doc := TemplateDoc{ProductID: pid, Properties: []PropertyView{}, Events: []EventView{}, Actions: []ActionView{}}
	for _, p := range tpl.Properties {
		doc.Properties = append(doc.Properties, PropertyView{ID: p.ID, Name: p.Name, Desc: p.Desc, Mode: string(p.Mode), Required: p.Required, Define: defineView(p.Define)})
	}
	for _, e := range tpl.Events {
		doc.Events = append(doc.Events, EventView{ID: e.ID, Name: e.Name, Desc: e.Desc, Type: string(e.Type), Params: paramViews(e.Params)})
	}
	for _, a := range tpl.Actions {
		doc.Actions = append(doc.Actions, ActionView{ID: a.ID, Name: a.Name, Desc: a.Desc, Input: paramViews(a.Input), Output: paramViews(a.Output)})
	}
	return doc
}

func paramViews(ps []*template.Param) []ParamView {
	out := make([]ParamView, 0, len(ps))
	for _, p := range ps {
		out = append(out, ParamView{ID: p.ID, Name: p.Name, Define: defineView(p.Define)})
	}
	return out
}

func defineView(d *template.Define) *DefineView {
	if d == nil {
		return nil
	}
	num := func(has bool, v float64) *float64 {
		if !has {
			return nil
		}
		return &v
	}
	v := &DefineView{
		Type:  string(d.Type),
		Min:   num(d.HasMin, d.Min),
		Max:   num(d.HasMax, d.Max),
		Start: num(d.HasStart, d.Start),
		Step:  num(d.HasStep, d.Step),
		Unit:  d.Unit,
		Elem:  defineView(d.Elem),
	}
	for _, m := range d.Mapping {
		v.Mapping = append(v.Mapping, MappingView{Key: m.Key, Label: m.Label})
	}
	if len(d.Specs) > 0 {
		v.Specs = paramViews(d.Specs)
	}
	return v
}
