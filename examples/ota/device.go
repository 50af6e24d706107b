package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/ota"
)

// Environment handed from the supervisor to the device process.
const (
	envRole    = "OTA_EXAMPLE_ROLE"
	envBroker  = "OTA_EXAMPLE_BROKER"
	envProduct = "OTA_EXAMPLE_PRODUCT"
	envDevice  = "OTA_EXAMPLE_DEVICE"
	envSecret  = "OTA_EXAMPLE_SECRET"
	envCA      = "OTA_EXAMPLE_CA"
	envState   = "OTA_EXAMPLE_STATE"
)

// runDevice is the device process. Its "flash" is a state directory holding the running
// firmware image and its version.
func runDevice() int {
	if err := device(); err != nil {
		if errors.Is(err, errRestart) {
			return exitRestart
		}
		fmt.Fprintln(os.Stderr, "[device] error:", err)
		return 1
	}
	return 0
}

var errRestart = errors.New("restart requested")

func device() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	state := os.Getenv(envState)
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	version := "1.0.0" // factory image
	if b, err := os.ReadFile(filepath.Join(state, "version")); err == nil {
		version = strings.TrimSpace(string(b))
	}
	fmt.Printf("[device]   booted firmware %s (pid %d)\n", version, os.Getpid())

	caPEM, err := os.ReadFile(os.Getenv(envCA))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cfg := explorer.Config{
		ProductID:    os.Getenv(envProduct),
		DeviceName:   os.Getenv(envDevice),
		DeviceSecret: os.Getenv(envSecret),
		Broker:       os.Getenv(envBroker),
	}
	conn, err := explorer.Dial(ctx, cfg, explorer.WithRootCAs(pool))
	if err != nil {
		return err
	}
	defer conn.Close()
	client, err := ota.New(conn, ota.WithDownloadOptions(ota.WithRootCAs(pool)))
	if err != nil {
		return err
	}
	defer client.Close()

	restart := make(chan struct{})
	client.OnUpdate(func(ctx context.Context, fw ota.Firmware) {
		fmt.Printf("[device]   update offered: %s (%d bytes)\n", fw.Version, fw.Size)
		if err := install(ctx, client, fw, state); err != nil {
			fmt.Fprintln(os.Stderr, "[device]   update failed:", err)
			return
		}
		close(restart)
	})
	fmt.Printf("[device]   reporting version %s\n", version)
	if err := client.ReportVersion(ctx, version); err != nil {
		return err
	}

	select {
	case <-restart:
		fmt.Println("[device]   restarting into the new firmware")
		return errRestart
	case <-waitStdinEOF():
		fmt.Println("[device]   shutting down")
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// install downloads fw (progress is reported to the platform by Client.Download), then
// "burns" it: the image replaces the running one and the version file is updated.
func install(ctx context.Context, client *ota.Client, fw ota.Firmware, state string) error {
	dest := filepath.Join(state, "download.bin")
	last := -10
	err := client.Download(ctx, fw, dest, ota.WithProgress(func(p ota.Progress) {
		if p.Percent >= last+10 || p.Percent == 100 {
			last = p.Percent
			bar := strings.Repeat("#", p.Percent/5) + strings.Repeat(".", 20-p.Percent/5)
			fmt.Printf("[device]   downloading [%s] %3d%% %d/%d bytes\n", bar, p.Percent, p.Done, p.Total)
		}
	}))
	if err != nil {
		return err
	}
	return client.Install(ctx, fw.Version, func(ctx context.Context) error {
		fmt.Println("[device]   burning", fw.Version)
		if err := os.Rename(dest, filepath.Join(state, "firmware.bin")); err != nil {
			return err
		}
		return writeFileSync(filepath.Join(state, "version"), fw.Version)
	})
}

func writeFileSync(path, content string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
