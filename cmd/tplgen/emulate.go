package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
)

// emulateCommand runs the in-process IoT Explorer platform as a standalone process so that real
// devices (including ones built with the official Tencent SDKs) can be developed against it.
func emulateCommand() *cli.Command {
	return &cli.Command{
		Name:  "emulate",
		Usage: "run a local IoT Explorer platform (MQTT broker + data-template cloud + JSON API)",
		Description: `Serves until SIGINT/SIGTERM. Every --device gets credentials (printed); devices connect with
the platform's usual username/password (or TLS trusting the printed CA file). Products are
defined by their data-template JSON: --template FILE uses profile.ProductId, PID=FILE names it.

JSON API on --http: GET /api/devices, GET /api/devices/{pid}/{dn},
POST /api/devices/{pid}/{dn}/control {"params":{...}},
POST /api/devices/{pid}/{dn}/actions/{actionId} {"params":{...}},
POST /api/devices/{pid}/{dn}/app-token {"user":"alice","ttl":"10m"} (token for app_bind_token),
GET /api/devices/{pid}/{dn}/binding, POST /api/devices/{pid}/{dn}/bind {"user":...}, .../unbind,
POST /api/gateways/{pid}/{dn}/change {"status":1|0,"devices":[{"product_id","device_name"}]},
POST /api/gateways/{pid}/{dn}/{unbind_all|search_devices {"status":1}|describe_sub_devices}.
POST /api/devices/{pid}/{dn}/rrpc {"payload":"..."} (waits for the reply; 409 offline, 504 timeout),
POST /api/products/{pid}/broadcast {"payload":"..."} (every online device, at most 8 KiB),
PUT /api/devices/{pid}/{dn}/log-level {"level":0..4}, GET /api/devices/{pid}/{dn}/logs,
POST /api/resources?product=PID&name=N&version=V&type=FILE (file as body), GET /api/resources?product=PID,
POST /api/devices/{pid}/{dn}/resources {"name","version","api":"files"|"tasks"},
GET /api/devices/{pid}/{dn}/resources, DELETE /api/devices/{pid}/{dn}/resources/{name},
GET /api/uploads/{token}. Devices: POST /device/publish and /device/reportlog (signed HTTP).
Addresses may use port 0 (an ephemeral port); the actual addresses are printed.`,
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mqtt", Value: "127.0.0.1:1883", Usage: "plain MQTT listen `ADDR`"},
			&cli.StringFlag{Name: "tls", Value: "127.0.0.1:8883", Usage: "MQTT over TLS listen `ADDR`"},
			&cli.StringFlag{Name: "http", Value: "127.0.0.1:8080", Usage: "HTTP (JSON API, OTA, dynreg) listen `ADDR`"},
			&cli.StringFlag{Name: "https", Value: "127.0.0.1:8443", Usage: "HTTPS listen `ADDR`"},
			&cli.StringFlag{Name: "firmware-http", Value: "127.0.0.1:0", Usage: "firmware download host (plain HTTP) `ADDR`; port 80 for C SDK devices, which always download from it"},
			&cli.StringFlag{Name: "firmware-https", Value: "127.0.0.1:0", Usage: "firmware download host (HTTPS) `ADDR`"},
			&cli.StringFlag{Name: "ws", Usage: "MQTT over WebSocket listen `ADDR` (off when empty)"},
			&cli.StringFlag{Name: "wss", Usage: "MQTT over secure WebSocket listen `ADDR` with the test CA (off when empty)"},
			&cli.StringSliceFlag{Name: "template", Usage: "data template `[PID=]FILE` (repeatable)"},
			&cli.StringSliceFlag{Name: "device", Usage: "device `PID/DN[=SECRET]` to register (repeatable; random secret when omitted)"},
			&cli.StringSliceFlag{Name: "dynreg", Usage: "enable dynamic registration (auto-create devices, PSK) for product `PID[=PRODUCT_SECRET]` (repeatable; random secret when omitted)"},
			&cli.StringFlag{Name: "ca-file", Usage: "write the test CA certificate (PEM) to `PATH` (default: a temporary file removed on exit)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "platform log `LEVEL` on stderr: debug, info, warn, error"},
		},
		Action: runEmulate,
	}
}

type emuDevice struct {
	pid, dn, secret string
}

// parseDeviceSpec parses PID/DN[=SECRET].
func parseDeviceSpec(spec string) (emuDevice, error) {
	id, secret, _ := strings.Cut(spec, "=")
	pid, dn, ok := strings.Cut(id, "/")
	if !ok || pid == "" || dn == "" || strings.Contains(dn, "/") {
		return emuDevice{}, fmt.Errorf("--device %q: want PID/DN or PID/DN=SECRET", spec)
	}
	return emuDevice{pid: pid, dn: dn, secret: secret}, nil
}

// loadTemplateSpec parses [PID=]FILE into the product id and its template.
func loadTemplateSpec(spec string) (string, *template.Template, error) {
	pid, file := "", spec
	// A PID never contains a path separator or a dot; a file name may contain '='.
	if before, after, ok := strings.Cut(spec, "="); ok && before != "" && !strings.ContainsAny(before, `/\.`) {
		pid, file = before, after
	}
	tpl, err := template.ParseFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("--template %s: %w", spec, err)
	}
	if pid == "" {
		pid = tpl.ProductID
	}
	if pid == "" {
		return "", nil, fmt.Errorf("--template %s: the template has no profile.ProductId; name the product as PID=FILE", spec)
	}
	return pid, tpl, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func runEmulate(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("emulate takes no arguments (got %q); use --template and --device", c.Args().Slice())
	}
	level, err := parseLevel(c.String("log-level"))
	if err != nil {
		return err
	}
	type product struct {
		pid  string
		file string
		tpl  *template.Template
	}
	var products []product
	seen := map[string]string{}
	for _, spec := range c.StringSlice("template") {
		pid, tpl, err := loadTemplateSpec(spec)
		if err != nil {
			return err
		}
		if prev, dup := seen[pid]; dup {
			return fmt.Errorf("--template %s: product %s already defined by %s", spec, pid, prev)
		}
		seen[pid] = spec
		products = append(products, product{pid, spec, tpl})
	}
	var devices []emuDevice
	for _, spec := range c.StringSlice("device") {
		d, err := parseDeviceSpec(spec)
		if err != nil {
			return err
		}
		devices = append(devices, d)
	}

	logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	var wsOpts []explorertest.Option
	if a := c.String("ws"); a != "" {
		wsOpts = append(wsOpts, explorertest.WithWebSocketAddr(a))
	}
	if a := c.String("wss"); a != "" {
		wsOpts = append(wsOpts, explorertest.WithWebSocketTLSAddr(a))
	}
	srv, err := explorertest.NewServer(append([]explorertest.Option{
		explorertest.WithMQTTAddr(c.String("mqtt")),
		explorertest.WithTLSAddr(c.String("tls")),
		explorertest.WithHTTPAddr(c.String("http")),
		explorertest.WithHTTPSAddr(c.String("https")),
		explorertest.WithFirmwareAddr(c.String("firmware-http")),
		explorertest.WithFirmwareTLSAddr(c.String("firmware-https")),
		explorertest.WithLogger(logger),
	}, wsOpts...)...)
	if err != nil {
		return err
	}
	defer srv.Close()

	caPath, cleanup, err := writeCA(c.String("ca-file"), srv.CACertPEM())
	if err != nil {
		return err
	}
	defer cleanup()

	for _, p := range products {
		if err := srv.AddProductAs(p.pid, p.tpl); err != nil {
			return err
		}
	}
	out := c.App.Writer
	fmt.Fprintf(out, "tplgen emulate: IoT Explorer platform\n")
	fmt.Fprintf(out, "  mqtt:     %s\n", srv.BrokerURL())
	fmt.Fprintf(out, "  mqtt-tls: %s\n", srv.TLSBrokerURL())
	fmt.Fprintf(out, "  http:     %s\n", srv.HTTPURL())
	fmt.Fprintf(out, "  https:    %s\n", srv.HTTPSURL())
	fmt.Fprintf(out, "  firmware: %s %s\n", srv.FirmwareURL(), srv.FirmwareTLSURL())
	if u := srv.WebSocketURL(); u != "" {
		fmt.Fprintf(out, "  mqtt-ws:  %s\n", u)
	}
	if u := srv.WebSocketTLSURL(); u != "" {
		fmt.Fprintf(out, "  mqtt-wss: %s\n", u)
	}
	fmt.Fprintf(out, "  ca-file:  %s\n", caPath)
	for _, p := range products {
		fmt.Fprintf(out, "product %s: %s (%d properties, %d events, %d actions)\n",
			p.pid, p.file, len(p.tpl.Properties), len(p.tpl.Events), len(p.tpl.Actions))
	}
	for _, d := range devices {
		var opts []explorertest.DeviceOption
		if d.secret != "" {
			opts = append(opts, explorertest.WithSecret(d.secret))
		}
		secret, err := srv.AddDevice(d.pid, d.dn, opts...)
		if err != nil {
			return err
		}
		if _, ok := seen[d.pid]; !ok {
			logger.Warn("device has no data template: its reports and events will be refused with 403", "device", d.pid+"/"+d.dn)
		}
		printDevice(out, d.pid, d.dn, secret, srv, caPath)
	}
	for _, spec := range c.StringSlice("dynreg") {
		pid, secret, _ := strings.Cut(spec, "=")
		if pid == "" {
			return fmt.Errorf("--dynreg %q: want PID or PID=PRODUCT_SECRET", spec)
		}
		secret, err = srv.EnableDynamicRegistration(pid, explorertest.DynregConfig{ProductSecret: secret, AutoCreate: true})
		if err != nil {
			return fmt.Errorf("--dynreg %s: %w", pid, err)
		}
		fmt.Fprintf(out, "dynamic registration for product %s\n", pid)
		fmt.Fprintf(out, "  product_secret: %s\n", secret)
		fmt.Fprintf(out, "  register:       tplgen register --product %s --product-secret %s --device NAME --endpoint %s --insecure-http --out creds.json\n", pid, secret, srv.HTTPURL())
	}
	// Listen for signals before announcing "serving", so a signal sent as soon as the line is
	// read (scripts, tests) stops the emulator instead of killing the process.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "serving; send SIGINT (Ctrl-C) or SIGTERM to stop\n")
	<-ctx.Done()
	fmt.Fprintf(out, "tplgen emulate: shutting down\n")
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// printDevice prints what a device needs to connect: identity, secret and endpoints.
func printDevice(out io.Writer, pid, dn, secret string, srv *explorertest.Server, caPath string) {
	fmt.Fprintf(out, "device %s/%s\n", pid, dn)
	fmt.Fprintf(out, "  product_id:    %s\n", pid)
	fmt.Fprintf(out, "  device_name:   %s\n", dn)
	fmt.Fprintf(out, "  device_secret: %s\n", secret)
	fmt.Fprintf(out, "  client_id:     %s%s\n", pid, dn)
	fmt.Fprintf(out, "  broker:        %s (username/password, MQTT 3.1 or 3.1.1)\n", srv.BrokerURL())
	fmt.Fprintf(out, "  broker-tls:    %s (trust %s)\n", srv.TLSBrokerURL(), caPath)
}

// writeCA writes the CA certificate to path, or to a temporary file when path is empty; the
// returned cleanup removes only what writeCA created as temporary.
func writeCA(path string, pem []byte) (string, func(), error) {
	if path != "" {
		if err := os.WriteFile(path, pem, 0o644); err != nil {
			return "", nil, fmt.Errorf("--ca-file: %w", err)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		return abs, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "tplgen-emulate-")
	if err != nil {
		return "", nil, fmt.Errorf("temporary CA file: %w", err)
	}
	p := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(p, pem, 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("temporary CA file: %w", err)
	}
	return p, func() { _ = os.RemoveAll(dir) }, nil
}
