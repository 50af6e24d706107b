package explorertest

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// apiRoutes documents every JSON API route (/api/...) for GET /api/openapi.json. A feature that
// adds a route adds its row here; TestOpenAPIListsExactlyTheRoutes fails otherwise.
var apiRoutes = []apiRoute{
	{"GET", "/api/devices", "List devices (online, last seen)", "devices", nil, "200"},
	{"POST", "/api/devices", "Create a device at run time; answers its secret", "devices",
		obj(req("product_id", "string"), req("device_name", "string"), opt("device_secret", "string")), "201 400 409"},
	{"GET", "/api/devices/{pid}/{dn}", "Device state: reported (template order), pending control, events, info and feature sections", "devices", nil, "200 404"},
	{"DELETE", "/api/devices/{pid}/{dn}", "Remove a device (its connection is closed)", "devices", nil, "200 404"},
	{"POST", "/api/devices/{pid}/{dn}/control", "Send control (rw properties); stored as pending when offline (202)", "data template",
		obj(req("params", "object")), "200 202 400 404 409 504"},
	{"POST", "/api/devices/{pid}/{dn}/actions/{action}", "Invoke an action and wait for its output", "data template",
		obj(req("params", "object")), "200 400 404 409 502 504"},
	{"GET", "/api/products", "List products with a data template", "products", nil, "200"},
	{"GET", "/api/products/{pid}", "A product's data template (console view: numbers as numbers, mappings as lists)", "products", nil, "200 404"},
	{"POST", "/api/products/{pid}/broadcast", "Broadcast a message to every online device of the product", "rrpc and broadcast", nil, "200 400 404"},
	{"POST", "/api/devices/{pid}/{dn}/rrpc", "Synchronous RRPC call; waits for the device's reply", "rrpc and broadcast", nil, "200 400 404 409 504"},
	{"POST", "/api/firmware", "Upload a firmware image (raw body; ?product=PID&version=V)", "ota", nil, "201 400 404 413"},
	{"POST", "/api/devices/{pid}/{dn}/ota", "Push a firmware version to a device", "ota", obj(req("version", "string")), "202 400 404"},
	{"GET", "/api/devices/{pid}/{dn}/ota", "The device's OTA job", "ota", nil, "200 404"},
	{"GET", "/api/gateways/{pid}/{dn}/subdevices", "Sub-devices bound to a gateway", "gateway", nil, "200 404"},
	{"PUT", "/api/devices/{pid}/{dn}/log-level", "Set the device's log level (pushed over $log/operation)", "device logs", nil, "200 400 404"},
	{"GET", "/api/devices/{pid}/{dn}/logs", "Log lines the device uploaded (bounded)", "device logs", nil, "200 404"},
	{"GET", "/api/devices/{pid}/{dn}/binding", "The device's app-user binding", "binding", nil, "200 404"},
	{"POST", "/api/devices/{pid}/{dn}/app-token", "Issue an app token the device can bind with (expiring)", "binding", nil, "201 400 404"},
	{"POST", "/api/devices/{pid}/{dn}/bind", "Bind the device to a user", "binding", nil, "200 400 404"},
	{"POST", "/api/devices/{pid}/{dn}/unbind", "Unbind the device (unbind_device notice)", "binding", nil, "200 404"},
	{"POST", "/api/gateways/{pid}/{dn}/change", "Cloud-initiated bind/unbind of sub-devices (change)", "gateway", nil, "200 400 404 409 504"},
	{"POST", "/api/gateways/{pid}/{dn}/describe_sub_devices", "Push describe_sub_devices to the gateway", "gateway", nil, "200 404 409 504"},
	{"POST", "/api/gateways/{pid}/{dn}/search_devices", "Push search_devices to the gateway", "gateway", nil, "200 400 404 409 504"},
	{"POST", "/api/gateways/{pid}/{dn}/unbind_all", "Push unbind_all to the gateway", "gateway", nil, "200 404 409 504"},
	{"GET", "/api/resources", "Resource library (files other than firmware)", "resources", nil, "200"},
	{"POST", "/api/resources", "Upload a resource file", "resources", nil, "201 400 413"},
	{"GET", "/api/devices/{pid}/{dn}/resources", "The device's resources and transfer tasks", "resources", nil, "200 404"},
	{"POST", "/api/devices/{pid}/{dn}/resources", "Push a resource to the device", "resources", nil, "202 400 404"},
	{"DELETE", "/api/devices/{pid}/{dn}/resources/{name}", "Ask the device to delete a resource", "resources", nil, "200 404"},
	{"GET", "/api/uploads/{key}", "A file a device uploaded", "resources", nil, "200 404"},
	{"GET", "/api/stream", "Server-sent events: " + strings.Join(streamEventTypes, ", "), "console", nil, "200 400 503"},
	{"GET", "/api/platform", "Platform status: stream, change feed, persistence counters", "console", nil, "200"},
	{"GET", "/api/openapi.json", "This document", "console", nil, "200"},
}

type apiRoute struct {
	method, path, summary, tag string
	body                       map[string]any // request body schema, nil when none
	statuses                   string
}

type field struct {
	name, typ string
	required  bool
}

func req(name, typ string) field { return field{name, typ, true} }
func opt(name, typ string) field { return field{name, typ, false} }

// obj is a strict object schema: unknown top-level fields are refused (400).
func obj(fields ...field) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range fields {
		props[f.name] = map[string]any{"type": f.typ}
		if f.required {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// openAPIDoc builds the OpenAPI 3 description of apiRoutes.
func (s *Server) openAPIDoc() map[string]any {
	paths := map[string]any{}
	errorSchema := map[string]any{"type": "object", "properties": map[string]any{"error": map[string]any{"type": "string"}}, "required": []string{"error"}}
	for _, r := range apiRoutes {
		item, _ := paths[r.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[r.path] = item
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(r.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		responses := map[string]any{}
		for _, code := range strings.Fields(r.statuses) {
			desc := http.StatusText(atoi(code))
			resp := map[string]any{"description": desc}
			if code[0] != '2' {
				resp["content"] = map[string]any{"application/json": map[string]any{"schema": errorSchema}}
			}
			responses[code] = resp
		}
		op := map[string]any{"summary": r.summary, "tags": []string{r.tag}, "responses": responses}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if r.body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": r.body}}}
		}
		item[strings.ToLower(r.method)] = op
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "tplgen emulate platform API",
			"version":     "1",
			"description": "JSON API of the local IoT Explorer platform. Errors are {\"error\":\"...\"}; unknown routes answer 404 and wrong methods 405, both JSON. When the platform listens beyond loopback every /api/ route needs \"Authorization: Bearer TOKEN\" (/api/stream also takes ?access_token=).",
		},
		"servers": []any{map[string]any{"url": s.HTTPURL()}},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"token": map[string]any{"type": "http", "scheme": "bearer"},
		}},
	}
	return doc
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// apiRouteKeys lists "METHOD path" of every documented route, sorted.
func apiRouteKeys() []string {
	out := make([]string, 0, len(apiRoutes))
	for _, r := range apiRoutes {
		out = append(out, r.method+" "+r.path)
	}
	sort.Strings(out)
	return out
}

func (s *Server) apiOpenAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.openAPIDoc())
}
