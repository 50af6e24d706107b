package explorer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// Benchmarks compare Conn with a bare paho client on the same in-process mochi broker, in
// the same run. See docs/BENCHMARKS.md (device connection).

// cpuMeter reports the process's CPU time (user + system) per operation as "cpu-ns/op".
// On a shared, noisy machine wall time per op swings with the neighbours' load; CPU time
// counts only what this process burnt (client and in-process broker alike, the same broker
// for both variants). Start it right after ResetTimer; it reports when the benchmark ends.
type cpuMeter struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

func (m cpuMeter) stop(b *testing.B) {
	b.ReportMetric(float64(processCPU()-m.start)/float64(b.N), "cpu-ns/op")
}

func benchConn(b *testing.B, tb *testBroker) *explorer.Conn {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := explorer.Dial(context.Background(), tb.config(), explorer.WithPlainTCP(), explorer.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func benchPaho(b *testing.B, tb *testBroker) paho.Client {
	const dn = "rawdev"
	tb.mu.Lock()
	tb.devices[testPID+dn] = testSecret
	tb.mu.Unlock()
	user := explorer.Username(testPID, dn, explorer.SDKAppIDDoc, "bench", time.Now().Add(time.Hour).Unix())
	pw, _ := explorer.Password(testSecret, user, explorer.HMACSHA256)
	o := paho.NewClientOptions().AddBroker(tb.URL()).SetClientID(testPID + dn).
		SetUsername(user).SetPassword(pw).SetOrderMatters(true).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(0) })
	return c
}

// benchBroker is a test broker that does not record uplinks.
func benchBroker(b *testing.B) *testBroker {
	tb := newTestBroker(b)
	tb.stop()
	tb.noRecord = true
	tb.start()
	return tb
}

// BenchmarkRoundTrip: publish QoS0 to a topic the client subscribes to and wait for the
// handler to get it.
func BenchmarkRoundTrip(b *testing.B) {
	payload := make([]byte, 128)
	b.Run("explorer", func(b *testing.B) {
		tb := benchBroker(b)
		c := benchConn(b, tb)
		got := make(chan struct{}, 1)
		ctx := context.Background()
		if err := c.Subscribe(ctx, "test/rt", 0, func(context.Context, explorer.Message) { got <- struct{}{} }); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		defer cpu.stop(b)
		for i := 0; i < b.N; i++ {
			if err := c.Publish(ctx, "test/rt", 0, payload); err != nil {
				b.Fatal(err)
			}
			<-got
		}
	})
	b.Run("paho", func(b *testing.B) {
		tb := benchBroker(b)
		c := benchPaho(b, tb)
		got := make(chan struct{}, 1)
		if tok := c.Subscribe("test/rt", 0, func(paho.Client, paho.Message) { got <- struct{}{} }); tok.Wait() && tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		defer cpu.stop(b)
		for i := 0; i < b.N; i++ {
			if tok := c.Publish("test/rt", 0, false, payload); tok.Wait() && tok.Error() != nil {
				b.Fatal(tok.Error())
			}
			<-got
		}
	})
}

// BenchmarkPublishQoS1: QoS1 publishes waiting for PUBACK, from 8 goroutines per CPU.
func BenchmarkPublishQoS1(b *testing.B) {
	payload := make([]byte, 128)
	b.Run("explorer", func(b *testing.B) {
		tb := benchBroker(b)
		c := benchConn(b, tb)
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(8)
		b.ResetTimer()
		cpu := startCPU()
		defer cpu.stop(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Publish(ctx, "test/q1", 1, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("paho", func(b *testing.B) {
		tb := benchBroker(b)
		c := benchPaho(b, tb)
		b.ReportAllocs()
		b.SetParallelism(8)
		b.ResetTimer()
		cpu := startCPU()
		defer cpu.stop(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if tok := c.Publish("test/q1", 1, false, payload); tok.Wait() && tok.Error() != nil {
					b.Error(tok.Error())
					return
				}
			}
		})
	})
}

// manySubs is how many subscriptions a gateway with 1500 sub-devices holds (4 each).
const manySubs = 6000

// BenchmarkRoundTripManySubs is BenchmarkRoundTrip on a connection that also holds 5999
// other exact subscriptions (a gateway's sub-device topics), each with its own handler.
func BenchmarkRoundTripManySubs(b *testing.B) {
	payload := make([]byte, 128)
	target := fmt.Sprintf("test/many/%04d", manySubs-1)
	b.Run("explorer", func(b *testing.B) {
		tb := benchBroker(b)
		c := benchConn(b, tb)
		ctx := context.Background()
		got := make(chan struct{}, 1)
		for i := range manySubs - 1 {
			if err := c.Subscribe(ctx, fmt.Sprintf("test/many/%04d", i), 0, func(context.Context, explorer.Message) {}); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Subscribe(ctx, target, 0, func(context.Context, explorer.Message) { got <- struct{}{} }); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		defer cpu.stop(b)
		for i := 0; i < b.N; i++ {
			if err := c.Publish(ctx, target, 0, payload); err != nil {
				b.Fatal(err)
			}
			<-got
		}
	})
	b.Run("paho", func(b *testing.B) {
		tb := benchBroker(b)
		c := benchPaho(b, tb)
		got := make(chan struct{}, 1)
		for i := range manySubs - 1 {
			if tok := c.Subscribe(fmt.Sprintf("test/many/%04d", i), 0, func(paho.Client, paho.Message) {}); tok.Wait() && tok.Error() != nil {
				b.Fatal(tok.Error())
			}
		}
		if tok := c.Subscribe(target, 0, func(paho.Client, paho.Message) { got <- struct{}{} }); tok.Wait() && tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		defer cpu.stop(b)
		for i := 0; i < b.N; i++ {
			if tok := c.Publish(target, 0, false, payload); tok.Wait() && tok.Error() != nil {
				b.Fatal(tok.Error())
			}
			<-got
		}
	})
}
