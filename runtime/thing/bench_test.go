package thing

import (
	"context"
	"testing"

	json "github.com/goccy/go-json"
)

// Downlink costs without the network (the round trips are in examples/light/bench_test.go).
// See docs/BENCHMARKS.md (data template).

var benchControl = []byte(`{"method":"control","clientToken":"clientToken-9f0c3a3e-5d1e-4f0e-9d51-0a6b7c0e2b11","params":{"power_switch":1,"color":2,"brightness":80,"name":"hall"}}`)

// BenchmarkParseDown compares parseDown (field-by-field, kind-checked, for precise errors)
// with a plain json.Unmarshal into a struct, the baseline.
func BenchmarkParseDown(b *testing.B) {
	b.Run("parseDown", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := parseDown(benchControl); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var m struct {
				Method      string          `json:"method"`
				ClientToken string          `json:"clientToken"`
				Code        *int            `json:"code"`
				Status      string          `json:"status"`
				Params      json.RawMessage `json:"params"`
			}
			if err := json.Unmarshal(benchControl, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkControl: one control through dispatch, template check, handler and the
// control_reply, on an in-memory transport.
func BenchmarkControl(b *testing.B) {
	rec := newRecorder(false)
	done := make(chan struct{}, 1)
	th, err := newThing(rec, loadLight(b), WithResyncOnConnect(false),
		WithControlHandler(func(context.Context, []byte) error { return nil }))
	if err != nil {
		b.Fatal(err)
	}
	defer th.Close(context.Background())
	topic := th.topics.downProperty
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		th.dispatch(topic, benchControl)
		th.controlQueue() <- func() { done <- struct{}{} }
		th.kick()
		<-done
	}
	b.StopTimer()
	if rec.count() != b.N {
		b.Fatalf("%d replies for %d controls", rec.count(), b.N)
	}
}
