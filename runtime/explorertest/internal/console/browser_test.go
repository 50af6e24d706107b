package console_test

// The console in a real browser: headless Chromium (chromedp) against the in-process platform
// (explorertest.Server on real TCP), with a real device built from generated code
// (examples/light) on runtime/thing, runtime/ota, runtime/rrpc, runtime/devlog and
// runtime/resource (Files and Tasks), and a gateway on runtime/gateway.
//
// Chromium is found through TPLGEN_CHROMIUM (a path; set but missing fails the test) or as
// chromium, chromium-browser, google-chrome on PATH; without it the test skips and says so
// (.ci/run installs Debian's chromium and fails when this test skips). TPLGEN_SCREENSHOT_DIR
// names a directory for the screenshot of the device page (console.png; a relative path is
// taken from this package's directory, as go test runs there); by default it goes to the
// test's temporary directory. docs/console.png is made with
// TPLGEN_SCREENSHOT_DIR=$PWD/docs go test -run Browser ./runtime/explorertest/internal/console.
//
// Every wait is for a condition in the page or on the device, never for a time; the context's
// deadline only bounds a hung run.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/devlog"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/ota"
	"github.com/tplgen/tplgen/runtime/resource"
	"github.com/tplgen/tplgen/runtime/rrpc"
	"github.com/tplgen/tplgen/runtime/thing"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// chromiumPath returns the browser to drive, or skips the test saying how to get one.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TPLGEN_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("TPLGEN_CHROMIUM=%s: %v", p, err)
		}
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("browser test skipped: no Chromium found (install it, e.g. apt-get install chromium, or set TPLGEN_CHROMIUM=/path/to/chromium)")
	return ""
}

// lamp is the device application: it hands what the cloud sends to the test, typed.
type lamp struct {
	controls chan light.ControlProperties
	actions  chan light.LightOnInput
	binds    chan thing.BindingNotice
}

func (l *lamp) Control(_ context.Context, p light.ControlProperties) error {
	l.controls <- p
	return nil
}

func (l *lamp) LightOn(_ context.Context, in light.LightOnInput) (light.LightOnOutput, error) {
	l.actions <- in
	return light.LightOnOutput{ErrCode: in.IsOn}, nil
}

func (l *lamp) Binding(_ context.Context, n thing.BindingNotice) { l.binds <- n }

// browser is one tab on the console.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string
	consoleErr error // the page's console could not be followed to the end
}

// do runs chromedp actions, failing the test with what went wrong.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the JavaScript predicate is true in the page (polled on every animation
// frame). A minute without it is a failure that reports what the page shows instead: a bound on a
// hung run, not a timing expectation.
func (b *browser) waitFor(what, predicate, show string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(time.Minute)))
	if err != nil {
		shown, _ := chromedp.Run(context.WithoutCancel(b.ctx), chromedp.Evaluate[string](show))
		b.t.Fatalf("waiting for %s: %v\n  page shows: %q", what, err, shown)
	}
}

// text is a JavaScript expression for the trimmed text of the element sel ("" when absent).
func text(sel string) string {
	return fmt.Sprintf(`((document.querySelector(%q) || {}).textContent || "").trim()`, sel)
}

// recv waits for a value the device received.
func recv[T any](t *testing.T, ctx context.Context, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("the device never got %s: %v", what, ctx.Err())
		panic("unreachable")
	}
}

func TestBrowserConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	exe := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The platform, with the light's product and one device.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := explorertest.NewServer(explorertest.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pid, dn := light.ProductID, "light-1"
	if err := srv.AddProduct(light.Template()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(pid, dn); err != nil {
		t.Fatal(err)
	}
	devSel := fmt.Sprintf(`#devices tr[data-device=%q]`, pid+"/"+dn)

	b := newBrowser(t, ctx, exe)

	b.do("open the console", chromedp.Navigate(srv.HTTPURL()+"/"))
	b.waitFor("the device listed offline", `(document.querySelector(`+jsq(devSel)+`) || {dataset: {}}).dataset.online === "false"`, text("#devices"))
	b.waitFor("the live stream", `document.querySelector("#stream-state").textContent === "live"`, text("#stream-state"))
	// A marker that a reload would erase: every later check also proves the page was not reloaded.
	eval[chromedp.Void](b, `window.__sameConsolePage = true`)

	// The device connects: the list shows it online without a reload.
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(pid, dn), append(srv.DialOptions(), explorer.WithLogger(logger))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := &lamp{controls: make(chan light.ControlProperties, 8), actions: make(chan light.LightOnInput, 8), binds: make(chan thing.BindingNotice, 8)}
	dev, err := light.New(conn, h, thing.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close(context.Background())
	otaClient, err := ota.New(conn, ota.WithLogger(logger), ota.WithDownloadOptions(ota.WithRootCAs(srv.RootCAs())))
	if err != nil {
		t.Fatal(err)
	}
	defer otaClient.Close()
	rrpcCalls := make(chan string, 4)
	if err := rrpc.OnRRPC(ctx, conn, func(_ context.Context, payload []byte) ([]byte, error) {
		rrpcCalls <- string(payload)
		return []byte(`{"pong":` + string(payload) + `}`), nil
	}); err != nil {
		t.Fatal(err)
	}
	cfg := srv.DeviceConfig(pid, dn)
	uploader, err := devlog.New(ctx, conn, cfg, devlog.WithEndpoint(srv.HTTPSURL()), devlog.WithRootCAs(srv.RootCAs()))
	if err != nil {
		t.Fatal(err)
	}
	defer uploader.Close(context.Background())

	t.Run("device online", func(t *testing.T) {
		b.t = t
		b.waitFor("the device listed online", `document.querySelector(`+jsq(devSel)+`).dataset.online === "true"`, text("#devices"))
		b.do("open the device page", chromedp.Click(chromedp.CSS(devSel)))
		b.waitFor("the device page online", `document.querySelector("#device-online").dataset.online === "true"`, text("#device-online"))
		// The data template rendered: names, units, enum labels, ranges.
		b.waitFor("the template's properties", `document.querySelectorAll("#properties tbody tr").length === 4`, text("#properties"))
		for sel, want := range map[string]string{
			"#prop-brightness td:nth-child(1)": "亮度",
			"#prop-brightness td:nth-child(2)": "int [0 … 100] step 1 %",
			"#prop-color td:nth-child(2)":      "enum 0=Red, 1=Green, 2=Blue",
			"#prop-name td:nth-child(2)":       "string ≤ 64 chars",
		} {
			if got := eval[string](b, text(sel)); !strings.Contains(got, want) {
				t.Errorf("%s shows %q, want it to contain %q", sel, got, want)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("report shows live", func(t *testing.T) {
		b.t = t
		st := light.Properties{PowerSwitch: tplwire.Ptr[tplwire.Bool](true), Color: tplwire.Ptr(light.ColorGreen), Brightness: tplwire.Ptr[int64](42), Name: tplwire.Ptr("study")}
		if err := dev.Report(ctx, st); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the reported brightness", text("#prop-brightness .value")+` === "42 %"`, text("#properties"))
		if got := eval[string](b, text("#prop-color .value")); got != "Green (1)" {
			t.Errorf("reported color shows %q, want the enum label %q", got, "Green (1)")
		}
		if got := eval[string](b, text("#prop-power_switch .value")); got != "开 (1)" {
			t.Errorf("reported power_switch shows %q, want the bool label %q", got, "开 (1)")
		}
	})

	t.Run("control form", func(t *testing.T) {
		b.t = t
		// Client-side check: out of range never leaves the page, the error shows by the field.
		b.do("fill brightness 150",
			chromedp.SetValue(chromedp.CSS(`#control-form [name="brightness"]`), "150"),
			chromedp.Click(chromedp.CSS("#control-submit")))
		b.waitFor("the inline range error", text(`#control-form [data-field="brightness"] .error`)+`.includes("above the maximum 100")`, text("#control-form"))

		// Server-side check: a page working from a stale template (its limits dropped here)
		// sends 150; the platform refuses it and the page shows why, next to the field.
		eval[chromedp.Void](b, `(() => { const d = document.querySelector("#control-form").defs.find(([n]) => n === "brightness")[1]; delete d.max; })()`)
		b.do("send brightness 150", chromedp.Click(chromedp.CSS("#control-submit")))
		b.waitFor("the server's refusal", text("#control-result")+`.startsWith("HTTP 400")`, text("#control-form"))
		if got := eval[string](b, text(`#control-form [data-field="brightness"] .error`)); !strings.Contains(got, "brightness") || !strings.Contains(got, "100") {
			t.Errorf("the server's refusal is not shown by the field: %q", got)
		}
		eval[chromedp.Void](b, `document.querySelector("#control-form").defs.find(([n]) => n === "brightness")[1].max = 100`)

		// A valid control reaches the device's Handler, typed.
		b.do("fill a valid control",
			chromedp.SetValue(chromedp.CSS(`#control-form [name="brightness"]`), "80"),
			chromedp.SetValue(chromedp.CSS(`#control-form [name="color"]`), "2"),
			chromedp.SetValue(chromedp.CSS(`#control-form [name="name"]`), "living room"),
			chromedp.Click(chromedp.CSS("#control-submit")))
		got := recv(t, ctx, "the control", h.controls)
		if got.GetBrightness() != 80 || got.GetColor() != light.ColorBlue || got.GetName() != "living room" || got.PowerSwitch != nil {
			t.Fatalf("the Handler got %v, want brightness 80, color Blue, name \"living room\", power_switch unset", got)
		}
		b.waitFor("the reply code", text("#control-result")+`.startsWith("reply code 0")`, text("#control-result"))
		b.waitFor("the reply in the platform log", `[...document.querySelectorAll("#log li")].some((li) => li.textContent.includes("thing: control_reply") && li.textContent.includes("code=0") && li.dataset.device === `+jsq(pid+"/"+dn)+`)`, text("#log"))
		if got := eval[string](b, text(`#control-form [data-field="brightness"] .error`)); got != "" {
			t.Errorf("an accepted control still shows the error %q", got)
		}

		// The device reports what it applied: the page shows it without a reload.
		if err := dev.Report(ctx, got.Properties()); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the reported control", text("#prop-brightness .value")+` === "80 %" && `+text("#prop-color .value")+` === "Blue (2)"`, text("#properties"))
	})

	t.Run("event shows live", func(t *testing.T) {
		b.t = t
		if err := dev.PostStatusReport(ctx, light.StatusReport{Status: true, Message: "fan stuck"}); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the event row", `!!document.querySelector('#events tr[data-event="status_report"]')`, text("#events"))
		row := eval[string](b, text(`#events tr[data-event="status_report"]`))
		for _, want := range []string{"DeviceStatus", "info", "running_state: fault (1)", "Message: fan stuck"} {
			if !strings.Contains(row, want) {
				t.Errorf("event row %q lacks %q", row, want)
			}
		}
	})

	t.Run("action output", func(t *testing.T) {
		b.t = t
		// Inputs are required: invoking with none shows the error and sends nothing.
		b.do("invoke without input", chromedp.Click(chromedp.CSS("#action-light_on button")))
		b.waitFor("the required error", text(`#action-light_on [data-field="is_on"] .error`)+` === "required"`, text("#action-light_on"))
		b.do("invoke light_on is_on=1",
			chromedp.SetValue(chromedp.CSS(`#action-light_on [name="is_on"]`), "1"),
			chromedp.Click(chromedp.CSS("#action-light_on button")))
		in := recv(t, ctx, "the action", h.actions)
		if !bool(in.IsOn) {
			t.Fatalf("the Handler got %+v, want is_on true", in)
		}
		b.waitFor("the action output", `!!document.querySelector('#action-light_on tr[data-output="err_code"]')`, text("#action-light_on"))
		if got := eval[string](b, text(`#action-light_on tr[data-output="err_code"]`)); got != "ret开 (1)" {
			t.Errorf("action output shows %q, want the output's name and label %q", got, "ret开 (1)")
		}
		if got := eval[string](b, text("#action-light_on .result")); !strings.HasPrefix(got, "reply code 0") {
			t.Errorf("action result %q", got)
		}
	})

	t.Run("ota to 100 percent", func(t *testing.T) {
		b.t = t
		if err := otaClient.ReportVersion(ctx, "1.0.0"); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		image := bytes.Repeat([]byte("tplgen firmware 1.1.0\n"), 40000) // ~860 KiB
		imagePath := filepath.Join(dir, "light-1.1.0.bin")
		if err := os.WriteFile(imagePath, image, 0o644); err != nil {
			t.Fatal(err)
		}
		installed := make(chan string, 1)
		failed := make(chan error, 1)
		var progressMu sync.Mutex
		lastPercent := -1
		otaClient.OnUpdate(func(ctx context.Context, fw ota.Firmware) {
			dest := filepath.Join(dir, "download.bin")
			err := otaClient.Download(ctx, fw, dest, ota.WithProgress(func(p ota.Progress) {
				progressMu.Lock()
				lastPercent = p.Percent
				progressMu.Unlock()
			}))
			if err == nil {
				err = otaClient.Install(ctx, fw.Version, func(context.Context) error { return os.Rename(dest, filepath.Join(dir, "active.bin")) })
			}
			if err != nil {
				failed <- err
				return
			}
			installed <- fw.Version
		})

		// Upload the image from the page, then push it from the page.
		b.do("upload the image",
			chromedp.SetUploadFiles(chromedp.CSS("#ota-file"), []string{imagePath}),
			chromedp.SetValue(chromedp.CSS("#ota-version"), "1.1.0"),
			chromedp.Click(chromedp.CSS("#ota-upload")))
		b.waitFor("the upload result", text("#ota-upload-result")+`.startsWith("uploaded 1.1.0")`, text("#ota-upload-result"))
		if got := eval[string](b, `document.querySelector("#ota-push-version").value`); got != "1.1.0" {
			t.Errorf("push version after upload is %q, want 1.1.0", got)
		}
		b.do("push", chromedp.Click(chromedp.CSS("#ota-push")))
		select {
		case v := <-installed:
			if v != "1.1.0" {
				t.Fatalf("installed %q", v)
			}
		case err := <-failed:
			t.Fatalf("the device's update failed: %v", err)
		case <-ctx.Done():
			t.Fatal("the device never installed the update")
		}
		got, err := os.ReadFile(filepath.Join(dir, "active.bin"))
		if err != nil || !bytes.Equal(got, image) {
			t.Fatalf("the device's installed image differs from the uploaded one (%d of %d bytes, %v)", len(got), len(image), err)
		}
		progressMu.Lock()
		last := lastPercent
		progressMu.Unlock()
		if last != 100 {
			t.Errorf("the device's download progress ended at %d %%", last)
		}
		b.waitFor("the progress bar at 100 % and the job done",
			`document.querySelector("#ota-progress").value === 100 && document.querySelector("#ota-state").dataset.state === "done"`,
			text("#ota-job"))
		if got := eval[string](b, text("#ota-percent")); got != "100 %" {
			t.Errorf("progress label %q (job shows %q)", got, eval[string](b, text("#ota-job")+` + " value=" + document.querySelector("#ota-progress").value`))
		}
		if err := otaClient.ReportVersion(ctx, "1.1.0"); err != nil { // after the "restart"
			t.Fatal(err)
		}
		b.waitFor("the device's new version", text("#ota-state")+`.includes("device reports 1.1.0")`, text("#ota-state"))
	})

	t.Run("rrpc", func(t *testing.T) {
		b.t = t
		b.do("call rrpc",
			chromedp.SetValue(chromedp.CSS("#rrpc-payload"), `"ping"`),
			chromedp.Click(chromedp.CSS("#rrpc-send")))
		if got := recv(t, ctx, "the rrpc call", rrpcCalls); got != `"ping"` {
			t.Fatalf("the device got %q", got)
		}
		b.waitFor("the rrpc reply", text("#rrpc-reply")+` === '{"pong":"ping"}'`, text("#rrpc-form"))
	})

	t.Run("binding", func(t *testing.T) {
		b.t = t
		b.do("bind alice", chromedp.SetValue(chromedp.CSS("#bind-user"), "alice"), chromedp.Click(chromedp.CSS("#bind-submit")))
		if n := recv(t, ctx, "bind_device", h.binds); !n.Bound {
			t.Fatalf("the device got %+v, want a bind notice", n)
		}
		b.waitFor("the binding shown", `document.querySelector("#binding-state").dataset.bound === "true" && `+text("#binding-state")+`.startsWith("bound to alice")`, text("#binding-card"))
		b.do("unbind", chromedp.Click(chromedp.CSS("#unbind")))
		if n := recv(t, ctx, "unbind_device", h.binds); n.Bound {
			t.Fatalf("the device got %+v, want an unbind notice", n)
		}
		b.waitFor("the binding gone", `document.querySelector("#binding-state").dataset.bound === "false"`, text("#binding-card"))
	})

	t.Run("device logs", func(t *testing.T) {
		b.t = t
		b.do("set level info", chromedp.SetValue(chromedp.CSS("#log-level"), "3"), chromedp.Click(chromedp.CSS("#log-level-set")))
		b.waitFor("the level pushed", text("#log-level-result")+` === "level info: pushed to the device"`, text("#devlog-card"))
		if lvl, err := uploader.RequestLevel(ctx); err != nil || lvl != devlog.LevelInfo {
			t.Fatalf("the device's level is %v (%v), want info", lvl, err)
		}
		slog.New(uploader.Handler()).Info("lamp warmed up", "celsius", 41)
		if err := uploader.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		b.do("refresh the logs", chromedp.Click(chromedp.CSS("#devlog-refresh")))
		b.waitFor("the uploaded line", `[...document.querySelectorAll("#devlog li")].some((li) => li.textContent.includes("lamp warmed up celsius=41"))`, text("#devlog-card"))
	})

	t.Run("resources", func(t *testing.T) {
		b.t = t
		dir := t.TempDir()
		files, err := dev.NewFiles(ctx, filepath.Join(dir, "device"),
			resource.WithLogger(logger),
			resource.WithRootCAs(srv.RootCAs()))
		if err != nil {
			t.Fatal(err)
		}
		defer files.Close()

		// Upload a file to the library from the page (its name taken from the file), push it
		// over file management; the device downloads it on its own (no OnUpdate handler).
		content := bytes.Repeat([]byte("chime "), 50000) // ~290 KiB: several progress reports
		path := filepath.Join(dir, "chime.wav")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		b.do("upload the resource",
			chromedp.SetUploadFiles(chromedp.CSS("#res-file"), []string{path}),
			chromedp.SetValue(chromedp.CSS("#res-version"), "2.0"),
			chromedp.Click(chromedp.CSS("#res-upload")))
		b.waitFor("the upload result", text("#res-upload-result")+`.startsWith("uploaded chime.wav 2.0: `+fmt.Sprint(len(content))+` bytes")`, text("#resources-card"))
		if got := eval[string](b, `document.querySelector("#res-push-name").value`); got != `["chime.wav","2.0"]` {
			t.Errorf("the push choice after the upload is %q, want the uploaded resource", got)
		}
		b.do("push it", chromedp.SetValue(chromedp.CSS("#res-api"), "files"), chromedp.Click(chromedp.CSS("#res-push")))
		row := `document.querySelector('#res-jobs tr[data-resource="chime.wav"]')`
		b.waitFor("the transfer done at 100 %", `!!`+row+` && `+row+`.dataset.state === "done" && `+row+`.querySelector("progress").value === 100 && `+row+`.querySelector(".percent").textContent === "100 %"`, text("#res-jobs"))
		got, err := os.ReadFile(filepath.Join(dir, "device", "chime.wav"))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("the device's file differs from the uploaded one (%d of %d bytes, %v)", len(got), len(content), err)
		}
		if r := eval[string](b, text(`#res-jobs tr[data-resource="chime.wav"] td:nth-child(2)`)); r != "files" {
			t.Errorf("the transfer's protocol shows %q", r)
		}

		// The device reports its list and uploads a file: both show, the upload as a link.
		if _, err := files.ReportVersion(ctx, []resource.Resource{{Name: "chime.wav", Version: "2.0", Type: "FILE"}}); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the reported list", text("#res-reported")+` === "chime.wav 2.0"`, text("#res-reported"))
		logPath := filepath.Join(dir, "lamp.log")
		logText := "lamp boot ok\nlamp warm\n"
		if err := os.WriteFile(logPath, []byte(logText), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := files.Upload(ctx, resource.Resource{Name: "lamp.log", Version: "1", Type: "FILE"}, logPath); err != nil {
			t.Fatal(err)
		}
		link := `document.querySelector('#res-uploads tr[data-upload="lamp.log"][data-state="done"] a')`
		b.waitFor("the device's upload as a link", `!!`+link, text("#res-uploads"))
		eval[chromedp.Void](b, `fetch(`+link+`.href).then((r) => r.text()).then((t) => { window.__upload = t; })`)
		b.waitFor("the upload's content through the link", `window.__upload === `+jsq(logText), `String(window.__upload)`)

		// Delete from the page: del_resource reaches the device, which removes the file.
		b.do("delete it", chromedp.Click(chromedp.CSS(`#res-jobs tr[data-resource="chime.wav"] button`)))
		b.waitFor("the transfer deleted", row+`.dataset.state === "deleted"`, text("#res-jobs"))
		if _, err := os.Stat(filepath.Join(dir, "device", "chime.wav")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the device still has the deleted file: %v", err)
		}

		// The other protocol: a resource task ($resource download) to the device's Tasks. The
		// name field follows the newly chosen file.
		tasks, err := dev.NewResourceTasks(ctx, filepath.Join(dir, "tasks"),
			resource.WithLogger(logger),
			resource.WithRootCAs(srv.RootCAs()))
		if err != nil {
			t.Fatal(err)
		}
		defer tasks.Close()
		voice := bytes.Repeat([]byte("hello "), 1000)
		voicePath := filepath.Join(dir, "voice.bin")
		if err := os.WriteFile(voicePath, voice, 0o644); err != nil {
			t.Fatal(err)
		}
		b.do("upload another resource",
			chromedp.SetUploadFiles(chromedp.CSS("#res-file"), []string{voicePath}),
			chromedp.SetValue(chromedp.CSS("#res-version"), "1.0"),
			chromedp.Click(chromedp.CSS("#res-upload")))
		b.waitFor("the second upload", text("#res-upload-result")+`.startsWith("uploaded voice.bin 1.0")`, text("#resources-card"))
		b.do("push it as a task", chromedp.SetValue(chromedp.CSS("#res-api"), "tasks"), chromedp.Click(chromedp.CSS("#res-push")))
		vrow := `document.querySelector('#res-jobs tr[data-resource="voice.bin"]')`
		b.waitFor("the task done at 100 %", `!!`+vrow+` && `+vrow+`.dataset.state === "done" && `+vrow+`.querySelector(".percent").textContent === "100 %"`, text("#res-jobs"))
		if got := eval[string](b, text(`#res-jobs tr[data-resource="voice.bin"] td:nth-child(2)`)); got != "tasks" {
			t.Errorf("the task's protocol shows %q", got)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "tasks", "voice.bin")); err != nil || !bytes.Equal(got, voice) {
			t.Fatalf("the device's task file differs from the uploaded one (%d of %d bytes, %v)", len(got), len(voice), err)
		}

		// A resource a script uploads shows in the page's library without a reload.
		if _, err := srv.UploadResource(pid, "script.bin", "3.0", "", strings.NewReader("from a script")); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the script's resource in the library", `[...document.querySelectorAll("#res-push-name option")].some((o) => o.value === '["script.bin","3.0"]')`, text("#res-push-name"))
		if got := eval[string](b, `document.querySelector("#res-push-name").value`); got != `["voice.bin","1.0"]` {
			t.Errorf("the library refresh changed the chosen resource to %q", got)
		}

		// A transfer that fails: pushed with a URL already expired, the device's download is
		// refused and it reports the failure, which the page shows with its code and message.
		if _, err := srv.PushResource(pid, dn, "script.bin", "3.0", explorertest.WithResourceURLTTL(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		srow := `document.querySelector('#res-jobs tr[data-resource="script.bin"]')`
		b.waitFor("the failed transfer", `!!`+srow+` && `+srow+`.dataset.state === "fail"`, text("#res-jobs"))
		if got := eval[string](b, text(`#res-jobs tr[data-resource="script.bin"] td.state`)); !strings.HasPrefix(got, "fail (code ") {
			t.Errorf("the failed transfer shows %q, want its code and reason", got)
		}
		if _, err := os.Stat(filepath.Join(dir, "device", "script.bin")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused download left a file: %v", err)
		}
	})

	// The screenshot of the device page for the docs, before the device goes away.
	t.Run("screenshot", func(t *testing.T) {
		b.t = t
		dir := os.Getenv("TPLGEN_SCREENSHOT_DIR")
		if dir == "" {
			dir = t.TempDir()
		}
		b.do("frame the device page", chromedp.EmulateViewport(1280, 1000), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "console.png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	})

	t.Run("pending control", func(t *testing.T) {
		b.t = t
		if err := dev.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("device close: %v", err)
		}
		conn.Close()
		b.waitFor("the device offline", `document.querySelector("#device-online").dataset.online === "false"`, text("#device-online"))
		eval[chromedp.Void](b, `document.querySelector("#control-form").reset()`)
		b.do("control while offline",
			chromedp.SetValue(chromedp.CSS(`#control-form [name="brightness"]`), "10"),
			chromedp.Click(chromedp.CSS("#control-submit")))
		b.waitFor("the pending control", text("#control-result")+` === "device offline: stored as pending control" && !document.querySelector("#pending").hidden`, text("#control-form"))
		if got := eval[string](b, text("#prop-brightness .pending")); got != "10 %" {
			t.Errorf("pending column shows %q, want %q", got, "10 %")
		}
	})

	t.Run("gateway topology", func(t *testing.T) {
		b.t = t
		hub, sub := "hub-1", "light-2"
		for _, name := range []string{hub, sub} {
			if _, err := srv.AddDevice(pid, name); err != nil {
				t.Fatal(err)
			}
		}
		gconn, err := explorer.Dial(ctx, srv.DeviceConfig(pid, hub), append(srv.DialOptions(), explorer.WithLogger(logger))...)
		if err != nil {
			t.Fatal(err)
		}
		defer gconn.Close()
		hubSel := fmt.Sprintf(`#devices tr[data-device=%q]`, pid+"/"+hub)
		b.waitFor("the device listed online", `(document.querySelector(`+jsq(hubSel)+`) || {dataset: {}}).dataset.online === "true"`, text("#devices"))
		b.do("open the device's page", chromedp.Click(chromedp.CSS(hubSel)))
		b.waitFor("the device's page", text("#device-title")+` === `+jsq(pid+"/"+hub)+` && document.querySelector("#device-online").dataset.online === "true"`, text("#device-title"))
		// Not a gateway yet: no gateway tools.
		toolsHidden := `document.querySelector("#gateway-tools").hidden && document.querySelector("#gateway-ops").hidden`
		b.waitFor("no gateway tools", toolsHidden+` && `+text("#gateway")+`.startsWith("No gateway relations.")`, text("#gateway-card"))

		// It subscribes as a gateway: the page shows the tools without a reload.
		unboundAll := make(chan struct{}, 1)
		searches := make(chan int, 1)
		gw, err := gateway.New(ctx, gconn, gateway.WithLogger(logger),
			gateway.WithUnbindAllHandler(func(context.Context) error { unboundAll <- struct{}{}; return nil }),
			gateway.WithSearchHandler(func(_ context.Context, status int) error { searches <- status; return nil }))
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close(context.Background())
		b.waitFor("the gateway tools", `!(`+toolsHidden+`) && `+text("#gateway")+` === "A gateway with no sub-devices bound."`, text("#gateway-card"))
		b.do("bind the sub-device from the page",
			chromedp.Click(chromedp.CSS("#gateway-tools summary")),
			chromedp.SetValue(chromedp.CSS("#gateway-sub"), pid+"/"+sub),
			chromedp.Click(chromedp.CSS("#gateway-bind")))
		b.waitFor("the gateway's acknowledgement", text("#gateway-result")+` === `+jsq("bound "+pid+"/"+sub+"; the gateway acknowledged"), text("#gateway-card"))
		subRow := fmt.Sprintf(`[...document.querySelectorAll("#gateway tbody tr")].find((tr) => tr.textContent.includes(%q))`, pid+"/"+sub)
		b.waitFor("the sub-device in the topology, offline", `(`+subRow+` || {textContent: ""}).textContent.endsWith("offline")`, text("#gateway"))
		if _, err := gw.Online(ctx, gateway.Device{ProductID: pid, DeviceName: sub}); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the sub-device online in the topology", `(`+subRow+` || {textContent: ""}).textContent.endsWith("online")`, text("#gateway"))
		b.do("follow the link to the sub-device", chromedp.Click(chromedp.CSS(`#gateway tbody a`)))
		b.waitFor("the sub-device's page", text("#device-title")+` === `+jsq(pid+"/"+sub)+` && `+text("#gateway")+`.startsWith(`+jsq("Sub-device of gateway "+pid+"/"+hub)+`)`, text("#device"))
		if got := eval[string](b, `document.querySelector("#device-online").dataset.online`); got != "true" {
			t.Errorf("a sub-device online through its gateway shows online=%s", got)
		}
		if !eval[bool](b, toolsHidden) {
			t.Error("a sub-device's page shows the gateway tools")
		}

		// Back on the gateway's page, the cloud-initiated operations: search, describe, then
		// unbind all (which asks for a second click).
		b.do("follow the link to the gateway", chromedp.Click(chromedp.CSS(`#gateway p a`)))
		b.waitFor("the gateway's page again", text("#device-title")+` === `+jsq(pid+"/"+hub)+` && !!document.querySelector("#gateway tbody tr")`, text("#device"))
		b.do("start search", chromedp.Click(chromedp.CSS("#gateway-search-on")))
		if st := recv(t, ctx, "search_devices", searches); st != 1 {
			t.Errorf("the gateway got search_devices status %d, want 1", st)
		}
		b.waitFor("the search acknowledgement", text("#gateway-op-result")+` === "search_devices (status 1) sent; the gateway acknowledged"`, text("#gateway-ops"))
		b.do("describe", chromedp.Click(chromedp.CSS("#gateway-describe")))
		b.waitFor("the describe acknowledgement", text("#gateway-op-result")+` === "describe_sub_devices sent; the gateway acknowledged" && !document.querySelector("#gateway-op-ack").hidden`, text("#gateway-ops"))
		if ack := eval[string](b, text("#gateway-op-ack")); !strings.Contains(ack, `"device_name":"`+sub+`"`) {
			t.Errorf("the describe result does not list %s: %q", sub, ack)
		}
		b.do("unbind all (first click arms)", chromedp.Click(chromedp.CSS("#gateway-unbind-all")))
		if got := eval[string](b, text("#gateway-op-result")); !strings.HasPrefix(got, "describe_sub_devices") {
			t.Errorf("the first click on unbind all already did something: %q", got)
		}
		b.do("unbind all (confirm)", chromedp.Click(chromedp.CSS("#gateway-unbind-all")))
		recv(t, ctx, "unbind_all", unboundAll)
		b.waitFor("the unbind_all acknowledgement", text("#gateway-op-result")+` === "unbind_all sent; the gateway acknowledged"`, text("#gateway-ops"))
		b.waitFor("the topology empty", text("#gateway")+` === "A gateway with no sub-devices bound."`, text("#gateway"))
		if subs := srv.SubDevices(pid, hub); len(subs) != 0 {
			t.Errorf("the platform still lists sub-devices of %s: %v", hub, subs)
		}
	})

	b.t = t // the subtests are done: failures from here on are the whole test's
	if !eval[bool](b, `window.__sameConsolePage === true`) {
		t.Error("the page was reloaded during the test: live updates must not need a reload")
	}
}

// newBrowser starts headless Chromium with one tab; the browser stops at the end of the test,
// which fails if the page threw an uncaught JavaScript exception.
func newBrowser(t *testing.T, ctx context.Context, exe string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(1280, 1600),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	// The browser starts here, on a context of its own per attempt: chromedp must not start a
	// second browser on a context whose first start failed (its allocator then closes the
	// context's semaphore twice and panics after the test has passed).
	var bctx context.Context
	var bcancel context.CancelFunc
	for attempt := 1; ; attempt++ {
		bctx, bcancel = chromedp.NewContext(actx)
		err := chromedp.Do(bctx)
		if err == nil {
			break
		}
		bcancel()
		if attempt == 3 || ctx.Err() != nil {
			acancel()
			t.Fatalf("starting Chromium (%s): %v", exe, err)
		}
		t.Logf("starting Chromium (attempt %d): %v; trying again", attempt, err)
	}
	b := &browser{t: t, ctx: bctx}
	messages := chromedp.Console(bctx) // subscribed before the first page: nothing it logs is lost
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				if bctx.Err() == nil { // not the end of the test: exceptions would go unseen
					b.mu.Lock()
					b.consoleErr = err
					b.mu.Unlock()
				}
				return
			}
			if m.IsException() {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		bcancel()
		acancel()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exceptions {
			t.Errorf("uncaught JavaScript exception in the console page: %s", e)
		}
		if b.consoleErr != nil {
			t.Errorf("following the page's JavaScript console failed (exceptions after it went unseen): %v", b.consoleErr)
		}
	})
	return b
}

// A platform reachable beyond loopback guards its API with a token: the console asks for it
// once, then works (list and live stream), and remembers it across a reload.
func TestBrowserConsoleAPIToken(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	exe := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const token = "s3cr3t-console-token"
	srv, err := explorertest.NewServer(explorertest.WithAPIToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddProduct(light.Template()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(light.ProductID, "light-1"); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`!!document.querySelector('#devices tr[data-device=%q]')`, light.ProductID+"/light-1")
	b := newBrowser(t, ctx, exe)
	b.do("open the console", chromedp.Navigate(srv.HTTPURL()+"/"))
	b.waitFor("the token prompt", `!document.querySelector("#token-panel").hidden`, text("body"))
	b.do("enter a wrong token",
		chromedp.SetValue(chromedp.CSS("#token-input"), "wrong"),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	b.waitFor("the refusal", `!document.querySelector("#token-panel").hidden && `+text("#token-error")+`.includes("needs its token")`, text("#token-panel"))
	b.do("enter the token",
		chromedp.SetValue(chromedp.CSS("#token-input"), token),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	b.waitFor("the device list and the live stream", row+` && `+text("#stream-state")+` === "live" && document.querySelector("#token-panel").hidden`, text("header")+` + " | " + `+text("#devices"))
	b.do("reload", chromedp.Navigate(srv.HTTPURL()+"/"))
	b.waitFor("the list without asking again", row+` && `+text("#stream-state")+` === "live"`, text("body"))
	if !eval[bool](b, `document.querySelector("#token-panel").hidden`) {
		t.Error("the console asked for the token again after a reload")
	}
}

// jsq quotes s as a JavaScript string literal.
func jsq(s string) string { return fmt.Sprintf("%q", s) }
