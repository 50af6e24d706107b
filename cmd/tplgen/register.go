package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/runtime/dynreg"
)

// registerCommand performs dynamic registration (一型一密) for one device and writes the issued
// credentials to a private file that runtime/dynreg.LoadCredentials reads.
func registerCommand() *cli.Command {
	return &cli.Command{
		Name:  "register",
		Usage: "register a device dynamically with its product secret and save its credentials",
		Description: `Asks IoT Explorer (or any compatible endpoint, e.g. tplgen emulate) for a device's
credentials using the product's ProductSecret, and writes them as JSON (mode 0600) to --out.
The secret is never printed. Prefer TPLGEN_PRODUCT_SECRET over --product-secret so that the
secret does not show up in the process list.

HTTPS is verified against the Tencent IoT root CA unless --ca names another PEM file.
Plain http:// endpoints need --insecure-http.`,
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "product", Usage: "product `ID`", Required: true},
			&cli.StringFlag{Name: "product-secret", Usage: "product `SECRET` (dynamic registration must be enabled in the console)", EnvVars: []string{"TPLGEN_PRODUCT_SECRET"}},
			&cli.StringFlag{Name: "device", Usage: "device `NAME`", Required: true},
			&cli.StringFlag{Name: "region", Usage: "platform `REGION`: china (default), us-east, europe, ap-bangkok"},
			&cli.StringFlag{Name: "endpoint", Usage: "explicit registration base `URL` (overrides --region), e.g. https://127.0.0.1:8443"},
			&cli.BoolFlag{Name: "legacy", Usage: "use the legacy API (POST /register/dev) instead of POST /device/register"},
			&cli.StringFlag{Name: "ca", Usage: "trust the root CAs in PEM `FILE` instead of the Tencent root CA"},
			&cli.BoolFlag{Name: "insecure-http", Usage: "allow a plain http:// --endpoint"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the credentials JSON to `FILE`", Required: true},
			&cli.BoolFlag{Name: "force", Usage: "overwrite --out if it exists"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up after `DURATION`"},
			&cli.BoolFlag{Name: "verbose", Usage: "log the exchange (without secrets) to stderr"},
		},
		Action: runRegister,
	}
}

func runRegister(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("register: unexpected argument %q", c.Args().First())
	}
	secret := c.String("product-secret")
	if secret == "" {
		return usagef("register: --product-secret (or TPLGEN_PRODUCT_SECRET) is required")
	}
	if c.IsSet("region") && c.IsSet("endpoint") {
		return usagef("register: use either --region or --endpoint, not both")
	}
	if strings.HasPrefix(strings.ToLower(c.String("endpoint")), "http://") && !c.Bool("insecure-http") {
		return fmt.Errorf("register: --endpoint %s is plain http; add --insecure-http to allow it", c.String("endpoint"))
	}
	out := c.String("out")
	// Check before registering: a registration that cannot be saved would be wasted, and with
	// certificates it would invalidate the one already on disk.
	if !c.Bool("force") {
		if _, err := os.Stat(out); err == nil {
			return fmt.Errorf("register: %s already exists (use --force to overwrite)", out)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("register: %w", err)
		}
	}
	req := dynreg.Request{
		ProductID: c.String("product"), ProductSecret: secret, DeviceName: c.String("device"),
		Region: c.String("region"), Endpoint: c.String("endpoint"),
	}
	if c.Bool("legacy") {
		req.API = dynreg.Legacy
	}
	opts := []dynreg.Option{dynreg.WithTimeout(c.Duration("timeout"))}
	if c.Bool("verbose") {
		opts = append(opts, dynreg.WithLogger(slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	if c.Bool("insecure-http") {
		opts = append(opts, dynreg.WithInsecureHTTP())
	}
	if file := c.String("ca"); file != "" {
		pem, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("register: --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("register: --ca %s: no PEM certificate found", file)
		}
		opts = append(opts, dynreg.WithRootCAs(pool))
	}

	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	creds, err := dynreg.Register(ctx, req, opts...)
	if err != nil {
		return fmt.Errorf("register %s/%s: %w", req.ProductID, req.DeviceName, err)
	}
	if err := dynreg.SaveCredentials(out, creds); err != nil {
		return fmt.Errorf("register %s/%s: registered, but %w", req.ProductID, req.DeviceName, err)
	}
	fmt.Fprintf(c.App.Writer, "registered %s/%s (%s credentials) -> %s\n", creds.ProductID, creds.DeviceName, creds.Kind(), out)
	return nil
}
