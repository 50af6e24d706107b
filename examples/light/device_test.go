package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
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
	if st.GetBrightness() != 7 || st.GetColor() != light.ColorBlue || st.Name != nil {
		t.Fatalf("status %v", st)
	}
	if dev.Thing().Template() != light.Template() || dev.Thing().ProductID() != light.ProductID {
		t.Fatal("Thing escape hatch")
	}
	if _, err := light.New(nil, newLamp(io.Discard)); err == nil {
		t.Fatal("nil conn accepted")
	}
}

// TestTypedNewRefusesOtherProduct: the package generated for one product refuses a device of
// another on New, instead of failing with a 403 at the first report.
func TestTypedNewRefusesOtherProduct(t *testing.T) {
	srv, ctx, _ := startLight(t)
	tpl, err := template.Parse("other.json", []byte(`{"version":"1.0","profile":{"ProductId":"OTHERPROD1"},"properties":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddProduct(tpl); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice("OTHERPROD1", "o1"); err != nil {
		t.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig("OTHERPROD1", "o1"), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = light.New(conn, newLamp(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "generated for product "+light.ProductID) || !strings.Contains(err.Error(), "OTHERPROD1/o1") {
		t.Fatalf("New on another product's device: %v", err)
	}
	// The same for a sub-device named with WithDevice.
	_, err = light.New(conn, newLamp(io.Discard), thing.WithDevice("OTHERPROD1", "sub"))
	if err == nil || !strings.Contains(err.Error(), "WithDevice") {
		t.Fatalf("New with WithDevice of another product: %v", err)
	}
}

// TestTypedValidateIsInvalidValue: Validate and Report speak one error vocabulary.
func TestTypedValidateIsInvalidValue(t *testing.T) {
	_, ctx, connect := startLight(t)
	dev := connect()
	p := light.Properties{Brightness: tplwire.Ptr[int64](150)}
	verr := p.Validate()
	rerr := dev.Report(ctx, p)
	if !thing.IsInvalidValue(verr) || !thing.IsInvalidValue(rerr) || !strings.Contains(rerr.Error(), verr.Error()) {
		t.Fatalf("Validate: %v; Report: %v", verr, rerr)
	}
	var ve *tplwire.ValueError
	if !errors.As(rerr, &ve) || ve.Path != "params.brightness" {
		t.Fatalf("Report error %v is not a *tplwire.ValueError at params.brightness", rerr)
	}
	if got := fmt.Sprintf("%+v", light.Properties{Brightness: tplwire.Ptr[int64](5)}); got != `{"brightness":5}` {
		t.Errorf("%%+v of Properties = %s", got)
	}
}

// serviceLamp is a Handler that also takes the service topic's other messages.
type serviceLamp struct {
	*lamp
	got chan string
}

func (s serviceLamp) Service(_ context.Context, method string, msg []byte) {
	s.got <- method + " " + string(msg)
}

// TestTypedServiceObserver: a generated Handler with a Service method receives the
// value-added methods of the service topic, untyped; replies nobody waits for do not reach it.
func TestTypedServiceObserver(t *testing.T) {
	srv, ctx, _ := startLight(t)
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(light.ProductID, "l1"), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := serviceLamp{lamp: newLamp(io.Discard), got: make(chan string, 4)}
	dev, err := light.New(conn, h)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close(ctx)
	topic := "$thing/down/service/" + light.ProductID + "/l1"
	if err := srv.Publish(topic, []byte(`{"method":"app_bind_token_reply","clientToken":"nobody-1","code":0}`), 0); err != nil {
		t.Fatal(err)
	}
	msg := `{"method":"kugou_query_song","clientToken":"k1","params":{"song":"x"}}`
	if err := srv.Publish(topic, []byte(msg), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-h.got:
		if got != "kugou_query_song "+msg {
			t.Fatalf("Service got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("Service not called")
	}
}
