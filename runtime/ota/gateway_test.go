package ota_test

// This test is external (package ota_test) because it uses runtime/gateway, which imports
// runtime/thing, which imports runtime/resource, which imports runtime/ota: from package ota's
// own tests that would be an import cycle.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/ota"
)

// TestClientSubDeviceThroughGateway runs an update for a sub-device over its gateway's
// connection ($ota/.../{subPid}/{subDn}, docs/PROTOCOL.md §4.4 and §5.5).
func TestClientSubDeviceThroughGateway(t *testing.T) {
	const testPID, testDN = "OTAPROD001", "dev1" // the gateway
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(testPID, testDN), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const subPID, subDN = "OTASUBP001", "sensor-1"
	secret, err := srv.AddDevice(subPID, subDN)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close(context.Background()) })
	sub := gateway.Device{ProductID: subPID, DeviceName: subDN}
	if res, err := gw.Bind(ctx, gateway.SubDevice{Device: sub, DeviceSecret: secret}); err != nil || res.Err() != nil {
		t.Fatalf("bind: %v %v", err, res.Err())
	}
	if res, err := gw.Online(ctx, sub); err != nil || res.Err() != nil {
		t.Fatalf("online: %v %v", err, res.Err())
	}
	image := make([]byte, 60_000)
	for i := range image {
		image[i] = byte(i * 7)
	}
	srv.UploadFirmware(subPID, "5.0.0", bytes.NewReader(image))
	c, err := ota.New(conn, ota.WithDownloadOptions(ota.WithRootCAs(srv.RootCAs()), ota.WithBackoff(time.Millisecond, 10*time.Millisecond)),
		ota.WithDevice(subPID, subDN))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ReportTopic() != "$ota/report/"+subPID+"/"+subDN {
		t.Fatalf("report topic = %s", c.ReportTopic())
	}
	dir := t.TempDir()
	done := make(chan error, 1)
	c.OnUpdate(func(ctx context.Context, fw ota.Firmware) {
		dest := filepath.Join(dir, "sub.bin")
		if err := c.Download(ctx, fw, dest); err != nil {
			done <- err
			return
		}
		done <- c.ReportDone(ctx, fw.Version)
	})
	if err := c.ReportVersion(ctx, "4.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := srv.PushUpdate(subPID, subDN, "5.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := srv.WaitOTAJob(ctx, subPID, subDN, func(s explorertest.OTAJobState) bool { return s.State == explorertest.OTADone })
	if err != nil {
		t.Fatalf("%v: %+v", err, st)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "sub.bin")); !bytes.Equal(got, image) {
		t.Error("sub-device image differs")
	}
	if _, ok := srv.OTAJob(testPID, testDN); ok {
		t.Error("the gateway itself got a job")
	}
}
