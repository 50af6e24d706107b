package ota

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

const (
	testPID = "OTAPROD001"
	testDN  = "dev1"
)

// platform starts an in-process IoT Explorer with one device and returns a connected Conn.
func platform(t *testing.T) (*explorertest.Server, *explorer.Conn) {
	t.Helper()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	conn, err := explorer.Dial(testCtx(t), srv.DeviceConfig(testPID, testDN), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

func newClient(t *testing.T, srv *explorertest.Server, conn *explorer.Conn, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithDownloadOptions(WithRootCAs(srv.RootCAs()), fastRetry)}, opts...)
	c, err := New(conn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitJob(t *testing.T, srv *explorertest.Server, cond func(explorertest.OTAJobState) bool) explorertest.OTAJobState {
	t.Helper()
	st, err := srv.WaitOTAJob(testCtx(t), testPID, testDN, cond)
	if err != nil {
		t.Fatalf("%v; job = %+v", err, st)
	}
	return st
}

func TestClientUpdateEndToEnd(t *testing.T) {
	srv, conn := platform(t)
	image := randomBytes(300_000, 30)
	info, err := srv.UploadFirmware(testPID, "1.0.1", bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, conn)
	dir := t.TempDir()
	installed := make(chan error, 1)
	c.OnUpdate(func(ctx context.Context, fw Firmware) {
		if fw.Version != "1.0.1" || fw.MD5 != info.MD5 || fw.Size != info.Size || fw.UserDefined != `{"note":"x"}` {
			t.Errorf("offered %+v, uploaded %+v", fw, info)
		}
		dest := filepath.Join(dir, "fw.bin")
		if err := c.Download(ctx, fw, dest); err != nil {
			installed <- err
			return
		}
		if !c.IsFetchFinished() || c.Progress().Done != fw.Size {
			t.Errorf("after Download: state %v, progress %+v", c.State(), c.Progress())
		}
		installed <- c.Install(ctx, fw.Version, func(ctx context.Context) error {
			return os.Rename(dest, filepath.Join(dir, "installed.bin"))
		})
	})
	if err := c.ReportVersion(testCtx(t), "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if v, _ := srv.FirmwareVersion(testPID, testDN); v != "1.0.0" {
		t.Errorf("platform saw version %q", v)
	}
	if err := srv.PushUpdate(testPID, testDN, "1.0.1", explorertest.WithUserDefined(`{"note":"x"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-installed:
		if err != nil {
			t.Fatal(err)
		}
	case <-testCtx(t).Done():
		t.Fatal("update never installed")
	}
	st := waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.State == explorertest.OTADone })
	got, _ := os.ReadFile(filepath.Join(dir, "installed.bin"))
	if !bytes.Equal(got, image) {
		t.Error("installed image differs")
	}
	var states []string
	for _, h := range st.History {
		states = append(states, string(h.State))
	}
	joined := strings.Join(states, ",")
	if !strings.HasPrefix(joined, "pending,downloading") || !strings.HasSuffix(joined, "downloading,burning,done") {
		t.Errorf("job history = %s", joined)
	}
	if c.State() != StateDone {
		t.Errorf("client state = %v", c.State())
	}
	// The restarted device reports the new version: the platform keeps the job done.
	if err := c.ReportVersion(testCtx(t), "1.0.1"); err != nil {
		t.Fatal(err)
	}
	st = waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.ReportedVersion == "1.0.1" })
	if st.State != explorertest.OTADone || st.Pushes != 1 {
		t.Errorf("after new version: %+v", st)
	}
}

// failingUpdate reports a version so the platform pushes the pending job, runs the download
// (which must fail) and returns the platform's job, the error and the download directory.
func failingUpdate(t *testing.T, srv *explorertest.Server, conn *explorer.Conn, mutate func(*Firmware)) (explorertest.OTAJobState, string, error) {
	t.Helper()
	c := newClient(t, srv, conn)
	dir := t.TempDir()
	errc := make(chan error, 1)
	c.OnUpdate(func(ctx context.Context, fw Firmware) {
		if mutate != nil {
			mutate(&fw)
		}
		errc <- c.Download(ctx, fw, filepath.Join(dir, "fw.bin"))
	})
	if err := c.ReportVersion(testCtx(t), "1.0.0"); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-errc:
	case <-testCtx(t).Done():
		t.Fatal("download never finished")
	}
	st := waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.State == explorertest.OTAFail })
	if c.State() != StateFailed {
		t.Errorf("client state = %v", c.State())
	}
	return st, dir, err
}

func TestClientReportsMD5MismatchAndLeavesNoFile(t *testing.T) {
	srv, conn := platform(t)
	srv.UploadFirmware(testPID, "2.0.0", bytes.NewReader(randomBytes(50_000, 31)))
	srv.PushUpdate(testPID, testDN, "2.0.0")
	st, dir, err := failingUpdate(t, srv, conn, func(fw *Firmware) { fw.MD5 = strings.Repeat("0", 32) })
	if !errors.Is(err, ErrMD5Mismatch) || st.ResultCode != -4 || st.ResultMsg != "md5 mismatch" {
		t.Errorf("err %v, job %+v", err, st)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left: %v", entries)
	}
}

func TestClientReportsNotFound(t *testing.T) {
	srv, conn := platform(t)
	srv.UploadFirmware(testPID, "2.0.0", bytes.NewReader(randomBytes(1000, 32)))
	// The job is created before the device reports, then the image disappears.
	srv.PushUpdate(testPID, testDN, "2.0.0")
	if err := srv.DeleteFirmware(testPID, "2.0.0"); err != nil {
		t.Fatal(err)
	}
	st, _, err := failingUpdate(t, srv, conn, nil)
	if !errors.Is(err, ErrNotFound) || st.ResultCode != -2 {
		t.Errorf("err %v, job %+v", err, st)
	}
}

func TestClientReportsExpiredSignature(t *testing.T) {
	srv, conn := platform(t)
	srv.UploadFirmware(testPID, "2.0.0", bytes.NewReader(randomBytes(1000, 33)))
	srv.PushUpdate(testPID, testDN, "2.0.0", explorertest.WithURLTTL(-time.Minute))
	st, _, err := failingUpdate(t, srv, conn, nil)
	if !errors.Is(err, ErrSignatureExpired) || st.ResultCode != -3 {
		t.Errorf("err %v, job %+v", err, st)
	}
}

func TestClientProgressCadence(t *testing.T) {
	srv, conn := platform(t)
	image := randomBytes(500_000, 34)
	srv.UploadFirmware(testPID, "3.0.0", bytes.NewReader(image))
	srv.SetFirmwareRate(testPID, "3.0.0", 200_000) // ~2.5 s: many percent steps, few seconds
	c := newClient(t, srv, conn)
	var mu sync.Mutex
	var calls int
	type outcome struct {
		err        error
		start, end time.Time
	}
	done := make(chan outcome, 1)
	dir := t.TempDir()
	c.OnUpdate(func(ctx context.Context, fw Firmware) {
		start := time.Now()
		err := c.Download(ctx, fw, filepath.Join(dir, "fw.bin"), WithProgress(func(Progress) {
			mu.Lock()
			calls++
			mu.Unlock()
		}))
		done <- outcome{err, start, time.Now()}
	})
	srv.PushUpdate(testPID, testDN, "3.0.0")
	c.ReportVersion(testCtx(t), "1.0.0")
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	st := waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.Percent == 100 })
	var pcts []int
	for _, h := range st.History {
		if h.State == explorertest.OTADownloading {
			pcts = append(pcts, h.Percent)
		}
	}
	elapsed := res.end.Sub(res.start)
	// First report, then at most one per started second, then 100 %.
	if maxReports := int(elapsed/time.Second) + 2; len(pcts) > maxReports {
		t.Errorf("%d downloading reports in %v (max %d): %v", len(pcts), elapsed, maxReports, pcts)
	}
	if len(pcts) < 2 || pcts[len(pcts)-1] != 100 {
		t.Errorf("downloading reports = %v, want several ending with 100", pcts)
	}
	for i := 1; i < len(pcts); i++ {
		if pcts[i] <= pcts[i-1] {
			t.Errorf("percent not increasing: %v", pcts)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls < 50 {
		t.Errorf("user progress callback ran %d times; it must see every percent step", calls)
	}
}

func TestRateLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := &rateLimiter{now: func() time.Time { return now }, every: time.Second}
	step := func(d time.Duration, pct int) bool { now = now.Add(d); return l.allow(pct) }
	for i, tc := range []struct {
		d    time.Duration
		pct  int
		want bool
	}{
		{0, 0, true},                       // first report always
		{100 * time.Millisecond, 1, false}, // within the second
		{800 * time.Millisecond, 5, false}, // still within
		{100 * time.Millisecond, 6, true},  // a second later
		{10 * time.Millisecond, 100, true}, // 100 % always
		{2 * time.Second, 100, false},      // but only once
	} {
		if got := step(tc.d, tc.pct); got != tc.want {
			t.Errorf("step %d (%d%%): allow = %v, want %v", i, tc.pct, got, tc.want)
		}
	}
}

func TestClientReReportsAfterReconnect(t *testing.T) {
	srv, conn := platform(t)
	srv.UploadFirmware(testPID, "4.0.0", bytes.NewReader(randomBytes(400_000, 35)))
	srv.SetFirmwareRate(testPID, "4.0.0", 100_000)
	c := newClient(t, srv, conn)
	dir := t.TempDir()
	var mu sync.Mutex
	var offers []Firmware
	result := make(chan error, 1)
	c.OnUpdate(func(ctx context.Context, fw Firmware) {
		mu.Lock()
		offers = append(offers, fw)
		mu.Unlock()
		result <- c.Download(ctx, fw, filepath.Join(dir, "fw.bin"))
	})
	srv.PushUpdate(testPID, testDN, "4.0.0")
	c.ReportVersion(testCtx(t), "1.0.0")
	waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.State == explorertest.OTADownloading })
	srv.DropConnections()
	// After the reconnect the client re-reports 1.0.0 and the platform re-pushes with a newly
	// signed URL; the running handler for the same version is not started twice.
	waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.Pushes >= 2 })
	srv.SetFirmwareRate(testPID, "4.0.0", 0)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.Percent == 100 })
	mu.Lock()
	defer mu.Unlock()
	if len(offers) != 1 {
		t.Errorf("handler ran %d times", len(offers))
	}
	if fw, _ := c.Offered(); fw.URL == offers[0].URL {
		t.Error("re-push did not carry a freshly signed URL")
	}
}

func TestClientDropsMalformedUpdate(t *testing.T) {
	srv, conn := platform(t)
	var logs syncBuffer
	c := newClient(t, srv, conn, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	got := make(chan Firmware, 2)
	c.OnUpdate(func(ctx context.Context, fw Firmware) { got <- fw })
	if err := c.ReportVersion(testCtx(t), "1.0.0"); err != nil {
		t.Fatal(err)
	}
	topic := c.UpdateTopic()
	srv.Publish(topic, []byte(`{"type":"update_firmware","version":"9","url":"https://h/x","md5sum":"nothex","file_size":1}`), 1)
	srv.Publish(topic, []byte(`{"type":"update_firmware","version":"9","url":"https://h/x","md5sum":"a15d5deaf37bf6698cf9a21ec672166d","file_size":"12"}`), 1)
	fw := <-got
	if fw.Size != 12 {
		t.Errorf("got %+v", fw)
	}
	if s := logs.String(); !strings.Contains(s, topic) || !strings.Contains(s, "md5sum") {
		t.Errorf("log does not name topic and field: %s", s)
	}
	select {
	case fw := <-got:
		t.Errorf("malformed offer delivered: %+v", fw)
	default:
	}
}

func TestReportVersionValidatesAndMapsResultCode(t *testing.T) {
	srv, conn := platform(t)
	c := newClient(t, srv, conn)
	for _, v := range []string{"", strings.Repeat("x", 33)} {
		if err := c.ReportVersion(testCtx(t), v); err == nil || !strings.Contains(err.Error(), "version") {
			t.Errorf("ReportVersion(%q) = %v", v, err)
		}
	}
	// A non-zero result_code becomes a *ResultError.
	w := &rspWaiter{version: "1.0.0", ch: make(chan error, 1)}
	c.waiters[w] = struct{}{}
	c.handle(context.Background(), explorer.Message{Topic: c.UpdateTopic(), Payload: []byte(`{"type":"report_version_rsp","result_code":"-1","result_msg":"bad","version":"1.0.0"}`)})
	var re *ResultError
	if err := <-w.ch; !errors.As(err, &re) || re.Code != -1 || re.Msg != "bad" {
		t.Errorf("err = %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestClientNewerOfferSupersedesRunningUpdate: a different version offered while a download
// runs cancels the running handler's ctx (no fail report for it) and the newer one proceeds.
func TestClientNewerOfferSupersedesRunningUpdate(t *testing.T) {
	srv, conn := platform(t)
	srv.UploadFirmware(testPID, "6.0.0", bytes.NewReader(randomBytes(400_000, 37)))
	srv.UploadFirmware(testPID, "7.0.0", bytes.NewReader(randomBytes(30_000, 38)))
	srv.SetFirmwareRate(testPID, "6.0.0", 50_000) // stays busy for 8 s unless cancelled
	c := newClient(t, srv, conn)
	dir := t.TempDir()
	results := make(chan string, 2)
	c.OnUpdate(func(ctx context.Context, fw Firmware) {
		err := c.Download(ctx, fw, filepath.Join(dir, fw.Version+".bin"))
		results <- fw.Version + ": " + fmt.Sprint(err)
	})
	srv.PushUpdate(testPID, testDN, "6.0.0")
	c.ReportVersion(testCtx(t), "1.0.0")
	waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.State == explorertest.OTADownloading })
	if err := srv.PushUpdate(testPID, testDN, "7.0.0"); err != nil {
		t.Fatal(err)
	}
	first, second := <-results, <-results
	if !strings.HasPrefix(first, "6.0.0: ") || !strings.Contains(first, "context canceled") {
		t.Errorf("superseded download: %s", first)
	}
	if second != "7.0.0: <nil>" {
		t.Errorf("newer download: %s", second)
	}
	st := waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.Percent == 100 })
	for _, h := range st.History {
		if h.State == explorertest.OTAFail {
			t.Errorf("fail reported for a superseded download: %+v", h)
		}
	}
}

func FuzzClientHandle(f *testing.F) {
	f.Add([]byte(`{"type":"report_version_rsp","result_code":0,"result_msg":"success","version":"1.0.0"}`))
	f.Add([]byte(`{"type":"report_version_rsp","result_code":"x"}`))
	f.Add([]byte(`{"type":"update_firmware","version":"1","url":"https://h/x","md5sum":"a15d5deaf37bf6698cf9a21ec672166d","file_size":"1"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c := &Client{pid: "P", dn: "d", log: slog.New(slog.NewTextHandler(io.Discard, nil)), waiters: map[*rspWaiter]struct{}{}}
		c.ctx, c.cancel = context.WithCancel(context.Background())
		defer c.cancel()
		w := &rspWaiter{version: "1.0.0", ch: make(chan error, 1)}
		c.waiters[w] = struct{}{}
		c.handle(context.Background(), explorer.Message{Topic: c.UpdateTopic(), Payload: payload})
	})
}
