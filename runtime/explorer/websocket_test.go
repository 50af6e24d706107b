package explorer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// TestWebSocketTransports: a key device over ws:// and over wss:// publishes, receives,
// survives a broker restart with its subscription restored and its offline queue flushed.
func TestWebSocketTransports(t *testing.T) {
	b := newTestBrokerWS(t)
	for _, tc := range []struct {
		name   string
		broker string
		opts   []explorer.Option
	}{
		{"ws", "ws://" + b.wsAddr + "/mqtt", []explorer.Option{explorer.WithPlainTCP()}},
		{"wss", "wss://" + b.wssAddr, []explorer.Option{explorer.WithRootCAs(b.caPool)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := b.config()
			cfg.Broker = tc.broker
			lc, lopts := newLifecycle()
			connected := make(chan struct{}, 4)
			opts := append(append(tc.opts, lopts...), explorer.WithReconnectBackoff(20e6, 100e6),
				explorer.WithOnConnect(func(context.Context) { connected <- struct{}{} }))
			c, err := explorer.Dial(testCtx(t), cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			waitChan(t, connected, "first connect")
			ctx := testCtx(t)
			down := "test/ws-" + tc.name
			got := make(chan explorer.Message, 4)
			if err := c.Subscribe(ctx, down, 1, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
				t.Fatal(err)
			}
			// A payload larger than one WebSocket frame buffer crosses message boundaries.
			big := strings.Repeat("x", 12000)
			if err := c.Publish(ctx, down, 1, []byte(big)); err != nil {
				t.Fatal(err)
			}
			if m := recv(t, got); string(m.Payload) != big {
				t.Fatalf("loopback over %s: %d bytes back", tc.name, len(m.Payload))
			}

			b.stop()
			waitChan(t, lc.lost, "connection lost")
			for i := range 3 {
				if err := c.Enqueue("test/ws-up", 1, []byte(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			b.start()
			waitChan(t, connected, "reconnect")
			for i := range 3 {
				if m := b.nextMessage(t, "test/ws-up"); string(m.Payload) != fmt.Sprint(i) {
					t.Fatalf("queued message %d = %q", i, m.Payload)
				}
			}
			b.publish(down, "restored", 1)
			if m := recv(t, got); string(m.Payload) != "restored" {
				t.Fatalf("after the restart got %q", m.Payload)
			}
		})
	}
}

func TestWebSocketConfig(t *testing.T) {
	b := newTestBrokerWS(t)
	cfg := b.config()
	cfg.Broker = "ws://" + b.wsAddr
	if _, err := explorer.Dial(testCtx(t), cfg); !errors.Is(err, explorer.ErrInvalidConfig) || !strings.Contains(err.Error(), "WithPlainTCP") {
		t.Fatalf("plain ws without WithPlainTCP: %v", err)
	}
	// Wrong CA over wss: a TLS error, not a network one.
	cfg.Broker = "wss://" + b.wssAddr
	if _, err := explorer.Dial(testCtx(t), cfg); !errors.Is(err, explorer.ErrTLS) {
		t.Fatalf("wss with the wrong CA: %v", err)
	}
	// A path the server does not upgrade: a clear refusal naming the HTTP status.
	cfg.Broker = "ws://" + b.plain + "/mqtt" // an MQTT TCP port, not HTTP
	if _, err := explorer.Dial(testCtx(t), cfg, explorer.WithPlainTCP(), explorer.WithConnectTimeout(2e9)); err == nil {
		t.Fatal("ws to a non-WebSocket port succeeded")
	}
	for _, bad := range []string{"ws://h:1/p?q=1", "wss://h/p#f"} {
		c := b.config()
		c.Broker = bad
		if err := c.Validate(); !errors.Is(err, explorer.ErrInvalidConfig) {
			t.Fatalf("Broker %q: %v", bad, err)
		}
	}
	if got := explorer.WebSocketBroker("ABCDEFGHIJ", true); got != "wss://ABCDEFGHIJ.ap-guangzhou.iothub.tencentdevices.com:443/mqtt" {
		t.Fatalf("WebSocketBroker secure = %q", got)
	}
	if got := explorer.WebSocketBroker("ABCDEFGHIJ", false); got != "ws://ABCDEFGHIJ.ap-guangzhou.iothub.tencentdevices.com:80/mqtt" {
		t.Fatalf("WebSocketBroker = %q", got)
	}
}
