package explorer

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// session is one established MQTT connection (one paho client). A new session is made on
// every (re)connect so no paho state survives a connection loss.
type session struct {
	client mqtt.Client
	gen    uint64
	since  time.Time  // when it was established
	lost   chan error // receives the reason once the connection drops
	ctx    context.Context
	cancel context.CancelFunc

	// down closes when paho reports the connection lost (before the supervisor has handled
	// it), so nothing waits on a dead session.
	down     chan struct{}
	downOnce sync.Once
	slots    chan struct{} // hand-over goroutines inside paho (handoff)
}

// markLost records paho's report that the connection is gone.
func (s *session) markLost(err error) {
	s.downOnce.Do(func() { close(s.down) })
	select {
	case s.lost <- err:
	default:
	}
}

// attempt records what happened inside paho's connection opener so the outcome can be
// classified (paho flattens those errors) and the socket closed when ctx ends.
type attempt struct {
	mu      sync.Mutex
	conn    net.Conn
	dialErr error // the sentinel-wrapped error of the TCP/TLS stage
	aborted bool
}

func (a *attempt) abort() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.aborted = true
	if a.conn != nil {
		_ = a.conn.Close()
	}
}

// tlsConfig returns the TLS client config for the broker, or nil for plain TCP.
func (c *Conn) tlsConfig() *tls.Config {
	if !c.addr.tls {
		return nil
	}
	pool := c.opts.rootCAs
	if pool == nil {
		pool = TencentRootCAs()
	}
	cfg := &tls.Config{
		RootCAs:    pool,
		ServerName: c.addr.host,
		MinVersion: tls.VersionTLS12,
	}
	if c.cfg.Certificate != nil {
		cfg.Certificates = []tls.Certificate{*c.cfg.Certificate}
	}
	return cfg
}

// dialBroker opens the TCP (and TLS) connection honouring ctx.
func (c *Conn) dialBroker(ctx context.Context, a *attempt) (net.Conn, error) {
	if c.addr.ws {
		return c.dialWebSocket(ctx, a)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.addr.hostPort())
	if err != nil {
		return nil, c.stageError(ctx, ErrConnectionRefused, err)
	}
	a.mu.Lock()
	if a.aborted {
		a.mu.Unlock()
		_ = raw.Close()
		return nil, c.stageError(ctx, ErrConnectionRefused, context.Canceled)
	}
	a.conn = raw
	a.mu.Unlock()
	if c.tlsCfg == nil {
		return raw, nil
	}
	tc := tls.Client(raw, c.tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, c.stageError(ctx, ErrTLS, err)
	}
	a.mu.Lock()
	a.conn = tc
	a.mu.Unlock()
	return tc, nil
}

// stageError turns a dial/handshake failure into a clear error; a ctx that ended wins.
func (c *Conn) stageError(ctx context.Context, kind error, cause error) error {
	what := "connect " + c.cfg.ProductID + "/" + c.cfg.DeviceName + " to " + c.addr.String()
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return newError(ErrTimeout, ctxErr, what)
		}
		return newError(ctxErr, nil, what)
	}
	var ne net.Error
	if kind == ErrConnectionRefused && errors.As(cause, &ne) && ne.Timeout() {
		return newError(ErrTimeout, cause, what)
	}
	switch kind {
	case ErrTLS:
		return newErrorf(kind, cause, what, "check the root CAs (WithRootCAs), the broker host name and the device certificate")
	case ErrConnectionRefused:
		return newErrorf(kind, cause, what, "check the broker address, the region and the network")
	}
	return newError(kind, cause, what)
}

// connectOnce makes one connection attempt with fresh credentials. ctx bounds the whole
// attempt; it is also cut at the connect timeout.
func (c *Conn) connectOnce(ctx context.Context) (*session, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.connectTimeout)
	defer cancel()

	po := mqtt.NewClientOptions()
	scheme := "tcp://"
	if c.addr.tls {
		scheme = "ssl://"
	}
	po.AddBroker(scheme + c.addr.hostPort())
	po.SetClientID(c.cfg.ClientID())
	expiry := SignatureExpiryNever
	if c.opts.expiry > 0 {
		expiry = c.Now().Add(c.opts.expiry).Unix()
	}
	user := Username(c.cfg.ProductID, c.cfg.DeviceName, c.opts.sdkAppID, newConnID(), expiry)
	po.SetUsername(user)
	if c.cfg.DeviceSecret != "" {
		pw, err := Password(c.cfg.DeviceSecret, user, c.opts.signMethod)
		if err != nil {
			return nil, err
		}
		po.SetPassword(pw)
	}
	// Certificate devices send no password: the platform authenticates the TLS client
	// certificate and ignores the password (docs/PROTOCOL.md §1.5).
	po.SetProtocolVersion(4)
	po.SetCleanSession(true)
	po.SetAutoReconnect(false) // we reconnect ourselves: fresh signature, ordered restore
	po.SetConnectRetry(false)
	po.SetKeepAlive(c.opts.keepAlive)
	po.SetConnectTimeout(c.opts.connectTimeout)
	po.SetWriteTimeout(c.opts.connectTimeout)
	// The default handler only enqueues (never blocks), so delivering in order on paho's
	// router goroutine costs nothing and keeps each subscription's messages in order;
	// OrderMatters(false) would start a goroutine per message and reorder them.
	po.SetOrderMatters(true)

	sess := &session{lost: make(chan error, 1), down: make(chan struct{}), slots: make(chan struct{}, maxHandoffs)}
	po.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { c.dispatch(m) })
	po.SetConnectionLostHandler(func(_ mqtt.Client, err error) { sess.markLost(err) })
	a := &attempt{}
	po.SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
		conn, err := c.dialBroker(actx, a)
		if err != nil {
			a.mu.Lock()
			a.dialErr = err
			a.mu.Unlock()
			return nil, err
		}
		return conn, nil
	})

	client := mqtt.NewClient(po)
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-actx.Done():
		a.abort()
		<-tok.Done() // paho gives up at once: its socket is closed
	}
	what := "connect " + c.cfg.ProductID + "/" + c.cfg.DeviceName + " to " + c.addr.String()
	if err := tok.Error(); err != nil {
		a.mu.Lock()
		dialErr := a.dialErr
		a.mu.Unlock()
		if dialErr != nil {
			return nil, dialErr
		}
		if actx.Err() != nil {
			return nil, c.stageError(actx, ErrTimeout, err)
		}
		return nil, connackError(what, tok.(*mqtt.ConnectToken).ReturnCode(), err)
	}
	if actx.Err() != nil { // connected just as ctx ended
		client.Disconnect(0)
		return nil, c.stageError(actx, ErrTimeout, actx.Err())
	}
	sess.client = client
	return sess, nil
}

// connackError maps a refused CONNACK (or a broken handshake) to a sentinel.
func connackError(what string, rc byte, cause error) error {
	switch rc {
	case packets.ErrRefusedBadUsernameOrPassword:
		return newErrorf(ErrBadCredentials, nil, what, "CONNACK 4: check DeviceSecret, the sign method and the signature expiry (WithSignatureExpiry)")
	case packets.ErrRefusedNotAuthorised:
		return newErrorf(ErrNotAuthorized, nil, what, "CONNACK 5: check that the device exists and is enabled, and ProductID/DeviceName")
	case packets.ErrRefusedIDRejected:
		return newErrorf(ErrNotAuthorized, nil, what, "client id rejected (CONNACK 2): check ProductID and DeviceName")
	case packets.ErrRefusedServerUnavailable:
		return newErrorf(ErrConnectionRefused, nil, what, "server unavailable (CONNACK 3)")
	case packets.ErrRefusedBadProtocolVersion:
		return newErrorf(ErrConnectionRefused, nil, what, "MQTT protocol version refused (CONNACK 1)")
	}
	var ne net.Error
	if errors.As(cause, &ne) && ne.Timeout() {
		return newErrorf(ErrTimeout, cause, what, "no CONNACK")
	}
	return newErrorf(ErrConnectionRefused, cause, what, "MQTT handshake failed")
}

// backoff yields reconnect delays: min, doubling to max, each plus up to 50 % jitter.
type backoff struct {
	min, max, cur time.Duration
	rand          func(n int64) int64
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	}
	d := b.cur
	if half := int64(d / 2); half > 0 {
		d += time.Duration(b.rand(half))
	}
	if b.cur < b.max {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	return d
}
