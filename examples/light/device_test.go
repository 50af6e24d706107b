package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/thing"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// Tests of the generated Device API that the scenario does not reach.

func startLight(t *testing.T) (*explorertest.Server, context.Context, func(opts ...thing.Option) *light.Device) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.AddProduct(light.Template()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(light.ProductID, "l1"); err != nil {
		t.Fatal(err)
	}
	connect := func(opts ...thing.Option) *light.Device {
		conn, err := explorer.Dial(ctx, srv.DeviceConfig(light.ProductID, "l1"), srv.DialOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		dev, err := light.New(conn, newLamp(io.Discard), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close(context.Background()) })
		return dev
	}
	return srv, ctx, connect
}

func TestTypedPostEvents(t *testing.T) {
	srv, ctx, connect := startLight(t)
	dev := connect()
	err := dev.PostEvents(ctx,
		light.StatusReport{Status: true, Message: "fault"},
		light.LowVoltage{Voltage: 2.5},
		light.HardwareFault{Name: "memory", ErrorCode: 7})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := srv.WaitEvents(ctx, light.ProductID, "l1", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"status":1,"message":"fault"}`, `{"voltage":2.5}`, `{"name":"memory","error_code":7}`}
	for i, w := range want {
		if string(evs[i].Params) != w || evs[i].Method != "events_post" {
			t.Errorf("event %d = %s via %s, want %s", i, evs[i].Params, evs[i].Method, w)
		}
	}
	// Out of range: refused locally, nothing sent.
	if err := dev.PostLowVoltage(ctx, light.LowVoltage{Voltage: 99}); !thing.IsInvalidValue(err) {
		t.Fatalf("voltage 99: %v", err)
	}
	if err := dev.PostEvents(ctx, light.LowVoltage{Voltage: 1}, nil); err == nil {
		t.Fatal("nil event accepted")
	}
	if n := len(srv.Events(light.ProductID, "l1")); n != 3 {
		t.Fatalf("platform has %d events, want 3", n)
	}
}

func TestTypedPendingControl(t *testing.T) {
	srv, ctx, connect := startLight(t)
	_, err := srv.SendControl(ctx, light.ProductID, "l1", map[string]any{"color": 1, "name": "desk"})
	if !errors.Is(err, explorertest.ErrControlPending) {
		t.Fatalf("want pending control, got %v", err)
	}
	dev := connect(thing.WithResyncOnConnect(false))
	p, ok, err := dev.GetPendingControl(ctx)
	if err != nil || !ok {
		t.Fatalf("GetPendingControl = %v, %v", ok, err)
	}
	if p.Color == nil || *p.Color != light.ColorGreen || p.Name == nil || *p.Name != "desk" || p.Brightness != nil {
		t.Fatalf("pending control %+v", p)
	}
	if err := dev.ClearControl(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := dev.GetPendingControl(ctx); err != nil || ok {
		t.Fatalf("after ClearControl: ok=%v err=%v", ok, err)
	}
}

func TestTypedGetStatusAndThing(t *testing.T) {
	_, ctx, connect := startLight(t)
	dev := connect(thing.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err := dev.Report(ctx, light.Properties{Brightness: tplwire.Ptr[int64](7), Color: tplwire.Ptr(light.ColorBlue)}); err != nil {
		t.Fatal(err)
	}
	st, err := dev.GetStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reported.Brightness == nil || *st.Reported.Brightness != 7 || *st.Reported.Color != light.ColorBlue || st.Reported.Name != nil {
		t.Fatalf("status %+v", st.Reported)
	}
	if dev.Thing().Template() != light.Template() || dev.Thing().ProductID() != light.ProductID {
		t.Fatal("Thing escape hatch")
	}
	if _, err := light.New(nil, newLamp(io.Discard)); err == nil {
		t.Fatal("nil conn accepted")
	}
}
