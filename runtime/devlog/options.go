package devlog

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/tplgen/tplgen/runtime/internal/devhttp"
)

// Path is the upload API's path.
const Path = "/device/reportlog"

// DefaultEndpoint is the platform's device gateway.
const DefaultEndpoint = devhttp.DefaultEndpoint

// Defaults of the buffer and batches.
const (
	DefaultMaxRecords    = 1000
	DefaultMaxBytes      = 256 << 10
	DefaultBatchRecords  = 100
	DefaultBatchBytes    = 16 << 10
	DefaultFlushInterval = 5 * time.Second
	MaxLineBytes         = 2048
)

// Option configures New.
type Option func(*options) error

type options struct {
	endpoint      string
	insecure      bool
	roots         *x509.CertPool
	client        *http.Client
	now           func() time.Time
	maxRecords    int
	maxBytes      int
	batchRecords  int
	batchBytes    int
	flushInterval time.Duration
	initial       Level
	backoffMin    time.Duration
	backoffMax    time.Duration
}

func defaultOptions() options {
	return options{
		endpoint:      DefaultEndpoint,
		maxRecords:    DefaultMaxRecords,
		maxBytes:      DefaultMaxBytes,
		batchRecords:  DefaultBatchRecords,
		batchBytes:    DefaultBatchBytes,
		flushInterval: DefaultFlushInterval,
		initial:       LevelError,
		backoffMin:    time.Second,
		backoffMax:    time.Minute,
	}
}

// WithEndpoint sets the gateway base URL (default DefaultEndpoint).
func WithEndpoint(url string) Option { return func(o *options) error { o.endpoint = url; return nil } }

// WithInsecureHTTP allows an http:// endpoint.
func WithInsecureHTTP() Option { return func(o *options) error { o.insecure = true; return nil } }

// WithRootCAs sets the CAs trusted for the endpoint (default: the embedded Tencent root CA).
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) error { o.roots = pool; return nil }
}

// WithHTTPClient uploads with hc as is.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error { o.client = hc; return nil }
}

// WithClock sets the clock for line timestamps and request signatures (default: the
// connection's corrected clock, explorer.Conn.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("devlog: WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithBuffer bounds the buffer to maxRecords lines and maxBytes bytes (oldest dropped first).
func WithBuffer(maxRecords, maxBytes int) Option {
	return func(o *options) error {
		if maxRecords < 1 || maxBytes < MaxLineBytes {
			return fmt.Errorf("devlog: WithBuffer(%d, %d): want at least 1 record and %d bytes", maxRecords, maxBytes, MaxLineBytes)
		}
		o.maxRecords, o.maxBytes = maxRecords, maxBytes
		return nil
	}
}

// WithBatch bounds one upload to records lines and bytes bytes of lines, and sets how often a
// partial batch is uploaded (a full batch goes at once).
func WithBatch(records, bytes int, every time.Duration) Option {
	return func(o *options) error {
		if records < 1 || bytes < MaxLineBytes || every <= 0 {
			return fmt.Errorf("devlog: WithBatch(%d, %d, %v): want ≥ 1 record, ≥ %d bytes and a positive interval", records, bytes, every, MaxLineBytes)
		}
		o.batchRecords, o.batchBytes, o.flushInterval = records, bytes, every
		return nil
	}
}

// WithInitialLevel sets the level used until the cloud's arrives (default LevelError).
func WithInitialLevel(l Level) Option {
	return func(o *options) error {
		if !l.Valid() {
			return fmt.Errorf("devlog: WithInitialLevel(%d): not 0..4", int(l))
		}
		o.initial = l
		return nil
	}
}

// WithRetryBackoff sets the wait after a failed upload, doubling from min to max.
func WithRetryBackoff(min, max time.Duration) Option {
	return func(o *options) error {
		if min <= 0 || max < min {
			return fmt.Errorf("devlog: WithRetryBackoff(%v, %v): want 0 < min ≤ max", min, max)
		}
		o.backoffMin, o.backoffMax = min, max
		return nil
	}
}
