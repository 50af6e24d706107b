package ota

import (
	"context"
	"fmt"
	"os"
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
	err := Download(ctx, fw, dest, WithInsecureHTTP(), WithCheckpoint(8<<10, 10*time.Millisecond),
		WithProgress(func(p Progress) { fmt.Printf("progress %d\n", p.Done) }))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}
