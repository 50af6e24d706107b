package thing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/faultproxy"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
)

func TestReport(t *testing.T) {
	e := newEnv(t, nil)
	th := e.thing(t, e.dial(t))
	ctx := testCtx(t)
	if err := th.Report(ctx, map[string]any{"power_switch": 1, "brightness": 42, "name": "hall"}); err != nil {
		t.Fatal(err)
	}
	got := e.srv.Reported(testPID, testDN)
	if string(got["brightness"]) != "42" || string(got["power_switch"]) != "1" || string(got["name"]) != `"hall"` {
		t.Fatalf("platform holds %v", got)
	}
	// A struct and raw JSON work too.
	type props struct {
		Color int `json:"color"`
	}
	if err := th.Report(ctx, props{Color: 2}); err != nil {
		t.Fatal(err)
	}
	if err := th.Report(ctx, []byte(`{"run_hours":12}`)); err != nil {
		t.Fatal(err)
	}
	got = e.srv.Reported(testPID, testDN)
	if string(got["color"]) != "2" || string(got["run_hours"]) != "12" {
		t.Fatalf("platform holds %v", got)
	}
}

// TestReportLocalValidation: invalid reports fail locally and are never sent. The platform
// here accepts brightness up to 200, so a report that slipped through would be stored.
func TestReportLocalValidation(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		property(m, "brightness")["define"].(map[string]any)["max"] = "200"
	}))
	th := e.thing(t, e.dial(t))
	ctx := testCtx(t)

	err := th.Report(ctx, map[string]any{"brightness": 150})
	if !IsInvalidValue(err) || !errors.Is(err, template.ErrInvalidValue) || IsRejected(err) {
		t.Fatalf("out of range: %v", err)
	}
	if !strings.Contains(err.Error(), "brightness") {
		t.Errorf("error does not name the property: %v", err)
	}
	if err := th.Report(ctx, map[string]any{"colour": 1}); !IsUnknownID(err) {
		t.Fatalf("unknown property: %v", err)
	}
	if err := th.Report(ctx, map[string]any{"power_switch": true}); !IsInvalidValue(err) {
		t.Fatalf("bool as true instead of 1: %v", err)
	}
	for _, bad := range []any{nil, []int{1}, "x", []byte("{")} {
		if err := th.Report(ctx, bad); err == nil {
			t.Fatalf("Report(%#v) succeeded", bad)
		}
	}
	// The next report goes through on the same connection after the bad ones: had any been
	// sent, the platform would hold a brightness now.
	if err := th.Report(ctx, map[string]any{"name": "after"}); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Reported(testPID, testDN); got["brightness"] != nil || string(got["name"]) != `"after"` {
		t.Fatalf("platform holds %v", got)
	}
}

// TestReportRejectedByPlatform: the platform's template is stricter (brightness <= 50), so
// it answers 406 for a value the device considers valid.
func TestReportRejectedByPlatform(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		property(m, "brightness")["define"].(map[string]any)["max"] = "50"
	}))
	th := e.thing(t, e.dial(t))
	err := th.Report(testCtx(t), map[string]any{"brightness": 80})
	var re *ReplyError
	if !errors.As(err, &re) {
		t.Fatalf("want a *ReplyError, got %v", err)
	}
	if re.Code != CodeInvalidValue || re.Method != "report_reply" || !strings.HasPrefix(re.ClientToken, testPID+"-") || re.Status == "" {
		t.Fatalf("reply error %+v", re)
	}
	if !IsInvalidValue(err) || IsUnknownID(err) {
		t.Fatalf("406 should be an invalid value: %v", err)
	}
}

// TestConcurrentReports: many reports in flight at once, half of which the platform
// rejects; each caller must get the answer to its own report.
func TestConcurrentReports(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		property(m, "brightness")["define"].(map[string]any)["max"] = "50"
	}))
	th := e.thing(t, e.dial(t))
	ctx := testCtx(t)
	const n = 60
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = th.Report(ctx, map[string]any{"brightness": i + 10}) // 10..69
		}()
	}
	wg.Wait()
	tokens := map[string]bool{}
	for i, err := range errs {
		v := i + 10
		var re *ReplyError
		switch {
		case v <= 50 && err != nil:
			t.Errorf("brightness %d: %v", v, err)
		case v > 50 && (!errors.As(err, &re) || re.Code != CodeInvalidValue || !strings.Contains(re.Status, fmt.Sprint(v))):
			t.Errorf("brightness %d: want its own 406, got %v", v, err)
		case re != nil:
			if tokens[re.ClientToken] {
				t.Errorf("clientToken %s answered twice", re.ClientToken)
			}
			tokens[re.ClientToken] = true
		}
	}
	th.mu.Lock()
	left := len(th.waiters)
	th.mu.Unlock()
	if left != 0 {
		t.Errorf("%d waiters left", left)
	}
}

// TestReplyTimeout: with the reply topic unsubscribed behind the Thing's back, the reply
// never arrives; the call ends with ctx's error and its waiter is cleaned up.
func TestReplyTimeout(t *testing.T) {
	e := newEnv(t, nil)
	conn := e.dial(t)
	th := e.thing(t, conn)
	if err := conn.Unsubscribe(testCtx(t), th.topics.downProperty); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
	defer cancel()
	err := th.Report(ctx, map[string]any{"brightness": 1})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "report_reply") {
		t.Fatalf("want a deadline error naming report_reply, got %v", err)
	}
	// The platform did get the report: only the reply was lost.
	if _, err := e.srv.WaitReported(testCtx(t), testPID, testDN, "brightness"); err != nil {
		t.Fatal(err)
	}
	th.mu.Lock()
	left := len(th.waiters)
	th.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiters left after the timeout", left)
	}
}

func TestGetStatus(t *testing.T) {
	e := newEnv(t, nil)
	th := e.thing(t, e.dial(t))
	ctx := testCtx(t)
	if err := e.srv.SetReported(testPID, testDN, map[string]any{"power_switch": 1, "brightness": 10, "name": "livingroom"}); err != nil {
		t.Fatal(err)
	}
	st, err := th.GetStatus(ctx, StatusReport, false)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(st.Reported, &rep); err != nil {
		t.Fatal(err)
	}
	if st.Type != StatusReport || rep["brightness"] != float64(10) || rep["name"] != "livingroom" || st.Control != nil {
		t.Fatalf("status %+v (reported %s)", st, st.Reported)
	}
	st, err = th.GetStatus(ctx, StatusReport, true)
	if err != nil || !strings.Contains(string(st.Data), "metadata") {
		t.Fatalf("showmeta: %v, data %s", err, st.Data)
	}
	st, err = th.GetStatus(ctx, StatusControl, false)
	if err != nil || st.Type != StatusControl || !isEmptyObject(st.Control) {
		t.Fatalf("nothing pending: %+v, %v", st, err)
	}
	if _, err := th.GetStatus(ctx, "desired", false); err == nil {
		t.Fatal("bad status type accepted")
	}
	if err := th.ClearControl(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestReportInfo(t *testing.T) {
	e := newEnv(t, nil)
	th := e.thing(t, e.dial(t))
	info := DeviceInfo{
		ModuleHardInfo: "ESP8266", ModuleSoftInfo: "V1.0", FirmwareVersion: "3.1.4", IMEI: "11-22-33-44",
		MAC: "E0F2CA181818", Lat: "22.546015", Lon: "113.941125", Name: "lamp",
		DeviceLabel: map[string]string{"append_info": "x"},
	}
	if err := th.ReportInfo(testCtx(t), info); err != nil {
		t.Fatal(err)
	}
	got, ok := e.srv.ReportedInfo(testPID, testDN)
	if !ok || got.FirmwareVer != "3.1.4" || got.ModuleHardInfo != "ESP8266" || got.MAC != "E0F2CA181818" ||
		got.Lat != "22.546015" || got.Name != "lamp" || got.DeviceLabel["append_info"] != "x" {
		t.Fatalf("platform got %+v", got)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t, nil)
	th := e.thing(t, e.dial(t))
	ctx := testCtx(t)
	if err := th.PostEvent(ctx, "status_report", map[string]any{"status": 1, "message": "hi"}); err != nil {
		t.Fatal(err)
	}
	// An event's own time is sent (the platform refuses times more than 24 h off).
	at := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	if err := th.PostEvents(ctx, []Event{
		{ID: "low_voltage", Params: map[string]any{"voltage": 3.3}, Time: at},
		{ID: "hardware_fault", Params: []byte(`{"name":"memory","error_code":7}`)},
	}); err != nil {
		t.Fatal(err)
	}
	evs, err := e.srv.WaitEvents(ctx, testPID, testDN, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ id, typ, method string }{
		{"status_report", "info", "event_post"}, {"low_voltage", "alert", "events_post"}, {"hardware_fault", "fault", "events_post"},
	}
	if evs[1].Timestamp != at.UnixMilli() {
		t.Errorf("event time %d, want %d", evs[1].Timestamp, at.UnixMilli())
	}
	for i, w := range want {
		if evs[i].EventID != w.id || evs[i].Type != w.typ || evs[i].Method != w.method || evs[i].Timestamp == 0 {
			t.Errorf("event %d = %+v, want %v", i, evs[i], w)
		}
	}

	// Local failures: nothing is sent.
	if err := th.PostEvent(ctx, "fire", map[string]any{}); !IsUnknownID(err) {
		t.Fatalf("unknown event: %v", err)
	}
	if err := th.PostEvent(ctx, "low_voltage", map[string]any{"voltage": 30}); !IsInvalidValue(err) {
		t.Fatalf("voltage out of range: %v", err)
	}
	if err := th.PostEvents(ctx, []Event{{ID: "low_voltage", Params: map[string]any{"voltage": 1}}, {ID: "nope", Params: map[string]any{}}}); !IsUnknownID(err) || !strings.Contains(err.Error(), "events[1]") {
		t.Fatalf("batch with an unknown event: %v", err)
	}
	if err := th.PostEvents(ctx, nil); err == nil {
		t.Fatal("empty batch accepted")
	}
	if err := th.PostEvent(ctx, "status_report", map[string]any{"status": 0, "message": "last"}); err != nil {
		t.Fatal(err)
	}
	if evs := e.srv.Events(testPID, testDN); len(evs) != 4 {
		t.Fatalf("platform has %d events, want 4 (no invalid one sent)", len(evs))
	}
}

// TestEventRejectedByPlatform: the platform's template types the event differently.
func TestEventRejectedByPlatform(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		for _, ev := range m["events"].([]any) {
			if ev := ev.(map[string]any); ev["id"] == "low_voltage" {
				ev["params"].([]any)[0].(map[string]any)["define"].(map[string]any)["max"] = "5"
			}
		}
	}))
	th := e.thing(t, e.dial(t))
	err := th.PostEvent(testCtx(t), "low_voltage", map[string]any{"voltage": 12})
	var re *ReplyError
	if !errors.As(err, &re) || re.Code != CodeInvalidValue || re.Method != "event_reply" {
		t.Fatalf("want event_reply 406, got %v", err)
	}
}

func TestControl(t *testing.T) {
	e := newEnv(t, nil)
	got := newCalls()
	var fail error
	var mu sync.Mutex
	th := e.thing(t, e.dial(t), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		mu.Lock()
		defer mu.Unlock()
		return fail
	}))
	_ = th
	ctx := testCtx(t)
	r, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"power_switch": 1, "brightness": 80})
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 || !r.HasMethod || r.Status != "success" {
		t.Fatalf("control_reply %+v", r)
	}
	var p map[string]int
	if err := json.Unmarshal([]byte(got.next(t, ctx)), &p); err != nil || p["power_switch"] != 1 || p["brightness"] != 80 {
		t.Fatalf("handler got %v (%v)", p, err)
	}

	mu.Lock()
	fail = Errorf(501, "motor stuck")
	mu.Unlock()
	r, err = e.srv.SendControl(ctx, testPID, testDN, map[string]any{"color": 1})
	if err != nil || r.Code != 501 || !strings.Contains(r.Status, "motor stuck") {
		t.Fatalf("handler error with code: %+v, %v", r, err)
	}
	mu.Lock()
	fail = errors.New("bulb missing")
	mu.Unlock()
	r, err = e.srv.SendControl(ctx, testPID, testDN, map[string]any{"color": 2})
	if err != nil || r.Code != CodeFailed || !strings.Contains(r.Status, "bulb missing") {
		t.Fatalf("handler error: %+v, %v", r, err)
	}
}

// TestControlValidation: the platform's template is looser than the device's, so it sends
// controls the device must refuse without calling its handler.
func TestControlValidation(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		property(m, "brightness")["define"].(map[string]any)["max"] = "200"
		property(m, "run_hours")["mode"] = "rw"
		m["properties"] = append(m["properties"].([]any), map[string]any{
			"id": "extra", "name": "extra", "mode": "rw", "define": map[string]any{"type": "int", "min": "0", "max": "9"},
		})
	}))
	got := newCalls()
	e.thing(t, e.dial(t), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		return nil
	}))
	ctx := testCtx(t)
	for _, tc := range []struct {
		params map[string]any
		code   int
		status string
	}{
		{map[string]any{"brightness": 150}, CodeInvalidValue, "brightness"},
		{map[string]any{"run_hours": 5}, CodeInvalidValue, "read-only"},
		{map[string]any{"extra": 1}, CodeUnknownID, "extra"},
		{map[string]any{"power_switch": 1, "extra": 1}, CodeUnknownID, "extra"},
	} {
		r, err := e.srv.SendControl(ctx, testPID, testDN, tc.params)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != tc.code || !strings.Contains(r.Status, tc.status) {
			t.Errorf("control %v: reply %+v, want code %d naming %q", tc.params, r, tc.code, tc.status)
		}
	}
	if n := got.count(); n != 0 {
		t.Fatalf("handler called %d times for invalid controls", n)
	}
}

func TestControlWithoutHandler(t *testing.T) {
	e := newEnv(t, nil)
	e.thing(t, e.dial(t))
	r, err := e.srv.SendControl(testCtx(t), testPID, testDN, map[string]any{"power_switch": 0})
	if err != nil || r.Code != CodeFailed || !strings.Contains(r.Status, "no control handler") {
		t.Fatalf("reply %+v, %v", r, err)
	}
}

// TestControlOrder: controls are applied one at a time in arrival order.
func TestControlOrder(t *testing.T) {
	e := newEnv(t, nil)
	got := newCalls()
	e.thing(t, e.dial(t), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		return nil
	}))
	ctx := testCtx(t)
	for i := 0; i <= 20; i++ {
		if r, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"brightness": i}); err != nil || r.Code != 0 {
			t.Fatalf("control %d: %+v %v", i, r, err)
		}
	}
	for i := 0; i <= 20; i++ {
		if s := got.next(t, ctx); s != fmt.Sprintf(`{"brightness":%d}`, i) {
			t.Fatalf("control %d applied as %s", i, s)
		}
	}
}

func TestAction(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		m["actions"] = append(m["actions"].([]any), map[string]any{
			"id": "beep", "name": "beep", "input": []any{}, "output": []any{},
		})
	}))
	got := newCalls()
	output := make(chan any, 10)
	e.thing(t, e.dial(t), WithActionHandler(func(ctx context.Context, id string, input []byte) (any, error) {
		got.add(id + " " + string(input))
		out := <-output
		if err, ok := out.(error); ok {
			return nil, err
		}
		return out, nil
	}))
	ctx := testCtx(t)

	output <- map[string]int{"err_code": 1}
	r, err := e.srv.InvokeAction(ctx, testPID, testDN, "light_on", map[string]any{"is_on": 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 || string(r.Response) != `{"err_code":1}` || r.Status != actionSuccessStatus {
		t.Fatalf("action_reply %+v (response %s)", r, r.Response)
	}
	if s := got.next(t, ctx); s != `light_on {"is_on":1}` {
		t.Fatalf("handler got %q", s)
	}

	// Output that breaks the template: a failure is answered, not the bad value.
	output <- map[string]int{"err_code": 7}
	r, err = e.srv.InvokeAction(ctx, testPID, testDN, "light_on", map[string]any{"is_on": 0})
	if err != nil || r.Code != CodeFailed || !strings.Contains(r.Status, "invalid action output") || string(r.Response) != `{}` {
		t.Fatalf("invalid output: %+v, %v", r, err)
	}
	got.next(t, ctx)

	output <- Errorf(409, "already on")
	r, err = e.srv.InvokeAction(ctx, testPID, testDN, "light_on", map[string]any{"is_on": 1})
	if err != nil || r.Code != 409 || r.Status != "already on" {
		t.Fatalf("handler error: %+v, %v", r, err)
	}
	got.next(t, ctx)

	// Unknown to the device: answered 403 without calling the handler.
	r, err = e.srv.InvokeAction(ctx, testPID, testDN, "beep", map[string]any{})
	if err != nil || r.Code != CodeUnknownID || !strings.Contains(r.Status, "beep") {
		t.Fatalf("unknown action: %+v, %v", r, err)
	}
	if n := got.count(); n != 3 {
		t.Fatalf("handler called %d times, want 3", n)
	}
}

// TestActionInputValidation: the platform's light_on takes an int the device types as bool.
func TestActionInputValidation(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		in := m["actions"].([]any)[0].(map[string]any)["input"].([]any)[0].(map[string]any)
		in["define"] = map[string]any{"type": "int", "min": "0", "max": "9"}
	}))
	got := newCalls()
	e.thing(t, e.dial(t), WithActionHandler(func(ctx context.Context, id string, input []byte) (any, error) {
		got.add(id)
		return map[string]int{"err_code": 0}, nil
	}))
	r, err := e.srv.InvokeAction(testCtx(t), testPID, testDN, "light_on", map[string]any{"is_on": 5})
	if err != nil || r.Code != CodeInvalidValue || !strings.Contains(r.Status, "is_on") {
		t.Fatalf("reply %+v, %v", r, err)
	}
	if got.count() != 0 {
		t.Fatal("handler called with invalid input")
	}
}

// TestPendingControlOnNew: control sent while the device was offline is applied through the
// handler when the Thing starts, then cleared.
func TestPendingControlOnNew(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	_, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"power_switch": 1, "color": 2})
	if !errors.Is(err, explorertest.ErrControlPending) {
		t.Fatalf("want the control stored as pending, got %v", err)
	}
	got := newCalls()
	e.thing(t, e.dial(t), WithResyncOnConnect(true), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		return nil
	}))
	var p map[string]int
	if err := json.Unmarshal([]byte(got.next(t, ctx)), &p); err != nil || p["power_switch"] != 1 || p["color"] != 2 {
		t.Fatalf("handler got %v (%v)", p, err)
	}
	if err := e.srv.WaitThing(ctx, testPID, testDN, func(st explorertest.ThingState) bool { return len(st.Pending) == 0 }); err != nil {
		t.Fatalf("pending control not cleared: %v", err)
	}
}

// TestPendingControlAfterReconnect: the connection drops, control is sent while the device
// is away, and the Thing applies it once the connection is back.
func TestPendingControlAfterReconnect(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	// A reconnect delay of seconds keeps the device away while the control is sent.
	conn := e.dial(t, explorer.WithReconnectBackoff(3*time.Second, 3*time.Second))
	got := newCalls()
	e.thing(t, conn, WithResyncOnConnect(true), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		return nil
	}))
	// The start-up re-sync may still be waiting for its get_status reply; the drop loses
	// that reply and the reconnect's re-sync replaces it.
	e.srv.DropConnections()
	for {
		_, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"brightness": 33})
		if errors.Is(err, explorertest.ErrControlPending) {
			break
		}
		if err == nil {
			t.Fatal("device answered live: it reconnected before the control was sent")
		}
		if !errors.Is(err, explorertest.ErrDeviceOffline) {
			t.Fatal(err)
		}
		// Sent live while the platform still counted the dropped connection as online; the
		// drop then failed it. Send again.
	}
	if s := got.next(t, ctx); s != `{"brightness":33}` {
		t.Fatalf("handler got %s", s)
	}
	if err := e.srv.WaitThing(ctx, testPID, testDN, func(st explorertest.ThingState) bool { return len(st.Pending) == 0 }); err != nil {
		t.Fatalf("pending control not cleared: %v", err)
	}
}

// TestPendingControlInvalid: a pending control the device's template refuses is cleared (it
// can never be applied) without calling the handler.
func TestPendingControlInvalid(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		property(m, "brightness")["define"].(map[string]any)["max"] = "200"
	}))
	ctx := testCtx(t)
	if _, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"brightness": 150}); !errors.Is(err, explorertest.ErrControlPending) {
		t.Fatal(err)
	}
	got := newCalls()
	e.thing(t, e.dial(t), WithResyncOnConnect(true), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		return nil
	}))
	if err := e.srv.WaitThing(ctx, testPID, testDN, func(st explorertest.ThingState) bool { return len(st.Pending) == 0 }); err != nil {
		t.Fatalf("invalid pending control not cleared: %v", err)
	}
	if got.count() != 0 {
		t.Fatal("handler called with an invalid pending control")
	}
}

// TestMalformedDownlink: garbage on every downlink topic is logged and survived; a control
// that comes after it is handled normally.
func TestMalformedDownlink(t *testing.T) {
	e := newEnv(t, nil)
	got := newCalls()
	services := newCalls()
	e.thing(t, e.dial(t),
		WithControlHandler(func(ctx context.Context, params []byte) error { got.add(string(params)); return nil }),
		WithServiceHandler(func(ctx context.Context, method string, msg []byte) { services.add(method) }))
	for _, kind := range []string{"property", "event", "action", "service"} {
		topic := "$thing/down/" + kind + "/" + testPID + "/" + testDN
		for _, p := range []string{`not json`, `[]`, `{"method":7}`, `{"method":"control","clientToken":"x","params":"no"}`,
			`{"method":"action","clientToken":"y"}`, `{"method":"report_reply","clientToken":"nobody","code":0}`, `{"method":"mystery"}`} {
			if err := e.srv.Publish(topic, []byte(p), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := testCtx(t)
	if err := e.srv.Publish("$thing/down/service/"+testPID+"/"+testDN, []byte(`{"method":"unbind_device","clientToken":"u1","timestamp":1212121221}`), 0); err != nil {
		t.Fatal(err)
	}
	// The service topic passes every well-formed non-reply method on, in order; the
	// notification sent last arrives last.
	for services.next(t, ctx) != "unbind_device" {
	}
	r, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"power_switch": 1})
	if err != nil || r.Code != 0 {
		t.Fatalf("control after garbage: %+v, %v", r, err)
	}
	if s := got.next(t, ctx); s != `{"power_switch":1}` {
		t.Fatalf("handler got %s", s)
	}
}

// TestClose: requests waiting for a reply end with ErrClosed; later calls fail at once.
func TestClose(t *testing.T) {
	e := newEnv(t, nil)
	conn := e.dial(t)
	th := e.thing(t, conn)
	ctx := testCtx(t)
	if err := conn.Unsubscribe(ctx, th.topics.downProperty); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- th.Report(ctx, map[string]any{"brightness": 5}) }()
	// Close once the report is on its way (the platform has it).
	if _, err := e.srv.WaitReported(ctx, testPID, testDN, "brightness"); err != nil {
		t.Fatal(err)
	}
	if err := th.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting report: %v", err)
	}
	if err := th.Report(ctx, map[string]any{"brightness": 5}); !errors.Is(err, ErrClosed) {
		t.Fatalf("report after Close: %v", err)
	}
	if err := th.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestSubDevice: WithDevice speaks for another identity on the connection; here the
// connection's own, named explicitly, and bad identities are refused.
func TestWithDevice(t *testing.T) {
	e := newEnv(t, nil)
	conn := e.dial(t)
	th := e.thing(t, conn, WithDevice(testPID, testDN))
	if th.ProductID() != testPID || th.DeviceName() != testDN {
		t.Fatal("identity")
	}
	if err := th.Report(testCtx(t), map[string]any{"brightness": 3}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"", "x"}, {"P", ""}, {"P/x", "d"}, {"P", "d/#"}} {
		if _, err := New(conn, e.tpl, WithDevice(bad[0], bad[1])); err == nil {
			t.Errorf("WithDevice(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if _, err := New(conn, e.tpl); err == nil || !strings.Contains(err.Error(), "already runs") {
		t.Errorf("second Thing for the same device: %v", err)
	}
	if err := th.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	again, err := New(conn, e.tpl, WithResyncOnConnect(false))
	if err != nil {
		t.Fatalf("new Thing after Close: %v", err)
	}
	if err := again.Report(testCtx(t), map[string]any{"brightness": 4}); err != nil {
		t.Fatal(err)
	}
	again.Close(testCtx(t))
	if _, err := New(nil, e.tpl); err == nil {
		t.Error("nil conn accepted")
	}
	if _, err := New(conn, nil); err == nil {
		t.Error("nil template accepted")
	}
}

// TestActionLimits: a busy device answers 503 at once, a panicking handler is answered
// CodeFailed, and a handler past its deadline sees its ctx end.
func TestActionLimits(t *testing.T) {
	e := newEnv(t, nil)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var mu sync.Mutex
	mode := "block"
	e.thing(t, e.dial(t), WithMaxConcurrentActions(1), WithHandlerTimeout(300*time.Millisecond),
		WithActionHandler(func(ctx context.Context, id string, input []byte) (any, error) {
			mu.Lock()
			m := mode
			mu.Unlock()
			switch m {
			case "block":
				started <- struct{}{}
				<-release
			case "panic":
				panic("bulb exploded")
			case "slow":
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return map[string]int{"err_code": 0}, nil
		}))
	ctx := testCtx(t)

	first := make(chan *explorertest.ActionReply, 1)
	go func() {
		r, err := e.srv.InvokeAction(ctx, testPID, testDN, "light_on", map[string]any{"is_on": 1})
		if err != nil {
			t.Error(err)
		}
		first <- r
	}()
	<-started
	r, err := e.srv.InvokeAction(ctx, testPID, testDN, "light_on", map[string]any{"is_on": 1})
	if err != nil || r.Code != CodeInternal {
		t.Fatalf("second action while the only slot is busy: %+v, %v", r, err)
	}
	close(release)
	if r := <-first; r == nil || r.Code != 0 {
		t.Fatalf("first action: %+v", r)
	}

	mu.Lock()
	mode = "panic"
	mu.Unlock()
	r, err = e.srv.InvokeAction(ctx, testPID, testDN, "light_on", map[string]any{"is_on": 1})
	if err != nil || r.Code != CodeFailed || !strings.Contains(r.Status, "panicked") {
		t.Fatalf("panicking handler: %+v, %v", r, err)
	}

	mu.Lock()
	mode = "slow"
	mu.Unlock()
	r, err = e.srv.InvokeAction(ctx, testPID, testDN, "light_on", map[string]any{"is_on": 1})
	if err != nil || r.Code != CodeFailed || !strings.Contains(r.Status, "deadline") {
		t.Fatalf("handler past its deadline: %+v, %v", r, err)
	}
}

// TestControlHandlerPanic: a panicking control handler is answered CodeFailed and the
// device keeps working.
func TestControlHandlerPanic(t *testing.T) {
	e := newEnv(t, nil)
	var calls int
	var mu sync.Mutex
	e.thing(t, e.dial(t), WithControlHandler(func(ctx context.Context, params []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			panic("oops")
		}
		return nil
	}))
	ctx := testCtx(t)
	r, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"power_switch": 1})
	if err != nil || r.Code != CodeFailed || !strings.Contains(r.Status, "panicked") {
		t.Fatalf("panicking handler: %+v, %v", r, err)
	}
	r, err = e.srv.SendControl(ctx, testPID, testDN, map[string]any{"power_switch": 0})
	if err != nil || r.Code != 0 {
		t.Fatalf("control after a panic: %+v, %v", r, err)
	}
}

// TestSyncPendingControl: the explicit re-sync a gateway uses for its sub-devices.
func TestSyncPendingControl(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		property(m, "brightness")["define"].(map[string]any)["max"] = "200"
	}))
	ctx := testCtx(t)
	if _, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"color": 1}); !errors.Is(err, explorertest.ErrControlPending) {
		t.Fatal(err)
	}
	got := newCalls()
	th := e.thing(t, e.dial(t), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		return nil
	}))
	applied, err := th.SyncPendingControl(ctx)
	if err != nil || !applied {
		t.Fatalf("SyncPendingControl = %v, %v", applied, err)
	}
	if s := got.next(t, ctx); s != `{"color":1}` {
		t.Fatalf("handler got %s", s)
	}
	if p := e.srv.PendingControl(testPID, testDN); p != nil {
		t.Fatalf("still pending: %v", p)
	}
	if applied, err := th.SyncPendingControl(ctx); err != nil || applied {
		t.Fatalf("nothing pending: %v, %v", applied, err)
	}

}

// TestSyncPendingControlInvalid: a pending control the device's template refuses is
// reported and cleared, without calling the handler.
func TestSyncPendingControlInvalid(t *testing.T) {
	e := newEnv(t, variant(t, func(m map[string]any) {
		property(m, "brightness")["define"].(map[string]any)["max"] = "200"
	}))
	ctx := testCtx(t)
	if _, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"brightness": 150}); !errors.Is(err, explorertest.ErrControlPending) {
		t.Fatal(err)
	}
	got := newCalls()
	th := e.thing(t, e.dial(t), WithControlHandler(func(ctx context.Context, params []byte) error {
		got.add(string(params))
		return nil
	}))
	applied, err := th.SyncPendingControl(ctx)
	if applied || !IsInvalidValue(err) || !strings.Contains(err.Error(), "brightness") {
		t.Fatalf("SyncPendingControl = %v, %v", applied, err)
	}
	if p := e.srv.PendingControl(testPID, testDN); p != nil {
		t.Fatalf("invalid control still pending: %v", p)
	}
	if got.count() != 0 {
		t.Fatal("handler called")
	}
}

// TestResyncDefault: automatic re-sync is on for the connection's own device and off for
// another identity (a gateway's sub-device), unless set explicitly.
func TestResyncDefault(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want bool
	}{
		{nil, true},
		{[]Option{WithDevice("ABCDEFGHIJ", "dev1")}, true},
		{[]Option{WithDevice("SUBPRODUCT", "lamp")}, false},
		{[]Option{WithDevice("SUBPRODUCT", "lamp"), WithResyncOnConnect(true)}, true},
		{[]Option{WithResyncOnConnect(false)}, false},
	} {
		th, err := newThing(newRecorder(true), loadLight(t), tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		th.resyncMu.Lock()
		started := th.resyncDone != nil
		th.resyncMu.Unlock()
		if started != tc.want {
			t.Errorf("%d options: re-sync started %v, want %v", len(tc.opts), started, tc.want)
		}
		th.Close(context.Background())
	}
}

// TestTimestampsFromConnectionClock: a device whose own clock says 1970 stamps its events with
// the platform's time, because the Thing takes "now" from the connection's corrected clock
// (explorer.Conn.Now, learnt from $sys/operation after connecting). The platform's clock runs
// two hours ahead of this machine's, so a timestamp from time.Now would be caught too.
func TestTimestampsFromConnectionClock(t *testing.T) {
	const skew = 2 * time.Hour
	srv, err := explorertest.NewServer(explorertest.WithClock(func() time.Time { return time.Now().Add(skew) }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tpl := loadLight(t)
	if err := srv.AddProductAs(testPID, tpl); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	boot := time.Now()
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(testPID, testDN), append(srv.DialOptions(),
		explorer.WithClock(func() time.Time { return time.Unix(0, 0).Add(time.Since(boot)) }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	th, err := New(conn, tpl, WithResyncOnConnect(false))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close(context.Background())
	if err := th.PostEvent(ctx, tpl.Events[0].ID, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	got := srv.Events(testPID, testDN)
	if len(got) != 1 {
		t.Fatalf("events %v", got)
	}
	want := time.Now().Add(skew)
	if d := time.UnixMilli(got[0].Timestamp).Sub(want); d < -time.Minute || d > time.Minute {
		t.Fatalf("event stamped %v, %v from the platform's time (conn.Now %v)", time.UnixMilli(got[0].Timestamp), d, conn.Now())
	}
}

// TestServiceTopicNotReplaced: a program subscribing the Thing's service topic on the
// connection gets a clear error instead of silently taking the Thing's replies and notices.
func TestServiceTopicNotReplaced(t *testing.T) {
	e := newEnv(t, nil)
	conn := e.dial(t)
	th := e.thing(t, conn)
	err := conn.Subscribe(testCtx(t), "$thing/down/service/"+testPID+"/"+testDN, 0, func(context.Context, explorer.Message) {})
	if !errors.Is(err, explorer.ErrFilterOwned) || !strings.Contains(err.Error(), "WithServiceHandler") {
		t.Fatalf("Subscribe on the Thing's service topic: %v", err)
	}
	// The Thing still works, and once it is closed the topic is free again.
	if err := th.Report(testCtx(t), map[string]any{"brightness": 1}); err != nil {
		t.Fatal(err)
	}
	if err := th.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Subscribe(testCtx(t), "$thing/down/service/"+testPID+"/"+testDN, 0, func(context.Context, explorer.Message) {}); err != nil {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// TestReportWithdrawnWhenOffline: a report whose ctx ends while the link is down is withdrawn
// from the offline queue and never sent (the error says so), so a caller's retry after the
// reconnect makes no duplicate and the platform never sees the stale values.
func TestReportWithdrawnWhenOffline(t *testing.T) {
	e := newEnv(t, nil)
	proxy, err := faultproxy.New(strings.TrimPrefix(e.srv.BrokerURL(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	cfg := e.srv.DeviceConfig(testPID, testDN)
	cfg.Broker = "tcp://" + proxy.Addr()
	ctx := testCtx(t)
	conn, err := explorer.Dial(ctx, cfg, explorer.WithPlainTCP(), explorer.WithReconnectBackoff(20*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	th := e.thing(t, conn)
	if err := th.Report(ctx, map[string]any{"brightness": 1}); err != nil {
		t.Fatal(err)
	}

	proxy.Refuse(true)
	proxy.Reset()
	for conn.IsConnected() && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := th.Report(short, map[string]any{"name": "stale"})
		cancel()
		if !errors.Is(err, explorer.ErrNotSent) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("offline report %d: %v, want ErrNotSent and the deadline", i, err)
		}
	}

	proxy.Refuse(false)
	for !conn.IsConnected() && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := th.Report(ctx, map[string]any{"brightness": 2}); err != nil {
		t.Fatal(err)
	}
	got := e.srv.Reported(testPID, testDN)
	if string(got["brightness"]) != "2" || got["name"] != nil {
		t.Fatalf("platform holds %v: a withdrawn report was sent", got)
	}
}
