// Command ota demonstrates a complete firmware update against the in-process IoT Explorer
// platform, with a real device restart:
//
//  1. The platform (this process) starts, registers a device, uploads firmware 1.0.1 and
//     creates an OTA job for it.
//  2. The device runs as a separate process (this program re-executed). It reports version
//     1.0.0, receives update_firmware, downloads the image over HTTPS with progress shown,
//     "installs" it into its state directory, reports done and exits asking for a restart.
//  3. The supervisor (this process again) restarts the device process, which boots the
//     installed image and reports version 1.0.1; the platform marks the job done.
//
// Run it with no flags:
//
//	go run ./examples/ota
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tplgen/tplgen/runtime/explorertest"
)

const (
	productID  = "OTADEMO001"
	deviceName = "thermostat-1"
	newVersion = "1.0.1"
	imageSize  = 8 << 20 // 8 MiB
	// exitRestart is the device's exit status meaning "restart me into the new firmware".
	exitRestart = 42
)

func main() {
	if os.Getenv(envRole) == "device" {
		os.Exit(runDevice())
	}
	if err := runPlatform(); err != nil {
		fmt.Fprintln(os.Stderr, "ota example:", err)
		os.Exit(1)
	}
}

func runPlatform() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	platform, err := explorertest.NewServer()
	if err != nil {
		return err
	}
	defer platform.Close()
	secret, err := platform.AddDevice(productID, deviceName)
	if err != nil {
		return err
	}

	image := make([]byte, imageSize)
	rand.Read(image)
	info, err := platform.UploadFirmware(productID, newVersion, bytes.NewReader(image))
	if err != nil {
		return err
	}
	// Throttle the download so the progress is visible (~2 s).
	platform.SetFirmwareRate(productID, newVersion, 4<<20)
	if err := platform.PushUpdate(productID, deviceName, newVersion); err != nil {
		return err
	}
	fmt.Printf("[platform] firmware %s uploaded (%d bytes, md5 %s); OTA job created for %s/%s\n",
		newVersion, info.Size, info.MD5, productID, deviceName)

	work, err := os.MkdirTemp("", "ota-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, platform.CACertPEM(), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(),
		envRole+"=device",
		envBroker+"="+platform.TLSBrokerURL(),
		envProduct+"="+productID,
		envDevice+"="+deviceName,
		envSecret+"="+secret,
		envCA+"="+caFile,
		envState+"="+filepath.Join(work, "device"),
	)
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// Supervise the device: restart it when it exits with exitRestart.
	for boot := 1; ; boot++ {
		fmt.Printf("[platform] starting device process (boot %d)\n", boot)
		dev := exec.CommandContext(ctx, self)
		dev.Env = env
		dev.Stdout, dev.Stderr = os.Stdout, os.Stderr
		stdin, err := dev.StdinPipe() // closing it tells the device to shut down
		if err != nil {
			return err
		}
		if err := dev.Start(); err != nil {
			return err
		}
		exited := make(chan error, 1)
		go func() { exited <- dev.Wait() }()

		reported := make(chan explorertest.OTAJobState, 1)
		waitCtx, stopWait := context.WithCancel(ctx)
		go func() {
			st, err := platform.WaitOTAJob(waitCtx, productID, deviceName, func(j explorertest.OTAJobState) bool {
				return j.ReportedVersion == newVersion
			})
			if err == nil {
				reported <- st
			}
		}()

		select {
		case st := <-reported:
			stopWait()
			fmt.Printf("[platform] device reports %s; job state %q after %d push(es)\n", st.ReportedVersion, st.State, st.Pushes)
			for _, h := range st.History {
				if h.State != explorertest.OTADownloading {
					fmt.Printf("[platform]   history: %-11s %s\n", h.State, h.ResultMsg)
				}
			}
			stdin.Close()
			<-exited
			return nil
		case err := <-exited:
			stopWait()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == exitRestart {
				fmt.Println("[platform] device exited to restart into the new firmware")
				continue
			}
			return fmt.Errorf("device process ended unexpectedly: %v", err)
		case <-ctx.Done():
			stopWait()
			return ctx.Err()
		}
	}
}

// waitStdinEOF returns a channel closed when the supervisor closes our stdin.
func waitStdinEOF() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(ch)
	}()
	return ch
}
