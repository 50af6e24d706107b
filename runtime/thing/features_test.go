package thing

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/devlog"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/resource"
)

// The features beside the data template, reached through a typed Device as generated code
// embeds it, each against the in-process platform over real TCP (and HTTPS for logs and
// files).

// testProps and testControl stand for generated types (a subset of testdata/light.json).
type testProps struct {
	PowerSwitch *int64 `json:"power_switch,omitempty"`
}

func (p testProps) Validate() error { return nil }

func (p testProps) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	if p.PowerSwitch != nil {
		b = append(b, `"power_switch":`...)
		b = strconv.AppendInt(b, *p.PowerSwitch, 10)
	}
	return append(b, '}')
}

type testControl struct {
	PowerSwitch *int64 `json:"power_switch,omitempty"`
	Brightness  *int64 `json:"brightness,omitempty"`
}

// testHandler stands for a generated Handler's implementation.
type testHandler struct{ controls chan testControl }

func (h *testHandler) Control(_ context.Context, c testControl) error {
	h.controls <- c
	return nil
}

// newTestDevice starts a typed Device for the env's device on conn.
func newTestDevice(t *testing.T, conn Transport) (*Device[testProps, testControl], *testHandler) {
	t.Helper()
	raw, err := os.ReadFile("testdata/light.json")
	if err != nil {
		t.Fatal(err)
	}
	spec := &Spec[testControl, *testHandler]{ProductID: testPID, Source: "testdata/light.json",
		TemplateJSON: string(raw), Control: (*testHandler).Control}
	h := &testHandler{controls: make(chan testControl, 8)}
	d, err := NewDevice[testProps](conn, spec, h, WithResyncOnConnect(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d, h
}

func TestDeviceRRPCAndBroadcast(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	d, _ := newTestDevice(t, e.dial(t))
	if err := d.OnRRPC(ctx, func(_ context.Context, p []byte) ([]byte, error) {
		return append([]byte("echo "), p...), nil
	}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	if err := d.OnBroadcast(ctx, func(_ context.Context, p []byte) { got <- string(p) }); err != nil {
		t.Fatal(err)
	}
	_, reply, err := e.srv.CallRRPC(ctx, testPID, testDN, []byte("hi"), 10*time.Second)
	if err != nil || string(reply) != "echo hi" {
		t.Fatalf("rrpc reply %q, %v", reply, err)
	}
	// Replacing the handler takes effect at once.
	if err := d.OnRRPC(ctx, func(context.Context, []byte) ([]byte, error) { return []byte("v2"), nil }); err != nil {
		t.Fatal(err)
	}
	if _, reply, err = e.srv.CallRRPC(ctx, testPID, testDN, []byte("hi"), 10*time.Second); err != nil || string(reply) != "v2" {
		t.Fatalf("rrpc reply after replacing the handler %q, %v", reply, err)
	}
	if names, err := e.srv.Broadcast(testPID, []byte("all lamps: dim")); err != nil || len(names) != 1 {
		t.Fatalf("broadcast reached %v, %v", names, err)
	}
	select {
	case s := <-got:
		if s != "all lamps: dim" {
			t.Fatalf("broadcast payload %q", s)
		}
	case <-ctx.Done():
		t.Fatal("broadcast not received")
	}

	// Close stops both: the subscriptions are gone (the platform's call times out) and new
	// ones are refused.
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.srv.CallRRPC(ctx, testPID, testDN, []byte("hi"), 300*time.Millisecond); !errors.Is(err, explorertest.ErrRRPCTimeout) {
		t.Fatalf("rrpc after Close: %v, want the platform's timeout (no reply)", err)
	}
	if err := d.OnRRPC(ctx, func(context.Context, []byte) ([]byte, error) { return nil, nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("OnRRPC after Close: %v, want ErrClosed", err)
	}
	if err := d.OnBroadcast(ctx, func(context.Context, []byte) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("OnBroadcast after Close: %v, want ErrClosed", err)
	}
}

// A board whose clock says 1970: Now is the platform's time, and so are the times of the lines
// the log uploader sends. Close uploads what is buffered.
func TestDeviceNowAndLogUploader(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	boot := time.Now()
	conn := e.dial(t, explorer.WithClock(func() time.Time { return time.Unix(0, 0).Add(time.Since(boot)) }))
	d, _ := newTestDevice(t, conn)

	if now := d.Now(); time.Until(now).Abs() > time.Minute {
		t.Fatalf("Device.Now() = %v on a device whose clock says 1970, want the platform's time (about %v)", now, time.Now())
	}
	if _, err := e.srv.SetLogLevel(testPID, testDN, 3); err != nil { // info
		t.Fatal(err)
	}
	cfg := e.srv.DeviceConfig(testPID, testDN)
	up, err := d.NewLogUploader(ctx, cfg, devlog.WithEndpoint(e.srv.HTTPSURL()), devlog.WithRootCAs(e.srv.RootCAs()))
	if err != nil {
		t.Fatal(err)
	}
	if l, err := up.RequestLevel(ctx); err != nil || l != devlog.LevelInfo {
		t.Fatalf("level %v, %v", l, err)
	}
	log := slog.New(up.Handler())
	log.Debug("not kept: below the cloud's level")
	log.Info("lamp ready", "brightness", 40)
	if err := d.Close(ctx); err != nil { // closes the uploader, which uploads what it holds
		t.Fatal(err)
	}
	logs, _ := e.srv.DeviceLogs(testPID, testDN)
	if len(logs.Lines) != 1 || logs.Lines[0].Level != "INF" || !strings.HasSuffix(logs.Lines[0].Text, "|lamp ready brightness=40") {
		t.Fatalf("platform holds %+v, want the one info line", logs.Lines)
	}
	parts := strings.SplitN(logs.Lines[0].Text, "|", 3)
	at, err := time.Parse("2006-01-02 15:04:05.000", parts[1])
	if err != nil || time.Until(at).Abs() > time.Minute {
		t.Fatalf("line time %q (%v): want the platform's time, not the device's 1970", parts[1], err)
	}
	if _, err := d.NewLogUploader(ctx, cfg); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewLogUploader after Close: %v, want ErrClosed", err)
	}
}

func TestDeviceLogUploaderRefusals(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	conn := e.dial(t)
	d, _ := newTestDevice(t, conn)
	other := e.srv.DeviceConfig(testPID, "dev2")
	if _, err := d.NewLogUploader(ctx, other); err == nil || !strings.Contains(err.Error(), "credentials are for ABCDEFGHIJ/dev2") {
		t.Fatalf("credentials of another device: %v", err)
	}
	// A gateway's sub-device has no log upload of its own (refused before anything is sent).
	sub, err := New(newRecorder(false), e.tpl, WithDevice(testPID, "sub1"), WithResyncOnConnect(false))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	if _, err := sub.NewLogUploader(ctx, e.srv.DeviceConfig(testPID, "sub1")); err == nil || !strings.Contains(err.Error(), "not the connection's own device") {
		t.Fatalf("sub-device: %v", err)
	}
}

// trustPlatform makes downloads and uploads trust the platform's test CA.
func trustPlatform(srv *explorertest.Server) []resource.Option {
	return []resource.Option{resource.WithRootCAs(srv.RootCAs())}
}

func randomData(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Files shares the service topic with the Thing: file-management messages reach the Files,
// the rest stays with the Thing (binding replies), and a download in progress holds up
// neither control nor another file-management answer.
func TestDeviceFilesShareTheServiceTopic(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	d, h := newTestDevice(t, e.dial(t))
	dir := t.TempDir()
	files, err := d.NewFiles(ctx, dir, trustPlatform(e.srv)...)
	if err != nil {
		t.Fatal(err)
	}
	offered := make(chan resource.Update, 1)
	release := make(chan struct{})
	downloaded := make(chan error, 1)
	files.OnUpdate(func(ctx context.Context, u resource.Update) {
		offered <- u
		<-release // a long installation, say
		_, err := files.Download(ctx, u)
		downloaded <- err
	})
	data := randomData(t, 80_000)
	if _, err := e.srv.UploadResource(testPID, "chime.wav", "2", "AUDIO", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.PushResource(testPID, testDN, "chime.wav", ""); err != nil {
		t.Fatal(err)
	}
	var u resource.Update
	select {
	case u = <-offered:
	case <-ctx.Done():
		t.Fatal("update_resource did not reach the Files")
	}
	if u.Name != "chime.wav" || u.Version != "2" {
		t.Fatalf("offer %+v", u)
	}

	// While the offer's handler runs: control is applied and answered ...
	r, err := e.srv.SendControl(ctx, testPID, testDN, map[string]any{"brightness": 30})
	if err != nil || r.Code != 0 {
		t.Fatalf("control during a download: %+v %v", r, err)
	}
	if c := <-h.controls; c.Brightness == nil || *c.Brightness != 30 {
		t.Fatalf("control %+v", c)
	}
	// ... a file upload gets its request_url_resp ...
	path := filepath.Join(t.TempDir(), "lamp.log")
	os.WriteFile(path, []byte("on 07:00\noff 23:00\n"), 0o644)
	if _, err := files.Upload(ctx, resource.Resource{Name: "lamp.log", Version: "1", Type: "FILE"}, path); err != nil {
		t.Fatalf("upload during a download: %v", err)
	}
	// ... and a binding reply still reaches the Thing.
	tok, err := e.srv.IssueAppToken(testPID, testDN, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.BindAppToken(ctx, tok.Token); err != nil {
		t.Fatalf("BindAppToken beside Files: %v", err)
	}

	close(release)
	if err := <-downloaded; err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "chime.wav")); !bytes.Equal(got, data) {
		t.Fatal("downloaded content differs")
	}
	st, err := e.srv.WaitDeviceResources(ctx, testPID, testDN, func(st explorertest.DeviceResources) bool {
		return len(st.Jobs) == 1 && st.Jobs[0].State == "done" && len(st.Uploads) == 1 && st.Uploads[0].State == "done"
	})
	if err != nil {
		t.Fatalf("%v: %+v", err, st)
	}
	list, err := files.ReportVersion(ctx, []resource.Resource{{Name: "chime.wav", Version: "2", Type: "AUDIO"}})
	if err != nil {
		t.Fatalf("report_version through the Thing: %v (list %+v)", err, list)
	}

	// Calling NewFiles again replaces the Files; the old one is closed.
	files2, err := d.NewFiles(ctx, dir, trustPlatform(e.srv)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := files2.ReportVersion(ctx, nil); err != nil {
		t.Fatalf("report_version on the new Files: %v", err)
	}
	if _, err := files.ReportVersion(ctx, nil); !errors.Is(err, resource.ErrClosed) {
		t.Fatalf("the replaced Files: %v, want resource.ErrClosed", err)
	}
	// files2 reported nothing installed, so the platform offers chime.wav again and files2
	// downloads it by itself; Close ends that download before the directory goes.
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceResourceTasks(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	d, _ := newTestDevice(t, e.dial(t))
	dir := t.TempDir()
	tasks, err := d.NewResourceTasks(ctx, dir, trustPlatform(e.srv)...)
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(t, 60_000)
	path := filepath.Join(t.TempDir(), "snapshot.bin")
	os.WriteFile(path, data, 0o644)
	if err := tasks.Upload(ctx, "snapshot.bin", path); err != nil {
		t.Fatal(err)
	}
	// Calling again replaces the Tasks (the $resource subscription moves to the new one),
	// which downloads a pushed task by itself.
	tasks2, err := d.NewResourceTasks(ctx, dir, trustPlatform(e.srv)...)
	if err != nil {
		t.Fatalf("second NewResourceTasks: %v", err)
	}
	_ = tasks2
	model := randomData(t, 40_000)
	e.srv.UploadResource(testPID, "model.bin", "1", "FILE", bytes.NewReader(model))
	if _, err := e.srv.PushResource(testPID, testDN, "model.bin", "", explorertest.WithTaskAPI()); err != nil {
		t.Fatal(err)
	}
	st, err := e.srv.WaitDeviceResources(ctx, testPID, testDN, func(st explorertest.DeviceResources) bool {
		return len(st.Uploads) == 1 && st.Uploads[0].State == "done" && len(st.Jobs) == 1 && st.Jobs[0].State == "done"
	})
	if err != nil {
		t.Fatalf("%v: %+v", err, st)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "model.bin")); !bytes.Equal(got, model) {
		t.Fatal("pushed task content differs")
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.NewResourceTasks(ctx, dir); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewResourceTasks after Close: %v, want ErrClosed", err)
	}
}
