package explorer_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// lifecycle collects connection events for event-driven waits.
type lifecycle struct {
	lost      chan error
	connected chan struct{}
}

func newLifecycle() (*lifecycle, []explorer.Option) {
	l := &lifecycle{lost: make(chan error, 10), connected: make(chan struct{}, 10)}
	return l, []explorer.Option{
		explorer.WithOnConnectionLost(func(err error) { l.lost <- err }),
	}
}

func waitChan[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// TestReconnectAfterRestart: the platform goes away; publishes made meanwhile are queued and
// delivered in order after the reconnect, subscriptions are restored before the OnConnect
// hooks run, and a fresh signature is used.
func TestReconnectAfterRestart(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	c := dial(t, b, opts...)
	ctx := testCtx(t)

	got := make(chan explorer.Message, 10)
	if err := c.Subscribe(ctx, "test/down", 1, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	hookRan := make(chan explorer.Stats, 1)
	remove := c.OnConnect(func(ctx context.Context) { hookRan <- c.Stats() })
	defer remove()

	b.stop()
	waitChan(t, lc.lost, "connection lost")
	if s := c.State(); s != explorer.StateReconnecting {
		t.Fatalf("state %v, want reconnecting", s)
	}

	// Enqueue returns once queued; Publish waits for its PUBACK after the flush.
	for i := range 3 {
		if err := c.Enqueue("test/up", 0, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	qos1 := make(chan error, 1)
	go func() { qos1 <- c.Publish(ctx, "test/up", 1, []byte("3")) }()
	waitFor(t, func() bool { return c.Stats().Queued == 4 }, "4 queued publishes")

	b.start()
	st := waitChan(t, hookRan, "OnConnect hook")
	if st.Queued != 0 || st.Reconnects != 1 {
		t.Fatalf("at hook time: %+v, want queue flushed and 1 reconnect", st)
	}
	if err := waitChan(t, qos1, "queued QoS1 publish"); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if m := b.nextMessage(t, "test/up"); string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q (out of order)", i, m.Payload)
		}
	}
	// The subscription was restored.
	b.publish("test/down", "after-restart", 1)
	if m := recv(t, got); string(m.Payload) != "after-restart" {
		t.Fatalf("got %q", m.Payload)
	}
	if !c.IsConnected() {
		t.Fatalf("state %v", c.State())
	}
	users := b.usernames()
	if len(users) != 2 || users[0] == users[1] {
		t.Fatalf("want two distinct signatures, got %v", users)
	}
}

// TestReconnectAfterDrop: a dropped TCP connection heals with subscriptions restored.
func TestReconnectAfterDrop(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	hooks := make(chan struct{}, 10)
	opts = append(opts, explorer.WithOnConnect(func(context.Context) { hooks <- struct{}{} }))
	c := dial(t, b, opts...)
	waitChan(t, hooks, "first OnConnect option callback")
	ctx := testCtx(t)
	got := make(chan explorer.Message, 10)
	for _, f := range []string{"test/a", "test/b/+"} {
		if err := c.Subscribe(ctx, f, 0, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		b.dropAll()
		waitChan(t, lc.lost, "connection lost")
		waitChan(t, hooks, "OnConnect after reconnect")
		b.publish("test/a", "a", 0)
		b.publish("test/b/x", "b", 0)
		seen := map[string]bool{}
		for range 2 {
			seen[recv(t, got).Topic] = true
		}
		if !seen["test/a"] || !seen["test/b/x"] {
			t.Fatalf("round %d: subscriptions not restored: %v", round, seen)
		}
	}
	if n := c.Stats().Reconnects; n != 2 {
		t.Fatalf("reconnects %d", n)
	}
}

// TestSubscribeWhileDisconnected: a subscription made offline is sent on reconnect.
func TestSubscribeWhileDisconnected(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	c := dial(t, b, opts...)
	ctx := testCtx(t)
	b.stop()
	waitChan(t, lc.lost, "connection lost")
	got := make(chan explorer.Message, 1)
	if err := c.Subscribe(ctx, "test/offline", 0, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctx, "test/never"); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}, 1)
	c.OnConnect(func(context.Context) { connected <- struct{}{} })
	b.start()
	waitChan(t, connected, "reconnect")
	b.publish("test/offline", "x", 0)
	recv(t, got)
}

func TestQueueFull(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	c := dial(t, b, append(opts, explorer.WithQueueSize(2))...)
	ctx := testCtx(t)
	b.stop()
	waitChan(t, lc.lost, "connection lost")
	for i := range 2 {
		if err := c.Enqueue("test/q", 0, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Enqueue("test/q", 0, []byte("x"))
	if !errors.Is(err, explorer.ErrQueueFull) || !errors.Is(err, explorer.ErrNotSent) || !strings.Contains(err.Error(), "test/q") {
		t.Fatalf("Enqueue: err = %v, want ErrQueueFull and ErrNotSent naming the topic", err)
	}
	err = c.Publish(ctx, "test/q", 1, []byte("x"))
	if !errors.Is(err, explorer.ErrQueueFull) || !errors.Is(err, explorer.ErrNotSent) {
		t.Fatalf("Publish: err = %v, want ErrQueueFull and ErrNotSent", err)
	}
	c.Close() // discards the queue
	if err := c.Publish(ctx, "test/q", 0, nil); !errors.Is(err, explorer.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}

	// WithQueueSize(0): offline publishes fail at once.
	b.start()
	c2 := dial(t, b, append(opts, explorer.WithQueueSize(0))...)
	b.stop()
	waitChan(t, lc.lost, "connection lost")
	if err := c2.Publish(ctx, "test/q", 0, nil); !errors.Is(err, explorer.ErrNotConnected) || !errors.Is(err, explorer.ErrNotSent) {
		t.Fatalf("queue disabled: %v", err)
	}
	if err := c2.Enqueue("test/q", 0, nil); !errors.Is(err, explorer.ErrNotConnected) {
		t.Fatalf("queue disabled, Enqueue: %v", err)
	}
}

// TestHandlerPanicAndBlock: a panicking handler and a blocked one do not stop other
// subscriptions, keep-alive or publishing.
func TestHandlerPanicAndBlock(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b, explorer.WithHandlerConcurrency(1), explorer.WithHandlerTimeout(200*time.Millisecond), explorer.WithKeepAlive(2*time.Second))
	ctx := testCtx(t)

	unblock := make(chan struct{})
	defer close(unblock)
	blocked := make(chan struct{}, 1)
	if err := c.Subscribe(ctx, "test/block", 0, func(context.Context, explorer.Message) {
		blocked <- struct{}{}
		<-unblock // ignores ctx on purpose
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "test/panic", 0, func(context.Context, explorer.Message) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	ok := make(chan explorer.Message, 10)
	var deadlineSeen atomic.Bool
	if err := c.Subscribe(ctx, "test/ok", 0, func(hctx context.Context, m explorer.Message) {
		_, has := hctx.Deadline()
		deadlineSeen.Store(has)
		ok <- m
	}); err != nil {
		t.Fatal(err)
	}

	b.publish("test/block", "1", 0)
	waitChan(t, blocked, "blocking handler start")
	b.publish("test/panic", "1", 0)
	b.publish("test/panic", "2", 0)
	b.publish("test/ok", "1", 0)
	recv(t, ok) // runs once the stuck handler's slot is released at its deadline
	waitFor(t, func() bool { return c.Stats().HandlerPanics == 2 }, "2 recovered panics")
	if !deadlineSeen.Load() {
		t.Fatal("handler ctx has no deadline")
	}
	// Keep-alive (2s; mochi allows 3s of silence) kept running: still connected after several intervals, and
	// publishing still works.
	time.Sleep(4500 * time.Millisecond) // let two keep-alive periods pass
	if !c.IsConnected() {
		t.Fatalf("state %v", c.State())
	}
	if err := c.Publish(ctx, "test/ok", 1, []byte("2")); err != nil {
		t.Fatal(err)
	}
	recv(t, ok)
	if s := c.Stats(); s.HandlerOverruns < 1 || s.Reconnects != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestBacklogFullDrops: a subscription whose handler is stuck drops (and counts) messages
// beyond its backlog instead of stalling the connection.
func TestBacklogFullDrops(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b, explorer.WithHandlerBacklog(1))
	ctx := testCtx(t)
	unblock := make(chan struct{})
	defer close(unblock)
	started := make(chan struct{}, 1)
	if err := c.Subscribe(ctx, "test/slow", 0, func(context.Context, explorer.Message) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-unblock
	}); err != nil {
		t.Fatal(err)
	}
	fast := make(chan explorer.Message, 1)
	if err := c.Subscribe(ctx, "test/fast", 0, func(_ context.Context, m explorer.Message) { fast <- m }); err != nil {
		t.Fatal(err)
	}
	b.publish("test/slow", "0", 0)
	waitChan(t, started, "slow handler")
	for i := range 5 {
		b.publish("test/slow", fmt.Sprint(i+1), 0)
	}
	b.publish("test/fast", "x", 0)
	recv(t, fast) // delivered after the five slow ones: they were queued or dropped
	if d := c.Stats().DroppedMessages; d != 4 {
		t.Fatalf("dropped %d, want 4 (backlog 1 of 5)", d)
	}
}

// TestContextCancellation cancels every blocking call while the broker holds the answer.
func TestContextCancellation(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	c := dial(t, b, append(opts, explorer.WithAckTimeout(time.Hour))...)
	// The clock sync Dial starts must be answered first: a stalled packet below holds the
	// client's later packets in the broker, and a sync request released with it would
	// answer the ServerTime subtest (time replies carry no token).
	waitClockSync(t, c)
	release := b.stall("test/stall")

	calls := map[string]func(ctx context.Context) error{
		"Publish QoS1": func(ctx context.Context) error { return c.Publish(ctx, "test/stall/p", 1, []byte("x")) },
		"Subscribe": func(ctx context.Context) error {
			return c.Subscribe(ctx, "test/stall/s", 0, func(context.Context, explorer.Message) {})
		},
		"Unsubscribe": func(ctx context.Context) error { return c.Unsubscribe(ctx, "test/stall/u") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- call(ctx) }()
			time.Sleep(50 * time.Millisecond) // let the call reach the broker; not a sync point
			cancel()
			if err := waitChan(t, errc, name); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
	}
	release()

	t.Run("ServerTime", func(t *testing.T) {
		// No answer: the platform's reply never comes because the request is stalled.
		rel := b.stall("sysop/")
		defer rel()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := c.ServerTime(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("queued Publish", func(t *testing.T) {
		b.stop()
		waitChan(t, lc.lost, "connection lost")
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- c.Publish(ctx, "test/q", 1, []byte("x")) }()
		waitFor(t, func() bool { return c.Stats().Queued == 1 }, "queued")
		cancel()
		err := waitChan(t, errc, "queued publish")
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "withdrawn") {
			t.Fatalf("err = %v", err)
		}
		if q := c.Stats().Queued; q != 0 {
			t.Fatalf("still queued: %d", q)
		}
		if _, err := c.ServerTime(context.Background()); !errors.Is(err, explorer.ErrNotConnected) {
			t.Fatalf("offline ServerTime: %v", err)
		}
	})

	t.Run("Close unblocks", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- c.Publish(context.Background(), "test/q", 1, []byte("x")) }()
		waitFor(t, func() bool { return c.Stats().Queued == 1 }, "queued")
		c.Close()
		if err := waitChan(t, errc, "publish after Close"); !errors.Is(err, explorer.ErrClosed) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestNoGoroutineLeak: after Close everything the Conn started has ended.
func TestNoGoroutineLeak(t *testing.T) {
	b := newTestBroker(t)
	before := runtime.NumGoroutine()
	for range 3 {
		lc, opts := newLifecycle()
		c, err := explorer.Dial(testCtx(t), b.config(), append(opts, explorer.WithPlainTCP(), explorer.WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		var wg sync.WaitGroup
		got := make(chan explorer.Message, 100)
		for i := range 5 {
			if err := c.Subscribe(ctx, fmt.Sprintf("test/leak/%d", i), 1, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
				t.Fatal(err)
			}
		}
		c.OnConnect(func(ctx context.Context) { <-ctx.Done() })
		reconnected := make(chan struct{}, 1)
		c.OnConnect(func(context.Context) { reconnected <- struct{}{} })
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.Publish(ctx, fmt.Sprintf("test/leak/%d", i), 1, []byte("x"))
			}()
		}
		wg.Wait()
		b.dropAll()
		waitChan(t, lc.lost, "lost")
		waitChan(t, reconnected, "reconnected")
		if _, err := c.ServerTime(ctx); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before }, fmt.Sprintf("goroutines back to %d", before))
}

// waitFor polls cond (for state only observable by polling) with a generous deadline.
// waitClockSync waits until the clock sync a connect starts has been answered, so that its
// reply (time replies carry no token) cannot answer a ServerTime call the test makes later.
func waitClockSync(t *testing.T, c *explorer.Conn) {
	t.Helper()
	waitFor(t, func() bool { _, known := c.ClockOffset(); return known }, "connect-time clock sync")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("timed out waiting for %s\n%s", what, buf[:n])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestInFlightQoS1Resent: a QoS1 publish whose connection drops before the PUBACK is
// re-sent on the next connection and Publish then succeeds (at-least-once).
func TestInFlightQoS1Resent(t *testing.T) {
	b := newTestBroker(t)
	lc, opts := newLifecycle()
	c := dial(t, b, append(opts, explorer.WithAckTimeout(time.Hour))...)
	ctx := testCtx(t)
	release := b.stall("test/inflight")
	errc := make(chan error, 1)
	go func() { errc <- c.Publish(ctx, "test/inflight", 1, []byte("once")) }()
	time.Sleep(50 * time.Millisecond) // let the PUBLISH reach the stalled broker; not a sync point
	b.dropAll()
	waitChan(t, lc.lost, "connection lost")
	release()
	if err := waitChan(t, errc, "publish"); err != nil {
		t.Fatal(err)
	}
	if m := b.nextMessage(t, "test/inflight"); string(m.Payload) != "once" {
		t.Fatalf("got %q", m.Payload)
	}
}

// TestPublishAckTimeout: no PUBACK within the ack timeout gives ErrTimeout naming the topic.
func TestPublishAckTimeout(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b, explorer.WithAckTimeout(100*time.Millisecond))
	release := b.stall("test/slow")
	defer release()
	err := c.Publish(testCtx(t), "test/slow", 1, []byte("x"))
	if !errors.Is(err, explorer.ErrTimeout) || !strings.Contains(err.Error(), `"test/slow"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestHandlerMayCallConn: handlers can publish and subscribe on their own Conn.
func TestHandlerMayCallConn(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b)
	ctx := testCtx(t)
	echoed := make(chan explorer.Message, 1)
	if err := c.Subscribe(ctx, "test/echo/out", 1, func(_ context.Context, m explorer.Message) { echoed <- m }); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	if err := c.Subscribe(ctx, "test/echo/in", 1, func(hctx context.Context, m explorer.Message) {
		published <- c.Publish(hctx, "test/echo/out", 1, m.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	b.publish("test/echo/in", "ping", 1)
	if m := recv(t, echoed); string(m.Payload) != "ping" {
		t.Fatalf("got %q", m.Payload)
	}
	if err := waitChan(t, published, "handler's publish"); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedPublishGivenUp: a QoS1 message the broker answers by disconnecting is not
// re-sent forever; the connection settles and other publishes go through.
func TestRefusedPublishGivenUp(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b)
	ctx := testCtx(t)

	// The caller waits: it gets an error after a few attempts.
	err := c.Publish(ctx, "test/poison/a", 1, []byte("x"))
	if !errors.Is(err, explorer.ErrNotConnected) || !strings.Contains(err.Error(), "given up") {
		t.Fatalf("err = %v", err)
	}
	// The caller gives up first: the message is dropped at the next loss, not re-sent.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := c.Publish(short, "test/poison/b", 1, []byte("x")); err == nil {
		t.Fatal("refused publish succeeded")
	}
	waitFor(t, func() bool { return c.Stats().Queued == 0 }, "queue empty")
	if err := c.Publish(ctx, "test/ok", 1, []byte("fine")); err != nil {
		t.Fatal(err)
	}
	if m := b.nextMessage(t, "test/ok"); string(m.Payload) != "fine" {
		t.Fatalf("got %q", m.Payload)
	}
	if s := c.Stats(); s.GivenUp < 1 {
		t.Fatalf("stats %+v", s)
	}
}
