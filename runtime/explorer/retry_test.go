package explorer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/faultproxy"
	"github.com/tplgen/tplgen/runtime/explorer"
)

func refusingProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	p.Refuse(true)
	return p
}

// TestConnectRetryWaitsForNetwork: with WithConnectRetry the first Dial keeps trying while
// the broker is unreachable and connects once it is back.
func TestConnectRetryWaitsForNetwork(t *testing.T) {
	b := newTestBroker(t)
	p := refusingProxy(t, b.plain)
	cfg := b.config()
	cfg.Broker = "tcp://" + p.Addr()
	opts := []explorer.Option{explorer.WithPlainTCP(), explorer.WithConnectRetry(), explorer.WithReconnectBackoff(20*time.Millisecond, 50*time.Millisecond)}

	// Without the option: one attempt, refused.
	if _, err := explorer.Dial(testCtx(t), cfg, explorer.WithPlainTCP()); !errors.Is(err, explorer.ErrConnectionRefused) {
		t.Fatalf("Dial without retry: %v, want ErrConnectionRefused", err)
	}

	done := make(chan error, 1)
	go func() {
		c, err := explorer.Dial(testCtx(t), cfg, opts...)
		if err == nil {
			defer c.Close()
			err = c.Publish(testCtx(t), "test/retry", 1, []byte("up"))
		}
		done <- err
	}()
	waitFor(t, func() bool { return p.Stats().Refused >= 3 }, "three refused attempts")
	p.Refuse(false)
	if err := waitChan(t, done, "Dial after the network came up"); err != nil {
		t.Fatal(err)
	}
	if m := b.nextMessage(t, "test/retry"); string(m.Payload) != "up" {
		t.Fatalf("got %q", m.Payload)
	}

	// ctx ends while the network is down: the error says so and keeps the last failure.
	p.Refuse(true)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := explorer.Dial(ctx, cfg, opts...)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, explorer.ErrTimeout) {
		t.Fatalf("Dial with retry until ctx ends: %v", err)
	}

	// A refusal that will not heal is not retried.
	p.Refuse(false)
	bad := cfg
	bad.DeviceSecret = "d3Jvbmctc2VjcmV0LTEyMw=="
	start := time.Now()
	if _, err := explorer.Dial(testCtx(t), bad, opts...); !errors.Is(err, explorer.ErrBadCredentials) {
		t.Fatalf("bad credentials with retry: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("bad credentials were retried for %v", el)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDefaultLoggerIsSlogDefault: without WithLogger the Conn logs through slog.Default, so
// a handler panic is visible.
func TestDefaultLoggerIsSlogDefault(t *testing.T) {
	var buf syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)

	b := newTestBroker(t)
	c := dial(t, b)
	if err := c.Subscribe(testCtx(t), "test/panic", 0, func(context.Context, explorer.Message) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	b.publish("test/panic", "x", 0)
	waitFor(t, func() bool { return strings.Contains(buf.String(), "handler panicked") }, "the panic in the default log")
	if !strings.Contains(buf.String(), "test/panic") {
		t.Fatalf("log %q does not name the topic", buf.String())
	}
}
