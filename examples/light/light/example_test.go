package light_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/thing"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// handler is the device application.
type handler struct{}

func (handler) Control(_ context.Context, p light.ControlProperties) error {
	if p.Brightness != nil {
		fmt.Println("device: brightness ->", *p.Brightness)
	}
	return nil
}

func (handler) LightOn(_ context.Context, in light.LightOnInput) (light.LightOnOutput, error) {
	fmt.Println("device: light_on is_on =", in.IsOn)
	return light.LightOnOutput{ErrCode: false}, nil
}

// The generated Device reports typed properties and events and hands typed control and
// action input to a Handler. Here it runs against the in-process platform.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddProduct(light.Template()); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AddDevice(light.ProductID, "light-1"); err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(light.ProductID, "light-1"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	dev, err := light.New(conn, handler{})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close(ctx)

	err = dev.Report(ctx, light.Properties{
		PowerSwitch: tplwire.Ptr[tplwire.Bool](true),
		Color:       tplwire.Ptr(light.ColorGreen),
		Brightness:  tplwire.Ptr[int64](60),
	})
	fmt.Println("report:", err)
	fmt.Println("event:", dev.PostLowVoltage(ctx, light.LowVoltage{Voltage: 3.1}))

	if _, err := srv.SendControl(ctx, light.ProductID, "light-1", map[string]any{"brightness": 20}); err != nil {
		log.Fatal(err)
	}
	r, err := srv.InvokeAction(ctx, light.ProductID, "light-1", "light_on", map[string]any{"is_on": 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cloud: action_reply %d %s\n", r.Code, r.Response)

	// The platform holds what the device reported: the control is not reflected until the
	// device reports the new brightness (examples/light does that after each control).
	st, err := dev.GetStatus(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status: color", st.GetColor(), "brightness", st.GetBrightness())
	// Output:
	// report: <nil>
	// event: <nil>
	// device: brightness -> 20
	// device: light_on is_on = true
	// cloud: action_reply 0 {"err_code":0}
	// status: color Green brightness 60
}

// bindingHandler is a Handler that also wants to know when a user binds or unbinds the
// device (thing.BindingObserver): New wires the method up by itself.
type bindingHandler struct {
	handler
	notices chan thing.BindingNotice
}

func (h bindingHandler) Binding(_ context.Context, n thing.BindingNotice) { h.notices <- n }

// Binding a consumer device to the app user who provisioned it: the app hands the device a
// token (here issued by the in-process platform), the device sends it with BindAppToken; a
// factory reset unbinds with RequestUnbind, after which the platform pushes unbind_device.
// Refusals are typed: errors.Is(err, thing.ErrBindTokenExpired), ...
func ExampleDevice_BindAppToken() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddProduct(light.Template()); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AddDevice(light.ProductID, "light-1"); err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(light.ProductID, "light-1"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	h := bindingHandler{notices: make(chan thing.BindingNotice, 4)}
	dev, err := light.New(conn, h)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close(ctx)

	tok, err := srv.IssueAppToken(light.ProductID, "light-1", "alice", 0)
	if err != nil {
		log.Fatal(err)
	}
	if err := dev.BindAppToken(ctx, tok.Token); err != nil {
		log.Fatal(err)
	}
	b, _ := srv.Binding(light.ProductID, "light-1")
	fmt.Println("bound to", b.User)

	err = dev.BindAppToken(ctx, tok.Token) // single use
	fmt.Println("again:", errors.Is(err, thing.ErrBindTokenUsed))

	if err := dev.RequestUnbind(ctx); err != nil {
		log.Fatal(err)
	}
	for n := range h.notices {
		if !n.Bound {
			fmt.Println("device:", n.Method)
			break
		}
	}
	// Output:
	// bound to alice
	// again: true
	// device: unbind_device
}
