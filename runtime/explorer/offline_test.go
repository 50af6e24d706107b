package explorer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/faultproxy"
	"github.com/tplgen/tplgen/runtime/explorer"
)

// proxied dials the test broker through a fault proxy.
func proxied(t *testing.T, b *testBroker, opts ...explorer.Option) (*explorer.Conn, *faultproxy.Proxy) {
	t.Helper()
	p, err := faultproxy.New(b.plain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	cfg := b.config()
	cfg.Broker = "tcp://" + p.Addr()
	opts = append([]explorer.Option{explorer.WithPlainTCP(), explorer.WithReconnectBackoff(20*time.Millisecond, 100*time.Millisecond)}, opts...)
	c, err := explorer.Dial(testCtx(t), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, p
}

// drainTopic collects the uplinks on topic until marker arrives.
func drainUntil(t *testing.T, b *testBroker, topic, marker string) []string {
	t.Helper()
	var got []string
	for {
		m := b.nextMessage(t, topic)
		if string(m.Payload) == marker {
			return got
		}
		got = append(got, string(m.Payload))
	}
}

// TestOfflinePublishWithdrawn: with the link cut, publishes whose ctx ends while they wait in
// the offline queue fail with ErrNotSent and are never sent after the reconnect; a retry
// after the reconnect is delivered exactly once.
func TestOfflinePublishWithdrawn(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	c, p := proxied(t, b, opts...)

	p.Refuse(true)
	p.Cut()
	waitChan(t, lc.lost, "connection lost")
	for i := range 6 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := c.Publish(ctx, "test/off", byte(i%2), []byte(fmt.Sprint("timed-out-", i)))
		cancel()
		if !errors.Is(err, explorer.ErrNotSent) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("publish %d while offline: %v, want ErrNotSent and DeadlineExceeded", i, err)
		}
	}
	if q := c.Stats().Queued; q != 0 {
		t.Fatalf("%d messages still queued after their callers gave up", q)
	}
	// The marker goes through the queue too, so anything withdrawn would arrive before it.
	if err := c.Enqueue("test/off", 1, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	p.Refuse(false)
	if got := drainUntil(t, b, "test/off", "marker"); len(got) != 0 {
		t.Fatalf("the platform received withdrawn messages: %q", got)
	}
	// The caller retries: one copy each.
	ctx := testCtx(t)
	for i := range 6 {
		if err := c.Publish(ctx, "test/off", byte(i%2), []byte(fmt.Sprint("retry-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, "test/off", 1, []byte("end")); err != nil {
		t.Fatal(err)
	}
	got := drainUntil(t, b, "test/off", "end")
	if len(got) != 6 {
		t.Fatalf("after the retries the platform received %q, want each retry once", got)
	}
	for i, s := range got {
		if s != fmt.Sprint("retry-", i) {
			t.Fatalf("message %d = %q", i, s)
		}
	}
}

// TestPublishWaitsForReconnect: a Publish made offline with enough time is sent after the
// reconnect and returns nil only then.
func TestPublishWaitsForReconnect(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	c, p := proxied(t, b, opts...)
	p.Refuse(true)
	p.Cut()
	waitChan(t, lc.lost, "connection lost")
	done := make(chan error, 1)
	go func() { done <- c.Publish(testCtx(t), "test/wait", 0, []byte("late")) }()
	waitFor(t, func() bool { return c.Stats().Queued == 1 }, "the publish to be queued")
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while still offline", err)
	default:
	}
	p.Refuse(false)
	if err := waitChan(t, done, "publish after the reconnect"); err != nil {
		t.Fatal(err)
	}
	if m := b.nextMessage(t, "test/wait"); string(m.Payload) != "late" {
		t.Fatalf("got %q", m.Payload)
	}
}

// TestEnqueueWhileConnected: enqueued messages go out in order on a live connection too.
func TestEnqueueWhileConnected(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b)
	for i := range 5 {
		if err := c.Enqueue("test/enq", byte(i%2), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if m := b.nextMessage(t, "test/enq"); string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d = %q", i, m.Payload)
		}
	}
	waitFor(t, func() bool { return c.Stats().Queued == 0 }, "the queue to empty")
	if err := c.Enqueue("test/enq", 2, nil); !errors.Is(err, explorer.ErrInvalidQoS) {
		t.Fatalf("Enqueue QoS 2: %v", err)
	}
}
