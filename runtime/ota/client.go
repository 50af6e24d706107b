package ota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/goccy/go-json"
	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/explorer"
)

// State is where the Client is in an update, the Go home of the Python SDK's otaIsFetching /
// otaIsFetchFinished.
type State int

// Client states.
const (
	StateIdle        State = iota // no update in progress
	StateDownloading              // Download running
	StateDownloaded               // image downloaded and verified (fetch finished)
	StateBurning                  // ReportBurning sent / Install running
	StateDone                     // ReportDone sent
	StateFailed                   // ReportFail sent or the download failed
)

// String returns the state name.
func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateDownloading:
		return "downloading"
	case StateDownloaded:
		return "downloaded"
	case StateBurning:
		return "burning"
	case StateDone:
		return "done"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Option configures New.
type Option func(*Client) error

// WithDevice makes the Client act for another device on conn — a sub-device through its
// gateway's connection (topics $ota/report|update/{pid}/{dn}, docs/PROTOCOL.md §4.4, §5.5). The
// gateway must have brought the sub-device online first.
func WithDevice(productID, deviceName string) Option {
	return func(c *Client) error {
		if productID == "" || deviceName == "" {
			return fmt.Errorf("ota: WithDevice: product id and device name must not be empty")
		}
		c.pid, c.dn = productID, deviceName
		return nil
	}
}

// WithLogger sets the logger (discarded by default). It is also used by Client.Download.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return fmt.Errorf("ota: WithLogger: nil logger")
		}
		c.log = l
		return nil
	}
}

// WithDownloadOptions sets options applied to every Client.Download before the per-call ones
// (e.g. WithRootCAs for the test platform).
func WithDownloadOptions(opts ...DownloadOption) Option {
	return func(c *Client) error {
		c.dlOpts = append(c.dlOpts, opts...)
		return nil
	}
}

// WithReplyTimeout bounds the wait for report_version_rsp when the caller's ctx has no
// deadline (default 10s).
func WithReplyTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("ota: WithReplyTimeout: %v is not positive", d)
		}
		c.replyTimeout = d
		return nil
	}
}

// Client speaks the OTA protocol (docs/PROTOCOL.md §4) for one device over an explorer.Conn.
type Client struct {
	conn         *explorer.Conn
	pid, dn      string
	log          *slog.Logger
	dlOpts       []DownloadOption
	replyTimeout time.Duration
	now          func() time.Time

	ctx    context.Context // parent of update handler contexts; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	unhook func()

	subMu      sync.Mutex // serialises the lazy subscribe
	subscribed bool

	mu       sync.Mutex
	closed   bool
	version  string // last reported version, re-reported after every reconnect
	waiters  map[*rspWaiter]struct{}
	onUpdate func(context.Context, Firmware)
	offered  *Firmware // last update_firmware received
	job      *updateJob
	state    State
	progress Progress
}

type rspWaiter struct {
	version string
	ch      chan error
}

type updateJob struct {
	version string
	cancel  context.CancelFunc
	done    chan struct{}
}

// New creates an OTA client on conn (the device's own identity unless WithDevice is given).
// It subscribes to the update topic on the first ReportVersion, because the platform only
// offers updates to devices that reported a version; after every reconnect it re-reports the
// last version, which makes the platform re-push a pending update.
func New(conn *explorer.Conn, opts ...Option) (*Client, error) {
	if conn == nil {
		return nil, fmt.Errorf("ota: New: nil connection")
	}
	c := &Client{
		conn:         conn,
		pid:          conn.ProductID(),
		dn:           conn.DeviceName(),
		log:          conn.Logger(),
		replyTimeout: 10 * time.Second,
		now:          time.Now,
		waiters:      map[*rspWaiter]struct{}{},
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.unhook = conn.OnConnect(c.resync)
	return c, nil
}

// ReportTopic is the uplink topic, $ota/report/{pid}/{dn}.
func (c *Client) ReportTopic() string { return "$ota/report/" + c.pid + "/" + c.dn }

// UpdateTopic is the downlink topic, $ota/update/{pid}/{dn}.
func (c *Client) UpdateTopic() string { return "$ota/update/" + c.pid + "/" + c.dn }

// Close stops dispatching updates, cancels a running OnUpdate handler's ctx and waits up to
// 5 s for it to return. It does not close the connection. Idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for w := range c.waiters {
		w.ch <- ErrClosed
		delete(c.waiters, w)
	}
	c.mu.Unlock()
	c.unhook()
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.log.Warn("ota: update handler still running after Close", "device", c.pid+"/"+c.dn)
	}
	return nil
}

// OnUpdate sets the handler for update_firmware offers. It runs on its own goroutine with a
// ctx that ends when a different version is offered (the newer offer supersedes it) or the
// Client closes; the same version offered again while it runs (the platform re-pushes after
// every report_version) is not delivered twice. Malformed offers are logged with topic and
// field and dropped. A typical handler calls Download, installs, then ReportDone.
func (c *Client) OnUpdate(fn func(ctx context.Context, fw Firmware)) {
	c.mu.Lock()
	c.onUpdate = fn
	c.mu.Unlock()
}

// Offered returns the last valid update_firmware received, if any.
func (c *Client) Offered() (Firmware, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offered == nil {
		return Firmware{}, false
	}
	return *c.offered, true
}

// State returns the current update state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// IsFetching reports whether a Download is running (Python SDK: otaIsFetching).
func (c *Client) IsFetching() bool { return c.State() == StateDownloading }

// IsFetchFinished reports whether the last Download completed and verified (Python SDK:
// otaIsFetchFinished).
func (c *Client) IsFetchFinished() bool { return c.State() == StateDownloaded }

// Progress returns the progress of the current or last Download (Python SDK: otaIoctlNumber for
// the downloaded size and file size).
func (c *Client) Progress() Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress
}

func (c *Client) setState(s State) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

// ReportVersion reports the running firmware version (1–32 characters) and waits for
// report_version_rsp; a non-zero result_code is returned as *ResultError. The version is
// re-reported automatically after every reconnect. Without a ctx deadline the wait is bounded
// by WithReplyTimeout.
func (c *Client) ReportVersion(ctx context.Context, version string) error {
	if err := checkVersion(version); err != nil {
		return fmt.Errorf("ota: ReportVersion: version: %v", err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.version = version
	c.mu.Unlock()
	if err := c.subscribe(ctx); err != nil {
		return err
	}
	return c.reportVersion(ctx, version)
}

func (c *Client) subscribe(ctx context.Context) error {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.subscribed {
		return nil
	}
	if err := c.conn.Subscribe(ctx, c.UpdateTopic(), 1, c.handle); err != nil {
		return fmt.Errorf("ota: subscribe %s: %w", c.UpdateTopic(), err)
	}
	c.subscribed = true
	return nil
}

func (c *Client) reportVersion(ctx context.Context, version string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.replyTimeout)
		defer cancel()
	}
	w := &rspWaiter{version: version, ch: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.waiters[w] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, w)
		c.mu.Unlock()
	}()
	msg := reportVersionMsg{Type: "report_version"}
	msg.Report.Version = version
	if err := c.publish(ctx, 1, msg); err != nil {
		return err
	}
	select {
	case err := <-w.ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("ota: %s: no report_version_rsp for %q: %w", c.UpdateTopic(), version, ctx.Err())
	}
}

// resync re-reports the version after a reconnect (the platform then re-pushes a pending
// update).
func (c *Client) resync(ctx context.Context) {
	c.mu.Lock()
	v, closed := c.version, c.closed
	c.mu.Unlock()
	if v == "" || closed {
		return
	}
	if err := c.reportVersion(ctx, v); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Warn("ota: re-reporting version after reconnect failed", "device", c.pid+"/"+c.dn, "version", v, "err", err)
	}
}

func (c *Client) publish(ctx context.Context, qos byte, msg any) error {
	payload, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("ota: encode: %w", err)
	}
	if err := c.conn.Publish(ctx, c.ReportTopic(), qos, payload); err != nil {
		return fmt.Errorf("ota: publish %s: %w", c.ReportTopic(), err)
	}
	return nil
}

// handle receives everything on the update topic.
func (c *Client) handle(_ context.Context, m explorer.Message) {
	var head struct {
		Type string `json:"type"`
	}
	if err := jsonguard.Unmarshal(m.Payload, &head); err != nil {
		c.log.Warn("ota: dropping malformed message", "topic", m.Topic, "field", "type", "err", err)
		return
	}
	switch head.Type {
	case "report_version_rsp":
		c.handleRsp(m)
	case "update_firmware":
		fw, err := ParseUpdate(m.Topic, m.Payload)
		if err != nil {
			c.log.Warn("ota: dropping malformed update_firmware", "topic", m.Topic, "err", err)
			return
		}
		c.dispatch(fw)
	default:
		c.log.Debug("ota: ignoring message", "topic", m.Topic, "type", head.Type)
	}
}

func (c *Client) handleRsp(m explorer.Message) {
	var rsp struct {
		ResultCode json.RawMessage `json:"result_code"`
		ResultMsg  string          `json:"result_msg"`
		Version    string          `json:"version"`
	}
	if err := jsonguard.Unmarshal(m.Payload, &rsp); err != nil {
		c.log.Warn("ota: dropping malformed report_version_rsp", "topic", m.Topic, "err", err)
		return
	}
	code, err := parseInt(rsp.ResultCode)
	var result error
	if err != nil {
		c.log.Warn("ota: report_version_rsp without a usable result_code", "topic", m.Topic, "field", "result_code", "err", err)
		result = fmt.Errorf("ota: %s: report_version_rsp: result_code: %v", m.Topic, err)
	} else if code != 0 {
		result = &ResultError{Topic: m.Topic, Version: rsp.Version, Code: int(code), Msg: rsp.ResultMsg}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.waiters {
		if rsp.Version == "" || rsp.Version == w.version {
			if re, ok := result.(*ResultError); ok && re.Version == "" {
				cp := *re
				cp.Version = w.version
				w.ch <- &cp
			} else {
				w.ch <- result
			}
			delete(c.waiters, w)
		}
	}
}

// dispatch starts the OnUpdate handler for fw unless it already runs for that version.
func (c *Client) dispatch(fw Firmware) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offered = &fw
	if c.closed {
		return
	}
	if c.onUpdate == nil {
		c.log.Info("ota: update offered but no OnUpdate handler set", "version", fw.Version)
		return
	}
	if c.job != nil && c.job.version == fw.Version {
		c.log.Debug("ota: update already being handled", "version", fw.Version)
		return
	}
	prev := c.job
	ctx, cancel := context.WithCancel(c.ctx)
	job := &updateJob{version: fw.Version, cancel: cancel, done: make(chan struct{})}
	c.job = job
	fn := c.onUpdate
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(job.done)
		defer cancel()
		if prev != nil {
			prev.cancel() // a newer offer supersedes the running one
			<-prev.done
		}
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("ota: OnUpdate handler panicked", "version", fw.Version, "panic", r)
			}
			c.mu.Lock()
			if c.job == job {
				c.job = nil
			}
			c.mu.Unlock()
		}()
		fn(ctx, fw)
	}()
}
