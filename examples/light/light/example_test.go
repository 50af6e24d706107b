package light_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/devlog"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/resource"
	"github.com/tplgen/tplgen/runtime/thing"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// handler is the device application.
type handler struct{}

func (handler) Control(_ context.Context, p light.ControlProperties) error {
	if p.Brightness != nil {
		fmt.Println("device: brightness ->", *p.Brightness)
	}
	return nil
}

func (handler) LightOn(_ context.Context, in light.LightOnInput) (light.LightOnOutput, error) {
	fmt.Println("device: light_on is_on =", in.IsOn)
	return light.LightOnOutput{ErrCode: false}, nil
}

// The generated Device reports typed properties and events and hands typed control and
// action input to a Handler. Here it runs against the in-process platform.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddProduct(light.Template()); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AddDevice(light.ProductID, "light-1"); err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(light.ProductID, "light-1"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	dev, err := light.New(conn, handler{})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close(ctx)

	err = dev.Report(ctx, light.Properties{
		PowerSwitch: tplwire.Ptr[tplwire.Bool](true),
		Color:       tplwire.Ptr(light.ColorGreen),
		Brightness:  tplwire.Ptr[int64](60),
	})
	fmt.Println("report:", err)
	fmt.Println("event:", dev.PostLowVoltage(ctx, light.LowVoltage{Voltage: 3.1}))

	if _, err := srv.SendControl(ctx, light.ProductID, "light-1", map[string]any{"brightness": 20}); err != nil {
		log.Fatal(err)
	}
	r, err := srv.InvokeAction(ctx, light.ProductID, "light-1", "light_on", map[string]any{"is_on": 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cloud: action_reply %d %s\n", r.Code, r.Response)

	// The platform holds what the device reported: the control is not reflected until the
	// device reports the new brightness (examples/light does that after each control).
	st, err := dev.GetStatus(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status: color", st.GetColor(), "brightness", st.GetBrightness())
	// Output:
	// report: <nil>
	// event: <nil>
	// device: brightness -> 20
	// device: light_on is_on = true
	// cloud: action_reply 0 {"err_code":0}
	// status: color Green brightness 60
}

// bindingHandler is a Handler that also wants to know when a user binds or unbinds the
// device (thing.BindingObserver): New wires the method up by itself.
type bindingHandler struct {
	handler
	notices chan thing.BindingNotice
}

func (h bindingHandler) Binding(_ context.Context, n thing.BindingNotice) { h.notices <- n }

// Binding a consumer device to the app user who provisioned it: the app hands the device a
// token (here issued by the in-process platform), the device sends it with BindAppToken; a
// factory reset unbinds with RequestUnbind, after which the platform pushes unbind_device.
// Refusals are typed: errors.Is(err, thing.ErrBindTokenExpired), ...
func ExampleDevice_BindAppToken() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddProduct(light.Template()); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AddDevice(light.ProductID, "light-1"); err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(light.ProductID, "light-1"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	h := bindingHandler{notices: make(chan thing.BindingNotice, 4)}
	dev, err := light.New(conn, h)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close(ctx)

	tok, err := srv.IssueAppToken(light.ProductID, "light-1", "alice", 0)
	if err != nil {
		log.Fatal(err)
	}
	if err := dev.BindAppToken(ctx, tok.Token); err != nil {
		log.Fatal(err)
	}
	b, _ := srv.Binding(light.ProductID, "light-1")
	fmt.Println("bound to", b.User)

	err = dev.BindAppToken(ctx, tok.Token) // single use
	fmt.Println("again:", errors.Is(err, thing.ErrBindTokenUsed))

	if err := dev.RequestUnbind(ctx); err != nil {
		log.Fatal(err)
	}
	for n := range h.notices {
		if !n.Bound {
			fmt.Println("device:", n.Method)
			break
		}
	}
	// Output:
	// bound to alice
	// again: true
	// device: unbind_device
}

// startLight starts the in-process platform with the light product and device light-1, and
// the generated Device on a connection to it (dial options added to the platform's).
func startLight(ctx context.Context, opts ...explorer.Option) (*explorertest.Server, *light.Device, func()) {
	srv, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.AddProduct(light.Template()); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AddDevice(light.ProductID, "light-1"); err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(light.ProductID, "light-1"), append(srv.DialOptions(), opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	dev, err := light.New(conn, handler{})
	if err != nil {
		log.Fatal(err)
	}
	return srv, dev, func() { dev.Close(ctx); conn.Close(); srv.Close() }
}

// The cloud calls the device synchronously (RRPC) and broadcasts to every device of the
// product; the device answers with its handler's bytes. The cloud side here is the in-process
// platform (POST /api/devices/{pid}/{dn}/rrpc and POST /api/products/{pid}/broadcast in
// `tplgen emulate`).
func ExampleDevice_OnRRPC() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, dev, stop := startLight(ctx)
	defer stop()

	err := dev.OnRRPC(ctx, func(_ context.Context, req []byte) ([]byte, error) {
		if string(req) != "brightness?" {
			return nil, errors.New("unknown request") // nothing is sent; the caller times out
		}
		return []byte("60"), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	broadcasts := make(chan string, 1)
	if err := dev.OnBroadcast(ctx, func(_ context.Context, msg []byte) { broadcasts <- string(msg) }); err != nil {
		log.Fatal(err)
	}

	_, answer, err := srv.CallRRPC(ctx, light.ProductID, "light-1", []byte("brightness?"), 4*time.Second)
	fmt.Printf("cloud: rrpc answered %q, err %v\n", answer, err)
	if _, err := srv.Broadcast(light.ProductID, []byte("night mode at 22:00")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("device: broadcast", <-broadcasts)
	// Output:
	// cloud: rrpc answered "60", err <nil>
	// device: broadcast night mode at 22:00
}

// Now is the platform's time, even on a board whose own clock never was set: the connection
// learns the offset from the platform after every connect, and every timestamp the device
// sends comes from it.
func ExampleDevice_Now() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	boot := time.Now()
	rtcless := func() time.Time { return time.Unix(0, 0).Add(time.Since(boot)) } // starts in 1970
	_, dev, stop := startLight(ctx, explorer.WithClock(rtcless))
	defer stop()

	fmt.Println("device clock year:", rtcless().Year())
	fmt.Println("Now is the platform's time:", time.Until(dev.Now()).Abs() < time.Minute)
	// Output:
	// device clock year: 1970
	// Now is the platform's time: true
}

// The device's log goes to the cloud: NewLogUploader gives an slog.Handler that keeps what is
// at or above the level the cloud sets and uploads it in batches, never blocking the caller.
func ExampleDevice_NewLogUploader() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, dev, stop := startLight(ctx)
	defer stop()
	srv.SetLogLevel(light.ProductID, "light-1", int(devlog.LevelWarn)) // PUT /api/devices/{pid}/{dn}/log-level

	// The credentials the connection was dialled with sign the HTTPS uploads.
	up, err := dev.NewLogUploader(ctx, srv.DeviceConfig(light.ProductID, "light-1"),
		devlog.WithEndpoint(srv.HTTPSURL()), devlog.WithRootCAs(srv.RootCAs())) // default: the real platform
	if err != nil {
		log.Fatal(err)
	}
	level, _ := up.RequestLevel(ctx)
	fmt.Println("cloud log level:", level)
	logger := slog.New(up.Handler())
	logger.Info("boot complete")                   // below the cloud's level: not kept
	logger.Warn("LED driver hot", "celsius", 71.5) // kept and uploaded
	dev.Close(ctx)                                 // closes the uploader, which uploads what it holds

	logs, _ := srv.DeviceLogs(light.ProductID, "light-1") // GET /api/devices/{pid}/{dn}/logs
	for _, l := range logs.Lines {
		fmt.Println(l.Level, l.Text[strings.LastIndex(l.Text, "|")+1:])
	}
	// Output:
	// cloud log level: warn
	// WRN LED driver hot celsius=71.5
}

// Files other than firmware: the cloud pushes a resource, the device downloads it (resumable,
// MD5-checked, progress reported) into a directory, and uploads a file of its own. The Device
// shares its service topic with the Files, so binding and the rest keep working beside it.
func ExampleDevice_NewFiles() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, dev, stop := startLight(ctx)
	defer stop()
	dir, _ := os.MkdirTemp("", "light-files-")
	defer os.RemoveAll(dir)

	files, err := dev.NewFiles(ctx, dir,
		// The emulator's test CA; real object storage URLs use the system trust store.
		resource.WithRootCAs(srv.RootCAs()))
	if err != nil {
		log.Fatal(err)
	}
	got := make(chan string, 1)
	files.OnUpdate(func(ctx context.Context, u resource.Update) {
		path, err := files.Download(ctx, u) // reports progress and the result
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := os.ReadFile(path)
		got <- string(b)
	})
	// The cloud side: POST /api/resources and POST /api/devices/{pid}/{dn}/resources.
	srv.UploadResource(light.ProductID, "scene.json", "1", "FILE", strings.NewReader(`{"sunset":[255,120,0]}`))
	srv.PushResource(light.ProductID, "light-1", "scene.json", "")
	fmt.Println("device: received", <-got)

	usage := filepath.Join(dir, "usage.csv")
	os.WriteFile(usage, []byte("day,hours\nmon,5\n"), 0o644)
	_, err = files.Upload(ctx, resource.Resource{Name: "usage.csv", Version: "1", Type: "FILE"}, usage)
	fmt.Println("device: uploaded usage.csv:", err == nil)
	// Output:
	// device: received {"sunset":[255,120,0]}
	// device: uploaded usage.csv: true
}

// Resource tasks ($resource topics, the official Python SDK's resource calls): the device
// uploads a file as an upload task and asks the platform for a download task.
func ExampleDevice_NewResourceTasks() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, dev, stop := startLight(ctx)
	defer stop()
	dir, _ := os.MkdirTemp("", "light-tasks-")
	defer os.RemoveAll(dir)

	tasks, err := dev.NewResourceTasks(ctx, dir,
		resource.WithRootCAs(srv.RootCAs()))
	if err != nil {
		log.Fatal(err)
	}
	tasks.OnDownloadTask(func(context.Context, resource.Task) {}) // pushed tasks: fetched below instead
	snapshot := filepath.Join(dir, "snapshot.txt")
	os.WriteFile(snapshot, []byte("brightness=60\n"), 0o644)
	fmt.Println("upload:", tasks.Upload(ctx, "snapshot.txt", snapshot))

	srv.UploadResource(light.ProductID, "curve.bin", "2", "FILE", strings.NewReader("gamma 2.2"))
	srv.PushResource(light.ProductID, "light-1", "curve.bin", "", explorertest.WithTaskAPI())
	task, err := tasks.RequestDownload(ctx)
	if err != nil {
		log.Fatal(err)
	}
	path, err := tasks.Download(ctx, task)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	fmt.Printf("download: %s %d bytes %q\n", task.Name, task.Size, b)
	// Output:
	// upload: <nil>
	// download: curve.bin 9 bytes "gamma 2.2"
}
