package ota

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Progress is a snapshot of a running download.
type Progress struct {
	Version string // File.ID: the firmware version for Download
	Done    int64  // bytes verified-on-disk so far, including resumed bytes
	Total   int64  // announced file_size
	Percent int    // Done*100/Total, 0..100
}

// DownloadOption configures Download.
type DownloadOption func(*downloadOptions)

type downloadOptions struct {
	client       *http.Client
	rootCAs      *x509.CertPool
	insecureHTTP bool
	progress     func(Progress)
	retries      int
	backoffMin   time.Duration
	backoffMax   time.Duration
	idleTimeout  time.Duration
	cpBytes      int64
	cpEvery      time.Duration
	log          *slog.Logger
	bufSize      int
}

func newDownloadOptions(opts []DownloadOption) *downloadOptions {
	o := &downloadOptions{
		retries:     5, // as the C sample (MAX_OTA_RETRY_CNT)
		backoffMin:  500 * time.Millisecond,
		backoffMax:  10 * time.Second,
		idleTimeout: 30 * time.Second,
		cpBytes:     4 << 20,
		cpEvery:     time.Second,
		bufSize:     128 << 10,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Transparent gzip would break byte offsets for Range resume.
		tr.DisableCompression = true
		tr.ResponseHeaderTimeout = o.idleTimeout
		tr.TLSClientConfig = &tls.Config{RootCAs: o.rootCAs, MinVersion: tls.VersionTLS12}
		o.client = &http.Client{Transport: tr}
	}
	return o
}

// WithHTTPClient downloads with c instead of the default client (HTTPS with the system trust
// store). WithRootCAs is ignored when this is given.
func WithHTTPClient(c *http.Client) DownloadOption {
	return func(o *downloadOptions) { o.client = c }
}

// WithRootCAs trusts pool instead of the system trust store (e.g. the test platform's CA).
func WithRootCAs(pool *x509.CertPool) DownloadOption {
	return func(o *downloadOptions) { o.rootCAs = pool }
}

// WithInsecureHTTP allows plain http:// firmware URLs. Without it only https is accepted: the
// image is checked by MD5 only, which protects against corruption, not against tampering.
func WithInsecureHTTP() DownloadOption {
	return func(o *downloadOptions) { o.insecureHTTP = true }
}

// WithProgress calls fn at the start of the download and every time the whole percentage
// changes (so at most 102 times). Calls are sequential, on a goroutine of the download;
// keep fn short.
func WithProgress(fn func(Progress)) DownloadOption {
	return func(o *downloadOptions) { o.progress = fn }
}

// WithRetries sets how many consecutive failed attempts that made no progress are retried
// before Download gives up with ErrTimeout (default 5). An attempt that received bytes resets
// the count, so a flaky link that keeps making progress finishes.
func WithRetries(n int) DownloadOption {
	return func(o *downloadOptions) {
		if n >= 0 {
			o.retries = n
		}
	}
}

// WithBackoff sets the wait between retries: min doubling up to max, with jitter
// (default 500ms..10s).
func WithBackoff(min, max time.Duration) DownloadOption {
	return func(o *downloadOptions) {
		if min > 0 && max >= min {
			o.backoffMin, o.backoffMax = min, max
		}
	}
}

// WithIdleTimeout fails an attempt (to be retried) when no byte arrives for d (default 30s).
func WithIdleTimeout(d time.Duration) DownloadOption {
	return func(o *downloadOptions) {
		if d > 0 {
			o.idleTimeout = d
		}
	}
}

// WithCheckpoint sets how often the part file is fsync'd and the resume checkpoint rewritten:
// after every n bytes or every d, whichever comes first (default 4 MiB / 1s).
func WithCheckpoint(n int64, d time.Duration) DownloadOption {
	return func(o *downloadOptions) {
		if n > 0 {
			o.cpBytes = n
		}
		if d > 0 {
			o.cpEvery = d
		}
	}
}

// WithDownloadLogger logs retries and resume decisions to l (discarded by default). URLs are
// logged without their query string (the signature).
func WithDownloadLogger(l *slog.Logger) DownloadOption {
	return func(o *downloadOptions) { o.log = l }
}
