package ota

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// benchImage writes an n-byte pseudo-random file (never held in memory) and returns its MD5.
func benchImage(b testing.TB, path string, n int64) string {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := md5.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	var word [8]byte
	for i := int64(0); i < n; i += 8 {
		v := r.Uint64()
		for j := range word {
			word[j] = byte(v >> (8 * j))
		}
		w.Write(word[:min(8, n-i)])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func serveFile(b testing.TB, path string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "fw.bin", time.Time{}, f)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// runMeasured runs cmd and returns its wall time and peak RSS in bytes. The peak is VmHWM
// from /proc/<pid>/status, polled while the child runs (rusage's maxrss is unusable here: a
// child forked by Go starts out sharing the parent's memory, so it reports the parent's RSS).
func runMeasured(b *testing.B, cmd *exec.Cmd) (time.Duration, int64, []byte) {
	b.Helper()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if hwm := vmHWM(status); hwm > peak {
			peak = hwm
		}
		select {
		case err := <-done:
			if err != nil {
				b.Fatalf("%s: %v", cmd.Path, err)
			}
			return time.Since(start), peak, out.Bytes()
		case <-tick.C:
		}
	}
}

// vmHWM reads the VmHWM line (KiB) of a /proc status file; 0 if unavailable.
func vmHWM(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkDownload256MBvsCurl downloads a 256 MiB image from a local HTTP server with this
// package (in a child process: the test binary re-executed) and with curl, in the same run,
// and reports throughput and peak RSS of both processes. Run:
//
//	go test -run '^$' -bench Download256MBvsCurl -benchtime 3x ./runtime/ota
func BenchmarkDownload256MBvsCurl(b *testing.B) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("curl not installed")
	}
	const size = 256 << 20
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	sum := benchImage(b, src, size)
	srv := serveFile(b, src)
	fw := Firmware{Version: "bench", URL: srv.URL + "/fw.bin", MD5: sum, Size: size}
	spec, _ := json.Marshal(fw)

	var otaTime, curlTime, curlMD5Time time.Duration
	var otaRSS, curlRSS, otaSys, otaSelfHWM int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dest := filepath.Join(dir, fmt.Sprintf("ota-%d.bin", i))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+string(spec), "OTA_HELPER_DEST="+dest, "OTA_HELPER_BENCH=1")
		d, rss, out := runMeasured(b, cmd)
		otaTime += d
		otaRSS = max(otaRSS, rss)
		var sys, heap, total, hwm int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "memstats sys=%d heap_sys=%d total_alloc=%d hwm=%d", &sys, &heap, &total, &hwm); err == nil {
			otaSys, otaSelfHWM = max(otaSys, sys), max(otaSelfHWM, hwm)
		}
		os.Remove(dest)

		cdest := filepath.Join(dir, fmt.Sprintf("curl-%d.bin", i))
		d, rss, _ = runMeasured(b, exec.Command(curl, "-s", "-f", "-o", cdest, fw.URL))
		curlTime += d
		curlRSS = max(curlRSS, rss)
		os.Remove(cdest)

		// Second baseline: curl plus the integrity check a device must do anyway.
		d, _, _ = runMeasured(b, exec.Command("sh", "-c", "curl -s -f -o '"+cdest+"' '"+fw.URL+"' && md5sum '"+cdest+"' >/dev/null"))
		curlMD5Time += d
		os.Remove(cdest)
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / (1 << 20) }
	b.ReportMetric(mbps(otaTime), "ota_MiB/s")
	b.ReportMetric(mbps(curlTime), "curl_MiB/s")
	b.ReportMetric(mbps(otaTime)/mbps(curlTime), "ota/curl")
	b.ReportMetric(mbps(curlMD5Time), "curl+md5sum_MiB/s")
	b.ReportMetric(mbps(otaTime)/mbps(curlMD5Time), "ota/(curl+md5sum)")
	b.ReportMetric(float64(otaRSS)/(1<<20), "ota_maxRSS_MiB")
	b.ReportMetric(float64(curlRSS)/(1<<20), "curl_maxRSS_MiB")
	b.ReportMetric(float64(otaSys)/(1<<20), "ota_goSys_MiB")
	b.ReportMetric(float64(otaSelfHWM)/(1<<20), "ota_selfHWM_MiB")
}

// BenchmarkDownloadInProcess measures the engine alone (32 MiB per op, MB/s via SetBytes)
// and its allocations, which must not grow with the image size.
func BenchmarkDownloadInProcess(b *testing.B) {
	const size = 32 << 20
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	sum := benchImage(b, src, size)
	srv := serveFile(b, src)
	fw := Firmware{Version: "bench", URL: srv.URL + "/fw.bin", MD5: sum, Size: size}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dest := filepath.Join(dir, "dest.bin")
		if err := Download(context.Background(), fw, dest, WithInsecureHTTP()); err != nil {
			b.Fatal(err)
		}
		os.Remove(dest)
	}
}
