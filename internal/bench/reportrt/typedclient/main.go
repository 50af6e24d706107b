// Command typedclient is the measured side of the report round-trip benchmark
// (docs/BENCHMARKS.md, "Typed report round trip against raw paho"): the code generated from
// schemas/light.json (examples/light/light) on an explorer.Conn, reporting the same four
// property values with Device.Report (checked by the generated Validate, encoded by the
// generated AppendJSON, reply correlated by runtime/thing).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/internal/bench/reportrt/internal/measure"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

type handler struct{}

func (handler) Control(context.Context, light.ControlProperties) error { return nil }
func (handler) LightOn(context.Context, light.LightOnInput) (light.LightOnOutput, error) {
	return light.LightOnOutput{}, nil
}

func main() {
	f := measure.Parse()
	ctx := context.Background()
	cfg := explorer.Config{ProductID: measure.ProductID, DeviceName: f.Device,
		DeviceSecret: "c2VjcmV0LWtleS1mb3ItYmVuY2g=", Broker: f.Broker}
	conn, err := explorer.Dial(ctx, cfg, explorer.WithPlainTCP())
	if err != nil {
		fmt.Fprintln(os.Stderr, "typedclient:", err)
		os.Exit(1)
	}
	defer conn.Close()
	dev, err := light.New(conn, handler{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "typedclient:", err)
		os.Exit(1)
	}
	defer dev.Close(ctx)
	p := light.Properties{
		PowerSwitch: tplwire.Ptr[tplwire.Bool](true),
		Color:       tplwire.Ptr(light.ColorBlue),
		Brightness:  tplwire.Ptr[int64](80),
		Name:        tplwire.Ptr("hall"),
	}
	measure.Run("typed", f, func() error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return dev.Report(ctx, p)
	})
}
