package explorer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// These tests run the Conn against explorertest, the in-process platform (TLS with its own
// CA, platform auth and ACL, $sys/operation time service, fault injection).

func newPlatform(t *testing.T) *explorertest.Server {
	t.Helper()
	s, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPlatformKeyDevice(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 4)
	opts := append(p.DialOptions(), explorer.WithOnConnectionLost(func(err error) { lost <- err }))
	c, err := explorer.Dial(testCtx(t), p.DeviceConfig(testPID, testDN), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)

	custom := testPID + "/" + testDN + "/data"
	got := make(chan explorer.Message, 4)
	if err := c.Subscribe(ctx, custom, 1, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, custom, 1, []byte("loop")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); string(m.Payload) != "loop" {
		t.Fatalf("got %q", m.Payload)
	}
	st, err := c.ServerTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(st); d > time.Minute || d < -time.Minute {
		t.Fatalf("server time %v", st)
	}

	// Platform restart: the subscription comes back and a queued publish is delivered.
	reconnected := make(chan struct{}, 1)
	c.OnConnect(func(context.Context) { reconnected <- struct{}{} })
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitChan(t, lost, "connection lost")
	waitChan(t, reconnected, "reconnect")
	if err := p.Publish(custom, []byte("after"), 1); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); string(m.Payload) != "after" {
		t.Fatalf("got %q", m.Payload)
	}

	p.DropConnections()
	waitChan(t, lost, "connection lost")
	waitChan(t, reconnected, "reconnect after drop")
	if !c.IsConnected() {
		t.Fatalf("state %v", c.State())
	}
}

func TestPlatformCertificateDevice(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.AddDevice(testPID, "certdev", explorertest.WithCertificate()); err != nil {
		t.Fatal(err)
	}
	cfg := p.DeviceConfig(testPID, "certdev")
	if cfg.Certificate == nil {
		t.Fatal("DeviceConfig gave no certificate")
	}
	c, err := explorer.Dial(testCtx(t), cfg, p.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestPlatformRefusals(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	cfg := p.DeviceConfig(testPID, testDN)
	cfg.DeviceSecret = "d3Jvbmctc2VjcmV0LTEyMw=="
	if _, err := explorer.Dial(testCtx(t), cfg, p.DialOptions()...); !errors.Is(err, explorer.ErrBadCredentials) {
		t.Fatalf("wrong secret: %v", err)
	}
	cfg = p.DeviceConfig(testPID, testDN)
	if _, err := explorer.Dial(testCtx(t), cfg); !errors.Is(err, explorer.ErrTLS) {
		t.Fatalf("test CA not trusted: %v", err)
	}
}

// plainSubscriber wraps a Conn, offering Subscribe only (a program's own wrapper or fake).
type plainSubscriber struct{ c *explorer.Conn }

func (p plainSubscriber) Subscribe(ctx context.Context, filter string, qos byte, h explorer.Handler) error {
	return p.c.Subscribe(ctx, filter, qos, h)
}

// OwnedSubscribe makes the subscription owned on a *Conn (a later Subscribe of the filter
// fails with ErrFilterOwned) and falls back to Subscribe on a connection without
// SubscribeOwned.
func TestOwnedSubscribe(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	c, err := explorer.Dial(testCtx(t), p.DeviceConfig(testPID, testDN), p.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	nop := func(context.Context, explorer.Message) {}
	owned := testPID + "/" + testDN + "/owned"
	if err := explorer.OwnedSubscribe(c)(ctx, owned, 0, nop); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, owned, 0, nop); !errors.Is(err, explorer.ErrFilterOwned) {
		t.Fatalf("Subscribe of an owned filter: %v, want ErrFilterOwned", err)
	}
	plain := testPID + "/" + testDN + "/plain"
	if err := explorer.OwnedSubscribe(plainSubscriber{c})(ctx, plain, 0, nop); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, plain, 0, nop); err != nil {
		t.Fatalf("a plain subscription was owned: %v", err)
	}
}
