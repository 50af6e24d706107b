package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/thing"
)

// lineLog is a log sink that hands each record's text to a channel.
type lineLog chan string

func (l lineLog) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default: // never block the code under test
	}
	return len(p), nil
}

// TestOfflineStopsPendingControlSync is the regression test for TestLifecycle's flake: the
// background pending-control sync that SubDevice starts used to go on publishing for its
// sub-device (clear_control after the control handler returned) after Offline, and the
// platform answers that by disconnecting the gateway, losing whatever result was in flight.
// The control handler is held here so that the sync is mid-way when Offline is called.
func TestOfflineStopsPendingControlSync(t *testing.T) {
	logs := make(lineLog, 1000)
	lg := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := setup(t, gateway.WithLogger(lg), gateway.WithTimeout(3*time.Second))
	ctx := testCtx(t)
	lamp1 := f.subs[0].Device
	rs, err := f.gw.Bind(ctx, f.subs[0])
	mustOK(t, "bind", rs, err)
	if _, err := f.srv.SendControl(ctx, subPID1, "lamp1", map[string]any{"brightness": 33}); !errors.Is(err, explorertest.ErrDeviceOffline) {
		t.Fatalf("control to an offline sub-device: %v, want ErrDeviceOffline", err)
	}
	rs, err = f.gw.Online(ctx, lamp1)
	mustOK(t, "online", rs, err)

	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	if _, err := f.gw.SubDevice(lamp1, f.tpl1, thing.WithControlHandler(func(context.Context, []byte) error {
		entered <- struct{}{}
		<-release
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered: // the sync fetched the pending control and is applying it
	case <-ctx.Done():
		t.Fatal("pending control never reached the handler")
	}
	rs, err = f.gw.Offline(ctx, lamp1)
	mustOK(t, "offline", rs, err)
	close(release)

	// Wait until the sync has ended one way or the other, then check that it did not get
	// the gateway disconnected.
	for done := false; !done; {
		select {
		case l := <-logs:
			done = strings.Contains(l, "pending-control sync stopped") || strings.Contains(l, "applying pending control failed")
		case <-ctx.Done():
			t.Fatal("the pending-control sync never ended")
		}
	}
	if got, err := f.gw.Describe(ctx); err != nil || len(got) != 1 {
		t.Fatalf("describe = %v, %v", got, err)
	}
	if n := f.conn.Stats().Reconnects; n != 0 {
		t.Fatalf("gateway reconnected %d times: a publish for the offline sub-device got it disconnected", n)
	}
	if inf, _ := f.srv.Device(gwPID, "gw1"); inf.Connects != 1 {
		t.Fatalf("gateway logged in %d times, want 1", inf.Connects)
	}
	// Not cleared: it is applied again the next time the sub-device comes online.
	if p := f.srv.PendingControl(subPID1, "lamp1"); p == nil {
		t.Fatal("pending control was cleared although the sync was stopped")
	}
	rs, err = f.gw.Online(ctx, lamp1)
	mustOK(t, "online again", rs, err)
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("pending control not applied again after Online")
	}
	if err := f.srv.WaitThing(ctx, subPID1, "lamp1", func(s explorertest.ThingState) bool { return len(s.Pending) == 0 }); err != nil {
		t.Fatalf("pending control not cleared after it was applied again: %v", err)
	}
}
