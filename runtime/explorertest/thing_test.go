package explorertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

func addLight(t testing.TB, s *Server, dn string) string {
	t.Helper()
	secret, err := s.AddDevice(thLightPID, dn)
	if err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	return secret
}

func TestReportReplyCodes(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	old := thNowMS() - (25 * time.Hour).Milliseconds()
	cases := []struct {
		name, payload   string
		method, token   string
		code            int
		statusSubstring string
	}{
		{"valid", fmt.Sprintf(`{"method":"report","clientToken":"t1","timestamp":%d,"params":{"power_switch":1,"brightness":42}}`, thNowMS()), "report_reply", "t1", 0, "success"},
		{"no timestamp", `{"method":"report","clientToken":"t2","params":{"color":2}}`, "report_reply", "t2", 0, "success"},
		{"bad json", `{"method":"report",`, "", "", 400, "not valid JSON"},
		{"not an object", `[1,2]`, "", "", 400, "not a JSON object"},
		{"unknown property", `{"method":"report","clientToken":"t3","params":{"nope":1}}`, "report_reply", "t3", 403, "nope"},
		{"out of range", `{"method":"report","clientToken":"t4","params":{"brightness":101}}`, "report_reply", "t4", 406, "brightness"},
		{"wrong type", `{"method":"report","clientToken":"t5","params":{"name":5}}`, "report_reply", "t5", 406, "name"},
		{"bool as true", `{"method":"report","clientToken":"t6","params":{"power_switch":true}}`, "report_reply", "t6", 406, "power_switch"},
		{"old timestamp", fmt.Sprintf(`{"method":"report","clientToken":"t7","timestamp":%d,"params":{"color":1}}`, old), "report_reply", "t7", 405, "24h"},
		{"timestamp in seconds", fmt.Sprintf(`{"method":"report","clientToken":"t8","timestamp":%d,"params":{"color":1}}`, time.Now().Unix()), "report_reply", "t8", 405, "timestamp"},
		{"timestamp not a number", `{"method":"report","clientToken":"t9","timestamp":"now","params":{"color":1}}`, "report_reply", "t9", 400, "timestamp"},
		{"params missing", `{"method":"report","clientToken":"t10"}`, "report_reply", "t10", 400, "params: missing"},
		{"params array", `{"method":"report","clientToken":"t11","params":[1]}`, "report_reply", "t11", 400, "params"},
		{"unknown method", `{"method":"launch","clientToken":"t12"}`, "launch_reply", "t12", 403, "launch"},
		{"method missing", `{"clientToken":"t13","params":{}}`, "", "t13", 403, "method: missing"},
		{"token not a string", `{"method":"report","clientToken":7,"params":{}}`, "report_reply", "", 400, "clientToken"},
		{"method not a string", `{"method":1,"clientToken":"t14"}`, "", "", 400, "method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := d.call("property", c.payload)
			if got := m.code(t); got != c.code {
				t.Fatalf("code = %d, want %d: %s", got, c.code, m.Raw)
			}
			if m.str("method") != c.method || m.str("clientToken") != c.token {
				t.Fatalf("method/clientToken = %q/%q, want %q/%q: %s", m.str("method"), m.str("clientToken"), c.method, c.token, m.Raw)
			}
			if !strings.Contains(m.str("status"), c.statusSubstring) {
				t.Fatalf("status %q does not mention %q", m.str("status"), c.statusSubstring)
			}
			want := "clientToken,code,method,status"
			if c.method == "" {
				want = "clientToken,code,status"
			}
			if m.keys() != want {
				t.Fatalf("reply keys %s, want %s: %s", m.keys(), want, m.Raw)
			}
		})
	}
	// Only the accepted reports changed the state; rejected ones are atomic.
	got := s.Reported(thLightPID, "lamp")
	if len(got) != 3 || string(got["power_switch"]) != "1" || string(got["brightness"]) != "42" || string(got["color"]) != "2" {
		t.Fatalf("Reported = %s", fmtRaw(got))
	}
}

func fmtRaw(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func TestReportMergeAndGetStatus(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))

	if m := d.call("property", `{"method":"get_status","clientToken":"g0"}`); string(m.Raw) != `{"method":"get_status_reply","clientToken":"g0","code":0,"status":"success","type":"report","data":{"reported":{}}}` {
		t.Fatalf("empty get_status_reply = %s", m.Raw)
	}
	ts1, ts2 := thNowMS()-2000, thNowMS()-1000
	d.call("property", fmt.Sprintf(`{"method":"report","clientToken":"r1","timestamp":%d,"params":{"name":"desk","brightness":10,"power_switch":1}}`, ts1))
	d.call("property", fmt.Sprintf(`{"method":"report","clientToken":"r2","timestamp":%d,"params":{"brightness":20}}`, ts2))

	// Partial reports merge; data.reported follows the template's property order.
	m := d.call("property", `{"method":"get_status","clientToken":"g1","type":"report","showmeta":0}`)
	want := `{"method":"get_status_reply","clientToken":"g1","code":0,"status":"success","type":"report","data":{"reported":{"power_switch":1,"brightness":20,"name":"desk"}}}`
	if string(m.Raw) != want {
		t.Fatalf("get_status_reply\n got %s\nwant %s", m.Raw, want)
	}
	m = d.call("property", `{"method":"get_status","clientToken":"g2","showmeta":1}`)
	wantData := fmt.Sprintf(`{"reported":{"power_switch":1,"brightness":20,"name":"desk"},"metadata":{"reported":{"power_switch":{"timestamp":%d},"brightness":{"timestamp":%d},"name":{"timestamp":%d}}}}`, ts1, ts2, ts1)
	data, _ := json.Marshal(m.Body["data"])
	if !jsonEqual(t, data, []byte(wantData)) {
		t.Fatalf("showmeta data\n got %s\nwant %s", data, wantData)
	}
	if m := d.call("property", `{"method":"get_status","clientToken":"g3","type":"desired"}`); m.code(t) != 406 || !strings.Contains(m.str("status"), "type") {
		t.Fatalf("bad type: %s", m.Raw)
	}
	if m := d.call("property", `{"method":"get_status","clientToken":"g4","showmeta":"yes"}`); m.code(t) != 406 || !strings.Contains(m.str("status"), "showmeta") {
		t.Fatalf("bad showmeta: %s", m.Raw)
	}
	if m := d.call("property", `{"method":"get_status","clientToken":"g5","type":"control"}`); string(m.Raw) != `{"method":"get_status_reply","clientToken":"g5","code":0,"status":"success","type":"control","data":{}}` {
		t.Fatalf("get_status control with nothing pending = %s", m.Raw)
	}
	v, err := s.WaitReported(thCtx(t), thLightPID, "lamp", "name")
	if err != nil || string(v) != `"desk"` {
		t.Fatalf("WaitReported = %s, %v", v, err)
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func TestOfflineControlPendingGetStatusClear(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	ctx := thCtx(t)

	_, err := s.SendControl(ctx, thLightPID, "lamp", map[string]any{"power_switch": 1, "brightness": 80})
	if !errors.Is(err, ErrControlPending) || !errors.Is(err, ErrDeviceOffline) {
		t.Fatalf("SendControl offline: %v, want ErrControlPending wrapping ErrDeviceOffline", err)
	}
	// A second control while still offline merges into the pending one.
	if _, err := s.SendControl(ctx, thLightPID, "lamp", []byte(`{"brightness":60,"color":2}`)); !errors.Is(err, ErrControlPending) {
		t.Fatalf("second SendControl: %v", err)
	}
	// Invalid control is refused up front and not stored.
	if _, err := s.SendControl(ctx, thLightPID, "lamp", json.RawMessage(`{"brightness":600}`)); !errors.Is(err, template.ErrInvalidValue) {
		t.Fatalf("invalid control: %v, want ErrInvalidValue", err)
	}
	if p := s.PendingControl(thLightPID, "lamp"); fmtRaw(p) != `{"brightness":60,"color":2,"power_switch":1}` {
		t.Fatalf("PendingControl = %s", fmtRaw(p))
	}

	d := thConnect(t, s, thLightPID, "lamp", secret)
	m := d.call("property", `{"method":"get_status","clientToken":"ZPHBLEB4J5-1","type":"control"}`)
	want := `{"method":"get_status_reply","clientToken":"ZPHBLEB4J5-1","code":0,"status":"success","type":"control","data":{"control":{"power_switch":1,"color":2,"brightness":60}}}`
	if string(m.Raw) != want {
		t.Fatalf("get_status control\n got %s\nwant %s", m.Raw, want)
	}
	// Still pending until cleared, whatever token the clear uses (C: the get_status token).
	if s.PendingControl(thLightPID, "lamp") == nil {
		t.Fatal("pending control vanished before clear_control")
	}
	m = d.call("property", `{"method":"clear_control","clientToken":"ZPHBLEB4J5-1"}`)
	if string(m.Raw) != `{"method":"clear_control_reply","clientToken":"ZPHBLEB4J5-1","code":0,"status":"success"}` {
		t.Fatalf("clear_control_reply = %s", m.Raw)
	}
	if p := s.PendingControl(thLightPID, "lamp"); p != nil {
		t.Fatalf("PendingControl after clear = %s", fmtRaw(p))
	}
	if m := d.call("property", `{"method":"get_status","clientToken":"x","type":"control"}`); !strings.HasSuffix(string(m.Raw), `"type":"control","data":{}}`) {
		t.Fatalf("get_status control after clear = %s", m.Raw)
	}
}

func TestSendControlRoundTrip(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	got := make(chan thMsg, 4)
	replies := []string{
		`{"method":"control_reply","clientToken":%q,"code":0,"status":"ok"}`,
		`{"code":0,"clientToken":%q,"status":"success"}`, // official Python SDK: no method
		`{"method":"control_reply","clientToken":%q,"code":-1,"status":"failed"}`,
	}
	n := 0
	d.serve(func(m thMsg) (string, string) {
		got <- m
		r := fmt.Sprintf(replies[n%len(replies)], m.str("clientToken"))
		n++
		return d.topic("up", "property"), r
	})
	ctx := thCtx(t)
	for i, want := range []ControlReply{{Code: 0, Status: "ok", HasMethod: true}, {Code: 0, Status: "success"}, {Code: -1, Status: "failed", HasMethod: true}} {
		rep, err := s.SendControl(ctx, thLightPID, "lamp", map[string]any{"brightness": 30 + i})
		if err != nil {
			t.Fatalf("SendControl %d: %v", i, err)
		}
		m := <-got
		if m.Topic != d.topic("down", "property") || m.str("method") != "control" || m.keys() != "clientToken,method,params" {
			t.Fatalf("control message = %s on %s", m.Raw, m.Topic)
		}
		if !strings.Contains(string(m.Raw), fmt.Sprintf(`"params":{"brightness":%d}`, 30+i)) {
			t.Fatalf("control params = %s", m.Raw)
		}
		if tok := m.str("clientToken"); len(tok) != 36 || strings.Count(tok, "-") != 4 || rep.ClientToken != tok {
			t.Fatalf("clientToken %q not UUID-like or not echoed in reply %+v", tok, rep)
		}
		want.ClientToken = rep.ClientToken
		if *rep != want {
			t.Fatalf("reply %d = %+v, want %+v", i, *rep, want)
		}
	}
	if p := s.PendingControl(thLightPID, "lamp"); p != nil {
		t.Fatalf("online control was stored as pending: %s", fmtRaw(p))
	}
}

func TestSendControlRefusals(t *testing.T) {
	s := newThingServer(t)
	addLight(t, s, "lamp")
	if err := s.AddProduct(thLoadTemplate(t, "air_cleaner.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice("P9FCB4V9V1", "purifier"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice("NOTEMPLATE", "dev"); err != nil {
		t.Fatal(err)
	}
	ctx := thCtx(t)
	cases := []struct {
		name    string
		pid, dn string
		params  any
		want    error
	}{
		{"read-only property", "P9FCB4V9V1", "purifier", `{"tvoc":3}`, template.ErrReadOnly},
		{"unknown property", thLightPID, "lamp", map[string]int{"nope": 1}, template.ErrUnknownID},
		{"wrong type", thLightPID, "lamp", map[string]any{"color": "red"}, template.ErrInvalidValue},
		{"unregistered device", thLightPID, "ghost", `{"color":1}`, ErrUnknownDevice},
		{"product without template", "NOTEMPLATE", "dev", `{"x":1}`, ErrNoTemplate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var params any = c.params
			if s, ok := c.params.(string); ok {
				params = []byte(s)
			}
			if _, err := s.SendControl(ctx, c.pid, c.dn, params); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	for _, bad := range []any{nil, []byte(`[1]`), `{`, 42} {
		if _, err := s.SendControl(ctx, thLightPID, "lamp", bad); err == nil || !strings.Contains(err.Error(), "params") {
			t.Fatalf("SendControl(%v) err = %v, want a params error", bad, err)
		}
	}
	if p := s.PendingControl(thLightPID, "lamp"); p != nil {
		t.Fatalf("refused control stored: %s", fmtRaw(p))
	}
}

func TestSendControlNoReply(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.SendControl(ctx, thLightPID, "lamp", `{"color":1}`)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no control_reply") {
		t.Fatalf("err = %v", err)
	}
	if m := d.next(); m.str("method") != "control" {
		t.Fatalf("device got %s", m.Raw)
	}
	// A late reply matches nothing and gets no answer; the device stays usable.
	d.publish(d.topic("up", "property"), `{"method":"control_reply","clientToken":"late","code":0}`)
	if m := d.call("property", `{"method":"report","clientToken":"after","params":{"color":0}}`); m.str("clientToken") != "after" || m.code(t) != 0 {
		t.Fatalf("reply after a stray control_reply = %s", m.Raw)
	}
}

// The contract of SendControl when the device goes offline before replying: the error
// wraps ErrNoReply and ErrDeviceOffline, nothing is stored as pending (the device may have
// applied it), a late get_status finds no control, and the caller's retry after the device is
// back is delivered and answered.
func TestSendControlDeviceDisconnects(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	d := thConnect(t, s, thLightPID, "lamp", secret)
	d.serve(func(m thMsg) (string, string) {
		d.c.Disconnect(0) // the device dies instead of answering
		return "", ""
	})
	ctx := thCtx(t)
	_, err := s.SendControl(ctx, thLightPID, "lamp", `{"color":1}`)
	if !errors.Is(err, ErrNoReply) || !errors.Is(err, ErrDeviceOffline) || errors.Is(err, ErrControlPending) {
		t.Fatalf("err = %v, want ErrNoReply wrapping ErrDeviceOffline (not stored)", err)
	}
	if !strings.Contains(err.Error(), "retry") {
		t.Errorf("the error does not tell the caller to retry: %v", err)
	}
	if p := s.PendingControl(thLightPID, "lamp"); p != nil {
		t.Fatalf("control stored as pending after ErrNoReply: %s", mustJSON(p))
	}
	if err := s.WaitThing(ctx, thLightPID, "lamp", func(ThingState) bool { return !s.Online(thLightPID, "lamp") }); err != nil {
		t.Fatal(err)
	}
	d2 := thConnect(t, s, thLightPID, "lamp", secret)
	if m := d2.call("property", `{"method":"get_status","clientToken":"g","type":"control"}`); !strings.Contains(string(m.Raw), `"data":{}`) {
		t.Fatalf("get_status after ErrNoReply offers control: %s", m.Raw)
	}
	d2.serve(func(m thMsg) (string, string) {
		return d2.topic("up", "property"), fmt.Sprintf(`{"method":"control_reply","clientToken":%q,"code":0,"status":"ok"}`, m.str("clientToken"))
	})
	if rep, err := s.SendControl(ctx, thLightPID, "lamp", `{"color":1}`); err != nil || rep.Code != 0 {
		t.Fatalf("retry after reconnect: %v %+v", err, rep)
	}
}

func TestInvokeAction(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	got := make(chan thMsg, 4)
	responses := []string{
		`{"method":"action_reply","clientToken":%q,"code":0,"status":"action execute success!","response":{"err_code":1}}`,
		`{"method":"action_reply","clientToken":%q,"code":0,"status":"ok","response":{"err_code":7}}`,
		`{"method":"action_reply","clientToken":%q,"code":5,"status":"busy"}`,
	}
	n := 0
	d.serve(func(m thMsg) (string, string) {
		got <- m
		r := fmt.Sprintf(responses[n%len(responses)], m.str("clientToken"))
		n++
		return d.topic("up", "action"), r
	})
	ctx := thCtx(t)

	before := thNowMS()
	rep, err := s.InvokeAction(ctx, thLightPID, "lamp", "light_on", map[string]int{"is_on": 1})
	if err != nil {
		t.Fatalf("InvokeAction: %v", err)
	}
	m := <-got
	if m.Topic != d.topic("down", "action") || m.keys() != "actionId,clientToken,method,params,timestamp" ||
		m.str("method") != "action" || m.str("actionId") != "light_on" || !strings.Contains(string(m.Raw), `"params":{"is_on":1}`) {
		t.Fatalf("action message = %s", m.Raw)
	}
	if ts, _ := m.Body["timestamp"].(json.Number).Int64(); ts < before || ts > thNowMS() {
		t.Fatalf("action timestamp %d is not the current time in ms", ts)
	}
	if rep.Code != 0 || rep.Status != "action execute success!" || string(rep.Response) != `{"err_code":1}` || rep.ClientToken != m.str("clientToken") {
		t.Fatalf("reply = %+v (%s)", rep, rep.Response)
	}

	// A response that does not match the template's outputs is returned with an error.
	rep, err = s.InvokeAction(ctx, thLightPID, "lamp", "light_on", []byte(`{"is_on":0}`))
	if !errors.Is(err, template.ErrInvalidValue) || rep == nil || string(rep.Response) != `{"err_code":7}` {
		t.Fatalf("bad response: rep=%+v err=%v", rep, err)
	}
	<-got
	// A device-side failure is a reply, not an error.
	rep, err = s.InvokeAction(ctx, thLightPID, "lamp", "light_on", `{"is_on":1}`)
	if err != nil || rep.Code != 5 || rep.Status != "busy" || rep.Response != nil {
		t.Fatalf("failed action: rep=%+v err=%v", rep, err)
	}
	<-got

	if _, err := s.InvokeAction(ctx, thLightPID, "lamp", "self_destruct", `{}`); !errors.Is(err, template.ErrUnknownID) {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := s.InvokeAction(ctx, thLightPID, "lamp", "light_on", `{"is_on":3}`); !errors.Is(err, template.ErrInvalidValue) {
		t.Fatalf("bad input: %v", err)
	}
	addLight(t, s, "offline")
	if _, err := s.InvokeAction(ctx, thLightPID, "offline", "light_on", `{"is_on":1}`); !errors.Is(err, ErrDeviceOffline) {
		t.Fatalf("offline: %v", err)
	}
}

func TestEvents(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	now := thNowMS()
	cases := []struct {
		name, payload, method string
		code                  int
		status                string
		accepted              int
	}{
		{"single", fmt.Sprintf(`{"method":"event_post","clientToken":"e1","version":"1.0","eventId":"status_report","type":"info","timestamp":%d,"params":{"status":0,"message":"ok"}}`, now), "event_reply", 0, "", 1},
		{"single without type and timestamp", `{"method":"event_post","clientToken":"e2","eventId":"low_voltage","params":{"voltage":3.3}}`, "event_reply", 0, "", 1},
		{"python sdk events array", fmt.Sprintf(`{"method":"event_post","clientToken":"e3","events":[{"eventId":"status_report","type":"info","timestamp":%d,"params":{"status":1,"message":"x"}}]}`, now), "events_reply", 0, "", 1},
		{"batch", fmt.Sprintf(`{"method":"events_post","clientToken":"e4","events":[{"eventId":"status_report","type":"info","timestamp":%d,"params":{"status":0,"message":""}},{"eventId":"low_voltage","type":"alert","timestamp":%d,"params":{"voltage":1.0}},{"eventId":"hardware_fault","type":"fault","timestamp":%d,"params":{"name":"","error_code":1}}]}`, now, now, now), "events_reply", 0, "", 3},
		{"unknown event", `{"method":"event_post","clientToken":"e5","eventId":"explode","type":"fault","params":{}}`, "event_reply", 403, "explode", 0},
		{"type mismatch", `{"method":"event_post","clientToken":"e6","eventId":"low_voltage","type":"info","params":{"voltage":1}}`, "event_reply", 406, "type", 0},
		{"param out of range", `{"method":"event_post","clientToken":"e7","eventId":"low_voltage","type":"alert","params":{"voltage":30}}`, "event_reply", 406, "voltage", 0},
		{"unknown param", `{"method":"event_post","clientToken":"e8","eventId":"low_voltage","type":"alert","params":{"amps":1}}`, "event_reply", 403, "amps", 0},
		{"eventId missing", `{"method":"event_post","clientToken":"e9","params":{}}`, "event_reply", 400, "eventId", 0},
		{"old timestamp", fmt.Sprintf(`{"method":"event_post","clientToken":"e10","eventId":"low_voltage","timestamp":%d,"params":{"voltage":1}}`, now-(48*time.Hour).Milliseconds()), "event_reply", 405, "timestamp", 0},
		{"bad second of batch", `{"method":"events_post","clientToken":"e11","events":[{"eventId":"low_voltage","params":{"voltage":1}},{"eventId":"low_voltage","params":{"voltage":"high"}}]}`, "events_reply", 406, "events[1]", 0},
		{"events not an array", `{"method":"events_post","clientToken":"e12","events":{}}`, "events_reply", 400, "events", 0},
		{"empty batch", `{"method":"events_post","clientToken":"e13","events":[]}`, "events_reply", 400, "empty", 0},
		{"unknown method", `{"method":"event_push","clientToken":"e14"}`, "event_push_reply", 403, "event_push", 0},
		{"bad json", `{"method":`, "", 400, "JSON", 0},
	}
	total := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := d.call("event", c.payload)
			if m.code(t) != c.code || m.str("method") != c.method || !strings.Contains(m.str("status"), c.status) {
				t.Fatalf("reply = %s, want method %s code %d status ~%q", m.Raw, c.method, c.code, c.status)
			}
			want := "clientToken,code,data,method,status,version"
			if c.method == "" {
				want = "clientToken,code,data,status,version"
			}
			if m.keys() != want || fmt.Sprint(m.Body["data"]) != "map[]" || m.str("version") != "1.0" {
				t.Fatalf("reply shape %s: %s", m.keys(), m.Raw)
			}
			total += c.accepted
			if got := len(s.Events(thLightPID, "lamp")); got != total {
				t.Fatalf("%d events stored, want %d", got, total)
			}
		})
	}
	evs, err := s.WaitEvents(thCtx(t), thLightPID, "lamp", total)
	if err != nil {
		t.Fatal(err)
	}
	if e := evs[0]; e.EventID != "status_report" || e.Type != "info" || e.Timestamp != now || string(e.Params) != `{"status":0,"message":"ok"}` || e.ClientToken != "e1" || e.Method != "event_post" {
		t.Fatalf("first event = %+v", e)
	}
	if e := evs[1]; e.Type != "alert" || e.Timestamp < now {
		t.Fatalf("event without type/timestamp = %+v (type from template, time from the platform)", e)
	}
	if e := evs[5]; e.EventID != "hardware_fault" || e.Method != "events_post" || string(e.Params) != `{"name":"","error_code":1}` {
		t.Fatalf("last event = %+v", e)
	}
}

func TestReportInfo(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	m := d.call("property", `{"method":"report_info","clientToken":"i1","params":{"module_hardinfo":"ESP8266","module_softinfo":"V1.0","fw_ver":"3.1.4","imei":"11-22-33-44","lat":"22.546015","lon":"113.941125","mac":"E0F2CA181818","device_label":{"append_info":"x"},"extra":1}}`)
	if string(m.Raw) != `{"method":"report_info_reply","clientToken":"i1","code":0,"status":"success"}` {
		t.Fatalf("report_info_reply = %s", m.Raw)
	}
	info, ok := s.ReportedInfo(thLightPID, "lamp")
	if !ok || info.FirmwareVer != "3.1.4" || info.ModuleHardInfo != "ESP8266" || info.Lat != "22.546015" || info.MAC != "E0F2CA181818" || info.DeviceLabel["append_info"] != "x" || !strings.Contains(string(info.Raw), `"extra":1`) {
		t.Fatalf("ReportedInfo = %+v, %v", info, ok)
	}
	for _, c := range []struct{ payload, status string }{
		{`{"method":"report_info","clientToken":"i2","params":{"fw_ver":3}}`, "params.fw_ver"},
		{`{"method":"report_info","clientToken":"i3","params":{"device_label":"x"}}`, "params.device_label"},
	} {
		if m := d.call("property", c.payload); m.code(t) != 406 || !strings.Contains(m.str("status"), c.status) {
			t.Fatalf("%s -> %s", c.payload, m.Raw)
		}
	}
	if m := d.call("property", `{"method":"report_info","clientToken":"i4"}`); m.code(t) != 400 {
		t.Fatalf("report_info without params -> %s", m.Raw)
	}
	if info, _ := s.ReportedInfo(thLightPID, "lamp"); info.FirmwareVer != "3.1.4" {
		t.Fatalf("rejected report_info changed the stored info: %+v", info)
	}
}

func TestProductWithoutTemplate(t *testing.T) {
	s := newThingServer(t)
	secret, err := s.AddDevice("NOTEMPLATE", "dev")
	if err != nil {
		t.Fatal(err)
	}
	d := thConnect(t, s, "NOTEMPLATE", "dev", secret)
	if m := d.call("property", `{"method":"report","clientToken":"n1","params":{"x":1}}`); m.code(t) != 403 || !strings.Contains(m.str("status"), "no data template") {
		t.Fatalf("report without template: %s", m.Raw)
	}
	if m := d.call("event", `{"method":"event_post","clientToken":"n2","eventId":"x","params":{}}`); m.code(t) != 403 {
		t.Fatalf("event without template: %s", m.Raw)
	}
	// The parts that need no template still work.
	if m := d.call("property", `{"method":"get_status","clientToken":"n3"}`); m.code(t) != 0 {
		t.Fatalf("get_status without template: %s", m.Raw)
	}
	if err := s.AddProduct(&template.Template{}); err == nil {
		t.Fatal("AddProduct accepted a template without ProductId")
	}
	if err := s.AddProductAs("NOTEMPLATE", nil); err == nil {
		t.Fatal("AddProductAs accepted a nil template")
	}
}

func TestSetReportedSeedsGetStatus(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	if err := s.SetReported(thLightPID, "lamp", map[string]any{"brightness": 10, "name": "livingroom"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReported(thLightPID, "lamp", `{"brightness":1000}`); !errors.Is(err, template.ErrInvalidValue) {
		t.Fatalf("SetReported accepted an invalid value: %v", err)
	}
	d := thConnect(t, s, thLightPID, "lamp", secret)
	m := d.call("property", `{"method":"get_status","clientToken":"s1"}`)
	if !strings.Contains(string(m.Raw), `"data":{"reported":{"brightness":10,"name":"livingroom"}}`) {
		t.Fatalf("get_status_reply = %s", m.Raw)
	}
}

// A gateway speaks the data-template protocol for its sub-devices on their own topics; the
// platform treats those messages as the sub-device's and delivers control through the gateway.
func TestSubDeviceThroughGateway(t *testing.T) {
	s := newThingServer(t)
	gwSecret, err := s.AddDevice("GWPRODUCT1", "gw")
	if err != nil {
		t.Fatal(err)
	}
	addLight(t, s, "sub1")
	if err := s.BindSubDevices("GWPRODUCT1", "gw", DeviceID{thLightPID, "sub1"}); err != nil {
		t.Fatal(err)
	}
	gw := thConnect(t, s, "GWPRODUCT1", "gw", gwSecret)
	gw.subscribe("$gateway/operation/result/GWPRODUCT1/gw") // bound while offline: no change message
	gw.publish("$gateway/operation/GWPRODUCT1/gw", `{"type":"online","payload":{"devices":[{"product_id":"ZPHBLEB4J5","device_name":"sub1"}]}}`)
	if m := gw.next(); m.str("type") != "online" || !strings.Contains(string(m.Raw), `"result":0`) {
		t.Fatalf("online result: %s", m.Raw)
	}
	sub := &thDevice{t: t, id: DeviceID{thLightPID, "sub1"}, c: gw.c, msgs: gw.msgs}
	sub.subscribe(sub.topic("down", "property"))

	if m := sub.call("property", `{"method":"report","clientToken":"s1","params":{"brightness":7}}`); m.code(t) != 0 {
		t.Fatalf("sub-device report: %s", m.Raw)
	}
	if v := s.Reported(thLightPID, "sub1")["brightness"]; string(v) != "7" {
		t.Fatalf("sub-device state = %s", fmtRaw(s.Reported(thLightPID, "sub1")))
	}
	if len(s.Reported("GWPRODUCT1", "gw")) != 0 {
		t.Fatal("sub-device report landed on the gateway")
	}
	sub.serve(func(m thMsg) (string, string) {
		if m.Topic != sub.topic("down", "property") || m.str("method") != "control" {
			return "", ""
		}
		return sub.topic("up", "property"), fmt.Sprintf(`{"method":"control_reply","clientToken":%q,"code":0,"status":"ok"}`, m.str("clientToken"))
	})
	rep, err := s.SendControl(thCtx(t), thLightPID, "sub1", `{"power_switch":1}`)
	if err != nil || rep.Code != 0 {
		t.Fatalf("control to an online sub-device: %+v, %v", rep, err)
	}
}

// A device reply the platform cannot read ends the wait with a clear error instead of a timeout,
// and a broken *_reply is never answered.
func TestMalformedDeviceReplies(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	d.serve(func(m thMsg) (string, string) {
		kind := "property"
		if m.str("method") == "action" {
			kind = "action"
		}
		return d.topic("up", kind), fmt.Sprintf(`{"method":"%s_reply","clientToken":%q,"code":"zero"}`, m.str("method"), m.str("clientToken"))
	})
	ctx := thCtx(t)
	if _, err := s.SendControl(ctx, thLightPID, "lamp", `{"color":1}`); err == nil || !strings.Contains(err.Error(), "malformed device reply") || !strings.Contains(err.Error(), "code") {
		t.Fatalf("SendControl with a broken control_reply: %v", err)
	}
	if _, err := s.InvokeAction(ctx, thLightPID, "lamp", "light_on", `{"is_on":1}`); err == nil || !strings.Contains(err.Error(), "malformed device reply") {
		t.Fatalf("InvokeAction with a broken action_reply: %v", err)
	}
}

func TestBrokenReplyIsNotAnswered(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	d.publish(d.topic("up", "property"), `{"method":"control_reply","clientToken":5,"code":0}`)
	d.publish(d.topic("up", "action"), `{"method":"action_reply","clientToken":"x"}`)
	// Per-connection order: had the platform answered the broken replies, those answers would
	// arrive before this one.
	if m := d.call("property", `{"method":"report","clientToken":"after","params":{"color":0}}`); m.str("clientToken") != "after" {
		t.Fatalf("got %s", m.Raw)
	}
}

// FuzzThingUplink: whatever a device publishes on its $thing/up topics, the platform answers
// or ignores it without panicking, and every answer is a JSON object with a numeric code.
func FuzzThingUplink(f *testing.F) {
	for _, seed := range []string{
		`{"method":"report","clientToken":"a","timestamp":1,"params":{"power_switch":1,"name":"x"}}`,
		`{"method":"get_status","clientToken":"b","type":"control","showmeta":1}`,
		`{"method":"event_post","clientToken":"c","events":[{"eventId":"low_voltage","params":{"voltage":1}}]}`,
		`{"method":"events_post","events":[null,{}]}`,
		`{"method":"report_info","params":{"device_label":{"a":1}}}`,
		`{"code":0,"clientToken":"d"}`,
		`{"method":"action_reply","clientToken":"e","code":0,"response":[]}`,
		`[]`, ``, `{"params":`, `{"method":null,"clientToken":null,"params":null}`,
	} {
		for kind := range 3 {
			f.Add(kind, []byte(seed))
		}
	}
	tpl := thLoadTemplate(f, "light.json")
	f.Fuzz(func(t *testing.T, kind int, payload []byte) {
		tc := newThingCloud()
		tc.online = func(DeviceID) bool { return true }
		tc.products[thLightPID] = tpl
		tc.publish = func(topic string, b []byte, _ byte) error {
			m, err := thDecode(b)
			if err != nil {
				t.Fatalf("reply on %s is not JSON: %s", topic, b)
			}
			if _, ok := m["code"].(json.Number); !ok {
				t.Fatalf("reply on %s has no numeric code: %s", topic, b)
			}
			return nil
		}
		id := DeviceID{thLightPID, "lamp"}
		handlers := []func(uplink){tc.handleProperty, tc.handleEvent, tc.handleAction}
		kinds := []string{"property", "event", "action"}
		k := ((kind % 3) + 3) % 3
		handlers[k](uplink{Client: id, Device: id, Topic: "$thing/up/" + kinds[k] + "/" + id.String(), Payload: payload})
	})
}

// The data-template state survives a platform restart, and control sent while the device is cut
// off waits for it as pending.
func TestStateSurvivesRestart(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	d := thConnect(t, s, thLightPID, "lamp", secret)
	d.call("property", `{"method":"report","clientToken":"r1","params":{"brightness":33}}`)
	ctx := thCtx(t)
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitThing(ctx, thLightPID, "lamp", func(ThingState) bool { return !s.Online(thLightPID, "lamp") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendControl(ctx, thLightPID, "lamp", `{"color":2}`); !errors.Is(err, ErrControlPending) {
		t.Fatalf("control while disconnected: %v", err)
	}
	d = thConnect(t, s, thLightPID, "lamp", secret)
	m := d.call("property", `{"method":"get_status","clientToken":"g1"}`)
	// Untyped, as the C SDK sends it: reported state and the pending control in one reply.
	if !strings.Contains(string(m.Raw), `"data":{"reported":{"brightness":33},"control":{"color":2}}`) {
		t.Fatalf("reported state after restart: %s", m.Raw)
	}
	m = d.call("property", `{"method":"get_status","clientToken":"g2","type":"control"}`)
	if !strings.Contains(string(m.Raw), `"data":{"control":{"color":2}}`) {
		t.Fatalf("pending control after restart: %s", m.Raw)
	}
}

// A device posting events without end keeps at most maxEventsKept records and maxEventBytes of
// them; the dropped ones are counted, and the history's backing array stays bounded too.
func TestEventHistoryBounded(t *testing.T) {
	d := &thingDevice{}
	small := json.RawMessage(`{"status":1}`)
	for i := range maxEventsKept + 2000 {
		d.addEvents([]EventRecord{{EventID: "e", Params: small, Timestamp: int64(i)}})
	}
	if len(d.events) != maxEventsKept || d.dropped != 2000 || d.events[0].Timestamp != 2000 {
		t.Fatalf("count bound: %d kept, %d dropped, oldest %d", len(d.events), d.dropped, d.events[0].Timestamp)
	}
	if cap(d.events) > 3*maxEventsKept {
		t.Fatalf("backing array grew to %d", cap(d.events))
	}
	big := json.RawMessage(`{"message":"` + strings.Repeat("x", 1<<20) + `"}`)
	for range 20 {
		d.addEvents([]EventRecord{{EventID: "big", Params: big}})
	}
	if d.eventBytes > maxEventBytes || d.events[len(d.events)-1].EventID != "big" {
		t.Fatalf("byte bound: %d bytes kept (limit %d)", d.eventBytes, maxEventBytes)
	}
	total := 0
	for i := range d.events {
		total += eventSize(&d.events[i])
	}
	if total != d.eventBytes || d.dropped+len(d.events) != maxEventsKept+2000+20 {
		t.Fatalf("accounting: %d counted vs %d summed; %d dropped + %d kept", d.eventBytes, total, d.dropped, len(d.events))
	}
}
