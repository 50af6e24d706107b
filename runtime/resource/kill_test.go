package resource_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/ota"
	"github.com/tplgen/tplgen/runtime/resource"
)

const helperEnv = "RESOURCE_KILL_HELPER"

// helperReady is the line the child prints once it is subscribed.
const helperReady = "resource helper ready"

// helperSpec is what the child device process needs to connect.
type helperSpec struct {
	Config explorer.Config
	Broker string
	CAPEM  []byte
	Dir    string
}

// TestMain runs the child device when the test binary is re-executed by the kill test.
func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		runHelper(spec)
		return
	}
	os.Exit(m.Run())
}

// runHelper is a device that downloads every offered resource until it is killed.
func runHelper(raw string) {
	var spec helperSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		os.Exit(2)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(spec.CAPEM)
	ctx := context.Background()
	conn, err := explorer.Dial(ctx, spec.Config, explorer.WithRootCAs(pool))
	if err != nil {
		os.Exit(3)
	}
	files, err := resource.NewFiles(ctx, conn, spec.Dir,
		resource.WithDownloadOptions(ota.WithRootCAs(pool), ota.WithCheckpoint(32<<10, 50*time.Millisecond)))
	if err != nil {
		os.Exit(4)
	}
	_ = files
	// NewFiles returned after the SUBACK: an update_resource pushed from now on reaches the
	// device. The test waits for this line before it pushes (the platform sees the device
	// online at CONNECT, before the subscription exists).
	os.Stdout.WriteString(helperReady + "\n")
	select {} // until SIGKILL
}

// TestResourceDownloadSurvivesSIGKILL: a device process is killed mid-download; restarted, it
// reports its versions, the platform pushes the resource again with a fresh URL and the
// download resumes from the checkpoint (Range request), ending with the right file.
func TestResourceDownloadSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a subprocess")
	}
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddDevice(pid, "dev1")
	data := randomBytes(t, 2<<20)
	info, err := srv.UploadResource(pid, "map.bin", "7", "FILE", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	srv.ThrottleResourceDownload(info.ResourceID, 256<<10) // ~8 s: the kill lands mid-download
	dir := t.TempDir()
	cfg := srv.DeviceConfig(pid, "dev1")
	cfg.Broker = srv.TLSBrokerURL()
	spec, _ := json.Marshal(helperSpec{Config: cfg, CAPEM: srv.CACertPEM(), Dir: dir})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == helperReady {
				ready <- true
			}
		}
		close(ready)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	ctx := testCtx(t)
	// Pushing before the helper subscribed would lose the offer: wait for its word.
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("helper exited before it was ready: %v", <-exited)
		}
	case <-ctx.Done():
		t.Fatal("helper did not get ready")
	}
	if _, err := srv.PushResource(pid, "dev1", "map.bin", ""); err != nil {
		t.Fatal(err)
	}
	cpPath := filepath.Join(dir, "map.bin.ota.json")
	var done int64
	for done < 200_000 {
		var cp struct{ Done int64 }
		if b, err := os.ReadFile(cpPath); err == nil && json.Unmarshal(b, &cp) == nil {
			done = cp.Done
		}
		select {
		case err := <-exited:
			t.Fatalf("helper exited before being killed: %v", err)
		case <-ctx.Done():
			t.Fatalf("no checkpoint progress (done %d)", done)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	<-exited
	t.Logf("killed after a checkpoint at %d of %d bytes", done, len(data))

	// The device restarts: new process state, same directory.
	srv.ThrottleResourceDownload(info.ResourceID, 0)
	conn := dial(t, srv)
	files, err := resource.NewFiles(ctx, conn, dir, trust(srv)...)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	if _, err := files.ReportVersion(ctx, nil); err != nil { // nothing installed yet: the platform pushes again
		t.Fatal(err)
	}
	j := waitJob(t, srv, "map.bin", func(j explorertest.ResourceJob) bool { return j.State == "done" || j.State == "fail" })
	if j.State != "done" {
		t.Fatalf("job %+v", j)
	}
	got, err := os.ReadFile(filepath.Join(dir, "map.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file after resume: %d bytes, %v", len(got), err)
	}
	ranges := srv.ResourceRanges(info.ResourceID)
	last := ranges[len(ranges)-1]
	if !strings.HasPrefix(last, "bytes=") || last == "bytes=0-" {
		t.Fatalf("the restarted download did not resume: ranges %q", ranges)
	}
	if j.Pushes < 2 {
		t.Fatalf("pushed %d times, want a re-push after the restart", j.Pushes)
	}
}
