package ota

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/deadlinetest"
	"github.com/tplgen/tplgen/internal/faultproxy"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// deadline is the ctx given to every call below; each must return within it plus
// deadlinetest.Slack whatever the proxy does to the network.
const deadline = 400 * time.Millisecond

// TestDownloadHonoursDeadlineWhateverTheNetwork puts a real TCP proxy between Download and
// the firmware server and breaks the network in every way it can: the call must end with
// its ctx, not with the idle timeout (30 s), a retry budget or the kernel's TCP timeouts.
func TestDownloadHonoursDeadlineWhateverTheNetwork(t *testing.T) {
	data := randomBytes(4<<20, 50)
	srv := newFWServer(t, data, false)
	p, err := faultproxy.New(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	fw := srv.firmware("3.0.0")
	fw.URL = "http://" + p.Addr() + "/fw.bin?sign=s"
	dir := t.TempDir()

	// midBody starts the fault once the first bytes of the body are on disk.
	midBody := func(fault func()) DownloadOption {
		var once sync.Once
		return WithProgress(func(pr Progress) {
			if pr.Done > 0 {
				once.Do(fault)
			}
		})
	}
	for _, tc := range []struct {
		name  string
		setup func()         // fault before the call
		opt   DownloadOption // fault during the call
	}{
		{"black hole before the response", func() { p.SetMode(faultproxy.BlackHole) }, nil},
		{"black hole mid-body", func() { p.ThrottleDir(faultproxy.Down, 256<<10) },
			midBody(func() { p.SetMode(faultproxy.BlackHole) })},
		{"server stops being read (stall)", func() { p.SetDirMode(faultproxy.Down, faultproxy.Stall) }, nil},
		{"slow link (throttled to 2 KB/s)", func() { p.Throttle(2 << 10) }, nil},
		{"half-closed mid-body, then refused", func() { p.ThrottleDir(faultproxy.Down, 256<<10) },
			midBody(func() { p.Refuse(true); p.HalfClose(faultproxy.Down) })},
		{"connections refused (retry backoff)", func() { p.Refuse(true) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(dir, "fw.bin")
			prepare := func() {
				p.Cut()
				p.Heal()
				removeState(dest)
				tc.setup()
			}
			r := deadlinetest.Check(t, tc.name, deadline, prepare, func(ctx context.Context) error {
				return Download(ctx, fw, dest, WithInsecureHTTP(), tc.opt)
			})
			t.Logf("returned %v after the deadline: %v", r.Overrun.Round(time.Millisecond), r.Err)
		})
	}
	p.Heal()
}

// TestReportsHonourDeadlineOverABlackHole: the OTA client's MQTT calls (version report and
// its reply, progress and result reports) end with their ctx when the link to the platform
// silently drops everything.
func TestReportsHonourDeadlineOverABlackHole(t *testing.T) {
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.New(strings.TrimPrefix(srv.TLSBrokerURL(), "tls://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cfg := srv.DeviceConfig(testPID, testDN)
	cfg.Broker = "tls://" + p.Addr()
	conn, err := explorer.Dial(testCtx(t), cfg, srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := New(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.ReportVersion(testCtx(t), "1.0.0"); err != nil { // subscribes while the link works
		t.Fatal(err)
	}
	p.SetMode(faultproxy.BlackHole)
	t.Cleanup(p.Heal)
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"ReportVersion (QoS 1, waits for report_version_rsp)", func(ctx context.Context) error { return c.ReportVersion(ctx, "1.0.1") }},
		{"ReportBurning (QoS 1)", func(ctx context.Context) error { return c.ReportBurning(ctx, "1.0.1") }},
		{"ReportFail (QoS 1)", func(ctx context.Context) error { return c.ReportFail(ctx, "1.0.1", FailMD5Mismatch, "") }},
		{"ReportDone (QoS 1)", func(ctx context.Context) error { return c.ReportDone(ctx, "1.0.1") }},
	} {
		deadlinetest.Check(t, tc.name, deadline, nil, tc.call)
	}
}
