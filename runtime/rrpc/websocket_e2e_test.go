package rrpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/rrpc"
)

// End to end over MQTT-over-WebSocket: the runtime's ws:// and wss:// transport against the
// platform's WebSocket listeners, for key and certificate devices, through a dropped link
// (subscriptions restored, RRPC answered again).
func TestRRPCOverWebSocket(t *testing.T) {
	srv, err := explorertest.NewServer(explorertest.WithWebSocketAddr("127.0.0.1:0"), explorertest.WithWebSocketTLSAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddDevice(pid, "wskey")
	srv.AddDevice(pid, "wscert", explorertest.WithCertificate())
	for _, c := range []struct {
		dn, broker string
		plain      bool
	}{
		{"wskey", srv.WebSocketURL(), true},
		{"wskey", srv.WebSocketTLSURL(), false},
		{"wscert", srv.WebSocketTLSURL(), false},
	} {
		t.Run(c.dn+" "+c.broker[:3], func(t *testing.T) {
			ctx := testCtx(t)
			cfg := srv.DeviceConfig(pid, c.dn)
			cfg.Broker = c.broker
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config for %s: %v", c.broker, err)
			}
			opts := append(srv.DialOptions(), explorer.WithReconnectBackoff(20*time.Millisecond, 200*time.Millisecond))
			if c.plain {
				opts = append(opts, explorer.WithPlainTCP())
			}
			conn, err := explorer.Dial(ctx, cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := rrpc.OnRRPC(ctx, conn, func(ctx context.Context, p []byte) ([]byte, error) { return append(p, '!'), nil }); err != nil {
				t.Fatal(err)
			}
			// call asks until the device answers, bounded by ctx only: after a reconnect the
			// subscription is restored right after the CONNACK, so a request published before
			// that is not delivered and is asked again; a loaded machine may also answer
			// later than one attempt's timeout.
			call := func() {
				t.Helper()
				for {
					_, out, err := srv.CallRRPC(ctx, pid, c.dn, []byte("hi"), time.Second)
					if err == nil {
						if string(out) != "hi!" {
							t.Fatalf("rrpc reply %q, want %q", out, "hi!")
						}
						return
					}
					select {
					case <-ctx.Done():
						t.Fatalf("rrpc never answered: %v (last error %v)", ctx.Err(), err)
					case <-time.After(50 * time.Millisecond): // still offline or not yet resubscribed
					}
				}
			}
			// wait polls cond until it holds, bounded by ctx only.
			wait := func(what string, cond func() bool) {
				t.Helper()
				for !cond() {
					select {
					case <-ctx.Done():
						t.Fatalf("%s: %v", what, ctx.Err())
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			wait("platform sees the device online", func() bool { return srv.Online(pid, c.dn) }) // CONNACK may reach the device first
			call()
			srv.DropConnections()
			wait("reconnect over the WebSocket", func() bool { return srv.Online(pid, c.dn) && conn.IsConnected() })
			call()
		})
	}
}
