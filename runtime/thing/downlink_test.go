package thing

import (
	"context"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// TestMalformedDownlinkReplies checks the exact answers to broken control and action
// messages whose clientToken was readable (the platform never sends these, so they are
// driven in memory; TestMalformedDownlink covers the same over the broker).
func TestMalformedDownlinkReplies(t *testing.T) {
	th, rec := newFuzzThing(t)
	defer th.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prop, act := th.topics.downProperty, th.topics.downAction
	for i, tc := range []struct {
		topic, in string
		method    string
		code      int
		status    string
	}{
		{prop, `{"method":"control","clientToken":"c1","params":[1]}`, "control_reply", CodeMalformed, "field params: want an object, got array"},
		{prop, `{"method":"control","clientToken":"c2"}`, "control_reply", CodeMalformed, "field params: missing"},
		{prop, `{"method":"control","clientToken":"c3","params":{"brightness":"80"}}`, "control_reply", CodeInvalidValue, "brightness"},
		{prop, `{"method":"control","clientToken":"c4","params":{"run_hours":1}}`, "control_reply", CodeInvalidValue, "read-only"},
		{act, `{"method":"action","clientToken":"a1","params":{"is_on":1}}`, "action_reply", CodeMalformed, "field actionId: missing"},
		{act, `{"method":"action","clientToken":"a2","actionId":5}`, "action_reply", CodeMalformed, "field actionId: want a string"},
		{act, `{"method":"action","clientToken":"a3","actionId":"fly"}`, "action_reply", CodeUnknownID, `unknown action "fly"`},
		{act, `{"method":"action","clientToken":"a4","actionId":"light_on","params":{"is_on":2}}`, "action_reply", CodeInvalidValue, "is_on"},
		{act, `{"method":"action","clientToken":"a5","actionId":"light_on","params":{}}`, "action_reply", CodeInvalidValue, "is_on"},
	} {
		th.dispatch(tc.topic, []byte(tc.in))
		p, err := rec.waitPublished(ctx, i+1)
		if err != nil {
			t.Fatalf("%s: no reply: %v", tc.in, err)
		}
		var r struct {
			Method      string `json:"method"`
			ClientToken string `json:"clientToken"`
			Code        int    `json:"code"`
			Status      string `json:"status"`
		}
		if err := json.Unmarshal(p.Payload, &r); err != nil {
			t.Fatal(err)
		}
		var in struct {
			ClientToken string `json:"clientToken"`
		}
		_ = json.Unmarshal([]byte(tc.in), &in)
		if r.Method != tc.method || r.ClientToken != in.ClientToken || r.Code != tc.code || !strings.Contains(r.Status, tc.status) {
			t.Errorf("%s\n  answered %s\n  want %s code %d status containing %q", tc.in, p.Payload, tc.method, tc.code, tc.status)
		}
	}
	// Without a readable clientToken nobody can be answered: nothing is published.
	before := rec.count()
	for _, in := range []string{`{"method":"control","params":[]}`, `{"method":"action","actionId":"light_on"}`, `{"clientToken":1}`, `nonsense`} {
		th.dispatch(prop, []byte(in))
		th.dispatch(act, []byte(in))
	}
	drained := make(chan struct{})
	th.controlQueue() <- func() { close(drained) }
	th.kick()
	<-drained
	if n := rec.count() - before; n != 0 {
		t.Fatalf("%d replies to messages without a clientToken", n)
	}
}

// TestMalformedReplyFailsWaiter: a reply with a broken field ends its request at once with
// an error naming the topic and field, instead of a timeout.
func TestMalformedReplyFailsWaiter(t *testing.T) {
	rec := newRecorder(false)
	th, err := newThing(rec, loadLight(t), WithResyncOnConnect(false))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- th.Report(ctx, map[string]int{"brightness": 1}) }()
	p, err := rec.waitPublished(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		ClientToken string `json:"clientToken"`
	}
	if err := json.Unmarshal(p.Payload, &req); err != nil {
		t.Fatal(err)
	}
	th.dispatch(th.topics.downProperty, []byte(`{"method":"report_reply","clientToken":"`+req.ClientToken+`","code":"zero"}`))
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "field code") || !strings.Contains(err.Error(), th.topics.downProperty) {
		t.Fatalf("want an error naming topic and field, got %v", err)
	}
}
