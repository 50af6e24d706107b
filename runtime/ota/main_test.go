package ota

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// helperEnv makes the test binary act as a downloading device process (see
// TestDownloadSurvivesSIGKILL): the env value is the JSON Firmware, OTA_HELPER_DEST the path.
const helperEnv = "OTA_HELPER_FIRMWARE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runDownloadHelper(spec, os.Getenv("OTA_HELPER_DEST")))
	}
	os.Exit(m.Run())
}

func runDownloadHelper(spec, dest string) int {
	var fw Firmware
	if err := json.Unmarshal([]byte(spec), &fw); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := []DownloadOption{WithInsecureHTTP()}
	if os.Getenv("OTA_HELPER_BENCH") == "" {
		// Kill test: checkpoint often so the kill lands after some recorded progress.
		opts = append(opts, WithCheckpoint(8<<10, 10*time.Millisecond))
	}
	if err := Download(ctx, fw, dest, opts...); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// Read by the benchmark: memory the Go runtime obtained from the OS, and all allocations.
	fmt.Printf("memstats sys=%d heap_sys=%d total_alloc=%d hwm=%d\n", ms.Sys, ms.HeapSys, ms.TotalAlloc, selfHWM())
	return 0
}

// selfHWM is this process's peak RSS in bytes (Linux VmHWM), 0 elsewhere.
func selfHWM() int64 { return vmHWM("/proc/self/status") }
