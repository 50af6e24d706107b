package devlog_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/devlog"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/internal/devhttp"
)

const pid = "DEVLOGPRD1"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type rig struct {
	srv  *explorertest.Server
	conn *explorer.Conn
	cfg  explorer.Config
}

func newRig(t *testing.T, opts ...explorertest.DeviceOption) rig {
	t.Helper()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.AddDevice(pid, "dev1", opts...); err != nil {
		t.Fatal(err)
	}
	cfg := srv.DeviceConfig(pid, "dev1")
	conn, err := explorer.Dial(testCtx(t), cfg, srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return rig{srv, conn, cfg}
}

// uploader starts an Uploader after setting the device's cloud level to debug, and waits until
// the device has it.
func (r rig) uploader(t *testing.T, cfg explorer.Config, opts ...devlog.Option) *devlog.Uploader {
	t.Helper()
	if _, err := r.srv.SetLogLevel(pid, "dev1", 4); err != nil {
		t.Fatal(err)
	}
	u := r.uploaderAsIs(t, cfg, opts...)
	waitLevel(t, u, devlog.LevelDebug)
	return u
}

func (r rig) uploaderAsIs(t *testing.T, cfg explorer.Config, opts ...devlog.Option) *devlog.Uploader {
	t.Helper()
	opts = append([]devlog.Option{devlog.WithEndpoint(r.srv.HTTPSURL()), devlog.WithRootCAs(r.srv.RootCAs()),
		devlog.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond)}, opts...)
	u, err := devlog.New(testCtx(t), r.conn, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close(context.Background()) })
	return u
}

func waitLevel(t *testing.T, u *devlog.Uploader, want devlog.Level) {
	t.Helper()
	for i := 0; u.Level() != want; i++ {
		if i > 1000 {
			t.Fatalf("level %v, want %v", u.Level(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func texts(l explorertest.DeviceLogs) []string {
	var out []string
	for _, x := range l.Lines {
		out = append(out, x.Text)
	}
	return out
}

func TestLevelFromTheCloudAndUpload(t *testing.T) {
	for _, cert := range []bool{false, true} {
		t.Run(fmt.Sprintf("certificate=%v", cert), func(t *testing.T) {
			var opts []explorertest.DeviceOption
			if cert {
				opts = append(opts, explorertest.WithCertificate())
			}
			r := newRig(t, opts...)
			ctx := testCtx(t)
			u := r.uploaderAsIs(t, r.cfg)
			waitLevel(t, u, devlog.LevelNone) // the platform's default answers the initial request
			if pushed, err := r.srv.SetLogLevel(pid, "dev1", 3); err != nil || !pushed {
				t.Fatalf("SetLogLevel: %v %v", pushed, err)
			}
			waitLevel(t, u, devlog.LevelInfo)
			if l, err := u.RequestLevel(ctx); err != nil || l != devlog.LevelInfo {
				t.Fatalf("RequestLevel: %v %v", l, err)
			}
			log := slog.New(u.Handler()).With("boot", 7).WithGroup("net")
			log.Debug("not wanted")
			log.Info("link up", "ssid", "home wifi", "rssi", -40)
			log.Error("dns failed", slog.Group("q", "name", "x.example"))
			if err := u.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			logs, _ := r.srv.DeviceLogs(pid, "dev1")
			got := texts(logs)
			if len(got) != 2 {
				t.Fatalf("stored %q", got)
			}
			if !strings.HasPrefix(got[0], "INF|") || !strings.HasSuffix(got[0], `|link up boot=7 net.ssid="home wifi" net.rssi=-40`) {
				t.Errorf("line 1: %q", got[0])
			}
			if !strings.HasPrefix(got[1], "ERR|") || !strings.HasSuffix(got[1], "|dns failed boot=7 net.q.name=x.example") {
				t.Errorf("line 2: %q", got[1])
			}
			if logs.Lines[0].Level != "INF" || logs.Lines[1].Level != "ERR" {
				t.Errorf("levels %q %q", logs.Lines[0].Level, logs.Lines[1].Level)
			}
			st := u.Stats()
			if st.Uploaded != 2 || st.Dropped != 0 || st.Buffered != 0 {
				t.Errorf("stats %+v", st)
			}
			// Level 0 switches uploading off.
			r.srv.SetLogLevel(pid, "dev1", 0)
			waitLevel(t, u, devlog.LevelNone)
			if slog.New(u.Handler()).Enabled(ctx, slog.LevelError) {
				t.Error("level none still enabled")
			}
		})
	}
}

func TestFullBufferDropsOldestAndReportsIt(t *testing.T) {
	r := newRig(t)
	ctx := testCtx(t)
	u := r.uploader(t, r.cfg, devlog.WithBuffer(10, 64<<10), devlog.WithBatch(100, 64<<10, time.Hour))
	log := slog.New(u.Handler())
	for i := range 30 {
		log.Error(fmt.Sprintf("line %02d", i))
	}
	st := u.Stats()
	if st.Buffered != 10 || st.Dropped != 20 {
		t.Fatalf("stats %+v, want 10 buffered and 20 dropped", st)
	}
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := texts(mustLogs(t, r.srv))
	if len(got) != 11 || !strings.Contains(got[0], "devlog: 20 records dropped") || !strings.HasPrefix(got[0], "WRN|") {
		t.Fatalf("stored %q", got)
	}
	if !strings.HasSuffix(got[1], "|line 20") || !strings.HasSuffix(got[10], "|line 29") {
		t.Fatalf("kept the wrong lines: %q", got)
	}
	// The drop is reported once.
	log.Error("after")
	u.Flush(ctx)
	got = texts(mustLogs(t, r.srv))
	if len(got) != 12 || !strings.HasSuffix(got[11], "|after") {
		t.Fatalf("after: %q", got)
	}
}

func mustLogs(t *testing.T, srv *explorertest.Server) explorertest.DeviceLogs {
	t.Helper()
	l, ok := srv.DeviceLogs(pid, "dev1")
	if !ok {
		t.Fatal("no logs")
	}
	return l
}

// Uploads to an unreachable endpoint are retried; the buffer stays bounded and the caller is
// never blocked.
func TestUnreachableEndpointKeepsBounded(t *testing.T) {
	r := newRig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	u := r.uploader(t, r.cfg, devlog.WithEndpoint("http://"+addr), devlog.WithInsecureHTTP(),
		devlog.WithBuffer(50, 64<<10), devlog.WithBatch(5, 64<<10, 10*time.Millisecond))
	log := slog.New(u.Handler())
	for i := range 500 {
		log.Error("x", "i", i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for u.Stats().Failures < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := u.Stats()
	if st.Failures < 2 || st.Buffered > 50 || st.Dropped < 450 || st.LastError == "" {
		t.Fatalf("stats %+v", st)
	}
}

func TestRefusedUploadIsDroppedAndCounted(t *testing.T) {
	r := newRig(t)
	ctx := testCtx(t)
	bad := r.cfg
	bad.DeviceSecret = "d3JvbmdzZWNyZXR3cm9uZw=="
	u := r.uploader(t, bad, devlog.WithBatch(100, 64<<10, time.Hour))
	slog.New(u.Handler()).Error("secret leak?")
	err := u.Flush(ctx)
	var ae *devhttp.APIError
	if err != nil && !errors.As(err, &ae) {
		t.Fatalf("flush: %v", err)
	}
	st := u.Stats()
	if st.Dropped != 1 || st.Buffered != 0 || !strings.Contains(st.LastError, "AuthFailure.SignatureFailure") {
		t.Fatalf("stats %+v", st)
	}
	if got := texts(mustLogs(t, r.srv)); len(got) != 0 {
		t.Fatalf("stored %q", got)
	}
}

func TestCloseFlushes(t *testing.T) {
	r := newRig(t)
	u := r.uploader(t, r.cfg, devlog.WithBatch(100, 64<<10, time.Hour))
	log := slog.New(u.Handler())
	for i := range 250 {
		log.Error("bye", "i", i)
	}
	if err := u.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := texts(mustLogs(t, r.srv)); len(got) != 250 {
		t.Fatalf("stored %d lines", len(got))
	}
	log.Error("after close") // ignored, never blocks
	if st := u.Stats(); st.Buffered != 0 {
		t.Fatalf("stats after close %+v", st)
	}
}

func TestLongLinesAreCut(t *testing.T) {
	r := newRig(t)
	u := r.uploader(t, r.cfg, devlog.WithBatch(100, 64<<10, time.Hour))
	slog.New(u.Handler()).Error(strings.Repeat("é", 3000))
	if err := u.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	got := texts(mustLogs(t, r.srv))
	if len(got) != 1 || len(got[0]) > devlog.MaxLineBytes || !strings.HasSuffix(got[0], "é…") {
		t.Fatalf("stored %d lines, first %d bytes", len(got), len(got[0]))
	}
}

func TestParseLevelMessage(t *testing.T) {
	for _, c := range []struct {
		in    string
		level devlog.Level
		err   string
	}{
		{`{"type":"get_log_level","clientToken":"a","log_level":4,"result":0,"timestamp":1}`, 4, ""},
		{`{"type":"get_log_level","log_level":"2"}`, 2, ""},
		{`{"type":"get_log_level","log_level":9}`, 0, "not 0..4"},
		{`{"type":"get_log_level"}`, 0, "log_level is missing"},
		{`{"type":"get_log_level","log_level":"x"}`, 0, "log_level"},
		{`{"type":"set","log_level":1}`, 0, "not get_log_level"},
		{`{"type":"get_log_level","result":"z"}`, 0, "result"},
		{`[`, 0, "not valid JSON"},
	} {
		m, err := devlog.ParseLevelMessage("$log/operation/result/P/d", []byte(c.in))
		if c.err == "" {
			if err != nil || m.Level != c.level {
				t.Errorf("%s: %v %v", c.in, m.Level, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "$log/operation/result/P/d") {
			t.Errorf("%s: %v, want %q", c.in, err, c.err)
		}
	}
}

func FuzzParseLevelMessage(f *testing.F) {
	f.Add([]byte(`{"type":"get_log_level","clientToken":"a","log_level":4,"result":0}`))
	f.Add([]byte(`{"type":"get_log_level","log_level":"3"}`))
	f.Add([]byte(`{"type":"get_log_level","result":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := devlog.ParseLevelMessage("t", b)
		if err == nil && m.Result == 0 && !m.Level.Valid() {
			t.Fatalf("invalid level %d accepted", m.Level)
		}
	})
}
