package explorer_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects to the plain listener of b with fast reconnects.
func dial(t *testing.T, b *testBroker, opts ...explorer.Option) *explorer.Conn {
	t.Helper()
	opts = append([]explorer.Option{explorer.WithPlainTCP(), explorer.WithReconnectBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)
	c, err := explorer.Dial(testCtx(t), b.config(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, ch <-chan explorer.Message) explorer.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15s")
	}
	return explorer.Message{}
}

func TestDialPlainAndAccessors(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b, explorer.WithSDKAppID(explorer.SDKAppIDEmbedded), explorer.WithSignMethod(explorer.HMACSHA1))
	if !c.IsConnected() || c.State() != explorer.StateConnected {
		t.Fatalf("state %v", c.State())
	}
	if c.ProductID() != testPID || c.DeviceName() != testDN || c.Logger() == nil {
		t.Fatal("accessors")
	}
	users := b.usernames()
	if len(users) != 1 {
		t.Fatalf("usernames %v", users)
	}
	f := strings.Split(users[0], ";")
	if len(f) != 4 || f[0] != testPID+testDN || f[1] != "21010406" || len(f[2]) != 5 {
		t.Fatalf("username %q", users[0])
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.State() != explorer.StateClosed || c.IsConnected() {
		t.Fatalf("after Close: %v", c.State())
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := c.Publish(testCtx(t), "test/x", 0, nil); !errors.Is(err, explorer.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if err := c.Subscribe(testCtx(t), "test/x", 0, func(context.Context, explorer.Message) {}); !errors.Is(err, explorer.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := c.Unsubscribe(testCtx(t), "test/x"); !errors.Is(err, explorer.ErrClosed) {
		t.Fatalf("Unsubscribe after Close: %v", err)
	}
}

func TestDialTLS(t *testing.T) {
	b := newTestBroker(t)
	cfg := b.config()
	cfg.Broker = b.TLSURL()
	c, err := explorer.Dial(testCtx(t), cfg, explorer.WithRootCAs(b.caPool))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch := make(chan explorer.Message, 1)
	if err := c.Subscribe(testCtx(t), "test/tls", 1, func(_ context.Context, m explorer.Message) { ch <- m }); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(testCtx(t), "test/tls", 1, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, ch); string(m.Payload) != "hi" {
		t.Fatalf("got %q", m.Payload)
	}
}

func TestDialCertificateDevice(t *testing.T) {
	b := newTestBroker(t)
	cert := b.addCertDevice("certdev")
	cfg := explorer.Config{ProductID: testPID, DeviceName: "certdev", Certificate: &cert, Broker: b.TLSURL()}
	c, err := explorer.Dial(testCtx(t), cfg, explorer.WithRootCAs(b.caPool))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// A certificate naming another device is refused by the platform.
	other := b.issue(testPID+"someone", nil, 2 /* ExtKeyUsageClientAuth */)
	cfg.Certificate = &other
	_, err = explorer.Dial(testCtx(t), cfg, explorer.WithRootCAs(b.caPool))
	if !errors.Is(err, explorer.ErrNotAuthorized) {
		t.Fatalf("err = %v, want ErrNotAuthorized", err)
	}
	// Certificate devices need TLS.
	cfg.Broker = b.URL()
	_, err = explorer.Dial(testCtx(t), cfg, explorer.WithPlainTCP())
	if !errors.Is(err, explorer.ErrInvalidConfig) {
		t.Fatalf("plain cert device: %v", err)
	}
}

func TestDialFailures(t *testing.T) {
	b := newTestBroker(t)
	refusedAddr := freeAddr(t) // nothing listens there

	tests := []struct {
		name   string
		cfg    func() explorer.Config
		opts   []explorer.Option
		want   error
		detail string
	}{
		{"bad-secret", func() explorer.Config {
			c := b.config()
			c.DeviceSecret = "d3Jvbmctc2VjcmV0LTEyMw=="
			return c
		}, []explorer.Option{explorer.WithPlainTCP()}, explorer.ErrBadCredentials, "check DeviceSecret"},
		{"expired", func() explorer.Config { return b.config() }, []explorer.Option{explorer.WithPlainTCP(), explorer.WithSignatureExpiry(time.Hour), withClockSkew(-2 * time.Hour)}, explorer.ErrBadCredentials, "expiry"},
		{"unknown-device", func() explorer.Config {
			c := b.config()
			c.DeviceName = "ghost"
			return c
		}, []explorer.Option{explorer.WithPlainTCP()}, explorer.ErrNotAuthorized, "device exists"},
		{"untrusted-ca", func() explorer.Config {
			c := b.config()
			c.Broker = b.TLSURL()
			return c
		}, nil, explorer.ErrTLS, "certificate"},
		{"wrong-hostname", func() explorer.Config {
			c := b.config()
			c.Broker = "tls://localhost:" + strings.Split(b.tlsAddr, ":")[1]
			return c
		}, []explorer.Option{explorer.WithRootCAs(b.caPool)}, explorer.ErrTLS, "localhost"},
		{"refused", func() explorer.Config {
			c := b.config()
			c.Broker = "tcp://" + refusedAddr
			return c
		}, []explorer.Option{explorer.WithPlainTCP()}, explorer.ErrConnectionRefused, refusedAddr},
		{"tcp-without-option", func() explorer.Config { return b.config() }, nil, explorer.ErrInvalidConfig, "WithPlainTCP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := explorer.Dial(testCtx(t), tt.cfg(), tt.opts...)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("err = %v\nwant errors.Is %v and text containing %q", err, tt.want, tt.detail)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestDialHonoursContext: a broker that accepts TCP but never answers must not hold Dial
// past ctx (the connect timeout is set far longer than the test's patience).
func TestDialHonoursContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	defer func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	}()
	for _, scheme := range []string{"tcp://", "tls://"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := explorer.Config{ProductID: testPID, DeviceName: testDN, DeviceSecret: testSecret, Broker: scheme + l.Addr().String()}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-accepted // the socket is open; now give up
				cancel()
			}()
			_, err := explorer.Dial(ctx, cfg, explorer.WithPlainTCP(), explorer.WithConnectTimeout(time.Hour))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
	}
	// A deadline reports ErrTimeout as well as the ctx error.
	cfg := explorer.Config{ProductID: testPID, DeviceName: testDN, DeviceSecret: testSecret, Broker: "tcp://" + l.Addr().String()}
	_, err = explorer.Dial(context.Background(), cfg, explorer.WithPlainTCP(), explorer.WithConnectTimeout(200*time.Millisecond))
	if !errors.Is(err, explorer.ErrTimeout) {
		t.Fatalf("connect timeout: err = %v, want ErrTimeout", err)
	}
}

func TestPublishSubscribeRoundTrip(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b)
	ctx := testCtx(t)
	ch := make(chan explorer.Message, 10)
	if err := c.Subscribe(ctx, "test/rt/+", 1, func(_ context.Context, m explorer.Message) { ch <- m }); err != nil {
		t.Fatal(err)
	}
	for qos := byte(0); qos <= 1; qos++ {
		payload := []byte{'q', '0' + qos}
		if err := c.Publish(ctx, "test/rt/a", qos, payload); err != nil {
			t.Fatal(err)
		}
		m := recv(t, ch)
		if m.Topic != "test/rt/a" || string(m.Payload) != string(payload) {
			t.Fatalf("got %+v", m)
		}
	}
	// Cloud -> device on the device's own downlink topic.
	down := "$thing/down/property/" + testPID + "/" + testDN
	if err := c.Subscribe(ctx, down, 0, func(_ context.Context, m explorer.Message) { ch <- m }); err != nil {
		t.Fatal(err)
	}
	b.publish(down, `{"method":"control"}`, 0)
	if m := recv(t, ch); m.Topic != down {
		t.Fatalf("got %+v", m)
	}
	// After Unsubscribe nothing more arrives for that filter.
	if err := c.Unsubscribe(ctx, "test/rt/+"); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "test/rt/a", 1, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	b.publish(down, `{"method":"marker"}`, 0) // ordered after the publish above
	if m := recv(t, ch); m.Topic != down {
		t.Fatalf("message after Unsubscribe: %+v", m)
	}
}

func TestSubscribeRefused(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b)
	err := c.Subscribe(testCtx(t), "$thing/down/property/OTHERPRODU/x", 0, func(context.Context, explorer.Message) {})
	if !errors.Is(err, explorer.ErrNotAuthorized) || !strings.Contains(err.Error(), "OTHERPRODU") {
		t.Fatalf("err = %v", err)
	}
}

func TestPublishValidation(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b)
	ctx := testCtx(t)
	tests := []struct {
		topic   string
		qos     byte
		payload []byte
		want    error
		detail  string
	}{
		{"test/a", 2, nil, explorer.ErrInvalidQoS, `publish "test/a": invalid QoS`},
		{"test/a", 0, make([]byte, explorer.MaxPayloadSize+1), explorer.ErrPayloadTooLarge, "16385 bytes"},
		{"test/+", 0, nil, explorer.ErrInvalidTopic, `publish "test/+"`},
		{strings.Repeat("x/", 10) + "y", 0, nil, explorer.ErrInvalidTopic, "11 levels"},
		{strings.Repeat("x", 256), 0, nil, explorer.ErrInvalidTopic, "256 bytes"},
	}
	for _, tt := range tests {
		err := c.Publish(ctx, tt.topic, tt.qos, tt.payload)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
			t.Errorf("Publish(%.20q, qos %d, %d bytes) = %v, want %v with %q", tt.topic, tt.qos, len(tt.payload), err, tt.want, tt.detail)
		}
	}
	if err := c.Publish(ctx, "test/a", 1, make([]byte, explorer.MaxPayloadSize)); err != nil {
		t.Errorf("payload at the limit: %v", err)
	}
	if err := c.Subscribe(ctx, "test/#/x", 0, func(context.Context, explorer.Message) {}); !errors.Is(err, explorer.ErrInvalidTopic) {
		t.Errorf("bad filter: %v", err)
	}
	if err := c.Subscribe(ctx, "test/x", 2, func(context.Context, explorer.Message) {}); !errors.Is(err, explorer.ErrInvalidQoS) {
		t.Errorf("qos 2 subscribe: %v", err)
	}
	if err := c.Subscribe(ctx, "test/x", 0, nil); err == nil {
		t.Errorf("nil handler accepted")
	}
}

func TestServerTime(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b)
	before := time.Now().Add(-time.Second)
	st, err := c.ServerTime(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Before(before) || st.After(time.Now().Add(time.Second)) {
		t.Fatalf("server time %v not near now", st)
	}
	if _, err := c.ServerTime(testCtx(t)); err != nil { // subscription reused
		t.Fatal(err)
	}
}

// withClockSkew shifts the clock used for signing.
func withClockSkew(d time.Duration) explorer.Option {
	return explorer.WithClock(func() time.Time { return time.Now().Add(d) })
}

var _ = tls.VersionTLS12
