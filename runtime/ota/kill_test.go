package ota

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// TestDownloadSurvivesSIGKILL downloads in a real child process (this test binary re-executed),
// kills it with SIGKILL mid-download, then resumes in this process from its checkpoint.
func TestDownloadSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a subprocess")
	}
	data := randomBytes(2<<20, 20)
	srv := newFWServer(t, data, false)
	srv.setRate(256 << 10) // ~8 s for the whole image: the kill lands mid-download
	fw := srv.firmware("9.9.9")
	dest := filepath.Join(t.TempDir(), "fw.bin")
	spec, _ := json.Marshal(fw)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec), "OTA_HELPER_DEST="+dest)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Wait (condition-based, bounded) until the child has checkpointed real progress.
	ctx := testCtx(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		cp, _ := loadCheckpoint(dest)
		if cp != nil && cp.Done >= 100_000 {
			break
		}
		select {
		case <-tick.C:
		case err := <-exited:
			t.Fatalf("helper exited before being killed: %v", err)
		case <-ctx.Done():
			cmd.Process.Kill()
			t.Fatal("helper made no progress")
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to clean up
		t.Fatal(err)
	}
	<-exited
	cp, err := loadCheckpoint(dest)
	if err != nil || cp == nil || cp.Done == 0 || cp.Done >= int64(len(data)) {
		t.Fatalf("checkpoint after kill = %+v, %v", cp, err)
	}
	t.Logf("killed at checkpoint %d/%d bytes", cp.Done, len(data))

	srv.setRate(0)
	fw.URL += "-resigned" // a fresh signature must not prevent resuming
	if err := Download(ctx, fw, dest, WithInsecureHTTP()); err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
	ranges := srv.rangesSeen()
	want := "bytes=" + strconv.FormatInt(cp.Done, 10) + "-"
	if got := ranges[len(ranges)-1]; got != want {
		t.Errorf("resume request Range = %q, want %q (all: %q)", got, want, ranges)
	}
}
