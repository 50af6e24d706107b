package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/runtime/explorertest"
)

// emulateCommand runs the in-process IoT Explorer platform as a standalone process so that real
// devices (including ones built with the official Tencent SDKs) can be developed against it.
func emulateCommand() *cli.Command {
	return &cli.Command{
		Name:  "emulate",
		Usage: "run a local IoT Explorer platform (MQTT broker + data-template cloud + web console + JSON API)",
		Description: `Serves until SIGINT/SIGTERM. Every --device gets credentials (printed); devices connect with
the platform's usual username/password (or TLS trusting the printed CA file). Products are
defined by their data-template JSON: --template FILE uses profile.ProductId, PID=FILE names it.

Every flag is checked before anything listens; all ports that cannot be bound are reported
together. Exit status: 0 after SIGINT/SIGTERM, 1 when the platform cannot start (a port in
use, an unreadable template, a corrupt --data database), 2 for a malformed flag.

State. Without --data everything lives in memory and ends with the process. --data DIR keeps
it in DIR/platform.db (SQLite) plus DIR/firmware/ and DIR/resources/: products and templates,
devices and secrets, reported state, pending control, the newest events, firmware, OTA jobs,
resources (library, device uploads, jobs), app tokens and bindings, dynamic-registration
settings (a --dynreg PID without a secret keeps the stored one), device logs and gateway topology; each
change is written as it happens, so even a killed emulator restarted on the same DIR finds
it again, and pending control and resource pushes reach the device when it reconnects.
--device for a device already in DIR keeps its stored secret and state.
A database that is damaged or was written by a newer tplgen stops the emulator with an
error naming the file; it is never overwritten.

API token. When --http or --https listens beyond loopback (0.0.0.0, a LAN address, a host
name), every /api/ request needs "Authorization: Bearer TOKEN": --api-token TOKEN, or a
random token printed once at start (with --data, kept in DIR/api-token and used again by the
next run on DIR). On loopback the API is open unless --api-token is given.
The console at / asks for the token once; tplgen ctl takes --token or TPLGEN_API_TOKEN.
Device-facing routes (firmware downloads, dynamic registration, HTTP publish) keep their own
signatures.

Logs (stderr, --log-format text or json): devices coming and going; every refusal with
device, topic, code and reason (CONNECT refused and why, topic ACL, oversize or QoS 2
publish, a report or event the data template refuses); every control and action with its
reply code; every OTA and resource step. --log-level debug adds each message's body
(never a secret).

Web console: http://ADDR/ on --http. JSON API (the full list: GET /api/openapi.json):
GET /api/devices, GET /api/devices/{pid}/{dn}, POST /api/devices {"product_id","device_name"},
DELETE /api/devices/{pid}/{dn}, GET /api/stream (server-sent events),
POST /api/devices/{pid}/{dn}/control {"params":{...}},
POST /api/devices/{pid}/{dn}/actions/{actionId} {"params":{...}},
POST /api/devices/{pid}/{dn}/app-token {"user":"alice","ttl":"10m"} (token for app_bind_token),
GET /api/devices/{pid}/{dn}/binding, POST /api/devices/{pid}/{dn}/bind {"user":...}, .../unbind,
POST /api/gateways/{pid}/{dn}/change {"status":1|0,"devices":[{"product_id","device_name"}]},
POST /api/gateways/{pid}/{dn}/{unbind_all|search_devices {"status":1}|describe_sub_devices}.
POST /api/devices/{pid}/{dn}/rrpc {"payload":"..."} (waits for the reply; 409 offline, 504 timeout),
POST /api/products/{pid}/broadcast {"payload":"..."} (every online device, at most 8 KiB),
PUT /api/devices/{pid}/{dn}/log-level {"level":0..4}, GET /api/devices/{pid}/{dn}/logs,
POST /api/firmware?product=PID&version=V (file as body), POST /api/devices/{pid}/{dn}/ota {"version":V},
POST /api/resources?product=PID&name=N&version=V&type=FILE (file as body), GET /api/resources?product=PID,
POST /api/devices/{pid}/{dn}/resources {"name","version","api":"files"|"tasks"},
GET /api/devices/{pid}/{dn}/resources, DELETE /api/devices/{pid}/{dn}/resources/{name},
GET /api/uploads/{token}. Devices: POST /device/publish and /device/reportlog (signed HTTP).
Addresses may use port 0 (an ephemeral port); the actual addresses are printed.`,
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mqtt", Value: "127.0.0.1:1883", Usage: "plain MQTT listen `ADDR`"},
			&cli.StringFlag{Name: "tls", Value: "127.0.0.1:8883", Usage: "MQTT over TLS listen `ADDR`"},
			&cli.StringFlag{Name: "http", Value: "127.0.0.1:8080", Usage: "HTTP (web console, JSON API, OTA, dynreg) listen `ADDR`; beyond loopback the API needs a token"},
			&cli.StringFlag{Name: "https", Value: "127.0.0.1:8443", Usage: "HTTPS listen `ADDR`"},
			&cli.StringFlag{Name: "firmware-http", Value: "127.0.0.1:0", Usage: "firmware download host (plain HTTP) `ADDR`; port 80 for C SDK devices, which always download from it"},
			&cli.StringFlag{Name: "firmware-https", Value: "127.0.0.1:0", Usage: "firmware download host (HTTPS) `ADDR`"},
			&cli.StringFlag{Name: "ws", Usage: "MQTT over WebSocket listen `ADDR` (off when empty)"},
			&cli.StringFlag{Name: "wss", Usage: "MQTT over secure WebSocket listen `ADDR` with the test CA (off when empty)"},
			&cli.StringSliceFlag{Name: "template", Usage: "data template `[PID=]FILE` (repeatable)"},
			&cli.StringSliceFlag{Name: "device", Usage: "device `PID/DN[=SECRET]` to register (repeatable; SECRET is base64, random when omitted)"},
			&cli.StringSliceFlag{Name: "dynreg", Usage: "enable dynamic registration (auto-create devices, PSK) for product `PID[=PRODUCT_SECRET]` (repeatable; random secret when omitted)"},
			&cli.StringFlag{Name: "data", Usage: "keep the platform's state in `DIR` (created when missing) across restarts; in memory when omitted"},
			&cli.StringFlag{Name: "api-token", EnvVars: []string{"TPLGEN_API_TOKEN"}, Usage: "require `TOKEN` (Authorization: Bearer) on the JSON API; generated and printed when --http/--https listen beyond loopback without one"},
			&cli.StringFlag{Name: "ca-file", Usage: "write the test CA certificate (PEM) to `PATH` (default: a temporary file removed on exit)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "platform log `LEVEL` on stderr: debug (adds message bodies), info, warn, error"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT` on stderr: text (key=value) or json (one object per line)"},
		},
		Action: runEmulate,
	}
}

func runEmulate(c *cli.Context) error {
	cfg, err := parseEmulateFlags(c)
	if err != nil {
		return err
	}
	if err := cfg.checkPorts(); err != nil {
		return err
	}
	hopts := &slog.HandlerOptions{Level: cfg.level}
	var handler slog.Handler = slog.NewTextHandler(c.App.ErrWriter, hopts)
	if cfg.format == "json" {
		handler = slog.NewJSONHandler(c.App.ErrWriter, hopts)
	}
	logger := slog.New(handler)

	opts := []explorertest.Option{explorertest.WithLogger(logger)}
	for _, a := range cfg.addrs {
		opts = append(opts, addrOption[a.flag](a.addr))
	}
	if cfg.dataDir != "" {
		opts = append(opts, explorertest.WithDataDir(cfg.dataDir))
	}
	if cfg.apiToken != "" {
		opts = append(opts, explorertest.WithAPIToken(cfg.apiToken))
	}
	srv, err := explorertest.NewServer(opts...)
	if err != nil {
		if cfg.dataDir != "" && (errors.Is(err, explorertest.ErrDataCorrupt) || errors.Is(err, explorertest.ErrDataNewerSchema) || strings.Contains(err.Error(), cfg.dataDir)) {
			return fmt.Errorf("--data %s: %s", cfg.dataDir, strings.TrimPrefix(err.Error(), "explorertest: "))
		}
		return err
	}
	defer srv.Close()
	if err := cfg.keepToken(); err != nil {
		return err
	}

	caPath, cleanup, err := writeCA(cfg.caFile, srv.CACertPEM())
	if err != nil {
		return err
	}
	defer cleanup()

	restoredDevices, restoredProducts := len(srv.Devices()), len(srv.Products())
	for _, p := range cfg.products {
		if err := srv.AddProductAs(p.pid, p.tpl); err != nil {
			return fmt.Errorf("--template %s: %w", p.file, err)
		}
	}
	out := c.App.Writer
	fmt.Fprintf(out, "tplgen emulate: IoT Explorer platform\n")
	fmt.Fprintf(out, "  mqtt:     %s\n", shownURL(srv.BrokerURL()))
	fmt.Fprintf(out, "  mqtt-tls: %s\n", shownURL(srv.TLSBrokerURL()))
	fmt.Fprintf(out, "  http:     %s\n", shownURL(srv.HTTPURL()))
	fmt.Fprintf(out, "  https:    %s\n", shownURL(srv.HTTPSURL()))
	fmt.Fprintf(out, "  console:  %s/\n", localURL(srv.HTTPURL()))
	fmt.Fprintf(out, "  firmware: %s %s\n", localURL(srv.FirmwareURL()), localURL(srv.FirmwareTLSURL()))
	if u := srv.WebSocketURL(); u != "" {
		fmt.Fprintf(out, "  mqtt-ws:  %s\n", shownURL(u))
	}
	if u := srv.WebSocketTLSURL(); u != "" {
		fmt.Fprintf(out, "  mqtt-wss: %s\n", shownURL(u))
	}
	fmt.Fprintf(out, "  ca-file:  %s\n", caPath)
	if cfg.dataDir != "" {
		fmt.Fprintf(out, "  data:     %s (%d devices and %d products restored)\n", cfg.dataDir, restoredDevices, restoredProducts)
	} else {
		fmt.Fprintf(out, "  data:     in memory (lost on exit; --data DIR keeps it)\n")
	}
	switch {
	case cfg.tokenGenerated:
		origin := "generated"
		switch {
		case cfg.tokenKept:
			origin = "generated by an earlier run, kept in " + filepath.Join(cfg.dataDir, apiTokenFile)
		case cfg.dataDir != "":
			origin = "generated, kept in " + filepath.Join(cfg.dataDir, apiTokenFile)
		}
		fmt.Fprintf(out, "  api-token: %s (%s: %s beyond loopback; send \"Authorization: Bearer TOKEN\", or TPLGEN_API_TOKEN=TOKEN tplgen ctl ...; --api-token fixes it)\n",
			cfg.apiToken, origin, strings.Join(cfg.exposed, " and ")+" "+isAre(len(cfg.exposed)))
		logger.Warn("emulate: JSON API reachable beyond loopback: requests to /api/ need the printed API token", "listeners", strings.Join(cfg.exposed, ", "))
	case cfg.apiToken != "":
		fmt.Fprintf(out, "  api-token: required (the one given with --api-token)\n")
	default:
		fmt.Fprintf(out, "  api-token: none (the JSON API listens on loopback only)\n")
	}
	for _, p := range cfg.products {
		fmt.Fprintf(out, "product %s: %s (%d properties, %d events, %d actions)\n",
			p.pid, p.file, len(p.tpl.Properties), len(p.tpl.Events), len(p.tpl.Actions))
	}
	for _, d := range cfg.devices {
		secret, err := addOrReuseDevice(srv, d)
		if err != nil {
			return err
		}
		if _, ok := srv.Product(d.pid); !ok {
			logger.Warn("device has no data template: its reports and events will be refused with 403", "device", d.pid+"/"+d.dn)
		}
		printDevice(out, d.pid, d.dn, secret, srv, caPath)
	}
	for _, d := range cfg.dynreg {
		secret, err := srv.EnableDynamicRegistration(d.pid, explorertest.DynregConfig{ProductSecret: d.secret, AutoCreate: true})
		if err != nil {
			return fmt.Errorf("--dynreg %s: %w", d.pid, err)
		}
		fmt.Fprintf(out, "dynamic registration for product %s\n", d.pid)
		fmt.Fprintf(out, "  product_secret: %s\n", secret)
		fmt.Fprintf(out, "  register:       tplgen register --product %s --product-secret %s --device NAME --endpoint %s --insecure-http --out creds.json\n", d.pid, secret, localURL(srv.HTTPURL()))
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

// localURL turns a URL on a wildcard address (0.0.0.0, [::]) into one a local client can use.
func localURL(u string) string {
	l, _ := wildcardURL(u)
	return l
}

// shownURL is localURL, saying when the listener takes every interface.
func shownURL(u string) string {
	if l, ok := wildcardURL(u); ok {
		return l + " (listening on all interfaces)"
	}
	return u
}

func wildcardURL(u string) (string, bool) {
	scheme, hostport, ok := strings.Cut(u, "://")
	if !ok {
		return u, false
	}
	host, port, err := net.SplitHostPort(strings.TrimSuffix(hostport, "/"))
	if err != nil || !isWildcard(host) {
		return u, false
	}
	return scheme + "://" + net.JoinHostPort("127.0.0.1", port), true
}

// addrOption maps a listen-address flag to its explorertest option.
var addrOption = map[string]func(string) explorertest.Option{
	"mqtt":           explorertest.WithMQTTAddr,
	"tls":            explorertest.WithTLSAddr,
	"http":           explorertest.WithHTTPAddr,
	"https":          explorertest.WithHTTPSAddr,
	"firmware-http":  explorertest.WithFirmwareAddr,
	"firmware-https": explorertest.WithFirmwareTLSAddr,
	"ws":             explorertest.WithWebSocketAddr,
	"wss":            explorertest.WithWebSocketTLSAddr,
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// addOrReuseDevice registers a --device, or, when --data restored it, keeps the stored device
// (and its state) as long as a secret given on the command line agrees with the stored one.
func addOrReuseDevice(srv *explorertest.Server, d emuDevice) (string, error) {
	id := d.pid + "/" + d.dn
	if info, ok := srv.Device(d.pid, d.dn); ok {
		if info.Certificate {
			return "", fmt.Errorf("--device %s: the --data directory holds it as a certificate device; use another device name or --data directory", id)
		}
		stored := srv.DeviceConfig(d.pid, d.dn).DeviceSecret
		if d.secret != "" && d.secret != stored {
			return "", fmt.Errorf("--device %s=SECRET: the --data directory holds this device with another secret; leave out =SECRET to keep the stored one, delete the device first (curl -X DELETE .../api/devices/%s), or use another --data directory", id, id)
		}
		return stored, nil
	}
	var opts []explorertest.DeviceOption
	if d.secret != "" {
		opts = append(opts, explorertest.WithSecret(d.secret))
	}
	secret, err := srv.AddDevice(d.pid, d.dn, opts...)
	if err != nil {
		return "", fmt.Errorf("--device %s: %s", id, strings.TrimPrefix(err.Error(), "explorertest: "))
	}
	return secret, nil
}

// printDevice prints what a device needs to connect: identity, secret and endpoints.
func printDevice(out io.Writer, pid, dn, secret string, srv *explorertest.Server, caPath string) {
	fmt.Fprintf(out, "device %s/%s\n", pid, dn)
	fmt.Fprintf(out, "  product_id:    %s\n", pid)
	fmt.Fprintf(out, "  device_name:   %s\n", dn)
	fmt.Fprintf(out, "  device_secret: %s\n", secret)
	fmt.Fprintf(out, "  client_id:     %s%s\n", pid, dn)
	fmt.Fprintf(out, "  broker:        %s (username/password, MQTT 3.1 or 3.1.1)\n", localURL(srv.BrokerURL()))
	fmt.Fprintf(out, "  broker-tls:    %s (trust %s)\n", localURL(srv.TLSBrokerURL()), caPath)
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
