// Command gateway runs a gateway with three sub-devices of two products (a lamp and an air
// conditioner, typed code generated from schemas/subdev1.json and schemas/subdev2.json).
//
// With no flags it starts the in-process IoT Explorer platform and runs a scenario: bind,
// online, one report from each sub-device, a control from the cloud to one of them, describe,
// offline, unbind — printing what happened.
//
// With -product/-device/-secret (or TPLGEN_PRODUCT_ID, TPLGEN_DEVICE_NAME, TPLGEN_DEVICE_SECRET)
// and -subdevices FILE it connects to the real platform instead, binds and onlines the listed
// sub-devices, reports once for each and serves control until interrupted.
package main

//go:generate go run github.com/tplgen/tplgen/cmd/tplgen generate -package lamp -out lamp/lamp_gen.go ../../schemas/subdev1.json
//go:generate go run github.com/tplgen/tplgen/cmd/tplgen generate -package aircon -out aircon/aircon_gen.go ../../schemas/subdev2.json

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tplgen/tplgen/examples/gateway/aircon"
	"github.com/tplgen/tplgen/examples/gateway/lamp"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/thing"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

func main() {
	product := flag.String("product", os.Getenv("TPLGEN_PRODUCT_ID"), "gateway ProductID (real platform)")
	device := flag.String("device", os.Getenv("TPLGEN_DEVICE_NAME"), "gateway DeviceName (real platform)")
	secret := flag.String("secret", os.Getenv("TPLGEN_DEVICE_SECRET"), "gateway DeviceSecret (real platform)")
	region := flag.String("region", "china", "platform region: china, us-east, europe, ap-bangkok")
	subList := flag.String("subdevices", "", "JSON file listing the sub-devices (real platform)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *product == "" && *device == "" {
		err = emulated(ctx)
	} else {
		err = real(ctx, explorer.Config{ProductID: *product, DeviceName: *device, DeviceSecret: *secret, Region: *region}, *subList)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// lampHandler and airconHandler apply cloud control to a sub-device and print it.
type lampHandler struct{ name string }

func (h lampHandler) Control(_ context.Context, p lamp.ControlProperties) error {
	if p.Brightness != nil {
		fmt.Printf("  %s: control received: brightness -> %d\n", h.name, *p.Brightness)
	}
	if p.PowerSwitch != nil {
		fmt.Printf("  %s: control received: power -> %v\n", h.name, *p.PowerSwitch)
	}
	return nil
}

type airconHandler struct{ name string }

func (h airconHandler) Control(_ context.Context, p aircon.ControlProperties) error {
	if p.Temperature != nil {
		fmt.Printf("  %s: control received: temperature -> %.1f\n", h.name, *p.Temperature)
	}
	return nil
}

func emulated(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.AddProduct(lamp.Template()); err != nil {
		return err
	}
	if err := srv.AddProduct(aircon.Template()); err != nil {
		return err
	}
	const gwPID, gwDN = "GWDEMO0001", "gateway-1"
	if _, err := srv.AddDevice(gwPID, gwDN); err != nil {
		return err
	}
	var subs []gateway.SubDevice
	for _, d := range []gateway.Device{
		{ProductID: lamp.ProductID, DeviceName: "lamp-kitchen"},
		{ProductID: lamp.ProductID, DeviceName: "lamp-hall"},
		{ProductID: aircon.ProductID, DeviceName: "aircon-bedroom"},
	} {
		secret, err := srv.AddDevice(d.ProductID, d.DeviceName)
		if err != nil {
			return err
		}
		subs = append(subs, gateway.SubDevice{Device: d, DeviceSecret: secret})
	}
	fmt.Printf("platform: %s (gateway %s/%s, 3 sub-devices)\n", srv.TLSBrokerURL(), gwPID, gwDN)

	conn, err := explorer.Dial(ctx, srv.DeviceConfig(gwPID, gwDN), srv.DialOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Println("gateway connected")
	gw, err := gateway.New(ctx, conn)
	if err != nil {
		return err
	}
	defer gw.Close(context.Background())

	if err := run(ctx, gw, subs, func(d gateway.Device) error {
		// The cloud side: what the app would do through the console.
		reply, err := srv.SendControl(ctx, d.ProductID, d.DeviceName, map[string]any{"brightness": 80})
		if err != nil {
			return err
		}
		fmt.Printf("cloud: control_reply from %s: code %d\n", d, reply.Code)
		return nil
	}); err != nil {
		return err
	}
	for _, sd := range srv.SubDevices(gwPID, gwDN) {
		fmt.Printf("platform: %s still bound (online %v)\n", sd.ID, sd.Online)
	}
	fmt.Println("done")
	return nil
}

// run is the device side, the same against the emulator and the real platform.
func run(ctx context.Context, gw *gateway.Gateway, subs []gateway.SubDevice, control func(gateway.Device) error) error {
	devs := make([]gateway.Device, len(subs))
	for i, s := range subs {
		devs[i] = s.Device
	}
	rs, err := gw.Bind(ctx, subs...)
	if err != nil {
		return err
	}
	printResults("bind", rs)
	if rs, err = gw.Online(ctx, devs...); err != nil {
		return err
	}
	printResults("online", rs)

	for _, d := range devs {
		if !gw.IsOnline(d) {
			continue
		}
		opt := thing.WithDevice(d.ProductID, d.DeviceName)
		switch d.ProductID {
		case lamp.ProductID:
			l, err := lamp.New(gw.Conn(), lampHandler{d.DeviceName}, opt)
			if err != nil {
				return err
			}
			defer l.Close(context.Background())
			gw.Track(l.Thing()) // apply control the platform held while it was offline
			err = l.Report(ctx, lamp.Properties{PowerSwitch: tplwire.Ptr(tplwire.Bool(true)), Brightness: tplwire.Ptr[int64](30)})
			if err != nil {
				return fmt.Errorf("%s: report: %w", d, err)
			}
		case aircon.ProductID:
			a, err := aircon.New(gw.Conn(), airconHandler{d.DeviceName}, opt)
			if err != nil {
				return err
			}
			defer a.Close(context.Background())
			gw.Track(a.Thing())
			err = a.Report(ctx, aircon.Properties{PowerSwitch: tplwire.Ptr(tplwire.Bool(true)), Temperature: tplwire.Ptr(24.5), Mode: tplwire.Ptr(aircon.ModeCold)})
			if err != nil {
				return fmt.Errorf("%s: report: %w", d, err)
			}
		}
		fmt.Printf("%s: report accepted\n", d)
	}

	if control != nil && len(devs) > 1 {
		if err := control(devs[1]); err != nil {
			return err
		}
	} else if control == nil {
		fmt.Println("serving control; Ctrl-C to stop")
		<-ctx.Done()
		ctx = context.Background()
	}

	bound, err := gw.Describe(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("describe: %d sub-devices bound\n", len(bound))
	if rs, err = gw.Offline(ctx, devs...); err != nil {
		return err
	}
	printResults("offline", rs)
	if control == nil {
		return nil // on the real platform, keep the topology
	}
	if rs, err = gw.Unbind(ctx, devs...); err != nil {
		return err
	}
	printResults("unbind", rs)
	return nil
}

func printResults(op string, rs gateway.Results) {
	for _, r := range rs {
		status := "ok"
		if r.Err != nil {
			status = r.Err.Error()
		}
		fmt.Printf("%-7s %-28s %s\n", op, r.Device, status)
	}
}

func real(ctx context.Context, cfg explorer.Config, subList string) error {
	if subList == "" {
		return fmt.Errorf("-subdevices FILE is required with the real platform")
	}
	subs, err := gateway.LoadSubDevices(subList)
	if err != nil {
		return err
	}
	conn, err := explorer.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	gw, err := gateway.New(ctx, conn)
	if err != nil {
		return err
	}
	defer gw.Close(context.Background())
	return run(ctx, gw, subs, nil)
}
