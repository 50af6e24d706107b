package explorertest

import (
	"context"
	"crypto/tls"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

const timeRequest = `{"type":"get","resource":["time"]}`

func TestDropConnections(t *testing.T) {
	s := coreServer(t)
	states := watchStates(s)
	l := coreDevice(t, s, "PID0000001", "dev1")
	l.lost = make(chan error, 1)
	tlsLogin := coreDevice(t, s, "PID0000001", "dev2")
	tlsLogin.broker, tlsLogin.tls = s.TLSBrokerURL(), &tls.Config{RootCAs: s.RootCAs()}
	tlsLogin.lost = make(chan error, 1)
	l.mustConnect(t)
	states.expect(t, "PID0000001/dev1 true")
	tlsLogin.mustConnect(t)
	states.expect(t, "PID0000001/dev2 true")

	s.DropConnections()
	coreLost(t, l.lost, "plain connection")
	coreLost(t, tlsLogin.lost, "TLS connection")
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		got[coreRecvT(t, states.ch)] = true
	}
	if !got["PID0000001/dev1 false"] || !got["PID0000001/dev2 false"] {
		t.Fatalf("offline events %v", got)
	}
	// Devices can come back.
	c := l.mustConnect(t)
	states.expect(t, "PID0000001/dev1 true")
	_, ch := coreSubscribe(t, c, "$sys/operation/result/PID0000001/dev1", 0)
	coreWait(t, c.Publish("$sys/operation/PID0000001/dev1", 0, false, timeRequest), "publish")
	coreRecv(t, ch, "time reply after reconnect")
}

func TestRestartKeepsRegistryAndPorts(t *testing.T) {
	s := coreServer(t)
	if _, err := s.AddDevice("PID0000001", "dev1"); err != nil {
		t.Fatal(err)
	}
	urls := []string{s.BrokerURL(), s.TLSBrokerURL(), s.HTTPURL(), s.HTTPSURL()}
	ctx := coreCtx(t)
	var connects atomic.Int32
	reconnected := make(chan struct{}, 4)
	conn, err := explorerDial(ctx, s, "PID0000001", "dev1", explorer.WithOnConnect(func(context.Context) {
		if connects.Add(1) > 1 {
			reconnected <- struct{}{}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan explorer.Message, 4)
	if err := conn.Subscribe(ctx, "PID0000001/dev1/cmd", 1, func(_ context.Context, m explorer.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 2; i++ { // twice: the second restart finds the ports of the first
		if err := s.Restart(ctx); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if now := []string{s.BrokerURL(), s.TLSBrokerURL(), s.HTTPURL(), s.HTTPSURL()}; strings.Join(now, " ") != strings.Join(urls, " ") {
			t.Fatalf("addresses changed: %v -> %v", urls, now)
		}
		coreRecvT(t, reconnected)
	}
	if _, ok := s.Device("PID0000001", "dev1"); !ok {
		t.Fatal("registry lost")
	}
	// The explorer client restored its subscription; the cloud reaches it again.
	if err := s.Publish("PID0000001/dev1/cmd", []byte("after restart"), 1); err != nil {
		t.Fatal(err)
	}
	if m := coreRecvT(t, got); string(m.Payload) != "after restart" {
		t.Fatalf("got %q", m.Payload)
	}
	if _, err := conn.ServerTime(ctx); err != nil {
		t.Fatalf("time service after restart: %v", err)
	}
}

func TestLatency(t *testing.T) {
	s := coreServer(t)
	l := coreDevice(t, s, "PID0000001", "dev1")
	c := l.mustConnect(t) // connected before latency: the change applies to live connections
	_, ch := coreSubscribe(t, c, "$sys/operation/result/PID0000001/dev1", 0)

	const d = 150 * time.Millisecond
	s.SetLatency(d)
	start := time.Now()
	coreWait(t, c.Publish("$sys/operation/PID0000001/dev1", 0, false, timeRequest), "publish")
	coreRecv(t, ch, "time reply")
	// A request/reply crosses the delay twice. (A lower bound only; never an upper one.)
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip %v with latency %v, want at least %v", rtt, d, 2*d)
	}

	// New connections are delayed too (CONNECT in, CONNACK out) and still work.
	l2 := coreDevice(t, s, "PID0000001", "dev2")
	start = time.Now()
	c2 := l2.mustConnect(t)
	if el := time.Since(start); el < 2*d {
		t.Fatalf("connect took %v with latency %v", el, d)
	}
	_, ch2 := coreSubscribe(t, c2, "$sys/operation/result/PID0000001/dev2", 0)
	for i := 0; i < 5; i++ {
		coreWait(t, c2.Publish("$sys/operation/PID0000001/dev2", 0, false, timeRequest), "publish")
	}
	for i := 0; i < 5; i++ {
		coreRecv(t, ch2, "pipelined reply")
	}

	// Back to no latency: the connections keep working.
	s.SetLatency(0)
	coreWait(t, c.Publish("$sys/operation/PID0000001/dev1", 1, false, timeRequest), "publish")
	coreRecv(t, ch, "time reply without latency")
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		s, err := NewServer()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l := coreDevice(t, s, "PID0000001", "dev1")
		lt := coreDevice(t, s, "PID0000001", "dev2")
		lt.broker, lt.tls = s.TLSBrokerURL(), &tls.Config{RootCAs: s.RootCAs()}
		s.SetLatency(5 * time.Millisecond) // start the latency pumps and writers too
		c := l.mustConnect(t)
		ct := lt.mustConnect(t)
		_, ch := coreSubscribe(t, ct, "$sys/operation/result/PID0000001/dev2", 0)
		coreWait(t, ct.Publish("$sys/operation/PID0000001/dev2", 1, false, timeRequest), "publish")
		coreRecv(t, ch, "reply")
		coreWait(t, c.Publish("PID0000001/dev1/x", 1, false, "x"), "publish")
		// A client that never sends CONNECT must not hold Close up.
		raw, err := (&tls.Dialer{Config: &tls.Config{RootCAs: s.RootCAs()}}).DialContext(coreCtx(t), "tcp", strings.TrimPrefix(s.TLSBrokerURL(), "tls://"))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c.Disconnect(0)
		// ct is left connected: Close must disconnect it.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ct.Disconnect(0)
	}()
	deadline := time.Now().Add(coreTimeout)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // polling a count, not synchronising on timing
	}
}
