// Package measure is the shared part of the report round-trip benchmark's client programs:
// the run parameters, the concurrency driver and the process measurements (CPU from
// getrusage, allocations from runtime.MemStats, peak RSS), printed as one JSON line.
package measure

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

// ProductID and DeviceName identify the benchmark's device; the broker does not check them.
const (
	ProductID  = "ZPHBLEB4J5" // schemas/light.json's product, so the typed client accepts it
	DeviceName = "bench-1"
)

// Flags are the parameters every client takes.
type Flags struct {
	Broker   string // tcp://127.0.0.1:port
	N        int    // measured round trips
	Warmup   int    // round trips before measuring
	InFlight int    // concurrent round trips
	Device   string // device name (each client its own, so runs never see each other's replies)
	CPUProf  string // write a CPU profile of the measured part here
	MemProf  string // write an allocation profile (every allocation sampled) here
}

// Parse reads the flags.
func Parse() Flags {
	var f Flags
	flag.StringVar(&f.Broker, "broker", "", "MQTT broker tcp://host:port (required)")
	flag.IntVar(&f.N, "n", 20000, "measured report round trips")
	flag.IntVar(&f.Warmup, "warmup", 2000, "round trips before measuring")
	flag.IntVar(&f.InFlight, "inflight", 1, "concurrent round trips")
	flag.StringVar(&f.Device, "device", DeviceName, "device name")
	flag.StringVar(&f.CPUProf, "cpuprofile", "", "write a CPU profile of the measured round trips to `file`")
	flag.StringVar(&f.MemProf, "memprofile", "", "write an allocation profile of the measured round trips to `file`")
	flag.Parse()
	if f.Broker == "" || f.N < 1 || f.InFlight < 1 {
		fmt.Fprintln(os.Stderr, "usage: -broker tcp://host:port [-n N] [-warmup N] [-inflight K]")
		os.Exit(2)
	}
	return f
}

// Result is what a client prints: per-report CPU time and allocations of the whole
// process, wall time, and the process's peak resident set.
type Result struct {
	Client         string  `json:"client"`
	InFlight       int     `json:"inflight"`
	N              int     `json:"n"`
	CPUNsPerOp     float64 `json:"cpu_ns_per_op"`
	WallNsPerOp    float64 `json:"wall_ns_per_op"`
	AllocsPerOp    float64 `json:"allocs_per_op"`
	BytesPerOp     float64 `json:"bytes_per_op"`
	PeakRSSKiB     int64   `json:"peak_rss_kib"`
	HeapInuseAfter uint64  `json:"heap_inuse_after"`
}

// Run does warmup+n round trips with inFlight goroutines calling op (each goroutine its
// share, one at a time) and prints the Result as JSON on stdout. op's error ends the program.
func Run(client string, f Flags, op func() error) {
	drive := func(n int) {
		var wg sync.WaitGroup
		errs := make(chan error, f.InFlight)
		per, extra := n/f.InFlight, n%f.InFlight
		for g := 0; g < f.InFlight; g++ {
			k := per
			if g < extra {
				k++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < k; i++ {
					if err := op(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			fmt.Fprintf(os.Stderr, "%s: %v\n", client, err)
			os.Exit(1)
		default:
		}
	}
	drive(f.Warmup)
	if f.MemProf != "" {
		runtime.MemProfileRate = 1
	}
	if f.CPUProf != "" {
		pf, err := os.Create(f.CPUProf)
		if err == nil {
			_ = pprof.StartCPUProfile(pf)
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuTime()
	t0 := time.Now()
	drive(f.N)
	wall := time.Since(t0)
	cpu1 := cpuTime()
	runtime.ReadMemStats(&m1)
	runtime.GC()
	var m2 runtime.MemStats
	runtime.ReadMemStats(&m2)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	n := float64(f.N)
	res := Result{
		Client: client, InFlight: f.InFlight, N: f.N,
		CPUNsPerOp:     float64(cpu1-cpu0) / n,
		WallNsPerOp:    float64(wall) / n,
		AllocsPerOp:    float64(m1.Mallocs-m0.Mallocs) / n,
		BytesPerOp:     float64(m1.TotalAlloc-m0.TotalAlloc) / n,
		PeakRSSKiB:     ru.Maxrss,
		HeapInuseAfter: m2.HeapInuse,
	}
	if f.MemProf != "" {
		if pf, err := os.Create(f.MemProf); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(pf, 0)
			pf.Close()
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
