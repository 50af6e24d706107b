package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/resource"
	"github.com/tplgen/tplgen/runtime/thing"
)

// A sub-device's Thing offers the device features through the gateway's connection: its
// clock is the platform-corrected one, the cloud's RRPC calls and broadcasts to the
// sub-device reach its handlers, and a file pushed to the sub-device is downloaded. Log
// upload is the connection's own device's and is refused with a reason.
func TestSubDeviceFeatures(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)
	rs, err := f.gw.Bind(ctx, f.subs[0])
	mustOK(t, "bind", rs, err)
	rs, err = f.gw.Online(ctx, f.subs[0].Device)
	mustOK(t, "online", rs, err)
	sub := f.subs[0].Device
	lamp, err := f.gw.SubDevice(sub, f.tpl1)
	if err != nil {
		t.Fatal(err)
	}
	defer lamp.Close(ctx)

	if d := time.Since(lamp.Now()); d < -time.Minute || d > time.Minute {
		t.Errorf("sub-device clock is %v off", d)
	}

	if err := lamp.OnRRPC(ctx, func(_ context.Context, p []byte) ([]byte, error) {
		return append([]byte("lamp1 got "), p...), nil
	}); err != nil {
		t.Fatal(err)
	}
	_, reply, err := f.srv.CallRRPC(ctx, sub.ProductID, sub.DeviceName, []byte("ping"), 5*time.Second)
	if err != nil || string(reply) != "lamp1 got ping" {
		t.Fatalf("RRPC to the sub-device: %q, %v", reply, err)
	}

	got := make(chan []byte, 1)
	if err := lamp.OnBroadcast(ctx, func(_ context.Context, p []byte) { got <- p }); err != nil {
		t.Fatal(err)
	}
	devs, err := f.srv.Broadcast(sub.ProductID, []byte("to all lamps"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(devs, ","), sub.DeviceName) {
		t.Fatalf("broadcast reached %v, not the online sub-device %s", devs, sub.DeviceName)
	}
	select {
	case p := <-got:
		if string(p) != "to all lamps" {
			t.Fatalf("broadcast handler got %q", p)
		}
	case <-ctx.Done():
		t.Fatal("the broadcast did not reach the sub-device's handler")
	}

	dir := t.TempDir()
	files, err := lamp.NewFiles(ctx, dir, resource.WithRootCAs(f.srv.RootCAs()))
	if err != nil {
		t.Fatal(err)
	}
	updates := make(chan error, 1)
	files.OnUpdate(func(ctx context.Context, u resource.Update) {
		_, err := files.Download(ctx, u)
		updates <- err
	})
	data := bytes.Repeat([]byte("chime "), 5000)
	if _, err := f.srv.UploadResource(sub.ProductID, "chime.wav", "1", "AUDIO", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.PushResource(sub.ProductID, sub.DeviceName, "chime.wav", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-updates:
		if err != nil {
			t.Fatalf("sub-device download: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the pushed file did not reach the sub-device's Files")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "chime.wav")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("downloaded file: %d bytes, %v; want the %d pushed", len(b), err, len(data))
	}

	_, err = lamp.NewLogUploader(ctx, f.srv.DeviceConfig(sub.ProductID, sub.DeviceName))
	if err == nil || !strings.Contains(err.Error(), "not the connection's own device") {
		t.Fatalf("log uploader for a sub-device: %v, want a refusal naming why", err)
	}
	if err := lamp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lamp.OnRRPC(ctx, func(context.Context, []byte) ([]byte, error) { return nil, nil }); !errors.Is(err, thing.ErrClosed) {
		t.Fatalf("OnRRPC after Close: %v, want thing.ErrClosed", err)
	}
}
