package explorer

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	DefaultKeepAlive          = 60 * time.Second
	DefaultBackoffMin         = 1 * time.Second
	DefaultBackoffMax         = 60 * time.Second
	DefaultAckTimeout         = 5 * time.Second
	DefaultConnectTimeout     = 10 * time.Second
	DefaultQueueSize          = 100
	DefaultHandlerConcurrency = 16
	DefaultHandlerBacklog     = 256
	DefaultHandlerTimeout     = 30 * time.Second
)

// SignatureExpiryNever is the username expiry sent by default: 2147483647 (2038-01-19), the
// value the Java SDK uses with auto-reconnect (the C SDK sends LONG_MAX by default). A fixed
// far-future expiry makes the login independent of the device clock, so a board that boots
// at 1970 without a real-time clock still connects and can then learn the time from the
// platform (docs/PROTOCOL.md §1.3, §7.1). The password still changes on every connect (the
// connid part of the username is random). WithSignatureExpiry opts into clock-based expiry.
const SignatureExpiryNever int64 = 2147483647

// Platform limits enforced before anything is sent (docs/PROTOCOL.md §8.1).
const (
	MaxPayloadSize  = 16 * 1024
	MaxTopicLength  = 255
	MaxTopicLevels  = 10
	MaxKeepAlive    = 900 * time.Second
	maxQueueSize    = 1 << 20
	maxHandlerLimit = 1 << 16
)

// Option configures a Conn. Options are validated by Dial; an invalid one makes Dial fail
// with an error wrapping ErrInvalidConfig.
type Option func(*options) error

// String hides what an Option holds (root CAs, callbacks): options are printed or logged
// only as their type.
func (Option) String() string { return "explorer.Option" }

// GoString is the %#v form of String.
func (o Option) GoString() string { return o.String() }

// LogValue logs an Option as its type only.
func (o Option) LogValue() slog.Value { return slog.StringValue(o.String()) }

type options struct {
	keepAlive          time.Duration
	backoffMin         time.Duration
	backoffMax         time.Duration
	ackTimeout         time.Duration
	connectTimeout     time.Duration
	logger             *slog.Logger
	onConnect          []func(ctx context.Context)
	onConnectionLost   []func(err error)
	queueSize          int
	handlerConcurrency int
	handlerBacklog     int
	handlerTimeout     time.Duration
	signMethod         SignMethod
	sdkAppID           string
	expiry             time.Duration
	rootCAs            *x509.CertPool
	plainTCP           bool
	connectRetry       bool
	now                func() time.Time
}

func defaultOptions() options {
	return options{
		keepAlive:          DefaultKeepAlive,
		backoffMin:         DefaultBackoffMin,
		backoffMax:         DefaultBackoffMax,
		ackTimeout:         DefaultAckTimeout,
		connectTimeout:     DefaultConnectTimeout,
		queueSize:          DefaultQueueSize,
		handlerConcurrency: DefaultHandlerConcurrency,
		handlerBacklog:     DefaultHandlerBacklog,
		handlerTimeout:     DefaultHandlerTimeout,
		signMethod:         HMACSHA256,
		sdkAppID:           SDKAppIDDoc,
		now:                time.Now,
	}
}

func optErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// WithKeepAlive sets the MQTT keep-alive (0–900 s, whole seconds; 0 disables pings).
// Default 60 s. The platform drops a client after 1.5 × keep-alive without traffic.
func WithKeepAlive(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d > MaxKeepAlive {
			return optErr("keep-alive %v out of range 0s..900s", d)
		}
		if d%time.Second != 0 {
			return optErr("keep-alive %v is not whole seconds", d)
		}
		o.keepAlive = d
		return nil
	}
}

// WithReconnectBackoff sets the reconnect delay range. The first retry waits about min, each
// failure doubles the wait up to max, and every wait gets random jitter of up to 50 %.
// The delay starts again from min only after a connection that stayed up for at least max.
// Defaults 1 s and 60 s, like the official SDKs.
func WithReconnectBackoff(min, max time.Duration) Option {
	return func(o *options) error {
		if min <= 0 || max < min {
			return optErr("reconnect backoff min %v, max %v: want 0 < min <= max", min, max)
		}
		o.backoffMin, o.backoffMax = min, max
		return nil
	}
}

// WithAckTimeout sets how long Publish (QoS 1), Subscribe, Unsubscribe and ServerTime wait
// for the broker's answer when the caller's ctx has no earlier deadline. Default 5 s.
func WithAckTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return optErr("ack timeout %v must be positive", d)
		}
		o.ackTimeout = d
		return nil
	}
}

// WithConnectTimeout bounds one connection attempt (TCP, TLS and CONNACK). Default 10 s.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return optErr("connect timeout %v must be positive", d)
		}
		o.connectTimeout = d
		return nil
	}
}

// WithLogger sets the logger (default: slog.Default() at the time of Dial, so connection
// losses, handler panics and dropped messages are visible without any setup; pass a logger
// with a discarding handler to silence the Conn). Secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return optErr("nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithOnConnect registers fn to run after every successful (re)connect, once subscriptions
// are restored and the offline queue is flushed. It is the option form of Conn.OnConnect.
func WithOnConnect(fn func(ctx context.Context)) Option {
	return func(o *options) error {
		if fn == nil {
			return optErr("nil OnConnect callback")
		}
		o.onConnect = append(o.onConnect, fn)
		return nil
	}
}

// WithOnConnectionLost registers fn to run (on its own goroutine) whenever an established
// connection drops; err says why.
func WithOnConnectionLost(fn func(err error)) Option {
	return func(o *options) error {
		if fn == nil {
			return optErr("nil OnConnectionLost callback")
		}
		o.onConnectionLost = append(o.onConnectionLost, fn)
		return nil
	}
}

// WithQueueSize sets how many publishes may wait while disconnected (default 100; 0 makes
// Publish fail with ErrNotConnected while offline).
func WithQueueSize(n int) Option {
	return func(o *options) error {
		if n < 0 || n > maxQueueSize {
			return optErr("queue size %d out of range 0..%d", n, maxQueueSize)
		}
		o.queueSize = n
		return nil
	}
}

// WithHandlerConcurrency bounds how many handlers run at the same time across all
// subscriptions (default 16).
func WithHandlerConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 || n > maxHandlerLimit {
			return optErr("handler concurrency %d out of range 1..%d", n, maxHandlerLimit)
		}
		o.handlerConcurrency = n
		return nil
	}
}

// WithHandlerBacklog sets how many received messages may wait per subscription while its
// handler is busy (default 256). When a backlog is full new messages for that subscription
// are dropped, logged at error level and counted in Stats().DroppedMessages.
func WithHandlerBacklog(n int) Option {
	return func(o *options) error {
		if n < 1 || n > maxQueueSize {
			return optErr("handler backlog %d out of range 1..%d", n, maxQueueSize)
		}
		o.handlerBacklog = n
		return nil
	}
}

// WithHandlerTimeout sets the deadline of the ctx each handler call receives (default 30 s).
// A handler still running after it is logged and stops counting against the concurrency
// limit, so one stuck handler cannot starve the others.
func WithHandlerTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return optErr("handler timeout %v must be positive", d)
		}
		o.handlerTimeout = d
		return nil
	}
}

// WithSignMethod chooses the password HMAC (default HMACSHA256).
func WithSignMethod(m SignMethod) Option {
	return func(o *options) error {
		if _, err := m.newHash(); err != nil {
			return err
		}
		o.signMethod = m
		return nil
	}
}

// WithSDKAppID sets the sdkappid field of the username (default SDKAppIDDoc "12010126";
// SDKAppIDEmbedded "21010406" is what the C and Python SDKs send).
func WithSDKAppID(id string) Option {
	return func(o *options) error {
		if id == "" {
			return optErr("empty sdkappid")
		}
		for _, r := range id {
			if r < '0' || r > '9' {
				return optErr("sdkappid %q is not decimal digits", id)
			}
		}
		o.sdkAppID = id
		return nil
	}
}

// WithSignatureExpiry makes the username's expiry "now + d" at each connect instead of the
// default SignatureExpiryNever. "Now" is the Conn's corrected clock (Conn.Now), which on the
// first connect is the device clock alone: a device whose clock is wrong by more than d then
// gets CONNACK 4 (ErrBadCredentials). Use it only on devices with a trustworthy clock.
func WithSignatureExpiry(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return optErr("signature expiry %v shorter than 1s", d)
		}
		o.expiry = d
		return nil
	}
}

// WithRootCAs verifies the broker against pool instead of the embedded Tencent root CA
// (used with explorertest's test CA or a private deployment).
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) error {
		if pool == nil {
			return optErr("nil root CA pool")
		}
		o.rootCAs = pool
		return nil
	}
}

// WithConnectRetry makes Dial wait for the network: when the first connection attempt fails
// because the broker cannot be reached or does not answer (ErrConnectionRefused,
// ErrTimeout), Dial tries again with the reconnect backoff (WithReconnectBackoff) until it
// connects or ctx ends; it then returns the last attempt's error together with ctx's. A
// refusal that will not heal by itself (ErrBadCredentials, ErrNotAuthorized, ErrTLS,
// ErrInvalidConfig) still fails at once. Without it Dial makes exactly one attempt.
func WithConnectRetry() Option {
	return func(o *options) error {
		o.connectRetry = true
		return nil
	}
}

// WithPlainTCP allows an unencrypted Broker (tcp://, mqtt:// or ws://). Without it such a
// broker is refused, because the password would cross the network without TLS.
func WithPlainTCP() Option {
	return func(o *options) error {
		o.plainTCP = true
		return nil
	}
}

// WithClock sets the device's wall clock (default time.Now); it is the one source of "now"
// for the Conn and the layers built on it. The Conn corrects it with the platform's time
// after every connect (see Conn.Now), so a device whose clock starts at 1970 still stamps
// its messages with the right time once connected.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return optErr("nil clock")
		}
		o.now = now
		return nil
	}
}
