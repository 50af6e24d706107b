package gateway_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

const (
	gwPID   = "GWPROD0001"
	subPID1 = "SUBPROD001"
	subPID2 = "SUBPROD002"
)

type fixture struct {
	srv  *explorertest.Server
	conn *explorer.Conn
	gw   *gateway.Gateway
	subs []gateway.SubDevice
	tpl1 *template.Template
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newServer(t *testing.T) *explorertest.Server {
	t.Helper()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func dial(t *testing.T, srv *explorertest.Server, pid, dn string) *explorer.Conn {
	t.Helper()
	conn, err := explorer.Dial(testCtx(t), srv.DeviceConfig(pid, dn), srv.DialOptions()...)
	if err != nil {
		t.Fatalf("dial %s/%s: %v", pid, dn, err)
	}
	t.Cleanup(func() { closeConn(srv, conn) })
	return conn
}

// closeConn closes conn and waits until the platform has seen the device leave. The
// platform's Close deadlocks inside mochi-mqtt v2.7.9 (issue #488) when a client is leaving
// at the same moment, so tests let their clients go first.
func closeConn(srv *explorertest.Server, conn *explorer.Conn) {
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, dn := conn.ProductID(), conn.DeviceName()
	_ = srv.WaitThing(ctx, pid, dn, func(explorertest.ThingState) bool { return !srv.Online(pid, dn) })
}

func addDevice(t *testing.T, srv *explorertest.Server, pid, dn string) string {
	t.Helper()
	secret, err := srv.AddDevice(pid, dn)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// setup starts a platform with a gateway (connected) and three sub-devices of two products.
func setup(t *testing.T, opts ...gateway.Option) *fixture {
	t.Helper()
	f := &fixture{srv: newServer(t)}
	var err error
	if f.tpl1, err = template.ParseFile("../../schemas/subdev1.json"); err != nil {
		t.Fatal(err)
	}
	tpl2, err := template.ParseFile("../../schemas/subdev2.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.AddProductAs(subPID1, f.tpl1); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.AddProductAs(subPID2, tpl2); err != nil {
		t.Fatal(err)
	}
	addDevice(t, f.srv, gwPID, "gw1")
	for _, d := range []gateway.Device{{subPID1, "lamp1"}, {subPID1, "lamp2"}, {subPID2, "aircon1"}} {
		f.subs = append(f.subs, gateway.SubDevice{Device: d, DeviceSecret: addDevice(t, f.srv, d.ProductID, d.DeviceName)})
	}
	f.conn = dial(t, f.srv, gwPID, "gw1")
	if f.gw, err = gateway.New(testCtx(t), f.conn, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.gw.Close(context.Background()) })
	return f
}

func (f *fixture) devices() []gateway.Device {
	out := make([]gateway.Device, len(f.subs))
	for i, s := range f.subs {
		out[i] = s.Device
	}
	return out
}

func mustOK(t *testing.T, what string, rs gateway.Results, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestLifecycle(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)

	rs, err := f.gw.Bind(ctx, f.subs...)
	mustOK(t, "bind", rs, err)
	if len(rs) != 3 {
		t.Fatalf("bind: %d results, want 3", len(rs))
	}
	got, err := f.gw.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("describe = %v, want the 3 bound sub-devices", got)
	}
	if f.srv.Online(subPID1, "lamp1") {
		t.Fatal("sub-device online before Online")
	}
	rs, err = f.gw.Online(ctx, f.devices()...)
	mustOK(t, "online", rs, err)
	for _, d := range f.devices() {
		if !f.gw.IsOnline(d) || !f.srv.Online(d.ProductID, d.DeviceName) {
			t.Fatalf("%s not online after Online (local %v, platform %v)", d, f.gw.IsOnline(d), f.srv.Online(d.ProductID, d.DeviceName))
		}
	}

	// The sub-device's data template works through the gateway's connection.
	controls := make(chan []byte, 1)
	lamp, err := f.gw.SubDevice(f.subs[0].Device, f.tpl1, thing.WithControlHandler(func(ctx context.Context, p []byte) error {
		controls <- p
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := lamp.Report(ctx, map[string]any{"power_switch": 1, "brightness": 42}); err != nil {
		t.Fatalf("sub-device report: %v", err)
	}
	reply, err := f.srv.SendControl(ctx, subPID1, "lamp1", map[string]any{"brightness": 7})
	if err != nil {
		t.Fatalf("control to sub-device: %v", err)
	}
	if reply.Code != 0 {
		t.Fatalf("control_reply code %d (%s)", reply.Code, reply.Status)
	}
	select {
	case p := <-controls:
		var m map[string]int
		if err := json.Unmarshal(p, &m); err != nil || m["brightness"] != 7 {
			t.Fatalf("control handler got %s (%v)", p, err)
		}
	case <-ctx.Done():
		t.Fatal("control never reached the sub-device handler")
	}

	rs, err = f.gw.Offline(ctx, f.subs[0].Device, f.subs[1].Device)
	mustOK(t, "offline", rs, err)
	if f.gw.IsOnline(f.subs[0].Device) || f.srv.Online(subPID1, "lamp1") {
		t.Fatal("lamp1 still online after Offline")
	}
	// Offline revokes the gateway's right to the sub-device's topics: subscribing is refused,
	// and a publish is refused by disconnecting the gateway, so the report gets no reply.
	if _, err := thing.New(f.conn, f.tpl1, thing.WithDevice(subPID1, "lamp2")); err == nil {
		t.Fatal("subscribing an offline sub-device's topics succeeded")
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := lamp.Report(short, map[string]any{"brightness": 1}); err == nil {
		t.Fatal("report for an offline sub-device succeeded")
	}
	rs, err = f.gw.Unbind(ctx, f.devices()...)
	mustOK(t, "unbind", rs, err)
	if got, err := f.gw.Describe(ctx); err != nil || len(got) != 0 {
		t.Fatalf("describe after unbind = %v, %v", got, err)
	}
}

func TestResultCodes(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)
	lamp1, lamp2 := f.subs[0], f.subs[1]

	check := func(what string, rs gateway.Results, err error, want error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(rs) != 1 || !errors.Is(rs[0].Err, want) {
			t.Fatalf("%s: results %v, want %v", what, rs, want)
		}
		var re *gateway.ResultError
		if !errors.As(rs[0].Err, &re) || re.Device != rs[0].Device {
			t.Fatalf("%s: %v is not a ResultError naming the device", what, rs[0].Err)
		}
	}

	rs, err := f.gw.Online(ctx, lamp1.Device)
	check("online before bind", rs, err, gateway.ErrNotBound)
	rs, err = f.gw.Unbind(ctx, lamp1.Device)
	check("unbind before bind", rs, err, gateway.ErrNotBound)

	bad := lamp1
	bad.DeviceSecret = "d3Jvbmctc2VjcmV0LXh4eA=="
	rs, err = f.gw.Bind(ctx, bad)
	check("bind with wrong secret", rs, err, gateway.ErrBadSignature)

	rs, err = f.gw.Bind(ctx, gateway.SubDevice{Device: gateway.Device{subPID1, "ghost"}, DeviceSecret: "eA=="})
	check("bind unknown device", rs, err, gateway.ErrDeviceNotFound)

	rs, err = f.gw.Bind(ctx, lamp1)
	mustOK(t, "bind", rs, err)
	rs, err = f.gw.Bind(ctx, lamp1)
	check("bind twice", rs, err, gateway.ErrDuplicateBind)

	// A second gateway cannot take a bound sub-device, nor bind the first gateway.
	addDevice(t, f.srv, gwPID, "gw2")
	gw2, err := gateway.New(ctx, dial(t, f.srv, gwPID, "gw2"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err = gw2.Bind(ctx, lamp1)
	check("bind to a second gateway", rs, err, gateway.ErrBoundElsewhere)
	gwSecret, _ := f.srv.AddDevice(gwPID, "gw3")
	gw3 := gateway.SubDevice{Device: gateway.Device{gwPID, "gw3"}, DeviceSecret: gwSecret}
	addChild, _ := f.srv.AddDevice(subPID2, "child")
	gw3conn := dial(t, f.srv, gwPID, "gw3")
	g3, err := gateway.New(ctx, gw3conn)
	if err != nil {
		t.Fatal(err)
	}
	rs, err = g3.Bind(ctx, gateway.SubDevice{Device: gateway.Device{subPID2, "child"}, DeviceSecret: addChild})
	mustOK(t, "gw3 binds a child", rs, err)
	rs, err = f.gw.Bind(ctx, gw3)
	check("bind a gateway", rs, err, gateway.ErrNotOrdinaryDevice)

	// A signature older than the platform's window is expired.
	addDevice(t, f.srv, gwPID, "gw4")
	g4, err := gateway.New(ctx, dial(t, f.srv, gwPID, "gw4"), gateway.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	rs, err = g4.Bind(ctx, lamp2)
	check("bind with an expired signature", rs, err, gateway.ErrSignatureExpired)
}

// rawGateway publishes hand-written requests and collects the results, for the codes our
// own client never provokes (bad parameters, unsupported sign method).
func TestRawRequestCodes(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)
	addDevice(t, f.srv, gwPID, "raw")
	conn := dial(t, f.srv, gwPID, "raw")
	results := make(chan []byte, 10)
	if err := conn.Subscribe(ctx, "$gateway/operation/result/"+gwPID+"/raw", 1, func(_ context.Context, m explorer.Message) {
		results <- m.Payload
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, req string
		want      int
	}{
		{"missing device name", `{"type":"online","payload":{"devices":[{"product_id":"SUBPROD001"}]}}`, 801},
		{"missing signature", `{"type":"bind","payload":{"devices":[{"product_id":"SUBPROD001","device_name":"lamp1"}]}}`, 801},
		{"sign method", `{"type":"bind","payload":{"devices":[{"product_id":"SUBPROD001","device_name":"lamp1","signature":"eA==","random":1,"timestamp":1,"signmethod":"md5","authtype":"psk"}]}}`, 804},
	} {
		if err := conn.Publish(ctx, "$gateway/operation/"+gwPID+"/raw", 1, []byte(c.req)); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-results:
			var m struct {
				Payload struct {
					Devices []struct{ Result int } `json:"devices"`
				} `json:"payload"`
			}
			if err := json.Unmarshal(p, &m); err != nil || len(m.Payload.Devices) != 1 || m.Payload.Devices[0].Result != c.want {
				t.Fatalf("%s: result %s, want code %d", c.name, p, c.want)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no result", c.name)
		}
	}
}

func TestCertificateSubDeviceBind(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)
	if _, err := f.srv.AddDevice(subPID2, "certdev", explorertest.WithCertificate()); err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := f.srv.IssueCertificate(subPID2, "certdev")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := f.gw.Bind(ctx, gateway.SubDevice{Device: gateway.Device{subPID2, "certdev"}, Certificate: certPEM})
	mustOK(t, "bind certificate sub-device", rs, err)
}

func TestCloudInitiated(t *testing.T) {
	var mu sync.Mutex
	var changes []gateway.Change
	var searches []int
	unbindAll := make(chan struct{}, 1)
	f := setup(t,
		gateway.WithChangeHandler(func(_ context.Context, c gateway.Change) error {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, c)
			return nil
		}),
		gateway.WithSearchHandler(func(_ context.Context, status int) error {
			mu.Lock()
			defer mu.Unlock()
			searches = append(searches, status)
			return nil
		}),
		gateway.WithUnbindAllHandler(func(context.Context) error { unbindAll <- struct{}{}; return nil }),
	)
	ctx := testCtx(t)
	lamp := explorertest.DeviceID{ProductID: subPID1, DeviceName: "lamp1"}

	if err := f.srv.BindSubDevices(gwPID, "gw1", lamp); err != nil {
		t.Fatal(err)
	}
	ack, next, err := f.srv.WaitGatewayAck(ctx, gwPID, "gw1", "change", 0)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type    string `json:"type"`
		Payload struct {
			Status  int `json:"status"`
			Devices []struct {
				ProductID  string `json:"product_id"`
				DeviceName string `json:"device_name"`
				Result     *int   `json:"result"`
			} `json:"devices"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(ack, &m); err != nil || m.Payload.Status != 1 || len(m.Payload.Devices) != 1 ||
		m.Payload.Devices[0].DeviceName != "lamp1" || m.Payload.Devices[0].Result == nil || *m.Payload.Devices[0].Result != 0 {
		t.Fatalf("change ack = %s (%v)", ack, err)
	}
	mu.Lock()
	if len(changes) != 1 || !changes[0].Bound || changes[0].Devices[0] != (gateway.Device{subPID1, "lamp1"}) {
		t.Fatalf("change handler saw %+v", changes)
	}
	mu.Unlock()
	// The app's bind is real: the gateway can now bring the sub-device online.
	rs, err := f.gw.Online(ctx, gateway.Device{subPID1, "lamp1"})
	mustOK(t, "online after cloud bind", rs, err)

	if err := f.srv.SearchSubDevices(gwPID, "gw1", 1); err != nil {
		t.Fatal(err)
	}
	if ack, next, err = f.srv.WaitGatewayAck(ctx, gwPID, "gw1", "search_devices", next); err != nil {
		t.Fatal(err)
	}
	if string(ack) != `{"type":"search_devices","payload":{"status":1,"result":0}}` {
		t.Fatalf("search ack = %s", ack)
	}

	if err := f.srv.UnbindAllSubDevices(gwPID, "gw1"); err != nil {
		t.Fatal(err)
	}
	if ack, _, err = f.srv.WaitGatewayAck(ctx, gwPID, "gw1", "unbind_all", next); err != nil {
		t.Fatal(err)
	}
	if string(ack) != `{"type":"unbind_all","payload":{"result":0}}` {
		t.Fatalf("unbind_all ack = %s", ack)
	}
	<-unbindAll
	if len(f.gw.OnlineDevices()) != 0 || len(f.srv.SubDevices(gwPID, "gw1")) != 0 {
		t.Fatal("sub-devices left after unbind_all")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(searches) != 1 || searches[0] != 1 {
		t.Fatalf("search handler saw %v", searches)
	}
}

func TestReconnectRestoresSubDevices(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)
	rs, err := f.gw.Bind(ctx, f.subs...)
	mustOK(t, "bind", rs, err)
	rs, err = f.gw.Online(ctx, f.devices()...)
	mustOK(t, "online", rs, err)
	lamp, err := f.gw.SubDevice(f.subs[0].Device, f.tpl1)
	if err != nil {
		t.Fatal(err)
	}
	reconnected := make(chan struct{}, 1)
	f.conn.OnConnect(func(context.Context) { reconnected <- struct{}{} })
	if err := f.srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("gateway did not reconnect")
	}
	for _, d := range f.devices() {
		if !f.gw.IsOnline(d) {
			t.Fatalf("%s not online locally after reconnect", d)
		}
	}
	// Reports of a sub-device flow again over the new connection.
	if err := lamp.Report(ctx, map[string]any{"brightness": 9}); err != nil {
		t.Fatalf("report after reconnect: %v", err)
	}
	for _, d := range f.devices() {
		if !f.srv.Online(d.ProductID, d.DeviceName) {
			t.Fatalf("%s not online on the platform after reconnect", d)
		}
	}
}

func TestBatching(t *testing.T) {
	f := setup(t, gateway.WithBatchSize(2))
	ctx := testCtx(t)
	var subs []gateway.SubDevice
	for i := 0; i < 7; i++ {
		dn := "batch" + string(rune('a'+i))
		subs = append(subs, gateway.SubDevice{Device: gateway.Device{subPID2, dn}, DeviceSecret: addDevice(t, f.srv, subPID2, dn)})
	}
	rs, err := f.gw.Bind(ctx, subs...)
	mustOK(t, "bind 7 in batches of 2", rs, err)
	for i, r := range rs {
		if r.Device != subs[i].Device {
			t.Fatalf("result %d is for %s, want %s", i, r.Device, subs[i].Device)
		}
	}
	if got := f.srv.SubDevices(gwPID, "gw1"); len(got) != 7 {
		t.Fatalf("platform has %d bound, want 7", len(got))
	}
}

func TestNoResultEndsWithContext(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	f.srv.SetLatency(2 * time.Second)
	defer f.srv.SetLatency(0)
	_, err := f.gw.Online(ctx, f.subs[0].Device)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestSubDeviceRequiresOnline(t *testing.T) {
	f := setup(t)
	if _, err := f.gw.SubDevice(f.subs[0].Device, f.tpl1); err == nil {
		t.Fatal("SubDevice for an offline sub-device succeeded")
	}
}

func TestPendingControlAppliedWhenBackOnline(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)
	lamp1 := f.subs[0].Device
	rs, err := f.gw.Bind(ctx, f.subs[0])
	mustOK(t, "bind", rs, err)
	rs, err = f.gw.Online(ctx, lamp1)
	mustOK(t, "online", rs, err)
	controls := make(chan []byte, 1)
	if _, err := f.gw.SubDevice(lamp1, f.tpl1, thing.WithControlHandler(func(_ context.Context, p []byte) error {
		controls <- p
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	rs, err = f.gw.Offline(ctx, lamp1)
	mustOK(t, "offline", rs, err)

	// Sent while the sub-device is offline: the platform keeps it as pending control.
	if _, err := f.srv.SendControl(ctx, subPID1, "lamp1", map[string]any{"brightness": 55}); !errors.Is(err, explorertest.ErrDeviceOffline) {
		t.Fatalf("control to an offline sub-device: %v, want ErrDeviceOffline", err)
	}
	rs, err = f.gw.Online(ctx, lamp1)
	mustOK(t, "online again", rs, err)
	select {
	case p := <-controls:
		var m map[string]int
		if err := json.Unmarshal(p, &m); err != nil || m["brightness"] != 55 {
			t.Fatalf("pending control = %s (%v)", p, err)
		}
	case <-ctx.Done():
		t.Fatal("pending control was not applied when the sub-device came back online")
	}
}
