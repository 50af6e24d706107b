package explorer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeMessage is a received PUBLISH as paho hands it to the default handler.
type fakeMessage struct{ topic string }

func (m fakeMessage) Duplicate() bool   { return false }
func (m fakeMessage) Qos() byte         { return 0 }
func (m fakeMessage) Retained() bool    { return false }
func (m fakeMessage) Topic() string     { return m.topic }
func (m fakeMessage) MessageID() uint16 { return 0 }
func (m fakeMessage) Payload() []byte   { return []byte(m.topic) }
func (m fakeMessage) Ack()              {}

// routeConn is a Conn with just what routing needs (no network).
func routeConn(t *testing.T) *Conn {
	o := defaultOptions()
	c := &Conn{
		opts: o,
		log:  slog.New(slog.DiscardHandler),
		sem:  make(chan struct{}, o.handlerConcurrency),
		subs: map[string]*subscription{},
		wild: map[string]*subscription{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() {
		c.cancel()
		c.subWG.Wait()
	})
	return c
}

// recorder collects which filters' handlers saw which topics.
type recorder struct {
	mu  sync.Mutex
	got map[string][]string // topic -> filters
	wg  sync.WaitGroup
}

func (r *recorder) handler(filter string) Handler {
	return func(_ context.Context, m Message) {
		r.mu.Lock()
		r.got[m.Topic] = append(r.got[m.Topic], filter)
		r.mu.Unlock()
		r.wg.Done()
	}
}

// TestDispatchRouting checks the exact-topic map plus wildcard list against topicMatches,
// including '$' topics, replacing and removing subscriptions.
func TestDispatchRouting(t *testing.T) {
	c := routeConn(t)
	r := &recorder{got: map[string][]string{}}
	filters := []string{"a/b", "a/+", "#", "+/x", "$sys/x", "$sys/#", "a/b/c", "a/#"}
	for _, f := range filters {
		c.mu.Lock()
		c.putSub(newSubscription(f, 0, r.handler(f)))
		c.mu.Unlock()
	}
	topics := []string{"a/b", "a/c", "a", "q/x", "$sys/x", "$sys/y", "a/b/c", "b"}
	want := map[string][]string{}
	for _, tp := range topics {
		for _, f := range filters {
			if topicMatches(f, tp) {
				want[tp] = append(want[tp], f)
			}
		}
	}
	deliver := func(topics ...string) {
		n := 0
		for _, tp := range topics {
			n += len(want[tp])
		}
		r.wg.Add(n)
		for _, tp := range topics {
			c.dispatch(fakeMessage{tp})
		}
		r.wg.Wait()
	}
	check := func(stage string) {
		t.Helper()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, tp := range topics {
			got := slices.Clone(r.got[tp])
			sort.Strings(got)
			w := slices.Clone(want[tp])
			sort.Strings(w)
			if !slices.Equal(got, w) {
				t.Errorf("%s: %q reached %v, want %v", stage, tp, got, w)
			}
		}
		r.got = map[string][]string{}
	}
	deliver(topics...)
	check("all subscribed")
	if len(c.wild) != 5 {
		t.Fatalf("wildcard index holds %d filters, want 5", len(c.wild))
	}

	// Removing a wildcard and an exact filter updates both indexes.
	c.mu.Lock()
	c.removeSub("a/+", nil)
	c.removeSub("a/b", nil)
	c.mu.Unlock()
	if _, ok := c.wild["a/+"]; ok {
		t.Fatal("removed wildcard still indexed")
	}
	for tp, fs := range want {
		want[tp] = slices.DeleteFunc(fs, func(f string) bool { return f == "a/+" || f == "a/b" })
	}
	deliver(topics...)
	check("after removal")

	// Replacing a filter routes to the new handler only.
	c.mu.Lock()
	old := c.putSub(newSubscription("#", 0, r.handler("#2")))
	c.mu.Unlock()
	old.stop()
	for tp, fs := range want {
		for i, f := range fs {
			if f == "#" {
				fs[i] = "#2"
			}
		}
		want[tp] = fs
	}
	deliver(topics...)
	check("after replacing #")
}

// TestWorkerOrderAndIdle: one subscription's messages are handled in order, one at a time,
// and its worker goroutine ends once the backlog has stayed empty for a while.
func TestWorkerOrderAndIdle(t *testing.T) {
	c := routeConn(t)
	var mu sync.Mutex
	var got []string
	running, maxRunning := 0, 0
	done := make(chan struct{})
	const n = 200
	s := newSubscription("t", 0, func(_ context.Context, m Message) {
		mu.Lock()
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		mu.Lock()
		running--
		got = append(got, string(m.Payload))
		if len(got) == n {
			close(done)
		}
		if len(got) > n+1 {
			t.Errorf("handled %d messages, want %d", len(got), n+1)
		}
		mu.Unlock()
	})
	c.mu.Lock()
	c.putSub(s)
	c.mu.Unlock()
	for i := range n {
		c.mu.Lock()
		c.enqueue1(s, Message{Topic: "t", Payload: []byte(fmt.Sprint(i))})
		c.mu.Unlock()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("messages not handled")
	}
	// One more while the worker lingers (or after it ended: either way it is handled).
	c.mu.Lock()
	c.enqueue1(s, Message{Topic: "t", Payload: []byte(fmt.Sprint(n))})
	c.mu.Unlock()
	c.subWG.Wait() // the worker ends after workerLinger without messages
	if len(got) != n+1 {
		t.Fatalf("handled %d messages, want %d", len(got), n+1)
	}
	for i, p := range got {
		if p != fmt.Sprint(i) {
			t.Fatalf("message %d handled as %q: out of order", i, p)
		}
	}
	if maxRunning != 1 {
		t.Fatalf("%d handler calls of one subscription ran at once", maxRunning)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running || s.head != 0 || len(s.backlog) != 0 {
		t.Fatalf("idle subscription still has state: running=%v head=%d backlog=%d", s.running, s.head, len(s.backlog))
	}
}
