package explorertest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

// lightPlatform starts a platform that knows the light product (schemas/light.json) and one
// device of it.
func lightPlatform() (*explorertest.Server, *template.Template) {
	srv, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	tpl, err := template.ParseFile("../../schemas/light.json")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.AddProduct(tpl); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AddDevice(tpl.ProductID, "lamp"); err != nil {
		log.Fatal(err)
	}
	return srv, tpl
}

// The cloud sends control to a connected device and gets its control_reply.
func ExampleServer_SendControl() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, tpl := lightPlatform()
	defer srv.Close()

	conn, err := explorer.Dial(ctx, srv.DeviceConfig(tpl.ProductID, "lamp"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	dev, err := thing.New(conn, tpl, thing.WithControlHandler(func(ctx context.Context, params []byte) error {
		fmt.Printf("device applies %s\n", params)
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close(ctx)

	rep, err := srv.SendControl(ctx, tpl.ProductID, "lamp", map[string]any{"power_switch": 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("control_reply code:", rep.Code)
	// Output:
	// device applies {"power_switch":1}
	// control_reply code: 0
}

// Control sent while the device is offline is kept as pending; the device fetches it with
// get_status (type control) when it connects and clears it.
func ExampleServer_SendControl_offline() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, tpl := lightPlatform()
	defer srv.Close()

	_, err := srv.SendControl(ctx, tpl.ProductID, "lamp", `{"brightness":80}`)
	fmt.Println("stored as pending:", errors.Is(err, explorertest.ErrControlPending))

	conn, err := explorer.Dial(ctx, srv.DeviceConfig(tpl.ProductID, "lamp"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	dev, err := thing.New(conn, tpl, thing.WithControlHandler(func(ctx context.Context, params []byte) error {
		fmt.Printf("device applies %s\n", params)
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close(ctx)

	err = srv.WaitThing(ctx, tpl.ProductID, "lamp", func(st explorertest.ThingState) bool { return len(st.Pending) == 0 })
	fmt.Println("cleared:", err == nil)
	// Output:
	// stored as pending: true
	// device applies {"brightness":80}
	// cleared: true
}

// Tests wait for what a device reports instead of sleeping.
func ExampleServer_WaitReported() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, tpl := lightPlatform()
	defer srv.Close()

	conn, err := explorer.Dial(ctx, srv.DeviceConfig(tpl.ProductID, "lamp"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	dev, err := thing.New(conn, tpl)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close(ctx)
	go func() {
		_ = dev.Report(ctx, json.RawMessage(`{"brightness":42,"name":"desk"}`))
	}()

	v, err := srv.WaitReported(ctx, tpl.ProductID, "lamp", "brightness")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("brightness %s\n", v)
	// Output:
	// brightness 42
}
