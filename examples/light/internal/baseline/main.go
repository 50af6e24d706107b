// Command baseline is the whole-process baseline for examples/light's measurements
// (docs/BENCHMARKS.md (data template)): it starts the same in-process platform, connects the same
// device and does one raw report round trip, with neither runtime/thing nor generated code.
// The difference to the light scenario is what the data-template layer costs.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const dn = "light-1"
	pid := light.ProductID
	srv, err := explorertest.NewServer(explorertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer srv.Close()
	// light.Template only parses the embedded template; the platform needs it to answer.
	if err := srv.AddProduct(light.Template()); err != nil {
		return err
	}
	if _, err := srv.AddDevice(pid, dn); err != nil {
		return err
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(pid, dn), srv.DialOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()
	reply := make(chan []byte, 1)
	if err := conn.Subscribe(ctx, "$thing/down/property/"+pid+"/"+dn, 0, func(_ context.Context, m explorer.Message) {
		reply <- m.Payload
	}); err != nil {
		return err
	}
	payload := fmt.Appendf(nil, `{"method":"report","clientToken":"%s-0","timestamp":%d,"params":{"brightness":50}}`, pid, time.Now().UnixMilli())
	if err := conn.Publish(ctx, "$thing/up/property/"+pid+"/"+dn, 0, payload); err != nil {
		return err
	}
	select {
	case r := <-reply:
		fmt.Printf("%s\n", r)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
