package dynreg

import (
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"
)

// Option configures Register.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	rootCAs      *x509.CertPool
	client       *http.Client
	insecureHTTP bool
	now          func() time.Time
	timeout      time.Duration
}

// DefaultTimeout bounds a registration whose ctx has no deadline.
const DefaultTimeout = 30 * time.Second

func defaultOptions() options {
	return options{
		logger:  slog.New(slog.DiscardHandler),
		now:     time.Now,
		timeout: DefaultTimeout,
	}
}

// WithLogger sets the logger (discard by default). Secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithRootCAs sets the CAs trusted for the HTTPS endpoint, instead of the embedded Tencent root CA.
// It cannot be combined with WithHTTPClient (configure that client's TLS instead).
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) { o.rootCAs = pool }
}

// WithHTTPClient makes Register use c as is (its transport, TLS config and redirect policy).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.client = c }
}

// WithInsecureHTTP allows an http:// Endpoint. Without it Register refuses plain HTTP: the answer
// would not be authenticated.
func WithInsecureHTTP() Option {
	return func(o *options) { o.insecureHTTP = true }
}

// WithClock sets the clock used for the signature timestamp (time.Now by default).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithTimeout bounds the whole registration when ctx has no deadline (DefaultTimeout otherwise).
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}
