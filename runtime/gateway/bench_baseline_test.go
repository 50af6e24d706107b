package gateway_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

// BenchmarkDirectReports1500 is the baseline for BenchmarkBindOnlineReport1500: one directly
// connected device of the same product sends 1500 reports with the same concurrency (64), so
// the ratio between the two is what the gateway topology (bind, online, one thing and four
// subscriptions per sub-device) costs on top of the reports themselves.
func BenchmarkDirectReports1500(b *testing.B) {
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
		if _, err := srv.AddDevice(subPID1, "direct"); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		start := time.Now()

		conn, err := explorer.Dial(ctx, srv.DeviceConfig(subPID1, "direct"), srv.DialOptions()...)
		if err != nil {
			b.Fatal(err)
		}
		th, err := thing.New(conn, tpl)
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		errs := make(chan error, maxSubDevices)
		for j := 0; j < maxSubDevices; j++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := th.Report(ctx, map[string]any{"power_switch": 1, "brightness": 50}); err != nil {
					errs <- err
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
		conn.Close()
		srv.Close()
		cancel()
		b.StartTimer()
	}
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N*maxSubDevices), "µs/report")
	b.ReportMetric(float64(allocs)/float64(b.N*maxSubDevices), "heapB/report")
}
