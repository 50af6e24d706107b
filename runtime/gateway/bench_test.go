package gateway_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/template"
)

// maxSubDevices is the platform's per-gateway maximum (docs/PROTOCOL.md §8.1).
const maxSubDevices = 1500

// BenchmarkBindOnlineReport1500 measures, per iteration, a gateway binding and onlining 1500
// sub-devices and sending one data-template report for each, against the in-process platform.
// Reported: wall time and heap allocated per sub-device (both sides, one process).
func BenchmarkBindOnlineReport1500(b *testing.B) {
	tpl, err := template.ParseFile("../../schemas/subdev1.json")
	if err != nil {
		b.Fatal(err)
	}
	var allocs uint64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		srv, err := explorertest.NewServer()
		if err != nil {
			b.Fatal(err)
		}
		if err := srv.AddProductAs(subPID1, tpl); err != nil {
			b.Fatal(err)
		}
		if _, err := srv.AddDevice(gwPID, "gw"); err != nil {
			b.Fatal(err)
		}
		subs := make([]gateway.SubDevice, maxSubDevices)
		devs := make([]gateway.Device, maxSubDevices)
		for j := range subs {
			dn := fmt.Sprintf("sub%04d", j)
			secret, err := srv.AddDevice(subPID1, dn)
			if err != nil {
				b.Fatal(err)
			}
			devs[j] = gateway.Device{ProductID: subPID1, DeviceName: dn}
			subs[j] = gateway.SubDevice{Device: devs[j], DeviceSecret: secret}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		start := time.Now()

		conn, err := explorer.Dial(ctx, srv.DeviceConfig(gwPID, "gw"), srv.DialOptions()...)
		if err != nil {
			b.Fatal(err)
		}
		gw, err := gateway.New(ctx, conn)
		if err != nil {
			b.Fatal(err)
		}
		if rs, err := gw.Bind(ctx, subs...); err != nil || rs.Err() != nil {
			b.Fatalf("bind: %v %v", err, rs.Err())
		}
		if rs, err := gw.Online(ctx, devs...); err != nil || rs.Err() != nil {
			b.Fatalf("online: %v %v", err, rs.Err())
		}
		// Sub-devices report concurrently, as a gateway serving many devices would.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		errs := make(chan error, len(devs))
		for _, d := range devs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				th, err := gw.SubDevice(d, tpl)
				if err == nil {
					err = th.Report(ctx, map[string]any{"power_switch": 1, "brightness": 50})
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", d, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}

		elapsed += time.Since(start)
		b.StopTimer()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		allocs += after.TotalAlloc - before.TotalAlloc
		closeConn(srv, conn)
		srv.Close()
		cancel()
		b.StartTimer()
	}
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N*maxSubDevices), "µs/subdevice")
	b.ReportMetric(float64(allocs)/float64(b.N*maxSubDevices), "heapB/subdevice")
}

// BenchmarkReconnect1500 measures, per iteration, how long a gateway serving 1500 sub-devices
// (6001 subscriptions on its connection) takes from a dropped connection to the end of its
// recovery: reconnect and every subscription restored (when the OnConnect hooks start).
func BenchmarkReconnect1500(b *testing.B) {
	tpl, err := template.ParseFile("../../schemas/subdev1.json")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := explorertest.NewServer()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddProductAs(subPID1, tpl); err != nil {
		b.Fatal(err)
	}
	if _, err := srv.AddDevice(gwPID, "gw"); err != nil {
		b.Fatal(err)
	}
	subs := make([]gateway.SubDevice, maxSubDevices)
	devs := make([]gateway.Device, maxSubDevices)
	for j := range subs {
		dn := fmt.Sprintf("sub%04d", j)
		secret, err := srv.AddDevice(subPID1, dn)
		if err != nil {
			b.Fatal(err)
		}
		devs[j] = gateway.Device{ProductID: subPID1, DeviceName: dn}
		subs[j] = gateway.SubDevice{Device: devs[j], DeviceSecret: secret}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(gwPID, "gw"), srv.DialOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	defer closeConn(srv, conn)
	gw, err := gateway.New(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	if rs, err := gw.Bind(ctx, subs...); err != nil || rs.Err() != nil {
		b.Fatalf("bind: %v %v", err, rs.Err())
	}
	if rs, err := gw.Online(ctx, devs...); err != nil || rs.Err() != nil {
		b.Fatalf("online: %v %v", err, rs.Err())
	}
	for _, d := range devs {
		if _, err := gw.SubDevice(d, tpl); err != nil {
			b.Fatal(err)
		}
	}
	// Hooks run once every subscription is restored and the offline queue is flushed.
	reconnected := make(chan struct{}, 1)
	conn.OnConnect(func(context.Context) { reconnected <- struct{}{} })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		srv.DropConnections()
		select {
		case <-reconnected:
		case <-ctx.Done():
			b.Fatal("no reconnect")
		}
	}
	b.StopTimer()
	if n := conn.Stats().Reconnects; n != uint64(b.N) {
		b.Fatalf("%d reconnects, want %d", n, b.N)
	}
}
