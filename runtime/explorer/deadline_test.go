package explorer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/faultproxy"
	"github.com/tplgen/tplgen/runtime/explorer"
)

// Issue 16: every call that takes a ctx returns within its deadline plus a small bound,
// whatever the network does. The network faults are real: a TCP proxy between the Conn and
// the broker black-holes, stalls or half-closes the link.

// deadlineSlack is how late a call may return after its ctx's deadline.
const deadlineSlack = 100 * time.Millisecond

// within runs call with a ctx of timeout d and fails if it returns later than d + slack.
// The machine running the tests is shared and noisy, so a late return is tried again up to
// twice: a call that really waits on the network is late every time (by seconds), while a
// scheduling hiccup does not repeat three times in a row.
func within(t *testing.T, what string, d time.Duration, call func(ctx context.Context) error) error {
	t.Helper()
	var late []time.Duration
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		start := time.Now()
		err := call(ctx)
		el := time.Since(start)
		cancel()
		if el <= d+deadlineSlack {
			return err
		}
		late = append(late, el)
		if err == nil {
			return nil
		}
	}
	t.Errorf("%s with a %v ctx returned after %v", what, d, late)
	return errors.New("late")
}

// fillStalledLink publishes until a QoS 0 publish can no longer be written (the proxy stopped
// reading, the kernel buffers are full), each publish bounded by a short ctx.
func fillStalledLink(t *testing.T, c *explorer.Conn) {
	t.Helper()
	payload := make([]byte, explorer.MaxPayloadSize)
	for i := 0; ; i++ {
		err := within(t, "QoS 0 publish into a filling link", 200*time.Millisecond, func(ctx context.Context) error {
			return c.Publish(ctx, "test/fill", 0, payload)
		})
		if err != nil {
			return
		}
		if i > 4000 {
			t.Fatal("64 MB written into a stalled link without blocking")
		}
	}
}

func TestDeadlinesStalledLink(t *testing.T) {
	b := newTestBroker(t)
	c, p := proxied(t, b, explorer.WithKeepAlive(0))
	waitClockSync(t, c) // a late answer would let the ServerTime below succeed
	ctx := testCtx(t)
	if err := c.Subscribe(ctx, "test/before", 0, func(context.Context, explorer.Message) {}); err != nil {
		t.Fatal(err)
	}
	p.SetMode(faultproxy.Stall)
	t0 := time.Now()
	fillStalledLink(t, c)
	t.Logf("filled in %v", time.Since(t0))
	for _, qos := range []byte{0, 1} {
		for range 3 {
			if err := within(t, "Publish on a stalled link", 300*time.Millisecond, func(ctx context.Context) error {
				return c.Publish(ctx, "test/stalled", qos, []byte("x"))
			}); err == nil {
				t.Fatalf("QoS %d publish on a stalled link succeeded", qos)
			}
		}
	}
	if err := within(t, "Subscribe on a stalled link", 300*time.Millisecond, func(ctx context.Context) error {
		return c.Subscribe(ctx, "test/stalled-sub", 0, func(context.Context, explorer.Message) {})
	}); err == nil {
		t.Fatal("Subscribe on a stalled link succeeded")
	}
	if err := within(t, "Unsubscribe on a stalled link", 300*time.Millisecond, func(ctx context.Context) error {
		return c.Unsubscribe(ctx, "test/before")
	}); err == nil {
		t.Fatal("Unsubscribe on a stalled link succeeded")
	}
	if err := within(t, "ServerTime on a stalled link", 300*time.Millisecond, func(ctx context.Context) error {
		_, err := c.ServerTime(ctx)
		return err
	}); err == nil {
		t.Fatal("ServerTime on a stalled link succeeded")
	}
	start := time.Now()
	c.Close()
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close on a stalled link took %v", el)
	}
}

func TestDeadlinesBlackHole(t *testing.T) {
	b := newTestBroker(t)
	c, p := proxied(t, b, explorer.WithKeepAlive(0))
	waitClockSync(t, c) // a late answer would let the ServerTime below succeed
	p.SetMode(faultproxy.BlackHole)
	// QoS 0 is written into the void and succeeds, as on a real dead route; QoS 1 waits for a
	// PUBACK that never comes.
	if err := within(t, "QoS 1 Publish into a black hole", 300*time.Millisecond, func(ctx context.Context) error {
		return c.Publish(ctx, "test/bh", 1, []byte("x"))
	}); err == nil {
		t.Fatal("QoS 1 publish into a black hole succeeded")
	}
	if err := within(t, "Subscribe into a black hole", 300*time.Millisecond, func(ctx context.Context) error {
		return c.Subscribe(ctx, "test/bh-sub", 1, func(context.Context, explorer.Message) {})
	}); err == nil {
		t.Fatal("Subscribe into a black hole succeeded")
	}
	if err := within(t, "ServerTime into a black hole", 300*time.Millisecond, func(ctx context.Context) error {
		_, err := c.ServerTime(ctx)
		return err
	}); err == nil {
		t.Fatal("ServerTime into a black hole succeeded")
	}

	// Dial through the black hole: the CONNACK never comes.
	cfg := b.config()
	cfg.Broker = "tcp://" + p.Addr()
	if err := within(t, "Dial into a black hole", 300*time.Millisecond, func(ctx context.Context) error {
		c2, err := explorer.Dial(ctx, cfg, explorer.WithPlainTCP())
		if err == nil {
			c2.Close()
		}
		return err
	}); err == nil {
		t.Fatal("Dial into a black hole succeeded")
	}
	start := time.Now()
	c.Close()
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close on a black-holed link took %v", el)
	}
}

func TestDeadlinesHalfOpen(t *testing.T) {
	b := newTestBroker(t)
	c, p := proxied(t, b, explorer.WithKeepAlive(0))
	// The broker's side goes away but the device is never told (its FIN is swallowed and
	// everything it sends is dropped): a half-open connection.
	p.SetMode(faultproxy.BlackHole)
	p.HalfClose(faultproxy.Up)
	for _, qos := range []byte{0, 1} {
		_ = within(t, "Publish on a half-open link", 300*time.Millisecond, func(ctx context.Context) error {
			return c.Publish(ctx, "test/half", qos, []byte("x"))
		})
	}
	if err := within(t, "Subscribe on a half-open link", 300*time.Millisecond, func(ctx context.Context) error {
		return c.Subscribe(ctx, "test/half-sub", 1, func(context.Context, explorer.Message) {})
	}); err == nil {
		t.Fatal("Subscribe on a half-open link succeeded")
	}
}

func TestDeadlinesThrottledDial(t *testing.T) {
	b := newTestBroker(t)
	p, err := faultproxy.New(b.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Throttle(200) // a TLS handshake needs a few KB: far longer than the ctx
	cfg := b.config()
	cfg.Broker = "tls://" + p.Addr()
	if err := within(t, "Dial over a 200 B/s link", 300*time.Millisecond, func(ctx context.Context) error {
		c, err := explorer.Dial(ctx, cfg, explorer.WithRootCAs(b.caPool))
		if err == nil {
			c.Close()
		}
		return err
	}); err == nil {
		t.Fatal("Dial over a 200 B/s link succeeded within 300 ms")
	}
}
