package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
)

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHandlerServesPageAndAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, body := get(t, "GET", srv.URL+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `<script src="/console/app.js"`) {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	for path, ctype := range map[string]string{"/console/app.js": "javascript", "/console/style.css": "text/css"} {
		resp, body := get(t, "GET", srv.URL+path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) || len(body) < 1000 {
			t.Errorf("GET %s: %d %q (%d bytes)", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	// Every asset the page references exists.
	_, page := get(t, "GET", srv.URL+"/")
	for _, ref := range []string{"/console/app.js", "/console/style.css"} {
		if !strings.Contains(page, ref) {
			t.Errorf("page does not reference %s", ref)
		}
	}
}

func TestHandlerErrorsAreJSON(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"GET", "/nope", 404, "no route GET /nope"},
		{"GET", "/console/missing.js", 404, ""},
		{"POST", "/", 405, "method POST not allowed on /"},
	} {
		resp, body := get(t, tc.method, srv.URL+tc.path)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.msg == "" {
			continue
		}
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s %s: body %q (%v), want error containing %q", tc.method, tc.path, body, err, tc.msg)
		}
	}
}

func TestQuoteJSON(t *testing.T) {
	for _, s := range []string{"plain", `q"uo\te`, "ctl\x01\n", "中文 <tag>"} {
		var back string
		if err := json.Unmarshal(quoteJSON(s, nil), &back); err != nil || back != s {
			t.Errorf("quoteJSON(%q) -> %s (%v)", s, quoteJSON(s, nil), err)
		}
	}
}

func TestTemplateView(t *testing.T) {
	tpl, err := template.ParseFile("../../../../schemas/light.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := TemplateView("P1", tpl)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		ProductID  string `json:"product_id"`
		Properties []struct {
			ID, Name, Mode string
			Define         struct {
				Type     string
				Min, Max *float64
				Unit     string
				Mapping  []MappingView
			}
		}
		Events  []EventView
		Actions []ActionView
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ProductID != "P1" || len(back.Properties) != len(tpl.Properties) || len(back.Events) != len(tpl.Events) || len(back.Actions) != len(tpl.Actions) {
		t.Fatalf("counts: %s", b)
	}
	// Template order and the details the page renders.
	p := back.Properties
	if p[0].ID != "power_switch" || p[0].Define.Type != "bool" || len(p[0].Define.Mapping) != 2 || p[0].Define.Mapping[1] != (MappingView{"1", "开"}) {
		t.Errorf("power_switch: %+v", p[0])
	}
	if p[2].ID != "brightness" || *p[2].Define.Min != 0 || *p[2].Define.Max != 100 || p[2].Define.Unit != "%" || p[2].Mode != "rw" {
		t.Errorf("brightness: %+v", p[2])
	}
	if back.Events[1].Params[0].Define.Unit != "V" {
		t.Errorf("event param unit: %+v", back.Events[1])
	}
	// A limit the template does not give is absent, not 0.
	if strings.Contains(string(b), `"min":null`) {
		t.Errorf("null limits in %s", b)
	}
}
