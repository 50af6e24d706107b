package explorertest

import (
	"bufio"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// registeredAPIRoutes finds every "METHOD /api/..." pattern the package's non-test files
// register on the mux (s.mux.Handle / HandleFunc with a literal pattern).
func registeredAPIRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			pat, _ := strconv.Unquote(lit.Value)
			if _, path, ok := strings.Cut(pat, " "); ok && strings.HasPrefix(path, "/api/") {
				out = append(out, pat)
			}
			return true
		})
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestOpenAPIListsExactlyTheRoutes(t *testing.T) {
	s := newThingServer(t)
	registered := registeredAPIRoutes(t)
	documented := apiRouteKeys()
	if strings.Join(registered, "\n") != strings.Join(documented, "\n") {
		var missing, extra []string
		for _, r := range registered {
			if !slices.Contains(documented, r) {
				missing = append(missing, r)
			}
		}
		for _, r := range documented {
			if !slices.Contains(registered, r) {
				extra = append(extra, r)
			}
		}
		t.Fatalf("openapi.go apiRoutes out of date:\n  registered but not documented: %v\n  documented but not registered: %v", missing, extra)
	}
	// The served document has them all, and each resolves to its own mux pattern.
	code, doc, _ := apiCall(t, "GET", s.HTTPURL()+"/api/openapi.json", "")
	if code != 200 || doc["openapi"] != "3.0.3" {
		t.Fatalf("GET /api/openapi.json = %d", code)
	}
	paths, _ := doc["paths"].(map[string]any)
	var served []string
	for p, item := range paths {
		for m := range item.(map[string]any) {
			served = append(served, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(served)
	if strings.Join(served, "\n") != strings.Join(documented, "\n") {
		t.Fatalf("served paths differ from the table:\n%v\n%v", served, documented)
	}
	for _, r := range documented {
		method, path, _ := strings.Cut(r, " ")
		req, _ := http.NewRequest(method, s.HTTPURL()+strings.NewReplacer("{pid}", "P", "{dn}", "D", "{action}", "a", "{name}", "n", "{key}", "k").Replace(path), nil)
		if _, pattern := s.mux.Handler(req); pattern != r {
			t.Errorf("%s resolves to pattern %q", r, pattern)
		}
	}
}

func TestAPIErrorsAreJSON(t *testing.T) {
	s := newThingServer(t)
	addLight(t, s, "lamp")
	for _, tc := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"GET", "/api/nope", "", 404, "no route GET /api/nope"},
		{"DELETE", "/api/devices", "", 405, "method DELETE not allowed on /api/devices (allowed: GET, POST)"},
		{"PUT", "/api/devices/ZPHBLEB4J5/lamp/control", "", 405, "allowed: POST"},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/control", `{"mode":"cold"}`, 400, `unknown field "mode" (allowed: params)`},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/control", `{"params":{}}`, 400, "empty control"},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/control", `{}`, 400, "empty control"},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/control", `{"params":[1]}`, 400, "params must be a JSON object"},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/control", `[1]`, 400, "body: "},
		{"POST", "/api/devices", `{"product_id":"ZPHBLEB4J5","device_name":"x","secret":"eA=="}`, 400, `unknown field "secret"`},
		{"POST", "/api/devices", `{"product_id":"ZPHBLEB4J5"}`, 400, "body.device_name: required"},
		{"POST", "/api/devices", `{"product_id":"ZPHBLEB4J5","device_name":"lamp"}`, 409, "already exists"},
		{"POST", "/api/devices", `{"product_id":"ZPHBLEB4J5","device_name":"y","device_secret":"not base64!"}`, 400, "WithSecret"},
		{"DELETE", "/api/devices/ZPHBLEB4J5/ghost", "", 404, "not registered"},
		{"GET", "/api/products/NOPE", "", 404, "product NOPE has no data template"},
		{"POST", "/api/firmware?product=NOPE&version=1.0.0", "image", 404, "NOPE"},
		// Every route with a JSON body reads it the same strict way.
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/ota", `{"version":"1.0.0","force":true}`, 400, `unknown field "force"`},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/rrpc", `{"payload":"x","qos":1}`, 400, `unknown field "qos"`},
		{"POST", "/api/products/ZPHBLEB4J5/broadcast", `{"payload":"x","topic":"t"}`, 400, `unknown field "topic"`},
		{"PUT", "/api/devices/ZPHBLEB4J5/lamp/log-level", `{"level":3,"lvl":2}`, 400, `unknown field "lvl"`},
		{"PUT", "/api/devices/ZPHBLEB4J5/lamp/log-level", `{}`, 400, "level: missing"},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/resources", `{"name":"a","type":"FILE"}`, 400, `unknown field "type"`},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/app-token", `{"user":"u","extra":1}`, 400, `unknown field "extra"`},
		{"POST", "/api/devices/ZPHBLEB4J5/lamp/rrpc", `{"payload":"` + strings.Repeat("x", maxAPIBody) + `"}`, 413, "too large"},
	} {
		code, doc, raw := apiCall(t, tc.method, s.HTTPURL()+tc.path, tc.body)
		msg, _ := doc["error"].(string)
		if code != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s %s = %d %s; want %d with %q", tc.method, tc.path, tc.body, code, raw, tc.status, tc.msg)
		}
	}
}

func TestAPICreateAndDeleteDevice(t *testing.T) {
	s := newThingServer(t)
	code, doc, raw := apiCall(t, "POST", s.HTTPURL()+"/api/devices", `{"product_id":"ZPHBLEB4J5","device_name":"new1"}`)
	secret, _ := doc["device_secret"].(string)
	if code != 201 || secret == "" || doc["device_name"] != "new1" {
		t.Fatalf("create = %d %s", code, raw)
	}
	d := thConnect(t, s, thLightPID, "new1", secret)
	d.call("property", `{"method":"report","clientToken":"r1","params":{"power_switch":1}}`)
	code, _, raw = apiCall(t, "DELETE", s.HTTPURL()+"/api/devices/ZPHBLEB4J5/new1", "")
	if code != 200 {
		t.Fatalf("delete = %d %s", code, raw)
	}
	if _, ok := s.Device(thLightPID, "new1"); ok {
		t.Fatal("device still registered")
	}
	code, _, _ = apiCall(t, "GET", s.HTTPURL()+"/api/devices/ZPHBLEB4J5/new1", "")
	if code != 404 {
		t.Fatalf("GET deleted device = %d", code)
	}
}

func TestAPIToken(t *testing.T) {
	s, err := NewServer(WithAPIToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	get := func(path, auth string) int {
		req, _ := http.NewRequest("GET", s.HTTPURL()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/api/devices", "", 401},
		{"/api/devices", "Bearer wrong", 401},
		{"/api/devices", "Bearer s3cret", 200},
		{"/api/nope", "", 401}, // no route discovery without the token
		{"/", "", 200},         // the console page asks for the token itself
	} {
		if got := get(tc.path, tc.auth); got != tc.want {
			t.Errorf("GET %s (%q) = %d, want %d", tc.path, tc.auth, got, tc.want)
		}
	}
	// The stream takes the token as a query parameter (EventSource cannot set headers).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.HTTPURL()+"/api/stream?access_token=s3cret", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream with access_token = %d", resp.StatusCode)
	}
	if _, err := NewServer(WithAPIToken(" x")); err == nil {
		t.Fatal("token with spaces accepted")
	}
}

// sseReader reads events from /api/stream.
type sseReader struct{ r *bufio.Reader }

// openStream opens s's /api/stream (path and query after "/api/stream", e.g. "?device=P/D"),
// reads its opening "hello" and closes the stream when the test ends.
func openStream(t *testing.T, s *Server, query string) sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.HTTPURL()+"/api/stream"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	sr := sseReader{bufio.NewReader(resp.Body)}
	if typ, _ := sr.next(t); typ != "hello" {
		t.Fatalf("first event %s", typ)
	}
	return sr
}

func (sr sseReader) next(t *testing.T) (typ string, data map[string]any) {
	t.Helper()
	for {
		line, err := sr.r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &data); err != nil {
				t.Fatalf("stream data %q: %v", line, err)
			}
		case line == "" && typ != "":
			return typ, data
		}
	}
}

func TestStreamCarriesDeviceActivity(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	sr := openStream(t, s, "?device=ZPHBLEB4J5/lamp")
	d := thConnect(t, s, thLightPID, "lamp", secret)
	want := func(typ string) map[string]any {
		t.Helper()
		for {
			got, data := sr.next(t)
			if got == typ {
				return data
			}
		}
	}
	if ev := want("device"); ev["device"] != "ZPHBLEB4J5/lamp" || ev["data"].(map[string]any)["online"] != true {
		t.Fatalf("device event %v", ev)
	}
	d.call("property", `{"method":"report","clientToken":"r1","params":{"brightness":42}}`)
	if ev := want("reported"); string(mustJSON(ev["data"].(map[string]any)["params"])) != `{"brightness":42}` {
		t.Fatalf("reported event %v", ev)
	}
	d.call("event", `{"method":"event_post","clientToken":"e1","eventId":"status_report","type":"info","params":{"status":1,"message":"m"}}`)
	if ev := want("event"); ev["data"].(map[string]any)["event_id"] != "status_report" {
		t.Fatalf("event %v", ev)
	}
	// Device logs and bindings are live too (the console's log and binding cards follow them).
	if _, err := s.SetLogLevel("ZPHBLEB4J5", "lamp", 3); err != nil {
		t.Fatal(err)
	}
	if ev := want("devlog"); ev["data"].(map[string]any)["level"] != float64(3) {
		t.Fatalf("devlog event %v", ev)
	}
	if e := s.storeLog(DeviceID{"ZPHBLEB4J5", "lamp"}, []string{"ERR boom"}); e != nil {
		t.Fatal(e)
	}
	if ev := want("devlog"); ev["data"].(map[string]any)["total"] != float64(1) {
		t.Fatalf("devlog event after an upload %v", ev)
	}
	if err := s.BindDevice("ZPHBLEB4J5", "lamp", "alice"); err != nil {
		t.Fatal(err)
	}
	if ev := want("binding"); ev["data"].(map[string]any)["user"] != "alice" {
		t.Fatalf("binding event %v", ev)
	}
}
