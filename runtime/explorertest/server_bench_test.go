package explorertest

import (
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Baseline: a bare mochi broker (allow-all auth, no ACL, no platform hooks) on plain TCP, so the
// platform's cost shows as a ratio against the same broker without it.
func bareBroker(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := m.AddHook(new(allowAll), nil); err != nil {
		b.Fatal(err)
	}
	if err := m.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		b.Fatal(err)
	}
	if err := m.Serve(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return "tcp://" + addr
}

// allowAll lets every client connect and use every topic (mochi's own allow hook pulls in
// dependencies this module does not carry).
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }
func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

func benchConnect(b *testing.B, l coreLogin) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := l.connect(b)
		if err != nil {
			b.Fatal(err)
		}
		c.Disconnect(0)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "connects/s")
}

// BenchmarkConnect measures CONNECT + authentication + CONNACK + DISCONNECT with paho.
func BenchmarkConnect(b *testing.B) {
	b.Run("baseline-bare-mochi", func(b *testing.B) {
		l := coreLogin{broker: bareBroker(b), clientID: "PID0000001dev1", user: "u", pass: "p", protocol: 4}
		benchConnect(b, l)
	})
	b.Run("platform-tcp-hmacsha256", func(b *testing.B) {
		s := coreServer(b)
		benchConnect(b, coreDevice(b, s, "PID0000001", "dev1"))
	})
	b.Run("platform-tls-hmacsha256", func(b *testing.B) {
		s := coreServer(b)
		l := coreDevice(b, s, "PID0000001", "dev1")
		l.broker, l.tls = s.TLSBrokerURL(), &tls.Config{RootCAs: s.RootCAs(), ClientSessionCache: tls.NewLRUClientSessionCache(8)}
		benchConnect(b, l)
	})
	b.Run("platform-tls-certificate", func(b *testing.B) {
		s := coreServer(b)
		if _, err := s.AddDevice("PID0000001", "cert1", WithCertificate()); err != nil {
			b.Fatal(err)
		}
		cfg := s.DeviceConfig("PID0000001", "cert1")
		l := coreLogin{broker: s.TLSBrokerURL(), clientID: "PID0000001cert1", user: "PID0000001cert1;12010126;abcde;4102444800", pass: "x", protocol: 4,
			tls: &tls.Config{RootCAs: s.RootCAs(), Certificates: []tls.Certificate{*cfg.Certificate}}}
		benchConnect(b, l)
	})
}

// benchWindow bounds the messages in flight so QoS 0 bursts measure steady throughput instead
// of overflowing the broker's per-client queue.
const benchWindow = 256

// benchEcho publishes b.N messages on topic and waits until all come back through the broker
// to the same client's subscription (device -> broker -> device).
func benchEcho(b *testing.B, c paho.Client, topic string, qos byte, size int) {
	slots := make(chan struct{}, benchWindow)
	got := make(chan struct{}, benchWindow)
	coreWait(b, c.Subscribe(topic, qos, func(paho.Client, paho.Message) {
		<-slots
		got <- struct{}{}
	}), "subscribe")
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			select {
			case <-got:
			case <-time.After(coreTimeout):
				b.Errorf("message %d of %d not delivered", i, b.N)
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		select {
		case slots <- struct{}{}:
		case <-done:
			b.FailNow()
		}
		c.Publish(topic, qos, false, payload)
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	coreWait(b, c.Unsubscribe(topic), "unsubscribe")
}

// BenchmarkThroughput measures messages through the broker, device to itself via a custom topic.
func BenchmarkThroughput(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		name := map[byte]string{0: "qos0", 1: "qos1"}[qos]
		b.Run("baseline-bare-mochi-"+name, func(b *testing.B) {
			l := coreLogin{broker: bareBroker(b), clientID: "PID0000001dev1", user: "u", pass: "p", protocol: 4}
			benchEcho(b, l.mustConnect(b), "PID0000001/dev1/data", qos, 256)
		})
		b.Run("platform-tcp-"+name, func(b *testing.B) {
			s := coreServer(b)
			benchEcho(b, coreDevice(b, s, "PID0000001", "dev1").mustConnect(b), "PID0000001/dev1/data", qos, 256)
		})
		b.Run("platform-tls-"+name, func(b *testing.B) {
			s := coreServer(b)
			l := coreDevice(b, s, "PID0000001", "dev1")
			l.broker, l.tls = s.TLSBrokerURL(), &tls.Config{RootCAs: s.RootCAs()}
			benchEcho(b, l.mustConnect(b), "PID0000001/dev1/data", qos, 256)
		})
	}
}

// BenchmarkUplinkRouter measures device publishes delivered to a feature's uplink handler.
func BenchmarkUplinkRouter(b *testing.B) {
	s := coreServer(b)
	slots := make(chan struct{}, benchWindow)
	got := make(chan struct{}, benchWindow)
	s.handleUplink("$thing/up/event/", func(uplink) {
		<-slots
		got <- struct{}{}
	})
	c := coreDevice(b, s, "PID0000001", "dev1").mustConnect(b)
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			select {
			case <-got:
			case <-time.After(coreTimeout):
				b.Errorf("message %d of %d not delivered", i, b.N)
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		select {
		case slots <- struct{}{}:
		case <-done:
			b.FailNow()
		}
		c.Publish("$thing/up/event/PID0000001/dev1", 0, false, `{"method":"event_post"}`)
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
