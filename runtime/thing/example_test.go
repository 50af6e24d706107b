package thing_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

// platform starts an in-process IoT Explorer with the light product of testdata/light.json
// and one device, and connects that device.
func platform(ctx context.Context, platformTpl *template.Template) (*explorertest.Server, *explorer.Conn, *template.Template) {
	tpl, err := template.ParseFile("testdata/light.json")
	if err != nil {
		log.Fatal(err)
	}
	if platformTpl == nil {
		platformTpl = tpl
	}
	srv, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.AddProductAs("ABCDEFGHIJ", platformTpl); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.AddDevice("ABCDEFGHIJ", "dev1"); err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, srv.DeviceConfig("ABCDEFGHIJ", "dev1"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	return srv, conn, tpl
}

// A device reports its properties and applies control from the cloud.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, conn, tpl := platform(ctx, nil)
	defer srv.Close()
	defer conn.Close()

	th, err := thing.New(conn, tpl, thing.WithControlHandler(func(ctx context.Context, params []byte) error {
		fmt.Printf("device: control %s\n", params)
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer th.Close(ctx)

	fmt.Println("report:", th.Report(ctx, map[string]any{"power_switch": 1, "brightness": 42}))

	// A value outside the template is refused locally; nothing is sent.
	err = th.Report(ctx, map[string]any{"brightness": 101})
	fmt.Println(err, thing.IsInvalidValue(err))

	// The cloud sets properties; the handler sees validated JSON, the cloud gets the reply.
	r, err := srv.SendControl(ctx, "ABCDEFGHIJ", "dev1", map[string]any{"color": 2, "brightness": 80})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cloud: control_reply code", r.Code)
	// Output:
	// report: <nil>
	// thing: Report: params.brightness: 101 out of range [0,100] true
	// device: control {"brightness":80,"color":2}
	// cloud: control_reply code 0
}

// Actions arrive with validated input; the handler's output becomes the action_reply.
func ExampleWithActionHandler() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, conn, tpl := platform(ctx, nil)
	defer srv.Close()
	defer conn.Close()

	th, err := thing.New(conn, tpl, thing.WithActionHandler(func(ctx context.Context, id string, input []byte) (any, error) {
		fmt.Printf("device: action %s %s\n", id, input)
		return map[string]int{"err_code": 0}, nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer th.Close(ctx)

	r, err := srv.InvokeAction(ctx, "ABCDEFGHIJ", "dev1", "light_on", map[string]any{"is_on": 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cloud: action_reply code %d response %s\n", r.Code, r.Response)
	// Output:
	// device: action light_on {"is_on":1}
	// cloud: action_reply code 0 response {"err_code":0}
}

// Events take their type (info, alert, fault) from the template.
func ExampleThing_PostEvent() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, conn, tpl := platform(ctx, nil)
	defer srv.Close()
	defer conn.Close()
	th, err := thing.New(conn, tpl)
	if err != nil {
		log.Fatal(err)
	}
	defer th.Close(ctx)

	if err := th.PostEvent(ctx, "low_voltage", map[string]float64{"voltage": 3.3}); err != nil {
		log.Fatal(err)
	}
	evs := srv.Events("ABCDEFGHIJ", "dev1")
	fmt.Println(evs[0].EventID, evs[0].Type, string(evs[0].Params))

	err = th.PostEvent(ctx, "overheat", map[string]any{})
	fmt.Println(err, thing.IsUnknownID(err))
	// Output:
	// low_voltage alert {"voltage":3.3}
	// thing: PostEvent: event "overheat": unknown id true
}

// A request the platform rejects returns a *ReplyError with the reply's code and status.
func ExampleReplyError() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// This platform's template says brightness is at most 50; the device's says 100.
	strict, err := template.Parse("strict.json", []byte(`{"version":"1.0","properties":[
	  {"id":"brightness","name":"b","mode":"rw","define":{"type":"int","min":"0","max":"50"}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	srv, conn, tpl := platform(ctx, strict)
	defer srv.Close()
	defer conn.Close()
	th, err := thing.New(conn, tpl)
	if err != nil {
		log.Fatal(err)
	}
	defer th.Close(ctx)

	err = th.Report(ctx, map[string]any{"brightness": 80})
	var re *thing.ReplyError
	if errors.As(err, &re) {
		fmt.Println(re.Method, re.Code, thing.IsInvalidValue(err))
	}
	// Output:
	// report_reply 406 true
}

// GetStatus returns what the platform holds for the device.
func ExampleThing_GetStatus() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, conn, tpl := platform(ctx, nil)
	defer srv.Close()
	defer conn.Close()
	th, err := thing.New(conn, tpl)
	if err != nil {
		log.Fatal(err)
	}
	defer th.Close(ctx)

	if err := th.Report(ctx, map[string]any{"power_switch": 1, "name": "hall"}); err != nil {
		log.Fatal(err)
	}
	st, err := th.GetStatus(ctx, thing.StatusReport, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Type, string(st.Reported))
	// Output:
	// report {"power_switch":1,"name":"hall"}
}
