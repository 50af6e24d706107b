package gateway_test

import (
	"fmt"
	"testing"

	"github.com/tplgen/tplgen/runtime/gateway"
)

// WithBatchSize(500) used to fail with "payload too large" above 83 bind entries; requests
// are now cut by size as well as by count.
func TestLargeBatchSizeBindsAndOnlines(t *testing.T) {
	srv := newServer(t)
	addDevice(t, srv, gwPID, "gw")
	const n = 400
	subs := make([]gateway.SubDevice, n)
	devs := make([]gateway.Device, n)
	for i := range subs {
		dn := fmt.Sprintf("s%03d", i)
		devs[i] = gateway.Device{ProductID: subPID1, DeviceName: dn}
		subs[i] = gateway.SubDevice{Device: devs[i], DeviceSecret: addDevice(t, srv, subPID1, dn)}
	}
	gw, err := gateway.New(testCtx(t), dial(t, srv, gwPID, "gw"), gateway.WithBatchSize(500))
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := gw.Bind(testCtx(t), subs...); err != nil || rs.Err() != nil {
		t.Fatalf("bind: %v %v", err, rs.Err())
	}
	if rs, err := gw.Online(testCtx(t), devs...); err != nil || rs.Err() != nil {
		t.Fatalf("online: %v %v", err, rs.Err())
	}
	if got := len(srv.SubDevices(gwPID, "gw")); got != n {
		t.Errorf("platform has %d sub-devices bound, want %d", got, n)
	}
	for _, d := range devs {
		if !srv.Online(d.ProductID, d.DeviceName) {
			t.Fatalf("%s not online", d)
		}
	}
}
