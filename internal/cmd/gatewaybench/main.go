// Command gatewaybench measures what a gateway costs per sub-device, in the gateway's process
// alone, against a directly connected device in the same run (figures in docs/BENCHMARKS.md
// "Gateway").
//
//	go run ./internal/cmd/gatewaybench            # 1500 sub-devices, 3 rounds, medians
//
// Three kinds of process take part, all this binary:
//
//   - platform: runtime/explorertest with the gateway, the sub-devices and a direct device
//     registered; it prints their credentials and serves until its stdin closes;
//   - gateway: dials, binds every sub-device, brings them online and sends one data-template
//     report for each (64 in flight), then reports its wall time and, once idle (background
//     syncs over) and after a GC with everything still in use, its heap in use (HeapInuse)
//     and goroutines above what the process had before dialling;
//   - direct (the baseline): one directly connected device of the same product sends the
//     same number of reports with the same concurrency, measured the same way.
//
// The orchestrator (no -role) starts one platform and, per round, one gateway and one direct
// process, and prints the medians. No figure includes the platform's own memory.
package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

const (
	gwPID     = "GWBENCH001"
	subPID    = "SUBBENCH01"
	inFlight  = 64
	reportKey = "brightness"
)

// setup is what the platform process tells the others.
type setup struct {
	Broker       string            `json:"broker"`
	CAPEM        string            `json:"ca_pem"`
	GWSecret     string            `json:"gw_secret"`
	DirectSecret string            `json:"direct_secret"`
	Subs         map[string]string `json:"subs"` // device name -> secret
}

// result is what a gateway or direct process measured.
type result struct {
	Devices    int     `json:"devices"`
	WallMS     float64 `json:"wall_ms"`
	HeapInuse  int64   `json:"heap_inuse"` // after GC, above the pre-dial figure
	HeapAlloc  int64   `json:"heap_alloc"` // live bytes after GC, above the pre-dial figure
	Goroutines int     `json:"goroutines"` // above the pre-dial count
	TotalAlloc int64   `json:"total_alloc"`
}

func main() {
	role := flag.String("role", "", "internal: platform, gateway or direct")
	subs := flag.Int("subs", 1500, "sub-devices (the platform's maximum per gateway is 1500)")
	rounds := flag.Int("rounds", 3, "rounds (medians are printed)")
	tplPath := flag.String("template", "schemas/light.json", "data template of the sub-device product")
	batch := flag.Int("batch", 0, "gateway.WithBatchSize (0: default)")
	flag.Parse()
	var err error
	switch *role {
	case "":
		err = orchestrate(*subs, *rounds, *tplPath, *batch)
	case "platform":
		err = platform(*subs, *tplPath)
	case "gateway", "direct":
		err = measure(*role, *tplPath, *batch)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

func orchestrate(subs, rounds int, tplPath string, batch int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	plat := exec.Command(self, "-role", "platform", "-subs", fmt.Sprint(subs), "-template", tplPath)
	plat.Stderr = os.Stderr
	stdin, err := plat.StdinPipe()
	if err != nil {
		return err
	}
	out, err := plat.StdoutPipe()
	if err != nil {
		return err
	}
	if err := plat.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); plat.Wait() }()
	line, err := bufio.NewReaderSize(out, 1<<20).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("platform process: %w", err)
	}
	cfgFile, err := os.CreateTemp("", "gatewaybench-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(cfgFile.Name())
	if _, err := cfgFile.Write(line); err != nil {
		return err
	}
	cfgFile.Close()

	var gws, directs []result
	for r := 0; r < rounds; r++ {
		for _, role := range []string{"direct", "gateway"} {
			cmd := exec.Command(self, "-role", role, "-template", tplPath, "-batch", fmt.Sprint(batch))
			cmd.Env = append(os.Environ(), "GATEWAYBENCH_SETUP="+cfgFile.Name())
			cmd.Stderr = os.Stderr
			b, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s process: %w", role, err)
			}
			var res result
			if err := json.Unmarshal(b, &res); err != nil {
				return fmt.Errorf("%s process output %q: %w", role, b, err)
			}
			if role == "gateway" {
				gws = append(gws, res)
			} else {
				directs = append(directs, res)
			}
		}
	}
	g, d := median(gws), median(directs)
	n := float64(g.Devices)
	fmt.Printf("gatewaybench: %d sub-devices, %d rounds (medians), %s, %d CPUs\n", g.Devices, rounds, runtime.Version(), runtime.NumCPU())
	fmt.Printf("  gateway (bind + online + 1 report each): wall %.0f ms, heap in use %.2f KB/sub-device (live %.2f KB), goroutines +%d (%.3f/sub-device), allocated %.1f KB/sub-device\n",
		g.WallMS, float64(g.HeapInuse)/n/1024, float64(g.HeapAlloc)/n/1024, g.Goroutines, float64(g.Goroutines)/n, float64(g.TotalAlloc)/n/1024)
	fmt.Printf("  direct device (same %d reports):       wall %.0f ms, heap in use %.1f KB for the device, goroutines +%d, allocated %.1f KB/report\n",
		d.Devices, d.WallMS, float64(d.HeapInuse)/1024, d.Goroutines, float64(d.TotalAlloc)/float64(d.Devices)/1024)
	fmt.Printf("  ratio gateway/direct wall: %.2fx\n", g.WallMS/d.WallMS)
	return nil
}

// median picks, per field, the median of the rounds.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		Devices:    rs[0].Devices,
		WallMS:     pick(func(r result) float64 { return r.WallMS }),
		HeapInuse:  int64(pick(func(r result) float64 { return float64(r.HeapInuse) })),
		HeapAlloc:  int64(pick(func(r result) float64 { return float64(r.HeapAlloc) })),
		Goroutines: int(pick(func(r result) float64 { return float64(r.Goroutines) })),
		TotalAlloc: int64(pick(func(r result) float64 { return float64(r.TotalAlloc) })),
	}
}

func platform(n int, tplPath string) error {
	tpl, err := template.ParseFile(tplPath)
	if err != nil {
		return err
	}
	srv, err := explorertest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.AddProductAs(subPID, tpl); err != nil {
		return err
	}
	s := setup{Broker: srv.TLSBrokerURL(), CAPEM: string(srv.CACertPEM()), Subs: map[string]string{}}
	if s.GWSecret, err = srv.AddDevice(gwPID, "gw"); err != nil {
		return err
	}
	if s.DirectSecret, err = srv.AddDevice(subPID, "direct"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		dn := fmt.Sprintf("sub%04d", i)
		if s.Subs[dn], err = srv.AddDevice(subPID, dn); err != nil {
			return err
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	os.Stdout.Write(append(b, '\n'))
	io.Copy(io.Discard, os.Stdin) // serve until the orchestrator closes stdin
	return nil
}

func measure(role, tplPath string, batch int) error {
	raw, err := os.ReadFile(os.Getenv("GATEWAYBENCH_SETUP"))
	if err != nil {
		return err
	}
	var s setup
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	tpl, err := template.ParseFile(tplPath)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(s.CAPEM)) {
		return errors.New("bad CA PEM")
	}
	opts := []explorer.Option{explorer.WithRootCAs(pool)}
	names := make([]string, 0, len(s.Subs))
	for dn := range s.Subs {
		names = append(names, dn)
	}
	slices.Sort(names)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	start := time.Now()
	var keep []any
	switch role {
	case "gateway":
		keep, err = runGateway(ctx, s, names, tpl, opts, batch)
	case "direct":
		keep, err = runDirect(ctx, s, len(names), tpl, opts)
	}
	if err != nil {
		return err
	}
	wall := time.Since(start)
	quiesce()
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	res := result{
		Devices: len(names), WallMS: float64(wall.Microseconds()) / 1000,
		HeapInuse:  int64(after.HeapInuse) - int64(before.HeapInuse),
		HeapAlloc:  int64(after.HeapAlloc) - int64(before.HeapAlloc),
		Goroutines: runtime.NumGoroutine() - goroutines,
		TotalAlloc: int64(after.TotalAlloc - before.TotalAlloc),
	}
	runtime.KeepAlive(keep)
	if cleanup, ok := keep[len(keep)-1].(func() error); ok {
		if err := cleanup(); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return nil
}

func runGateway(ctx context.Context, s setup, names []string, tpl *template.Template, opts []explorer.Option, batch int) ([]any, error) {
	conn, err := explorer.Dial(ctx, explorer.Config{ProductID: gwPID, DeviceName: "gw", DeviceSecret: s.GWSecret, Broker: s.Broker}, opts...)
	if err != nil {
		return nil, err
	}
	var gwOpts []gateway.Option
	if batch > 0 {
		gwOpts = append(gwOpts, gateway.WithBatchSize(batch))
	}
	gw, err := gateway.New(ctx, conn, gwOpts...)
	if err != nil {
		return nil, err
	}
	subs := make([]gateway.SubDevice, len(names))
	devs := make([]gateway.Device, len(names))
	for i, dn := range names {
		devs[i] = gateway.Device{ProductID: subPID, DeviceName: dn}
		subs[i] = gateway.SubDevice{Device: devs[i], DeviceSecret: s.Subs[dn]}
	}
	t0 := time.Now()
	if rs, err := gw.Bind(ctx, subs...); err != nil || rs.Err() != nil {
		return nil, fmt.Errorf("bind: %v %v", err, rs.Err())
	}
	t1 := time.Now()
	if rs, err := gw.Online(ctx, devs...); err != nil || rs.Err() != nil {
		return nil, fmt.Errorf("online: %v %v", err, rs.Err())
	}
	t2 := time.Now()
	var t3 time.Time
	defer func() {
		if os.Getenv("GATEWAYBENCH_PHASES") != "" {
			fmt.Fprintf(os.Stderr, "phases: bind %v online %v things %v reports %v\n", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3))
		}
	}()
	things := make([]*thing.Thing, len(devs))
	if err := parallel(len(devs), func(i int) error {
		th, err := gw.SubDevice(devs[i], tpl)
		things[i] = th
		return err
	}); err != nil {
		return nil, err
	}
	t3 = time.Now()
	err = parallel(len(devs), func(i int) error {
		return things[i].Report(ctx, map[string]any{reportKey: i % 101})
	})
	subs, names = nil, nil    // the credentials list is the application's, not the gateway's
	cleanup := func() error { // after the measurement: leave the platform as it was for the next round
		if _, err := gw.Offline(ctx, devs...); err != nil {
			return err
		}
		_, err := gw.Unbind(ctx, devs...)
		return err
	}
	return []any{conn, gw, things, cleanup}, err
}

func runDirect(ctx context.Context, s setup, n int, tpl *template.Template, opts []explorer.Option) ([]any, error) {
	conn, err := explorer.Dial(ctx, explorer.Config{ProductID: subPID, DeviceName: "direct", DeviceSecret: s.DirectSecret, Broker: s.Broker}, opts...)
	if err != nil {
		return nil, err
	}
	th, err := thing.New(conn, tpl)
	if err != nil {
		return nil, err
	}
	err = parallel(n, func(i int) error { return th.Report(ctx, map[string]any{reportKey: i % 101}) })
	return []any{conn, th}, err
}

// parallel runs fn(0..n-1) with inFlight calls at a time and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, inFlight)
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// quiesce waits until the process is idle: background work (pending-control syncs, message
// workers that linger briefly) has ended when the goroutine count stops falling for 500 ms.
// The figures describe idle sub-devices.
func quiesce() {
	low, since := runtime.NumGoroutine(), time.Now()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && time.Since(since) < 500*time.Millisecond; {
		time.Sleep(20 * time.Millisecond)
		if n := runtime.NumGoroutine(); n < low {
			low, since = n, time.Now()
		}
	}
}
