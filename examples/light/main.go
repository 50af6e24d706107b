// Command light runs a smart light: typed code generated from schemas/light.json (package
// light) on top of runtime/thing.
//
// With no flags it starts the in-process IoT Explorer platform (runtime/explorertest), adds
// the product and a device, connects the light and runs a short scenario, printing what
// happened on both sides: report_info, report, a control from the cloud (applied by the
// handler, then reported back), an action (light_on), an RRPC call answered with the light's
// state, an event, get_status, and the device's log lines as the cloud received them. It exits
// 0 when every step succeeded.
//
// With -product/-device/-secret (or TPLGEN_PRODUCT_ID, TPLGEN_DEVICE_NAME,
// TPLGEN_DEVICE_SECRET) it connects to the real platform instead, reports its info and state,
// uploads its logs at the level set in the console, and serves control, actions and RRPC
// until interrupted (Ctrl-C).
package main

//go:generate go run github.com/tplgen/tplgen/cmd/tplgen generate -package light -out light/light_gen.go ../../schemas/light.json

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/devlog"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/thing"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

func main() {
	product := flag.String("product", os.Getenv("TPLGEN_PRODUCT_ID"), "ProductID (connects to the real platform)")
	device := flag.String("device", os.Getenv("TPLGEN_DEVICE_NAME"), "DeviceName (real platform)")
	secret := flag.String("secret", os.Getenv("TPLGEN_DEVICE_SECRET"), "DeviceSecret (real platform)")
	region := flag.String("region", "china", "platform region: china, us-east, europe, ap-bangkok")
	verbose := flag.Bool("v", false, "log the runtime's activity to stderr")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if *product == "" && *device == "" && *secret == "" {
		err = emulated(ctx, os.Stdout, logger)
	} else {
		cfg := explorer.Config{ProductID: *product, DeviceName: *device, DeviceSecret: *secret, Region: *region}
		err = real(ctx, cfg, logger)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "light:", err)
		os.Exit(1)
	}
}

// lamp is the device application: it holds the light's state and implements light.Handler.
type lamp struct {
	out     io.Writer
	changed chan struct{} // signalled (without blocking) when the cloud changed the state
	mu      sync.Mutex
	st      light.Properties
	log     *slog.Logger // the device's log, uploaded to the cloud once setLog was called
}

func newLamp(out io.Writer) *lamp {
	return &lamp{out: out, changed: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler), st: light.Properties{
		PowerSwitch: tplwire.Ptr[tplwire.Bool](false),
		Color:       tplwire.Ptr(light.ColorRed),
		Brightness:  tplwire.Ptr[int64](50),
		Name:        tplwire.Ptr("living room"),
	}}
}

// Control applies the properties the cloud set; only the ones sent are non-nil.
func (l *lamp) Control(_ context.Context, p light.ControlProperties) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := p.Properties()
	if set.PowerSwitch != nil {
		l.st.PowerSwitch = set.PowerSwitch
	}
	if set.Color != nil {
		l.st.Color = set.Color
	}
	if set.Brightness != nil {
		l.st.Brightness = set.Brightness
	}
	if set.Name != nil {
		l.st.Name = set.Name
	}
	fmt.Fprintf(l.out, "device: control applied: %s\n", describe(set))
	l.log.Info("control applied", "set", describe(set))
	l.notify()
	return nil
}

// setLog makes the lamp log to h (the cloud log uploader's slog.Handler).
func (l *lamp) setLog(h slog.Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = slog.New(h)
}

// RRPC answers the cloud's synchronous calls: "state?" returns the light's state.
func (l *lamp) RRPC(_ context.Context, req []byte) ([]byte, error) {
	if string(req) != "state?" {
		return nil, fmt.Errorf("unknown request %q", req) // no reply: the caller sees its timeout
	}
	return []byte(describe(l.state())), nil
}

// LightOn runs the light_on action.
func (l *lamp) LightOn(_ context.Context, in light.LightOnInput) (light.LightOnOutput, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.PowerSwitch = tplwire.Ptr(in.IsOn)
	fmt.Fprintf(l.out, "device: action light_on: is_on=%v\n", in.IsOn)
	l.log.Info("action light_on", "is_on", in.IsOn)
	l.notify()
	return light.LightOnOutput{ErrCode: false}, nil
}

func (l *lamp) notify() {
	select {
	case l.changed <- struct{}{}:
	default: // a report is already due
	}
}

// state returns a copy of the current state, for reporting.
func (l *lamp) state() light.Properties {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// describe renders the properties that are set, in template order.
func describe(p light.Properties) string {
	s := ""
	add := func(k string, v any) {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s=%v", k, v)
	}
	if p.PowerSwitch != nil {
		add("power_switch", *p.PowerSwitch)
	}
	if p.Color != nil {
		add("color", *p.Color)
	}
	if p.Brightness != nil {
		add("brightness", *p.Brightness)
	}
	if p.Name != nil {
		add("name", fmt.Sprintf("%q", *p.Name))
	}
	return s
}

// emulated runs the scenario against the in-process platform.
func emulated(ctx context.Context, out io.Writer, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	const dn = "light-1"
	pid := light.ProductID

	srv, err := explorertest.NewServer(explorertest.WithLogger(logger))
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.AddProduct(light.Template()); err != nil {
		return err
	}
	if _, err := srv.AddDevice(pid, dn); err != nil {
		return err
	}
	fmt.Fprintf(out, "platform: in-process IoT Explorer started; product %s, device %s\n", pid, dn)

	conn, err := explorer.Dial(ctx, srv.DeviceConfig(pid, dn), append(srv.DialOptions(), explorer.WithLogger(logger))...)
	if err != nil {
		return err
	}
	defer conn.Close()
	l := newLamp(out)
	dev, err := light.New(conn, l, thing.WithLogger(logger))
	if err != nil {
		return err
	}
	defer dev.Close(context.Background())
	fmt.Fprintln(out, "device: connected over MQTT/TLS")

	// Beside the data template: RRPC answers and the device log, uploaded at the level the
	// cloud sets (info here).
	if err := dev.OnRRPC(ctx, l.RRPC); err != nil {
		return fmt.Errorf("rrpc: %w", err)
	}
	if _, err := srv.SetLogLevel(pid, dn, int(devlog.LevelInfo)); err != nil {
		return err
	}
	up, err := dev.NewLogUploader(ctx, srv.DeviceConfig(pid, dn),
		devlog.WithEndpoint(srv.HTTPSURL()), devlog.WithRootCAs(srv.RootCAs())) // default: the real platform
	if err != nil {
		return fmt.Errorf("log uploader: %w", err)
	}
	level, err := up.RequestLevel(ctx)
	if err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	l.setLog(up.Handler())
	fmt.Fprintf(out, "device: answering RRPC; uploading logs at the cloud's level (%s)\n", level)

	info := thing.DeviceInfo{FirmwareVersion: "1.0.0", ModuleHardInfo: "tplgen-example", MAC: "E0F2CA181818"}
	if err := dev.ReportInfo(ctx, info); err != nil {
		return fmt.Errorf("report_info: %w", err)
	}
	fmt.Fprintf(out, "device: report_info fw_ver=%s accepted\n", info.FirmwareVersion)

	if err := dev.Report(ctx, l.state()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fmt.Fprintf(out, "device: report %s accepted\n", describe(l.state()))

	// A value outside the template never leaves the device.
	err = dev.Report(ctx, light.Properties{Brightness: tplwire.Ptr[int64](150)})
	if !thing.IsInvalidValue(err) {
		return fmt.Errorf("an out-of-range report was not refused locally: %v", err)
	}
	fmt.Fprintf(out, "device: report brightness=150 refused locally: %v\n", err)

	fmt.Fprintln(out, "cloud: control power_switch=1 color=2 brightness=80")
	r, err := srv.SendControl(ctx, pid, dn, map[string]any{"power_switch": 1, "color": 2, "brightness": 80})
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	fmt.Fprintf(out, "cloud: control_reply code %d %q\n", r.Code, r.Status)
	if r.Code != 0 {
		return fmt.Errorf("control refused: code %d %s", r.Code, r.Status)
	}
	if err := dev.Report(ctx, l.state()); err != nil {
		return fmt.Errorf("report after control: %w", err)
	}
	fmt.Fprintf(out, "device: report %s accepted\n", describe(l.state()))

	fmt.Fprintln(out, "cloud: action light_on is_on=0")
	a, err := srv.InvokeAction(ctx, pid, dn, "light_on", map[string]any{"is_on": 0})
	if err != nil {
		return fmt.Errorf("action: %w", err)
	}
	fmt.Fprintf(out, "cloud: action_reply code %d response %s\n", a.Code, a.Response)
	if a.Code != 0 {
		return fmt.Errorf("action failed: code %d %s", a.Code, a.Status)
	}
	if err := dev.Report(ctx, light.Properties{PowerSwitch: l.state().PowerSwitch}); err != nil {
		return fmt.Errorf("report after action: %w", err)
	}

	_, answer, err := srv.CallRRPC(ctx, pid, dn, []byte("state?"), 4*time.Second)
	if err != nil {
		return fmt.Errorf("rrpc: %w", err)
	}
	fmt.Fprintf(out, "cloud: rrpc \"state?\" answered %s\n", answer)

	if err := dev.PostStatusReport(ctx, light.StatusReport{Status: false, Message: "all good"}); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	fmt.Fprintln(out, "device: event status_report (info) accepted")
	evs, err := srv.WaitEvents(ctx, pid, dn, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cloud: event %s type %s params %s\n", evs[0].EventID, evs[0].Type, evs[0].Params)

	reported, err := dev.GetStatus(ctx)
	if err != nil {
		return fmt.Errorf("get_status: %w", err)
	}
	fmt.Fprintf(out, "device: get_status reported %s\n", describe(reported))
	if reported.GetBrightness() != 80 {
		return errors.New("get_status does not show the controlled brightness")
	}

	if err := up.Flush(ctx); err != nil {
		return fmt.Errorf("log upload: %w", err)
	}
	logs, _ := srv.DeviceLogs(pid, dn)
	if len(logs.Lines) == 0 {
		return errors.New("the cloud received no device log")
	}
	for _, line := range logs.Lines { // LVL|time|message: the time varies, leave it out
		parts := strings.SplitN(line.Text, "|", 3)
		fmt.Fprintf(out, "cloud: device log %s %s\n", parts[0], parts[len(parts)-1])
	}
	fmt.Fprintln(out, "done")
	return nil
}

// real connects to IoT Explorer and serves the light until ctx ends.
func real(ctx context.Context, cfg explorer.Config, logger *slog.Logger) error {
	out := os.Stdout
	conn, err := explorer.Dial(ctx, cfg, explorer.WithLogger(logger))
	if err != nil {
		return err
	}
	defer conn.Close()
	l := newLamp(out)
	dev, err := light.New(conn, l, thing.WithLogger(logger))
	if err != nil {
		return err
	}
	defer func() {
		// Close also uploads the logs still buffered: give it a few seconds, not forever.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		dev.Close(cctx)
	}()
	fmt.Fprintf(out, "device: connected to %s/%s; Ctrl-C to stop\n", cfg.ProductID, cfg.DeviceName)
	if err := dev.OnRRPC(ctx, l.RRPC); err != nil {
		return fmt.Errorf("rrpc: %w", err)
	}
	// Logs go to the cloud at the level set in the console (none until it is set).
	up, err := dev.NewLogUploader(ctx, cfg)
	if err != nil {
		return fmt.Errorf("log uploader: %w", err)
	}
	l.setLog(up.Handler())

	call := func(what string, fn func(ctx context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := fn(cctx); err != nil {
			fmt.Fprintf(out, "device: %s: %v\n", what, err)
			return
		}
		fmt.Fprintf(out, "device: %s accepted\n", what)
	}
	call("report_info", func(ctx context.Context) error {
		return dev.ReportInfo(ctx, thing.DeviceInfo{FirmwareVersion: "1.0.0", ModuleHardInfo: "tplgen-example"})
	})
	for {
		// Report the state now and after every change the cloud made, as the official
		// samples do after applying a control.
		call("report "+describe(l.state()), func(ctx context.Context) error { return dev.Report(ctx, l.state()) })
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "device: stopping")
			return nil
		case <-l.changed:
		}
	}
}
