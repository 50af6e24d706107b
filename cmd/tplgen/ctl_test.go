package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/ota"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

const lightPID = "ZPHBLEB4J5"

// ctlWorld is a real emulator (explorertest over real TCP and HTTP) with the light product
// and one connected device whose handlers record what they receive.
type ctlWorld struct {
	srv     *explorertest.Server
	api     string
	conn    *explorer.Conn
	thing   *thing.Thing
	mu      sync.Mutex
	control []string // params of each control received
	actions []string // "id input" of each action received
	fail    error    // returned by the control handler when set
}

func newCtlWorld(t *testing.T) *ctlWorld {
	t.Helper()
	srv, err := explorertest.NewServer(explorertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tpl, err := template.ParseFile("../../schemas/light.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddProduct(tpl); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(lightPID, "lamp1"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(lightPID, "lamp2"); err != nil {
		t.Fatal(err)
	}
	w := &ctlWorld{srv: srv, api: srv.HTTPURL()}
	ctx := context.Background()
	w.conn, err = explorer.Dial(ctx, srv.DeviceConfig(lightPID, "lamp1"), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.conn.Close() })
	w.thing, err = thing.New(w.conn, tpl,
		thing.WithControlHandler(func(_ context.Context, params []byte) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.control = append(w.control, string(params))
			return w.fail
		}),
		thing.WithActionHandler(func(_ context.Context, id string, input []byte) (any, error) {
			w.mu.Lock()
			w.actions = append(w.actions, id+" "+string(input))
			w.mu.Unlock()
			return map[string]int{"err_code": 1}, nil
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *ctlWorld) received() ([]string, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.control...), append([]string(nil), w.actions...)
}

// ctl runs `tplgen ctl ARGS... --api URL`.
func (w *ctlWorld) ctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return tplgen(t, append(append([]string{"ctl"}, args...), "--api", w.api)...)
}

func TestCtlDevicesAndGet(t *testing.T) {
	w := newCtlWorld(t)
	code, out, errOut := w.ctl(t, "devices")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "PRODUCT     DEVICE  ONLINE\nZPHBLEB4J5  lamp1   yes\nZPHBLEB4J5  lamp2   no\n"
	if out != want {
		t.Errorf("devices:\n%s\nwant:\n%s", out, want)
	}
	code, out, _ = w.ctl(t, "devices", "--json")
	if code != 0 || !strings.Contains(out, `"device_name": "lamp2"`) {
		t.Errorf("devices --json: exit %d\n%s", code, out)
	}

	if err := w.thing.Report(context.Background(), map[string]any{"brightness": 7}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = w.ctl(t, "get", lightPID+"/lamp1")
	if code != 0 {
		t.Fatalf("get: exit %d: %s", code, errOut)
	}
	var doc struct {
		Online   bool           `json:"online"`
		Reported map[string]int `json:"reported"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.Online || doc.Reported["brightness"] != 7 {
		t.Errorf("get: %v %+v\n%s", err, doc, out)
	}
	// An error from the API, shown as the API says it.
	code, _, errOut = w.ctl(t, "get", lightPID+"/nosuch")
	if code != exitFail || errOut != "tplgen: API 404 Not Found: device ZPHBLEB4J5/nosuch is not registered\n" {
		t.Errorf("unknown device: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := w.ctl(t, "get", "no-slash"); code != exitUsage || !strings.Contains(errOut, "PRODUCT_ID/DEVICE_NAME") {
		t.Errorf("bad device argument: exit %d, %q", code, errOut)
	}
	if code, _, errOut := tplgen(t, "ctl", "devices", "--api", "ftp://x"); code != exitUsage || !strings.Contains(errOut, "--api") {
		t.Errorf("bad --api: exit %d, %q", code, errOut)
	}
	if code, _, errOut := tplgen(t, "ctl", "frob"); code != exitUsage || !strings.Contains(errOut, `unknown command "frob"`) {
		t.Errorf("ctl frob: exit %d, %q", code, errOut)
	}
}

func TestCtlControlTyped(t *testing.T) {
	w := newCtlWorld(t)
	code, out, errOut := w.ctl(t, "control", lightPID+"/lamp1", "power_switch=on", "color=blue", "brightness=42", "name=kitchen lamp",
		"--template", "../../schemas/light.json")
	if code != 0 || !strings.HasPrefix(out, "code 0: ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	control, _ := w.received()
	if len(control) != 1 || control[0] != `{"power_switch":1,"color":2,"brightness":42,"name":"kitchen lamp"}` {
		t.Errorf("device received %q", control)
	}
	// Labels of bool values, numeric keys, and the template's checks before anything is sent.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"power_switch=开"}, ""},
		{[]string{"color=1"}, ""},
		{[]string{"brightness=abc"}, `brightness=abc: int: "abc" is not an integer`},
		{[]string{"brightness=101"}, "brightness=101: "},
		{[]string{"color=purple"}, "enum: want one of 0 (Red), 1 (Green), 2 (Blue)"},
		{[]string{"brightnes=1"}, `product ZPHBLEB4J5 has no property "brightnes" (writable: power_switch, color, brightness, name)`},
		{[]string{"power_switch=maybe"}, "bool: want 1, 0, true, false, on, off or a label (0 (关), 1 (开))"},
		{[]string{"novalue"}, `"novalue": want KEY=VALUE`},
		{[]string{"color=1", "color=2"}, "color given twice"},
	} {
		args := append([]string{"control", "--template", "../../schemas/light.json", lightPID + "/lamp1"}, tc.args...)
		code, _, errOut := w.ctl(t, args...)
		if tc.want == "" {
			if code != 0 {
				t.Errorf("%q: exit %d, %s", tc.args, code, errOut)
			}
			continue
		}
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	control, _ = w.received()
	if len(control) != 3 || control[1] != `{"power_switch":1}` || control[2] != `{"color":1}` {
		t.Errorf("refused values reached the device: %q", control)
	}
}

// TestCtlControlTemplateFromEmulator types KEY=VALUE by the template the emulator serves
// (GET /api/products/{pid}) when no --template is given.
func TestCtlControlTemplateFromEmulator(t *testing.T) {
	w := newCtlWorld(t)
	code, out, errOut := w.ctl(t, "control", lightPID+"/lamp1", "power_switch=开", "color=Blue", "name=42")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	control, _ := w.received()
	if len(control) != 1 || control[0] != `{"power_switch":1,"color":2,"name":"42"}` {
		t.Errorf("device received %q", control)
	}
	// Checked here, before anything is sent.
	code, _, errOut = w.ctl(t, "control", lightPID+"/lamp1", "brightness=101")
	if code != exitFail || !strings.HasPrefix(errOut, "tplgen: brightness=101: ") {
		t.Errorf("out of range: exit %d, %q", code, errOut)
	}
	code, _, errOut = w.ctl(t, "action", lightPID+"/lamp1", "light_off")
	if code != exitFail || !strings.Contains(errOut, `product ZPHBLEB4J5 has no action "light_off" (actions: light_on)`) {
		t.Errorf("unknown action: exit %d, %q", code, errOut)
	}
	if control, _ := w.received(); len(control) != 1 {
		t.Errorf("refused values reached the device: %q", control)
	}
}

func TestCtlControlUntypedAndErrors(t *testing.T) {
	w := newCtlWorld(t)
	// Without a template, JSON literals go as such and the emulator checks them.
	if code, out, errOut := w.ctl(t, "control", lightPID+"/lamp1", "brightness=5", "name=hall"); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	control, _ := w.received()
	if len(control) != 1 || control[0] != `{"brightness":5,"name":"hall"}` {
		t.Errorf("device received %q", control)
	}
	// A product the emulator has no template for: the value goes untyped, the API refuses.
	if _, err := w.srv.AddDevice("NOTEMPLATE", "d1"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := w.ctl(t, "control", "NOTEMPLATE/d1", "brightness=bright")
	if code != exitFail || !strings.HasPrefix(errOut, "tplgen: API 404 Not Found: ") {
		t.Errorf("no template: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = w.ctl(t, "control", lightPID+"/nosuch", "brightness=1")
	if code != exitFail || errOut != "tplgen: API 404 Not Found: device ZPHBLEB4J5/nosuch is not registered\n" {
		t.Errorf("unknown device: exit %d, stderr %q", code, errOut)
	}
	// The device refuses: its reply code makes the exit status.
	w.mu.Lock()
	w.fail = errors.New("motor stuck")
	w.mu.Unlock()
	code, _, errOut = w.ctl(t, "control", lightPID+"/lamp1", "brightness=6")
	if code != exitFail || !strings.Contains(errOut, "device replied code") || !strings.Contains(errOut, "motor stuck") {
		t.Errorf("device error: exit %d, stderr %q", code, errOut)
	}
	// Offline device: stored as pending.
	code, out, errOut := w.ctl(t, "control", lightPID+"/lamp2", "brightness=6")
	if code != 0 || !strings.HasPrefix(out, "pending: ") {
		t.Errorf("offline device: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := w.ctl(t, "control", lightPID+"/lamp1"); code != exitUsage || !strings.Contains(errOut, "KEY=VALUE") {
		t.Errorf("no values: exit %d, %q", code, errOut)
	}
}

func TestCtlAction(t *testing.T) {
	w := newCtlWorld(t)
	code, out, errOut := w.ctl(t, "action", lightPID+"/lamp1", "light_on", "is_on=on", "--template", "../../schemas/light.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"err_code": 1`) || !strings.Contains(out, "code 0: ") {
		t.Errorf("output not shown:\n%s", out)
	}
	_, actions := w.received()
	if len(actions) != 1 || actions[0] != `light_on {"is_on":1}` {
		t.Errorf("device received %q", actions)
	}
	// Template checks: unknown action, unknown input, missing input.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"light_off"}, `product ZPHBLEB4J5 has no action "light_off" (actions: light_on)`},
		{[]string{"light_on", "is_on=1", "x=1"}, `action "light_on" has no input "x"`},
		{[]string{"light_on"}, "is_on"},
	} {
		args := append([]string{"action", "--template", "../../schemas/light.json", lightPID + "/lamp1"}, tc.args...)
		if code, _, errOut := w.ctl(t, args...); code != exitFail || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	// The API's refusal, as the API says it.
	code, _, errOut = w.ctl(t, "action", lightPID+"/nosuch", "light_on", "is_on=1")
	if code != exitFail || errOut != "tplgen: API 404 Not Found: device ZPHBLEB4J5/nosuch is not registered\n" {
		t.Errorf("unknown device: exit %d, %q", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the test's patience (10 s) runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestCtlEventsFollow(t *testing.T) {
	w := newCtlWorld(t)
	ctx := context.Background()
	if err := w.thing.PostEvent(ctx, "low_voltage", map[string]any{"voltage": 3.3}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := w.ctl(t, "events", lightPID+"/lamp1")
	if code != 0 || !strings.HasSuffix(out, " alert low_voltage {\"voltage\":3.3}\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("events: exit %d, %q %q", code, out, errOut)
	}

	fctx, cancel := context.WithCancel(ctx)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(fctx, []string{"tplgen", "ctl", "events", lightPID + "/lamp1", "--follow", "--interval", "1h", "--json", "--api", w.api}, &stdout, &stderr)
	}()
	waitFor(t, "the existing event", func() bool { return strings.Count(stdout.String(), "\n") == 1 })
	if err := w.thing.PostEvent(ctx, "status_report", map[string]any{"status": 1, "message": "hot"}); err != nil {
		t.Fatal(err)
	}
	// Polling every hour would not see it: it comes through the emulator's SSE stream.
	waitFor(t, "the new event", func() bool { return strings.Contains(stdout.String(), `"event_id":"status_report"`) })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("--follow ended with %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not stop with its context")
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Errorf("want each event once, got:\n%s", stdout.String())
	}
	for _, l := range lines {
		var e eventRecord
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type == "" {
			t.Errorf("not an event record: %q (%v)", l, err)
		}
	}
}

func TestNewSince(t *testing.T) {
	a, b, c := eventRecord{EventID: "a", Timestamp: 1}, eventRecord{EventID: "b", Timestamp: 2}, eventRecord{EventID: "c", Timestamp: 3}
	if got := newSince([]eventRecord{a, b, c}, &a); len(got) != 2 || got[0].EventID != "b" {
		t.Errorf("after a: %v", got)
	}
	if got := newSince([]eventRecord{a, b}, &b); got == nil || len(got) != 0 {
		t.Errorf("nothing new: %v", got)
	}
	if got := newSince([]eventRecord{b, c}, &a); got != nil {
		t.Errorf("a dropped from the history: %v, want nil", got)
	}
}

// TestCtlOTAPushWatch pushes firmware to two real OTA clients over real HTTP download; one
// installs it, the other refuses, and --watch follows both to the end.
func TestCtlOTAPushWatch(t *testing.T) {
	w := newCtlWorld(t)
	ctx := context.Background()
	image := bytes.Repeat([]byte("firmware"), 64<<10) // 512 KiB
	file := filepath.Join(t.TempDir(), "fw.bin")
	if err := os.WriteFile(file, image, 0o644); err != nil {
		t.Fatal(err)
	}
	startOTA := func(conn *explorer.Conn, refuse bool) {
		c, err := ota.New(conn, ota.WithDownloadOptions(ota.WithInsecureHTTP()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		dir := t.TempDir()
		c.OnUpdate(func(ctx context.Context, fw ota.Firmware) {
			if refuse {
				_ = c.ReportFail(ctx, fw.Version, -4, "not enough flash")
				return
			}
			dest := filepath.Join(dir, "fw.bin")
			if err := c.Download(ctx, fw, dest); err != nil {
				return
			}
			_ = c.Install(ctx, fw.Version, func(context.Context) error { return nil })
		})
		if err := c.ReportVersion(ctx, "1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	startOTA(w.conn, false)
	conn2, err := explorer.Dial(ctx, w.srv.DeviceConfig(lightPID, "lamp2"), w.srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn2.Close() })
	startOTA(conn2, true)

	code, out, errOut := w.ctl(t, "ota", "push", "--file", file, "--version", "1.1.0", "--plain-http", "--watch", "--interval", "1h", // progress arrives through the SSE stream
		lightPID+"/lamp1", lightPID+"/lamp2")
	if code != exitFail || !strings.Contains(errOut, "OTA failed on ZPHBLEB4J5/lamp2: fail (code -4): not enough flash") {
		t.Fatalf("exit %d (want 1: lamp2 refuses), stderr %q\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "uploaded "+file+" as ZPHBLEB4J5 1.1.0 (524288 bytes)\n") ||
		!strings.Contains(out, "pushed 1.1.0 to ZPHBLEB4J5/lamp1\n") {
		t.Errorf("upload and push not reported:\n%s", out)
	}
	// Lines mode (stdout is not a terminal): one line per state change, each with its bar.
	if !regexpMust(`(?m)^100% \|█+\|  ZPHBLEB4J5/lamp1  done$`).MatchString(out) {
		t.Errorf("lamp1 never shown done at 100%%:\n%s", out)
	}
	if job, ok := w.srv.OTAJob(lightPID, "lamp1"); !ok || job.State != explorertest.OTADone || job.TargetVersion != "1.1.0" {
		t.Errorf("lamp1's job in the emulator: %+v, %t", job, ok)
	}

	// Bars mode redraws in place with ANSI codes; the job is already done, so one frame.
	code, out, errOut = w.ctl(t, "ota", "push", "--file", file, "--version", "1.1.0", "--plain-http", "--watch",
		"--progress", "bars", lightPID+"/lamp1")
	if code != 0 || !strings.Contains(out, "\r\x1b[K") || !strings.Contains(out, "100%") || !strings.Contains(out, "1 device(s) updated to 1.1.0") {
		t.Errorf("bars: exit %d, %q\n%q", code, errOut, out)
	}

	// API errors: an unknown device, a missing file.
	code, _, errOut = w.ctl(t, "ota", "push", "--file", file, "--version", "1.2.0", lightPID+"/nosuch")
	if code != exitFail || !strings.Contains(errOut, "ZPHBLEB4J5/nosuch: API 404 Not Found: ") {
		t.Errorf("unknown device: exit %d, %q", code, errOut)
	}
	if code, _, errOut := w.ctl(t, "ota", "push", "--file", "nosuch.bin", "--version", "1.2.0", lightPID+"/lamp1"); code != exitFail || !strings.Contains(errOut, "nosuch.bin") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if code, _, _ := w.ctl(t, "ota", "push", "--version", "1.2.0", lightPID+"/lamp1"); code != exitUsage {
		t.Errorf("missing --file: exit %d, want %d", code, exitUsage)
	}
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// TestCtlAPIToken: an emulator guarded by a token refuses ctl without it, as the API says,
// and serves it with --token (or TPLGEN_API_TOKEN), the stream included.
func TestCtlAPIToken(t *testing.T) {
	srv, err := explorertest.NewServer(explorertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		explorertest.WithAPIToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.AddDevice(lightPID, "lamp1"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := tplgen(t, "ctl", "devices", "--api", srv.HTTPURL())
	if code != exitFail || !strings.HasPrefix(errOut, "tplgen: API 401 Unauthorized: ") {
		t.Errorf("without the token: exit %d, %q", code, errOut)
	}
	code, out, errOut := tplgen(t, "ctl", "devices", "--api", srv.HTTPURL(), "--token", "s3cret")
	if code != 0 || !strings.Contains(out, "lamp1") {
		t.Errorf("--token: exit %d, %q %q", code, out, errOut)
	}
	t.Setenv("TPLGEN_API_TOKEN", "s3cret")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"tplgen", "ctl", "events", "--follow", "--interval", "1h", lightPID + "/lamp1", "--api", srv.HTTPURL()}, &stdout, &stderr)
	}()
	// A refused stream ends the command at once (see below); this one keeps following.
	select {
	case code := <-done:
		t.Fatalf("events --follow with TPLGEN_API_TOKEN ended: exit %d, %s", code, stderr.String())
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("events --follow with TPLGEN_API_TOKEN: exit %d, %s", code, stderr.String())
	}
	code, _, errOut = tplgen(t, "ctl", "events", "--follow", lightPID+"/lamp1", "--api", srv.HTTPURL(), "--token", "wrong")
	if code != exitFail || !strings.HasPrefix(errOut, "tplgen: API 401 Unauthorized: ") {
		t.Errorf("wrong token: exit %d, %q", code, errOut)
	}
}
