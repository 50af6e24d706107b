package explorertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// Helpers for the platform-core tests (prefix "core" to stay clear of feature tests' helpers).

const coreTimeout = 15 * time.Second

func coreServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func coreCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), coreTimeout)
	t.Cleanup(cancel)
	return ctx
}

// coreLogin is one CONNECT's parameters.
type coreLogin struct {
	broker   string
	clientID string
	user     string
	pass     string
	protocol uint // 3 = MQTT 3.1 (MQIsdp), 4 = 3.1.1
	tls      *tls.Config
	will     bool
	lost     chan error // receives the connection-lost error
}

// coreSign returns a login for a key device with the given signing choices.
func coreSign(t testing.TB, s *Server, pid, dn, secret, appID string, expiry int64, m explorer.SignMethod) coreLogin {
	t.Helper()
	user := explorer.Username(pid, dn, appID, "a1B2c", expiry)
	pass, err := explorer.Password(secret, user, m)
	if err != nil {
		t.Fatalf("Password: %v", err)
	}
	return coreLogin{broker: s.BrokerURL(), clientID: pid + dn, user: user, pass: pass, protocol: 4}
}

// coreFuture is a signature expiry valid for any clock the tests use.
func coreFuture() int64 { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix() }

// coreDevice adds a key device and returns a valid plain-TCP login for it.
func coreDevice(t testing.TB, s *Server, pid, dn string) coreLogin {
	t.Helper()
	secret, err := s.AddDevice(pid, dn)
	if err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	return coreSign(t, s, pid, dn, secret, sdkAppIDDoc, coreFuture(), explorer.HMACSHA256)
}

// connect dials with paho, without automatic reconnect; the client is closed at cleanup.
func (l coreLogin) connect(t testing.TB) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(l.broker).SetClientID(l.clientID).
		SetUsername(l.user).SetPassword(l.pass).SetProtocolVersion(l.protocol).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(coreTimeout).SetWriteTimeout(coreTimeout).SetKeepAlive(60 * time.Second).
		SetOrderMatters(true)
	if l.tls != nil {
		o.SetTLSConfig(l.tls)
	}
	if l.will {
		o.SetWill(fmt.Sprintf("%s/will", l.clientID), "bye", 0, false)
	}
	if l.lost != nil {
		lost := l.lost
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(coreTimeout) {
		c.Disconnect(0)
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func (l coreLogin) mustConnect(t testing.TB) paho.Client {
	t.Helper()
	c, err := l.connect(t)
	if err != nil {
		t.Fatalf("connect %s: %v", l.clientID, err)
	}
	return c
}

func coreWait(t testing.TB, tok paho.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(coreTimeout) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// coreSubscribe subscribes and returns the granted code and a channel of received messages.
func coreSubscribe(t testing.TB, c paho.Client, filter string, qos byte) (byte, chan paho.Message) {
	t.Helper()
	ch := make(chan paho.Message, 256)
	tok := c.Subscribe(filter, qos, func(_ paho.Client, m paho.Message) { ch <- m })
	coreWait(t, tok, "subscribe "+filter)
	return tok.(*paho.SubscribeToken).Result()[filter], ch
}

func coreRecv(t testing.TB, ch <-chan paho.Message, what string) paho.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(coreTimeout):
		t.Fatalf("%s: nothing received", what)
		return nil
	}
}

func coreLost(t testing.TB, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(coreTimeout):
		t.Fatalf("%s: connection was not closed by the server", what)
		return nil
	}
}

// coreStates records device-state notifications.
type coreStates struct {
	ch chan string
}

func watchStates(s *Server) *coreStates {
	w := &coreStates{ch: make(chan string, 64)}
	s.onDeviceState(func(id DeviceID, online bool) { w.ch <- id.String() + " " + strconv.FormatBool(online) })
	return w
}

func (w *coreStates) expect(t testing.TB, want string) {
	t.Helper()
	select {
	case got := <-w.ch:
		if got != want {
			t.Fatalf("state event %q, want %q", got, want)
		}
	case <-time.After(coreTimeout):
		t.Fatalf("no state event, want %q", want)
	}
}

func TestServerAddressesAndHTTP(t *testing.T) {
	s := coreServer(t)
	s.mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("pong")) })
	for _, c := range []struct {
		url    string
		client *http.Client
	}{
		{s.HTTPURL(), http.DefaultClient},
		{s.HTTPSURL(), &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.RootCAs()}}}},
	} {
		resp, err := c.client.Get(c.url + "/ping")
		if err != nil {
			t.Fatalf("GET %s: %v", c.url, err)
		}
		var buf [8]byte
		n, _ := resp.Body.Read(buf[:])
		resp.Body.Close()
		if resp.StatusCode != 200 || string(buf[:n]) != "pong" {
			t.Fatalf("GET %s/ping: %d %q", c.url, resp.StatusCode, buf[:n])
		}
		c.client.CloseIdleConnections()
	}
	for name, u := range map[string]string{"BrokerURL": s.BrokerURL(), "TLSBrokerURL": s.TLSBrokerURL()} {
		if len(u) < len("tcp://127.0.0.1:1") || u[:6] != map[string]string{"BrokerURL": "tcp://", "TLSBrokerURL": "tls://"}[name] {
			t.Errorf("%s = %q", name, u)
		}
	}
	if len(s.CACertPEM()) == 0 {
		t.Error("CACertPEM is empty")
	}
}

func TestNewServerBadOptions(t *testing.T) {
	for name, o := range map[string]Option{
		"empty addr": WithMQTTAddr(""),
		"nil logger": WithLogger(nil),
		"nil clock":  WithClock(nil),
	} {
		if _, err := NewServer(o); err == nil {
			t.Errorf("%s: NewServer succeeded", name)
		}
	}
	// A port already in use is reported, naming the listener.
	s := coreServer(t)
	_, err := NewServer(WithMQTTAddr(s.BrokerURL()[len("tcp://"):]))
	if err == nil {
		t.Fatal("NewServer on a busy port succeeded")
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish("a/b/c", nil, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := s.Restart(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Restart after Close: %v, want ErrClosed", err)
	}
}

// explorerDial connects a device with the runtime/explorer client, the way device code does.
func explorerDial(ctx context.Context, s *Server, pid, dn string, opts ...explorer.Option) (*explorer.Conn, error) {
	return explorer.Dial(ctx, s.DeviceConfig(pid, dn), append(s.DialOptions(), opts...)...)
}

func timeAfterCore() <-chan time.Time { return time.After(coreTimeout) }
