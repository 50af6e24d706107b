package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReadSSE(t *testing.T) {
	in := ": comment\n" +
		"event: hello\ndata: {\"last_id\":3}\n\n" +
		"id: 4\nevent: event\ndata: {\"a\":\n" + "data: 1}\n\n" +
		"id: 5\r\ndata: plain\r\n\r\n" + // CRLF endings; no event type = "message"
		"event: nodata\n\n" + // no data: not dispatched
		"data:no-space\n\n" +
		"id: 6\nevent: cut"
	var got []sseEvent
	err := readSSE(strings.NewReader(in), func(ev sseEvent) error {
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sseEvent{
		{Type: "hello", Data: []byte(`{"last_id":3}`)},
		{ID: "4", Type: "event", Data: []byte("{\"a\":\n1}")},
		{ID: "5", Type: "message", Data: []byte("plain")},
		{ID: "5", Type: "message", Data: []byte("no-space")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	stop := errors.New("stop")
	if err := readSSE(strings.NewReader("data: x\n\ndata: y\n\n"), func(sseEvent) error { return stop }); err != stop {
		t.Errorf("callback error not returned: %v", err)
	}
	huge := "data: " + strings.Repeat("x", maxSSEEvent+1) + "\n\n"
	if err := readSSE(strings.NewReader(huge), func(sseEvent) error { return nil }); err == nil || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("oversized event: %v", err)
	}
}

func TestRecentKeys(t *testing.T) {
	r := newRecentKeys(2)
	if !r.add("a") || !r.add("b") || r.add("a") || !r.add("c") || !r.add("a") || r.add("c") {
		t.Error("recentKeys: wrong answers")
	}
	if len(r.set) != 2 || len(r.fifo) != 2 {
		t.Errorf("not bounded: %d %d", len(r.set), len(r.fifo))
	}
}

// FuzzReadSSE feeds the stream parser arbitrary bytes (the stream comes from the network):
// no panic, and every dispatched event within the size bound.
func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("event: hello\ndata: {}\n\nid: 1\nevent: ota\ndata: {\"device\":\"P/D\"}\n\n"))
	f.Add([]byte(":c\r\ndata\r\n\r\nid:\x00\ndata: a\rdata: b\r\r"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = readSSE(strings.NewReader(string(in)), func(ev sseEvent) error {
			if len(ev.Data) > maxSSEEvent+len(in) {
				t.Fatalf("event of %d bytes", len(ev.Data))
			}
			return nil
		})
	})
}
