package explorertest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

// apiCall does a real HTTP request against the platform and decodes the JSON answer.
func apiCall(t *testing.T, method, url, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(thCtx(t), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q: %s", method, url, ct, raw)
	}
	var doc map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
	return resp.StatusCode, doc, string(raw)
}

func TestAPIDevicesAndDetail(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	addLight(t, s, "spare")
	d := thConnect(t, s, thLightPID, "lamp", secret)
	d.call("property", `{"method":"report","clientToken":"r1","params":{"power_switch":1,"name":"desk"}}`)
	d.call("property", `{"method":"report_info","clientToken":"r2","params":{"fw_ver":"1.2.3"}}`)
	d.call("event", `{"method":"event_post","clientToken":"r3","eventId":"status_report","type":"info","params":{"status":0,"message":"hi"}}`)

	code, _, raw := apiCall(t, "GET", s.HTTPURL()+"/api/devices", "")
	lastSeen := s.lastSeen(DeviceID{thLightPID, "lamp"}).UnixMilli()
	want := fmt.Sprintf(`[{"product_id":"ZPHBLEB4J5","device_name":"lamp","online":true,"last_seen":%d},{"product_id":"ZPHBLEB4J5","device_name":"spare","online":false,"last_seen":0}]`, lastSeen) + "\n"
	if code != 200 || raw != want || lastSeen <= 0 {
		t.Fatalf("GET /api/devices = %d %s", code, raw)
	}

	s.addDeviceDetail("extra", func(id DeviceID) any { return map[string]string{"of": id.String()} })
	s.addDeviceDetail("nothing", func(DeviceID) any { return nil })

	code, doc, raw := apiCall(t, "GET", s.HTTPURL()+"/api/devices/ZPHBLEB4J5/lamp", "")
	if code != 200 || doc["online"] != true || doc["product_id"] != thLightPID || doc["device_name"] != "lamp" {
		t.Fatalf("detail = %d %s", code, raw)
	}
	if got := string(mustJSON(doc["reported"])); got != `{"name":"desk","power_switch":1}` {
		t.Fatalf("reported = %s", got)
	}
	// Property maps come back in template order (power_switch is declared before name).
	if !strings.Contains(raw, `"reported":{"power_switch":1,"name":"desk"}`) {
		t.Fatalf("reported not in template order: %s", raw)
	}
	evs, _ := doc["events"].([]any)
	if len(evs) != 1 || !strings.Contains(string(mustJSON(evs[0])), `"event_id":"status_report"`) {
		t.Fatalf("events = %s", mustJSON(doc["events"]))
	}
	if got := string(mustJSON(doc["info"])); got != `{"fw_ver":"1.2.3"}` {
		t.Fatalf("info = %s", got)
	}
	if got := string(mustJSON(doc["extra"])); got != `{"of":"ZPHBLEB4J5/lamp"}` {
		t.Fatalf("contributed section = %s", got)
	}
	if _, ok := doc["nothing"]; ok {
		t.Fatal("a contributor returning nil added a key")
	}
	if _, ok := doc["pending_control"]; ok {
		t.Fatal("pending_control present with nothing pending")
	}
	// An idle device has empty collections, not nulls.
	if _, _, raw := apiCall(t, "GET", s.HTTPURL()+"/api/devices/ZPHBLEB4J5/spare", ""); !strings.Contains(raw, `"events":[]`) || !strings.Contains(raw, `"reported":{}`) {
		t.Fatalf("idle device detail = %s", raw)
	}
	if code, doc, _ := apiCall(t, "GET", s.HTTPURL()+"/api/devices/ZPHBLEB4J5/ghost", ""); code != 404 || !strings.Contains(fmt.Sprint(doc["error"]), "ZPHBLEB4J5/ghost") {
		t.Fatalf("unknown device = %d %v", code, doc)
	}
}

func TestAPIControl(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	addLight(t, s, "sleeper")
	d := thConnect(t, s, thLightPID, "lamp", secret)
	d.serve(func(m thMsg) (string, string) {
		return d.topic("up", "property"), fmt.Sprintf(`{"method":"control_reply","clientToken":%q,"code":0,"status":"applied"}`, m.str("clientToken"))
	})
	base := s.HTTPURL() + "/api/devices/ZPHBLEB4J5/"

	code, doc, raw := apiCall(t, "POST", base+"lamp/control", `{"params":{"brightness":55}}`)
	if code != 200 || fmt.Sprint(doc["code"]) != "0" || doc["status"] != "applied" {
		t.Fatalf("control = %d %s", code, raw)
	}
	code, doc, raw = apiCall(t, "POST", base+"sleeper/control", `{"params":{"color":1}}`)
	if code != 202 || doc["pending"] != true || !strings.Contains(fmt.Sprint(doc["status"]), "pending") {
		t.Fatalf("offline control = %d %s", code, raw)
	}
	if _, doc, _ := apiCall(t, "GET", base+"sleeper", ""); string(mustJSON(doc["pending_control"])) != `{"color":1}` {
		t.Fatalf("pending_control = %s", mustJSON(doc["pending_control"]))
	}
	for _, c := range []struct {
		url, body string
		status    int
		mention   string
	}{
		{base + "lamp/control", `{"params":{"brightness":500}}`, 400, "brightness"},
		{base + "lamp/control", `{"params":{"nope":1}}`, 400, "nope"},
		{base + "lamp/control", `{"params":[1]}`, 400, "params"},
		{base + "lamp/control", `not json`, 400, "body"},
		{base + "lamp/control?timeout=soon", `{"params":{"color":1}}`, 400, "timeout"},
		{base + "ghost/control", `{"params":{"color":1}}`, 404, "ghost"},
	} {
		code, doc, raw := apiCall(t, "POST", c.url, c.body)
		if code != c.status || !strings.Contains(fmt.Sprint(doc["error"]), c.mention) {
			t.Fatalf("POST %s %s = %d %s, want %d mentioning %q", c.url, c.body, code, raw, c.status, c.mention)
		}
	}
}

func TestAPIAction(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	addLight(t, s, "sleeper")
	d := thConnect(t, s, thLightPID, "lamp", secret)
	d.serve(func(m thMsg) (string, string) {
		params, _ := m.Body["params"].(map[string]any)
		switch fmt.Sprint(params["is_on"]) {
		case "1":
			return d.topic("up", "action"), fmt.Sprintf(`{"method":"action_reply","clientToken":%q,"code":0,"status":"done","response":{"err_code":1}}`, m.str("clientToken"))
		case "0":
			return d.topic("up", "action"), fmt.Sprintf(`{"method":"action_reply","clientToken":%q,"code":0,"status":"done","response":{"err_code":9}}`, m.str("clientToken"))
		}
		return "", ""
	})
	thConnect(t, s, thLightPID, "mute", addLight(t, s, "mute")) // never answers
	base := s.HTTPURL() + "/api/devices/ZPHBLEB4J5/"

	code, _, raw := apiCall(t, "POST", base+"lamp/actions/light_on", `{"params":{"is_on":1}}`)
	if code != 200 || !strings.Contains(raw, `"response":{"err_code":1}`) || !strings.Contains(raw, `"code":0`) || !strings.Contains(raw, `"status":"done"`) {
		t.Fatalf("action = %d %s", code, raw)
	}
	code, doc, raw := apiCall(t, "POST", base+"lamp/actions/light_on", `{"params":{"is_on":0}}`)
	if code != 502 || !strings.Contains(fmt.Sprint(doc["error"]), "err_code") || !strings.Contains(raw, `"response":{"err_code":9}`) {
		t.Fatalf("action with an invalid response = %d %s", code, raw)
	}
	for _, c := range []struct {
		url, body string
		status    int
		mention   string
	}{
		{base + "lamp/actions/self_destruct", `{"params":{}}`, 404, "self_destruct"},
		{base + "lamp/actions/light_on", `{"params":{"is_on":7}}`, 400, "is_on"},
		{base + "sleeper/actions/light_on", `{"params":{"is_on":1}}`, 409, "offline"},
		{base + "ghost/actions/light_on", `{"params":{"is_on":1}}`, 404, "ghost"},
		{base + "mute/actions/light_on?timeout=200ms", `{"params":{"is_on":1}}`, 504, "no action_reply"},
	} {
		code, doc, raw := apiCall(t, "POST", c.url, c.body)
		if code != c.status || !strings.Contains(fmt.Sprint(doc["error"]), c.mention) {
			t.Fatalf("POST %s %s = %d %s, want %d mentioning %q", c.url, c.body, code, raw, c.status, c.mention)
		}
	}
}
