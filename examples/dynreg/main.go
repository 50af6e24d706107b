// Command dynreg shows dynamic registration (一型一密): a device that knows only its product's
// ProductSecret asks the platform for its own credentials, stores them in a private file, loads
// them and connects over MQTT.
//
// With no flags it starts the in-process IoT Explorer platform (runtime/explorertest), enables
// dynamic registration for a key (PSK) product and a certificate product, and for each one
// registers a device (V2 API for the first, legacy API for the second), saves and reloads the
// credentials, connects, and shows that an activated device cannot register again, printing
// what happened. It exits 0 when every step succeeded.
//
// With -product/-product-secret/-device (or TPLGEN_PRODUCT_ID, TPLGEN_PRODUCT_SECRET,
// TPLGEN_DEVICE_NAME) it registers against the real platform instead, writes the credentials to
// -out, connects once and disconnects.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tplgen/tplgen/runtime/dynreg"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

func main() {
	product := flag.String("product", os.Getenv("TPLGEN_PRODUCT_ID"), "ProductID (registers with the real platform)")
	secret := flag.String("product-secret", os.Getenv("TPLGEN_PRODUCT_SECRET"), "ProductSecret (real platform)")
	device := flag.String("device", os.Getenv("TPLGEN_DEVICE_NAME"), "DeviceName to register (real platform)")
	region := flag.String("region", "china", "platform region: china, us-east, europe, ap-bangkok")
	legacy := flag.Bool("legacy", false, "use the legacy registration API (POST /register/dev)")
	out := flag.String("out", "", "credentials file (real platform; default DEVICE.json)")
	verbose := flag.Bool("v", false, "log the runtime's activity to stderr")
	flag.Parse()

	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if *product == "" && *secret == "" && *device == "" {
		err = emulated(ctx, os.Stdout, logger)
	} else {
		req := dynreg.Request{ProductID: *product, ProductSecret: *secret, DeviceName: *device, Region: *region}
		if *legacy {
			req.API = dynreg.Legacy
		}
		path := *out
		if path == "" {
			path = *device + ".json"
		}
		err = real(ctx, os.Stdout, req, path, logger)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dynreg:", err)
		os.Exit(1)
	}
}

// device is one registration scenario.
type device struct {
	pid, dn string
	cfg     explorertest.DynregConfig
	api     dynreg.APIVersion
}

// emulated runs the scenario against the in-process platform.
func emulated(ctx context.Context, out io.Writer, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, err := explorertest.NewServer(explorertest.WithLogger(logger))
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintln(out, "platform: in-process IoT Explorer started")

	dir, err := os.MkdirTemp("", "tplgen-dynreg-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	for _, d := range []device{
		{pid: "DYNPSK0001", dn: "sensor-1", cfg: explorertest.DynregConfig{AutoCreate: true}, api: dynreg.V2},
		{pid: "DYNCERT001", dn: "meter-1", cfg: explorertest.DynregConfig{AutoCreate: true, Certificate: true}, api: dynreg.Legacy},
	} {
		if err := scenario(ctx, out, srv, d, dir, logger); err != nil {
			return fmt.Errorf("%s/%s: %w", d.pid, d.dn, err)
		}
	}
	fmt.Fprintln(out, "done")
	return nil
}

func scenario(ctx context.Context, out io.Writer, srv *explorertest.Server, d device, dir string, logger *slog.Logger) error {
	productSecret, err := srv.EnableDynamicRegistration(d.pid, d.cfg)
	if err != nil {
		return err
	}
	kind := "key (PSK)"
	if d.cfg.Certificate {
		kind = "certificate"
	}
	fmt.Fprintf(out, "platform: dynamic registration enabled for %s product %s (auto-create on)\n", kind, d.pid)

	// The device side: it knows the ProductID, the ProductSecret and picks its own name.
	req := dynreg.Request{ProductID: d.pid, ProductSecret: productSecret, DeviceName: d.dn, API: d.api,
		Endpoint: srv.HTTPSURL()} // on the real platform: leave Endpoint empty and set Region
	opts := []dynreg.Option{dynreg.WithRootCAs(srv.RootCAs()), dynreg.WithLogger(logger)}
	creds, err := dynreg.Register(ctx, req, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "device: registered %s/%s over HTTPS (%s API): %s credentials issued\n", d.pid, d.dn, d.api, creds.Kind())

	path := filepath.Join(dir, d.dn+".json")
	if err := dynreg.SaveCredentials(path, creds); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "device: credentials saved to %s (mode %v)\n", filepath.Base(path), st.Mode().Perm())

	loaded, err := dynreg.LoadCredentials(path)
	if err != nil {
		return err
	}
	cfg, err := loaded.Config("", srv.TLSBrokerURL())
	if err != nil {
		return err
	}
	conn, err := explorer.Dial(ctx, cfg, append(srv.DialOptions(), explorer.WithLogger(logger))...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "device: connected over MQTT/TLS with the loaded %s credentials\n", loaded.Kind())
	fmt.Fprintf(out, "platform: %s/%s online: %v\n", d.pid, d.dn, srv.Online(d.pid, d.dn))
	conn.Close()

	// Having connected, the device is activated: registering again is refused.
	_, err = dynreg.Register(ctx, req, opts...)
	var pe *dynreg.Error
	if !errors.As(err, &pe) {
		return fmt.Errorf("second registration was not refused by the platform: %v", err)
	}
	fmt.Fprintf(out, "device: second registration refused: %s: %s\n", pe.Code, pe.Message)
	return nil
}

// real registers with the real platform, saves the credentials and connects once.
func real(ctx context.Context, out io.Writer, req dynreg.Request, path string, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	creds, err := dynreg.Register(ctx, req, dynreg.WithLogger(logger))
	if err != nil {
		return err
	}
	if err := dynreg.SaveCredentials(path, creds); err != nil {
		return err
	}
	fmt.Fprintf(out, "registered %s/%s: %s credentials saved to %s\n", creds.ProductID, creds.DeviceName, creds.Kind(), path)
	cfg, err := creds.Config(req.Region, "")
	if err != nil {
		return err
	}
	conn, err := explorer.Dial(ctx, cfg, explorer.WithLogger(logger))
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintln(out, "connected; disconnecting")
	return nil
}
