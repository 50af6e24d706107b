// Command reportrt compares the generated Device.Report round trip with a bare paho client
// doing the same by hand, in one run against one external broker (docs/BENCHMARKS.md,
// "Typed report round trip against raw paho"):
//
//	go run ./internal/bench/reportrt            # -runs 5 -n 20000 by default
//
// It starts mosquitto (from PATH or /usr/sbin; install with apt-get install mosquitto) on a
// random 127.0.0.1 port, builds responder, rawclient and typedclient into a temporary
// directory (their sizes are the binary figures), starts the responder, then runs the two
// clients alternately -runs times for each -inflight value, each run a fresh process on its
// own device name, and prints the medians and the typed/raw ratios as a Markdown table.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tplgen/tplgen/internal/bench/reportrt/internal/measure"
)

func main() {
	runs := flag.Int("runs", 5, "runs per client and in-flight value (medians are reported)")
	n := flag.Int("n", 20000, "measured round trips per run")
	inflight := flag.String("inflight", "1,256", "comma-separated in-flight values")
	broker := flag.String("broker", "", "use this broker (tcp://host:port) instead of starting mosquitto")
	flag.Parse()
	if err := run(*runs, *n, *inflight, *broker); err != nil {
		fmt.Fprintln(os.Stderr, "reportrt:", err)
		os.Exit(1)
	}
}

func run(runs, n int, inflightList, broker string) error {
	dir, err := os.MkdirTemp("", "reportrt-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if broker == "" {
		addr, stop, err := startMosquitto(dir)
		if err != nil {
			return err
		}
		defer stop()
		broker = "tcp://" + addr
	}
	sizes := map[string]int64{}
	for _, name := range []string{"responder", "rawclient", "typedclient"} {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, "./internal/bench/reportrt/"+name)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", name, err, b)
		}
		st, err := os.Stat(out)
		if err != nil {
			return err
		}
		sizes[name] = st.Size()
	}
	resp := exec.Command(filepath.Join(dir, "responder"), "-broker", broker)
	stdout, _ := resp.StdoutPipe()
	resp.Stderr = os.Stderr
	if err := resp.Start(); err != nil {
		return err
	}
	defer func() { _ = resp.Process.Kill(); _ = resp.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		return errors.New("responder did not start")
	}

	fmt.Printf("broker %s, %d runs x %d round trips, medians\n\n", broker, runs, n)
	fmt.Println("| in flight | client | CPU µs/report | wall µs/report | allocs/report | B/report | peak RSS MiB |")
	fmt.Println("|---|---|---|---|---|---|---|")
	var ratios []string
	var rss = map[string][]float64{}
	for _, s := range strings.Split(inflightList, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return fmt.Errorf("bad -inflight value %q", s)
		}
		res := map[string][]measure.Result{}
		for r := 0; r < runs; r++ {
			for _, c := range []string{"rawclient", "typedclient"} {
				dev := fmt.Sprintf("%s-%d-%d", c, k, r)
				out, err := exec.Command(filepath.Join(dir, c), "-broker", broker, "-n", strconv.Itoa(n),
					"-inflight", strconv.Itoa(k), "-device", dev).Output()
				if err != nil {
					return fmt.Errorf("%s: %v", c, err)
				}
				var m measure.Result
				if err := json.Unmarshal(out, &m); err != nil {
					return fmt.Errorf("%s output %q: %v", c, out, err)
				}
				res[c] = append(res[c], m)
			}
		}
		med := map[string]measure.Result{}
		for _, c := range []string{"rawclient", "typedclient"} {
			m := median(res[c])
			med[c] = m
			rss[c] = append(rss[c], float64(m.PeakRSSKiB))
			fmt.Printf("| %d | %s | %.2f | %.2f | %.1f | %.0f | %.1f |\n", k, m.Client, m.CPUNsPerOp/1e3, m.WallNsPerOp/1e3,
				m.AllocsPerOp, m.BytesPerOp, float64(m.PeakRSSKiB)/1024)
		}
		raw, typed := med["rawclient"], med["typedclient"]
		ratios = append(ratios, fmt.Sprintf("in flight %d: CPU %.2fx, allocs %+.1f, RSS %.2fx",
			k, typed.CPUNsPerOp/raw.CPUNsPerOp, typed.AllocsPerOp-raw.AllocsPerOp, float64(typed.PeakRSSKiB)/float64(raw.PeakRSSKiB)))
	}
	fmt.Println()
	for _, r := range ratios {
		fmt.Println("typed/raw " + r)
	}
	fmt.Printf("binary: raw %.1f MiB, typed %.1f MiB (%.2fx); responder %.1f MiB\n",
		float64(sizes["rawclient"])/(1<<20), float64(sizes["typedclient"])/(1<<20),
		float64(sizes["typedclient"])/float64(sizes["rawclient"]), float64(sizes["responder"])/(1<<20))
	return nil
}

// median returns the run with the median CPU per report, with every other figure replaced
// by its own median.
func median(rs []measure.Result) measure.Result {
	pick := func(f func(measure.Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	m := rs[0]
	m.CPUNsPerOp = pick(func(r measure.Result) float64 { return r.CPUNsPerOp })
	m.WallNsPerOp = pick(func(r measure.Result) float64 { return r.WallNsPerOp })
	m.AllocsPerOp = pick(func(r measure.Result) float64 { return r.AllocsPerOp })
	m.BytesPerOp = pick(func(r measure.Result) float64 { return r.BytesPerOp })
	m.PeakRSSKiB = int64(pick(func(r measure.Result) float64 { return float64(r.PeakRSSKiB) }))
	return m
}

// startMosquitto runs mosquitto on a free 127.0.0.1 port with anonymous access and no
// persistence, and waits until it accepts connections.
func startMosquitto(dir string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			return "", nil, errors.New("mosquitto not found: apt-get install -y mosquitto, or pass -broker")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, errors.New("mosquitto did not start")
}
