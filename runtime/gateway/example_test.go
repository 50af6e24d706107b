package gateway_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
)

// A gateway binds a sub-device and brings it online; the platform then counts the
// sub-device as online through the gateway's connection.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.AddDevice("GWPROD0001", "gw1")
	secret, _ := srv.AddDevice("SUBPROD001", "sensor1")

	conn, err := explorer.Dial(ctx, srv.DeviceConfig("GWPROD0001", "gw1"), srv.DialOptions()...)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	gw, err := gateway.New(ctx, conn)
	if err != nil {
		panic(err)
	}
	sensor := gateway.Device{ProductID: "SUBPROD001", DeviceName: "sensor1"}

	rs, err := gw.Bind(ctx, gateway.SubDevice{Device: sensor, DeviceSecret: secret})
	fmt.Println("bind:", err, rs.Err())
	rs, err = gw.Online(ctx, sensor)
	fmt.Println("online:", err, rs.Err())
	fmt.Println("platform sees it online:", srv.Online("SUBPROD001", "sensor1"))

	// A wrong secret is refused per device, with a typed result.
	rs, _ = gw.Bind(ctx, gateway.SubDevice{Device: gateway.Device{ProductID: "SUBPROD001", DeviceName: "sensor2"}, DeviceSecret: secret})
	fmt.Println(rs[0].Err)
	// Output:
	// bind: <nil> <nil>
	// online: <nil> <nil>
	// platform sees it online: true
	// gateway: bind SUBPROD001/sensor2: result 802 (device name invalid or device does not exist)
}

// LoadSubDevices reads the sub-device list of the Python SDK's device_info.json.
func ExampleLoadSubDevices() {
	subs, err := gateway.LoadSubDevices("testdata/device_info.json")
	if err != nil {
		panic(err)
	}
	for _, s := range subs {
		fmt.Println(s.Device)
	}
	// Output:
	// SUBPROD001/subdev1
	// SUBPROD002/subdev2
}
