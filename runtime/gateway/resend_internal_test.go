package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// TestResendAfterReconnect: callers whose result was lost with the connection get it from
// the request the gateway repeats after the reconnect. A lost result is modelled by waiters
// registered the way do and Describe register them, with no request sent.
func TestResendAfterReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.AddDevice("GWPROD0001", "gw1"); err != nil {
		t.Fatal(err)
	}
	secret, err := srv.AddDevice("SUBPROD001", "lamp1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig("GWPROD0001", "gw1"), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Let the platform see the gateway leave before it closes (mochi-mqtt issue #488:
		// its Close deadlocks with a client leaving at the same moment).
		conn.Close()
		_ = srv.WaitThing(ctx, "GWPROD0001", "gw1", func(explorertest.ThingState) bool { return !srv.Online("GWPROD0001", "gw1") })
	}()
	g, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	lamp := Device{"SUBPROD001", "lamp1"}
	rs, err := g.Bind(ctx, SubDevice{Device: lamp, DeviceSecret: secret})
	if err == nil {
		err = rs.Err()
	}
	if err != nil {
		t.Fatal(err)
	}

	online := make(chan int, 1)
	describe := make(chan []Device, 1)
	g.mu.Lock()
	k := waitKey{opOnline, lamp}
	g.waiters[k] = append(g.waiters[k], online)
	g.describes = append(g.describes, describe)
	g.mu.Unlock()

	srv.DropConnections()
	select {
	case code := <-online:
		if code != 0 {
			t.Fatalf("online result %d after the repeat, want 0", code)
		}
	case <-ctx.Done():
		t.Fatal("the lost online result was never asked for again")
	}
	if !srv.Online("SUBPROD001", "lamp1") || !g.IsOnline(lamp) {
		t.Fatalf("lamp1 online: platform %v, local %v", srv.Online("SUBPROD001", "lamp1"), g.IsOnline(lamp))
	}
	select {
	case devs := <-describe:
		if len(devs) != 1 || devs[0] != lamp {
			t.Fatalf("describe after the repeat = %v", devs)
		}
	case <-ctx.Done():
		t.Fatal("the lost describe result was never asked for again")
	}
}
