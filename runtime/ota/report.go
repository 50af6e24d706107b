package ota

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Wire forms of the uplink messages (docs/PROTOCOL.md §4.2). Field order follows the official
// SDK's transcript; every number inside progress is a string.
type reportVersionMsg struct {
	Type   string `json:"type"`
	Report struct {
		Version string `json:"version"`
	} `json:"report"`
}

type progressBody struct {
	State      string `json:"state"`
	Percent    string `json:"percent,omitempty"`
	ResultCode string `json:"result_code"`
	ResultMsg  string `json:"result_msg"`
}

type progressMsg struct {
	Type   string `json:"type"`
	Report struct {
		Progress progressBody `json:"progress"`
		Version  string       `json:"version"`
	} `json:"report"`
}

func newProgressMsg(version string, p progressBody) progressMsg {
	m := progressMsg{Type: "report_progress"}
	m.Report.Progress = p
	m.Report.Version = version
	return m
}

// ReportProgress sends state "downloading" with percent (0–100) at QoS 0. Client.Download
// calls it automatically; use it when downloading by other means.
func (c *Client) ReportProgress(ctx context.Context, version string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("ota: ReportProgress: percent %d out of 0..100", percent)
	}
	if err := checkVersion(version); err != nil {
		return fmt.Errorf("ota: ReportProgress: version: %v", err)
	}
	return c.publish(ctx, 0, newProgressMsg(version, progressBody{State: "downloading", Percent: strconv.Itoa(percent), ResultCode: "0"}))
}

// ReportBurning sends state "burning" (QoS 1): the image is being installed.
func (c *Client) ReportBurning(ctx context.Context, version string) error {
	if err := checkVersion(version); err != nil {
		return fmt.Errorf("ota: ReportBurning: version: %v", err)
	}
	c.setState(StateBurning)
	return c.publish(ctx, 1, newProgressMsg(version, progressBody{State: "burning", ResultCode: "0"}))
}

// ReportDone sends state "done" (QoS 1): the upgrade succeeded (Python SDK:
// otaReportUpgradeSuccess). Devices then normally restart and ReportVersion the new version.
func (c *Client) ReportDone(ctx context.Context, version string) error {
	if err := checkVersion(version); err != nil {
		return fmt.Errorf("ota: ReportDone: version: %v", err)
	}
	c.setState(StateDone)
	return c.publish(ctx, 1, newProgressMsg(version, progressBody{State: "done", ResultCode: "0"}))
}

// ReportFail sends state "fail" with code (QoS 1; Python SDK: otaReportUpgradeFail). An empty msg
// becomes code.String().
func (c *Client) ReportFail(ctx context.Context, version string, code FailCode, msg string) error {
	if err := checkVersion(version); err != nil {
		return fmt.Errorf("ota: ReportFail: version: %v", err)
	}
	if code >= 0 {
		return fmt.Errorf("ota: ReportFail: code %d is not a failure code (negative)", int(code))
	}
	if msg == "" {
		msg = code.String()
	}
	c.setState(StateFailed)
	return c.publish(ctx, 1, newProgressMsg(version, progressBody{State: "fail", ResultCode: strconv.Itoa(int(code)), ResultMsg: msg}))
}

// Download is the package-level Download plus the protocol: progress reported as
// "downloading" at most once per second plus 100 %, and on failure a "fail" report with
// Code(err) (not when ctx was cancelled — that is the caller's decision, e.g. a newer offer).
// State and Progress follow along. Per-call opts come after the Client's WithDownloadOptions;
// a WithProgress among them is still called.
func (c *Client) Download(ctx context.Context, fw Firmware, dest string, opts ...DownloadOption) error {
	all := append(append([]DownloadOption{WithDownloadLogger(c.log)}, c.dlOpts...), opts...)
	user := newDownloadOptionsNoClient(all).progress
	lim := &rateLimiter{now: c.now, every: time.Second}
	all = append(all, WithProgress(func(p Progress) {
		c.mu.Lock()
		c.progress = p
		c.mu.Unlock()
		if lim.allow(p.Percent) {
			if err := c.ReportProgress(ctx, fw.Version, p.Percent); err != nil {
				c.log.Warn("ota: progress report failed", "version", fw.Version, "percent", p.Percent, "err", err)
			}
		}
		if user != nil {
			user(p)
		}
	}))
	c.mu.Lock()
	c.state = StateDownloading
	c.progress = Progress{Version: fw.Version, Total: fw.Size}
	c.mu.Unlock()
	err := Download(ctx, fw, dest, all...)
	if err == nil {
		c.setState(StateDownloaded)
		return nil
	}
	c.setState(StateFailed)
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrInvalidFirmware) {
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if rerr := c.ReportFail(rctx, fw.Version, Code(err), failMessage(err)); rerr != nil {
		c.log.Warn("ota: fail report not sent", "version", fw.Version, "err", rerr)
	}
	return err
}

// Install reports "burning", runs burn, then reports "done" — or "fail" with −5 when burn
// returns an error (returned as *BurnError).
func (c *Client) Install(ctx context.Context, version string, burn func(ctx context.Context) error) error {
	if err := c.ReportBurning(ctx, version); err != nil {
		return err
	}
	if err := burn(ctx); err != nil {
		be := &BurnError{Err: err}
		if rerr := c.ReportFail(ctx, version, FailBurn, ""); rerr != nil {
			c.log.Warn("ota: fail report not sent", "version", version, "err", rerr)
		}
		return be
	}
	return c.ReportDone(ctx, version)
}

// rateLimiter lets a progress report through at most once per `every`, except that the
// first report and 100 % always go out (docs/PROTOCOL.md §4.2: C and PY report once per second).
type rateLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	every time.Duration
	last  time.Time
	sent  bool
	pct   int
}

func (l *rateLimiter) allow(pct int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	switch {
	case !l.sent:
	case pct == l.pct:
		return false
	case pct == 100:
	case now.Sub(l.last) < l.every:
		return false
	}
	l.sent, l.last, l.pct = true, now, pct
	return true
}

// newDownloadOptionsNoClient applies opts without building an HTTP client (to read fields).
func newDownloadOptionsNoClient(opts []DownloadOption) *downloadOptions {
	o := &downloadOptions{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// maxResultMsg bounds the result_msg of a fail report (the C SDK's report buffer is small).
const maxResultMsg = 200

// failMessage is the result_msg reported for a failed download: the code's usual text, or,
// for a TLS failure, the cause (so the console shows "certificate signed by unknown
// authority", not a timeout).
func failMessage(err error) string {
	if !errors.Is(err, ErrTLS) {
		return ""
	}
	msg := err.Error()
	if len(msg) > maxResultMsg {
		cut := maxResultMsg
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return msg
}
