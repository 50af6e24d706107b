package thing

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// newFuzzThing returns a Thing on a recorder whose handlers accept everything.
func newFuzzThing(t testing.TB) (*Thing, *recorder) {
	rec := newRecorder(false)
	th, err := newThing(rec, loadLight(t),
		WithResyncOnConnect(false),
		WithControlHandler(func(context.Context, []byte) error { return nil }),
		WithActionHandler(func(context.Context, string, []byte) (any, error) {
			return map[string]int{"err_code": 1}, nil
		}),
		WithServiceHandler(func(context.Context, string, []byte) {}))
	if err != nil {
		t.Fatal(err)
	}
	return th, rec
}

// FuzzDownlink feeds arbitrary bytes to the downlink dispatcher on every topic kind: it
// must never panic, and whatever it answers must be a well-formed reply.
func FuzzDownlink(f *testing.F) {
	for _, l := range loadTranscript(f) {
		if l.Dir == "cloud->device" {
			f.Add(0, []byte(l.Payload))
		}
	}
	seeds := []string{
		`{"method":"control","clientToken":"a","params":{"brightness":101}}`,
		`{"method":"control","clientToken":"a","params":{"nope":1}}`,
		`{"method":"control","clientToken":"a"}`,
		`{"method":"control","clientToken":7,"params":{}}`,
		`{"method":"action","clientToken":"b","actionId":"light_on","params":{"is_on":2}}`,
		`{"method":"action","clientToken":"b","actionId":"nope"}`,
		`{"method":"action","clientToken":"b"}`,
		`{"method":"report_reply","clientToken":"ABCDEFGHIJ-0","code":"x"}`,
		`{"method":"unbind_device","clientToken":"c","timestamp":1}`,
		`{"method":"what"}`, `null`, `[]`, `{`, `{"method":null}`, "\x00\xff",
	}
	for i, s := range seeds {
		f.Add(i%4, []byte(s))
	}
	th, rec := newFuzzThing(f)
	defer th.Close(context.Background())
	kinds := []string{topicKindProperty, topicKindEvent, topicKindAction, topicKindService}
	f.Fuzz(func(t *testing.T, kind int, payload []byte) {
		if kind < 0 {
			kind = -kind
		}
		topic := downTopicPrefix + kinds[kind%len(kinds)] + "/ABCDEFGHIJ/dev1"
		before := rec.count()
		th.dispatch(topic, payload)
		// Replies from the worker/action goroutines may still be on their way; wait for
		// the worker to drain so every reply of this input is checked.
		drained := make(chan struct{})
		select {
		case th.controlQueue() <- func() { close(drained) }:
			th.kick()
			<-drained
		case <-time.After(10 * time.Second):
			t.Fatal("control worker stuck")
		}
		rec.mu.Lock()
		out := append([]published(nil), rec.published[before:]...)
		rec.mu.Unlock()
		for _, p := range out {
			var r struct {
				Method      string `json:"method"`
				ClientToken string `json:"clientToken"`
				Code        *int   `json:"code"`
			}
			if err := json.Unmarshal(p.Payload, &r); err != nil {
				t.Fatalf("reply is not JSON: %s", p.Payload)
			}
			if !strings.HasSuffix(r.Method, "_reply") || r.Code == nil || r.ClientToken == "" {
				t.Fatalf("malformed reply %s for input %q", p.Payload, payload)
			}
		}
	})
}

// FuzzParseDown: the one-pass field picker agrees with encoding/json on every well-formed
// object (same members, last duplicate wins) and never panics on anything.
func FuzzParseDown(f *testing.F) {
	for _, s := range []string{
		`{"method":"report_reply","clientToken":"P-1","code":0,"status":"ok"}`,
		`{"method":"control","clientToken":"a\"b","params":{"x":[1,{"y":"}"}]},"method":"x"}`,
		` { "method" : "a" , "data" : { } } `, `{"params":"{"}`, `{}`, `[]`, `{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseDown(data)
		var std map[string]stdjson.RawMessage
		if stdjson.Unmarshal(data, &std) != nil || !stdjson.Valid(data) || bytes.IndexByte(data, '\\') >= 0 {
			return // keys are compared raw: escapes would make the same key look different
		}
		seen := map[string][]byte{}
		eachMember(data, func(k, v []byte) { seen[string(k)] = v })
		for k, v := range std {
			if strings.ContainsRune(k, '\uFFFD') { // invalid UTF-8 repaired by encoding/json
				continue
			}
			if got, ok := seen[k]; !ok || !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(v)) {
				t.Fatalf("member %q: picked %q, encoding/json %q", k, got, v)
			}
		}
		if m == nil && err == nil {
			t.Fatal("no message and no error")
		}
		if m != nil && m.Params != nil && !stdjson.Valid(m.Params) {
			t.Fatalf("params %q not valid JSON", m.Params)
		}
	})
}
