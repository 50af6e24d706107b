package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/thing"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// Report round trip (report -> platform -> report_reply) through the generated Device, the
// untyped thing.Thing, and a raw baseline (a pre-formatted payload published on the
// connection, reply decoded and matched by clientToken by hand), all against the same
// in-process platform in the same run. See docs/BENCHMARKS.md (data template).

type benchEnv struct {
	srv *explorertest.Server
}

func newBenchEnv(b *testing.B) *benchEnv {
	srv, err := explorertest.NewServer(explorertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	if err := srv.AddProduct(light.Template()); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{srv: srv}
}

func (e *benchEnv) dial(b *testing.B, dn string) *explorer.Conn {
	if _, err := e.srv.AddDevice(light.ProductID, dn); err != nil {
		b.Fatal(err)
	}
	conn, err := explorer.Dial(context.Background(), e.srv.DeviceConfig(light.ProductID, dn), e.srv.DialOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

type nopHandler struct{}

func (nopHandler) Control(context.Context, light.ControlProperties) error { return nil }
func (nopHandler) LightOn(context.Context, light.LightOnInput) (light.LightOnOutput, error) {
	return light.LightOnOutput{}, nil
}

// rawClient correlates report replies by clientToken with a map, the minimum any client
// that waits for replies needs.
type rawClient struct {
	conn    *explorer.Conn
	topic   string
	seq     atomic.Uint64
	mu      sync.Mutex
	waiters map[string]chan int
}

func newRawClient(b *testing.B, conn *explorer.Conn, dn string) *rawClient {
	c := &rawClient{conn: conn, topic: "$thing/up/property/" + light.ProductID + "/" + dn, waiters: map[string]chan int{}}
	err := conn.Subscribe(context.Background(), "$thing/down/property/"+light.ProductID+"/"+dn, 0,
		func(_ context.Context, m explorer.Message) {
			var r struct {
				ClientToken string `json:"clientToken"`
				Code        int    `json:"code"`
			}
			if json.Unmarshal(m.Payload, &r) != nil {
				return
			}
			c.mu.Lock()
			ch := c.waiters[r.ClientToken]
			delete(c.waiters, r.ClientToken)
			c.mu.Unlock()
			if ch != nil {
				ch <- r.Code
			}
		})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func (c *rawClient) report(ctx context.Context, brightness int) error {
	token := light.ProductID + "-" + strconv.FormatUint(c.seq.Add(1), 10)
	payload := fmt.Appendf(nil, `{"method":"report","clientToken":%q,"timestamp":%d,"params":{"power_switch":1,"brightness":%d}}`,
		token, time.Now().UnixMilli(), brightness)
	ch := make(chan int, 1)
	c.mu.Lock()
	c.waiters[token] = ch
	c.mu.Unlock()
	if err := c.conn.Publish(ctx, c.topic, 0, payload); err != nil {
		return err
	}
	select {
	case code := <-ch:
		if code != 0 {
			return fmt.Errorf("code %d", code)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func BenchmarkReportRoundTrip(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, report func(i int) error) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := report(i % 100); err != nil {
				b.Fatal(err)
			}
		}
	}
	runParallel := func(b *testing.B, report func(i int) error) {
		b.ReportAllocs()
		b.ResetTimer()
		var n atomic.Int64
		b.SetParallelism(8) // 8 goroutines per CPU: requests in flight at once
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := report(int(n.Add(1) % 100)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for _, mode := range []struct {
		name string
		run  func(*testing.B, func(int) error)
	}{{"seq", run}, {"parallel", runParallel}} {
		b.Run("raw/"+mode.name, func(b *testing.B) {
			e := newBenchEnv(b)
			c := newRawClient(b, e.dial(b, "raw"), "raw")
			mode.run(b, func(i int) error { return c.report(ctx, i) })
		})
		b.Run("thing/"+mode.name, func(b *testing.B) {
			e := newBenchEnv(b)
			th, err := thing.New(e.dial(b, "untyped"), light.Template(), thing.WithResyncOnConnect(false))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { th.Close(ctx) })
			mode.run(b, func(i int) error {
				return th.Report(ctx, map[string]any{"power_switch": 1, "brightness": i})
			})
		})
		b.Run("typed/"+mode.name, func(b *testing.B) {
			e := newBenchEnv(b)
			dev, err := light.New(e.dial(b, "typed"), nopHandler{}, thing.WithResyncOnConnect(false))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { dev.Close(ctx) })
			on := tplwire.Ptr[tplwire.Bool](true)
			mode.run(b, func(i int) error {
				return dev.Report(ctx, light.Properties{PowerSwitch: on, Brightness: tplwire.Ptr(int64(i))})
			})
		})
	}
}
