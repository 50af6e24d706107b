package explorer_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// The external-broker suite runs against a real, independent MQTT broker (CI starts a
// Debian mosquitto with anonymous access) when TPLGEN_EXTERNAL_BROKER=tcp://host:port is set.
const externalEnv = "TPLGEN_EXTERNAL_BROKER"

func externalBroker(t *testing.T) string {
	t.Helper()
	addr := os.Getenv(externalEnv)
	if addr == "" {
		t.Skipf("%s not set; set it to tcp://host:port of an MQTT broker without auth (e.g. mosquitto) to run this test", externalEnv)
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		t.Fatalf("%s=%q is not tcp://host:port", externalEnv, addr)
	}
	return u.Host
}

// externalConfig uses a unique device name so parallel runs on one broker do not collide;
// the broker does not check the signature.
func externalConfig(broker string) explorer.Config {
	return explorer.Config{
		ProductID:    "EXTTEST001",
		DeviceName:   fmt.Sprintf("dev%d", time.Now().UnixNano()),
		DeviceSecret: testSecret,
		Broker:       "tcp://" + broker,
	}
}

func TestExternalRoundTrip(t *testing.T) {
	broker := externalBroker(t)
	cfg := externalConfig(broker)
	c, err := explorer.Dial(testCtx(t), cfg, explorer.WithPlainTCP())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	topic := "$thing/down/property/" + cfg.ProductID + "/" + cfg.DeviceName
	got := make(chan explorer.Message, 4)
	if err := c.Subscribe(ctx, topic, 1, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	for qos := byte(0); qos <= 1; qos++ {
		want := fmt.Sprintf(`{"qos":%d}`, qos)
		if err := c.Publish(ctx, topic, qos, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, got); string(m.Payload) != want || m.Topic != topic {
			t.Fatalf("got %+v, want %s", m, want)
		}
	}
}

// TestExternalReconnect cuts the TCP path to the external broker with a proxy: messages
// enqueued meanwhile (Enqueue: Publish would wait for the link) are flushed in order, and the
// subscription is restored.
func TestExternalReconnect(t *testing.T) {
	broker := externalBroker(t)
	p := newProxy(t, broker)
	cfg := externalConfig(broker)
	cfg.Broker = "tcp://" + p.addr
	lost := make(chan error, 4)
	c, err := explorer.Dial(testCtx(t), cfg, explorer.WithPlainTCP(),
		explorer.WithReconnectBackoff(20*time.Millisecond, 200*time.Millisecond),
		explorer.WithOnConnectionLost(func(err error) { lost <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	topic := "test/" + cfg.DeviceName
	got := make(chan explorer.Message, 10)
	if err := c.Subscribe(ctx, topic, 1, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	reconnected := make(chan struct{}, 1)
	c.OnConnect(func(context.Context) { reconnected <- struct{}{} })

	p.cut()
	waitChan(t, lost, "connection lost")
	for i := range 3 {
		if err := c.Enqueue(topic, 0, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	p.restore()
	waitChan(t, reconnected, "reconnect")
	// The restored subscription receives the flushed messages in order.
	for i := range 3 {
		if m := recv(t, got); string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q", i, m.Payload)
		}
	}
	if err := c.Publish(ctx, topic, 1, []byte("live")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); string(m.Payload) != "live" {
		t.Fatalf("got %q", m.Payload)
	}
}

// proxy forwards TCP to a target and can cut all traffic and later accept again on the
// same address: a network outage without touching the broker.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer p.wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every forwarded connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *proxy) restore() {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(l)
}
