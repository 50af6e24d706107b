package resource

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/internal/devhttp"
	"github.com/tplgen/tplgen/runtime/ota"
)

// Conn is the connection Files and Tasks run on. *explorer.Conn implements it, and so does
// every runtime/thing Transport: a generated device reaches this package through its
// NewFiles and NewResourceTasks methods (thing.Device), which pass their own connection and
// route the service topic they share.
type Conn interface {
	// Publish sends the device's messages.
	Publish(ctx context.Context, topic string, qos byte, payload []byte) error
	// Subscribe and Unsubscribe manage the down topic. A connection that also has
	// SubscribeOwned (explorer.Conn) gets the topic owned, so a program's own Subscribe of it
	// fails instead of silently taking these messages.
	Subscribe(ctx context.Context, filter string, qos byte, h explorer.Handler) error
	Unsubscribe(ctx context.Context, filters ...string) error
	// ProductID and DeviceName name the connection's own device, served unless WithDevice
	// names another.
	ProductID() string
	DeviceName() string
	// Logger is the connection's logger; nil logs nothing.
	Logger() *slog.Logger
}

// MaxNameLen is the longest resource name (the C SDK's buffer).
const MaxNameLen = 64

// FailCode is a result_code of report_result / report_download_progress.
type FailCode int

// Failure codes (the C SDK's IOT_FILE_ReportType).
const (
	FailTimeout      FailCode = -1
	FailNotFound     FailCode = -2
	FailAuth         FailCode = -3
	FailMD5          FailCode = -4
	FailInstall      FailCode = -5
	FailNoSpace      FailCode = -6
	FailDelete       FailCode = -7
	FailUpload       FailCode = -8
	resultMsgSuccess          = "success"
)

// Code maps a download or upload error to its FailCode (0 for nil).
func Code(err error) FailCode {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUpload):
		return FailUpload
	case errors.Is(err, ota.ErrNotFound):
		return FailNotFound
	case errors.Is(err, ota.ErrSignatureExpired):
		return FailAuth
	case errors.Is(err, ota.ErrMD5Mismatch):
		return FailMD5
	case errors.Is(err, os.ErrPermission), isNoSpace(err):
		return FailNoSpace
	}
	return FailTimeout
}

func isNoSpace(err error) bool { return strings.Contains(err.Error(), "no space left") }

// Errors of this package.
var (
	ErrInvalid  = errors.New("resource: invalid argument")
	ErrMessage  = errors.New("resource: malformed message")
	ErrRefused  = errors.New("resource: refused by the platform")
	ErrUpload   = errors.New("resource: upload failed")
	ErrNoTask   = errors.New("resource: no download task")
	ErrClosed   = errors.New("resource: closed")
	errNoAnswer = errors.New("no answer from the platform")
)

// CheckName reports whether name can be stored as a file in the resource directory.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: resource name is empty", ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: resource name of %d bytes, at most %d", ErrInvalid, len(name), MaxNameLen)
	case name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("%w: resource name %q is not a plain file name", ErrInvalid, name)
	}
	return nil
}

// uploadTimeout bounds one upload of the default client.
const uploadTimeout = 10 * time.Minute

// Option configures NewFiles and NewTasks.
type Option func(*options) error

type options struct {
	pid, dn    string
	log        *slog.Logger
	dl         []ota.DownloadOption
	client     *http.Client
	timeout    time.Duration
	shared     bool
	progress   func(Progress)
	reportStep int
}

// Progress is a transfer snapshot.
type Progress struct {
	Name    string
	Upload  bool // false: download
	Done    int64
	Total   int64
	Percent int
}

// WithDevice acts for another device than the connection's own (a gateway's sub-device).
func WithDevice(productID, deviceName string) Option {
	return func(o *options) error {
		if productID == "" || deviceName == "" || strings.ContainsAny(productID+deviceName, "/+#") {
			return fmt.Errorf("%w: WithDevice(%q, %q)", ErrInvalid, productID, deviceName)
		}
		o.pid, o.dn = productID, deviceName
		return nil
	}
}

// WithLogger sets the logger (default: the connection's).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalid)
		}
		o.log = l
		return nil
	}
}

// WithDownloadOptions passes options to runtime/ota's downloader (root CAs, retries, plain
// HTTP for tests, ...). Its WithProgress is replaced by this package's WithProgress.
func WithDownloadOptions(opts ...ota.DownloadOption) Option {
	return func(o *options) error { o.dl = append(o.dl, opts...); return nil }
}

// WithHTTPClient uploads with hc (default: HTTPS with the system trust store, as object
// storage URLs need).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error { o.client = hc; return nil }
}

// WithRootCAs trusts pool instead of the system trust store for downloads and uploads alike
// (e.g. the emulator's test CA): WithDownloadOptions(ota.WithRootCAs(pool)) plus an upload
// client like the default one that trusts pool. A later WithHTTPClient replaces that client.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) error {
		if pool == nil {
			return fmt.Errorf("%w: nil root CA pool", ErrInvalid)
		}
		o.dl = append(o.dl, ota.WithRootCAs(pool))
		o.client = devhttp.NewHTTPClient(pool, uploadTimeout)
		return nil
	}
}

// WithReplyTimeout bounds the wait for the platform's answers when ctx has no deadline
// (default 10 s).
func WithReplyTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: reply timeout %v", ErrInvalid, d)
		}
		o.timeout = d
		return nil
	}
}

// WithProgress calls fn during transfers.
func WithProgress(fn func(Progress)) Option {
	return func(o *options) error { o.progress = fn; return nil }
}

// WithSharedServiceTopic makes Files leave the $thing/down/service subscription to its owner,
// which passes messages to Files.HandleService.
func WithSharedServiceTopic() Option { return func(o *options) error { o.shared = true; return nil } }

func newOptions(conn Conn, opts []Option) (options, error) {
	o := options{pid: conn.ProductID(), dn: conn.DeviceName(), log: conn.Logger(), timeout: 10 * time.Second, reportStep: 10}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: uploadTimeout}
	}
	return o, nil
}

// fileMD5 hashes a file.
func fileMD5(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := md5.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 64<<10))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// countingReader reports progress while a body is read.
type countingReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	if n > 0 && c.fn != nil {
		c.fn(c.done, c.total)
	}
	return n, err
}

// put uploads path to url with an HTTP PUT (Content-MD5 when md5hex is set).
func put(ctx context.Context, client *http.Client, url, path string, size int64, md5hex string, fn func(done, total int64)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUpload, err)
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, &countingReader{r: f, total: size, fn: fn})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUpload, err)
	}
	req.ContentLength = size
	if md5hex != "" {
		b, _ := hex.DecodeString(md5hex)
		req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(b))
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: PUT %s: %v", ErrUpload, redact(url), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: PUT %s: HTTP %d: %s", ErrUpload, redact(url), resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// redact drops a URL's query (its signature).
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// download fetches with runtime/ota's downloader into dir/name.
func download(ctx context.Context, o options, dir, name, version, url, md5sum string, size int64, report func(pct int)) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	if version == "" {
		version = strings.ToLower(md5sum) // the checkpoint identity of an unversioned task
	}
	dest := filepath.Join(dir, name)
	last := -1
	opts := append(append([]ota.DownloadOption(nil), o.dl...), ota.WithProgress(func(p ota.Progress) {
		if o.progress != nil {
			o.progress(Progress{Name: name, Done: p.Done, Total: p.Total, Percent: p.Percent})
		}
		if p.Percent/o.reportStep != last/o.reportStep || last < 0 {
			last = p.Percent
			report(p.Percent)
		}
	}))
	err := ota.Download(ctx, ota.Firmware{Version: version, URL: url, MD5: md5sum, Size: size}, dest, opts...)
	if err != nil {
		return "", err
	}
	return dest, nil
}

// num reads a JSON number or a string holding an integer.
func num(raw json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return 0, false
		}
		s = strings.TrimSpace(str)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// autoDownloads runs the automatic downloads of a Files or Tasks and lets Close wait for them;
// once closed, none starts.
type autoDownloads struct {
	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// start runs fn on a goroutine of its own unless closed.
func (a *autoDownloads) start(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.running.Add(1)
	go func() {
		defer a.running.Done()
		fn()
	}()
}

func (a *autoDownloads) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// close marks it closed, waits for the downloads running (the caller has cancelled their ctx,
// so they end at once) and reports whether it was closed already.
func (a *autoDownloads) close() (already bool) {
	a.mu.Lock()
	already, a.closed = a.closed, true
	a.mu.Unlock()
	a.running.Wait()
	return already
}
