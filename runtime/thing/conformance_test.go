package thing

import (
	"bufio"
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// transcriptLine is one packet of testdata/python-sdk-thing-transcript.jsonl.
type transcriptLine struct {
	Dir     string          `json:"dir"`
	Packet  string          `json:"packet"`
	QoS     byte            `json:"qos"`
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

func loadTranscript(t testing.TB) []transcriptLine {
	t.Helper()
	f, err := os.Open("testdata/python-sdk-thing-transcript.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []transcriptLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l transcriptLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("transcript: %v", err)
		}
		out = append(out, l)
	}
	return out
}

func loadLight(t testing.TB) *template.Template {
	t.Helper()
	tpl, err := template.ParseFile("testdata/light.json")
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// sent returns the transcript's device->cloud PUBLISH whose payload method is method.
func sent(t *testing.T, lines []transcriptLine, method string) transcriptLine {
	t.Helper()
	for _, l := range lines {
		if l.Dir != "device->cloud" || l.Packet != "PUBLISH" {
			continue
		}
		var m struct {
			Method string `json:"method"`
			Code   *int   `json:"code"`
		}
		_ = json.Unmarshal(l.Payload, &m)
		if m.Method == method || (method == "control_reply" && m.Method == "" && m.Code != nil) {
			return l
		}
	}
	t.Fatalf("transcript has no %s", method)
	return transcriptLine{}
}

// received returns the transcript's cloud->device PUBLISH whose payload method is method.
func received(t *testing.T, lines []transcriptLine, method string) transcriptLine {
	t.Helper()
	for _, l := range lines {
		if l.Dir == "cloud->device" && strings.Contains(string(l.Payload), `"method": "`+method+`"`) {
			return l
		}
	}
	t.Fatalf("transcript has no %s", method)
	return transcriptLine{}
}

// normalize decodes a payload and drops what may differ (tokens and times), recursively.
func normalize(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("payload %s: %v", raw, err)
	}
	var strip func(v any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "clientToken")
			delete(x, "timestamp")
			for _, e := range x {
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(m)
	return m
}

func assertSame(t *testing.T, what string, ours published, theirs transcriptLine, adjust func(theirs map[string]any)) {
	t.Helper()
	if ours.Topic != theirs.Topic {
		t.Errorf("%s: topic %s, official SDK %s", what, ours.Topic, theirs.Topic)
	}
	if ours.QoS != theirs.QoS {
		t.Errorf("%s: QoS %d, official SDK %d", what, ours.QoS, theirs.QoS)
	}
	a, b := normalize(t, ours.Payload), normalize(t, theirs.Payload)
	if adjust != nil {
		adjust(b)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s differs from the official SDK (tokens and times aside):\n ours:     %s\n official: %s", what, ours.Payload, theirs.Payload)
	}
}

// TestConformancePythonSDK replays the official Python SDK's data-template session and
// checks our messages against it field for field (tokens and times aside), including the
// two documented differences where that SDK is wrong.
func TestConformancePythonSDK(t *testing.T) {
	lines := loadTranscript(t)
	rec := newRecorder(true)
	th, err := newThing(rec, loadLight(t),
		WithResyncOnConnect(false),
		WithControlHandler(func(context.Context, []byte) error { return nil }),
		WithActionHandler(func(context.Context, string, []byte) (any, error) {
			return map[string]int{"err_code": 0}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Subscriptions: the same four topics.
	var subs []string
	for _, l := range lines {
		if l.Packet == "SUBSCRIBE" {
			subs = append(subs, l.Topic)
		}
	}
	rec.mu.Lock()
	for _, s := range subs {
		if rec.handlers[s] == nil {
			t.Errorf("not subscribed to %s", s)
		}
	}
	if len(rec.handlers) != len(subs) {
		t.Errorf("subscribed to %d topics, official SDK %d", len(rec.handlers), len(subs))
	}
	rec.mu.Unlock()

	n := 0
	next := func() published {
		t.Helper()
		n++
		p, err := rec.waitPublished(ctx, n)
		if err != nil {
			t.Fatalf("message %d not published: %v", n, err)
		}
		return p
	}
	params := func(l transcriptLine) json.RawMessage {
		var m struct {
			Params json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(l.Payload, &m); err != nil {
			t.Fatal(err)
		}
		return m.Params
	}

	// report_info
	ri := sent(t, lines, "report_info")
	var info DeviceInfo
	if err := json.Unmarshal(params(ri), &info); err != nil {
		t.Fatal(err)
	}
	if err := th.ReportInfo(ctx, info); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "report_info", next(), ri, nil)

	// get_status (type report)
	if _, err := th.GetStatus(ctx, StatusReport, false); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "get_status", next(), sent(t, lines, "get_status"), nil)

	// report
	rp := sent(t, lines, "report")
	if err := th.Report(ctx, params(rp)); err != nil {
		t.Fatal(err)
	}
	ours := next()
	if !strings.Contains(string(ours.Payload), `"timestamp":`) {
		t.Errorf("report without timestamp: %s", ours.Payload)
	}
	assertSame(t, "report", ours, rp, nil)

	// event_post: documented difference, single-object form instead of an events array.
	ep := sent(t, lines, "event_post")
	var evs struct {
		Events []struct {
			EventID string          `json:"eventId"`
			Params  json.RawMessage `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(ep.Payload, &evs); err != nil || len(evs.Events) != 1 {
		t.Fatalf("transcript event_post: %v", err)
	}
	if err := th.PostEvent(ctx, evs.Events[0].EventID, evs.Events[0].Params); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "event_post", next(), ep, func(theirs map[string]any) {
		ev := theirs["events"].([]any)[0].(map[string]any)
		delete(theirs, "events")
		for k, v := range ev {
			theirs[k] = v
		}
	})

	// events_post
	esp := sent(t, lines, "events_post")
	var batch struct {
		Events []struct {
			EventID string          `json:"eventId"`
			Params  json.RawMessage `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(esp.Payload, &batch); err != nil {
		t.Fatal(err)
	}
	var events []Event
	for _, e := range batch.Events {
		events = append(events, Event{ID: e.EventID, Params: e.Params})
	}
	if err := th.PostEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "events_post", next(), esp, nil)

	// control -> control_reply: documented difference, we include "method".
	ctl := received(t, lines, "control")
	rec.deliver(ctl.Topic, ctl.Payload)
	reply := next()
	// Documented difference: replies go at QoS 1, as the C SDK sends them (the Python SDK
	// uses 0, so a reply lost on a flaky link leaves the app with a timeout).
	if reply.QoS != 1 {
		t.Errorf("control_reply at QoS %d, want 1", reply.QoS)
	}
	reply.QoS = 0
	assertSame(t, "control_reply", reply, sent(t, lines, "control_reply"), func(theirs map[string]any) {
		theirs["method"] = "control_reply"
	})
	if !strings.Contains(string(reply.Payload), `"clientToken":"clientToken-ctl-0001"`) {
		t.Errorf("control_reply must echo the control's clientToken: %s", reply.Payload)
	}

	// clear_control
	if err := th.ClearControl(ctx); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "clear_control", next(), sent(t, lines, "clear_control"), nil)

	// action -> action_reply
	act := received(t, lines, "action")
	rec.deliver(act.Topic, act.Payload)
	reply = next()
	if reply.QoS != 1 {
		t.Errorf("action_reply at QoS %d, want 1", reply.QoS)
	}
	reply.QoS = 0
	assertSame(t, "action_reply", reply, sent(t, lines, "action_reply"), nil)
	if !strings.Contains(string(reply.Payload), `"clientToken":"clientToken-act-0001"`) {
		t.Errorf("action_reply must echo the action's clientToken: %s", reply.Payload)
	}

	// Unsubscribe on Close: the same four topics.
	if err := th.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	left := len(rec.handlers)
	rec.mu.Unlock()
	if left != 0 {
		t.Errorf("%d subscriptions left after Close", left)
	}
}

// TestOfficialSDKDifferences pins the two places where we deliberately differ from the
// official Python SDK (see the package doc): control_reply has "method", and a single event
// is posted in the single-object form.
func TestOfficialSDKDifferences(t *testing.T) {
	lines := loadTranscript(t)
	if strings.Contains(string(sent(t, lines, "control_reply").Payload), `"method"`) {
		t.Fatal("transcript changed: the official SDK's control_reply now has a method")
	}
	if !strings.Contains(string(sent(t, lines, "event_post").Payload), `"events"`) {
		t.Fatal("transcript changed: the official SDK's event_post has no events array")
	}
	rec := newRecorder(true)
	th, err := newThing(rec, loadLight(t), WithResyncOnConnect(false),
		WithControlHandler(func(context.Context, []byte) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := th.PostEvent(ctx, "low_voltage", map[string]float64{"voltage": 3.5}); err != nil {
		t.Fatal(err)
	}
	p, err := rec.waitPublished(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(p.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := ev["events"]; ok || string(ev["eventId"]) != `"low_voltage"` || string(ev["type"]) != `"alert"` {
		t.Fatalf("event_post not in single-object form: %s", p.Payload)
	}
	rec.deliver("$thing/down/property/ABCDEFGHIJ/dev1", []byte(`{"method":"control","clientToken":"c1","params":{"power_switch":1}}`))
	p, err = rec.waitPublished(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Payload) != `{"method":"control_reply","clientToken":"c1","code":0,"status":"success"}` {
		t.Fatalf("control_reply = %s", p.Payload)
	}
}
