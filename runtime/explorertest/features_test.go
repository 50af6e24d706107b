package explorertest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestUplinkHandlerRepliesSynchronously(t *testing.T) {
	s := coreServer(t)
	got := make(chan uplink, 1)
	s.handleUplink("PID0000001/", func(u uplink) {
		if u.Topic != "PID0000001/dev1/ping" {
			return
		}
		got <- u
		// Publishing back from inside the handler must not deadlock the broker.
		if err := s.Publish("PID0000001/dev1/pong", append([]byte("re:"), u.Payload...), 1); err != nil {
			t.Errorf("Publish from handler: %v", err)
		}
	})
	c := coreDevice(t, s, "PID0000001", "dev1").mustConnect(t)
	_, pongs := coreSubscribe(t, c, "PID0000001/dev1/pong", 1)
	coreWait(t, c.Publish("PID0000001/dev1/ping", 1, false, "x"), "publish ping")
	if m := coreRecv(t, pongs, "pong"); string(m.Payload()) != "re:x" {
		t.Fatalf("pong %q", m.Payload())
	}
	u := <-got
	want := uplink{Client: DeviceID{"PID0000001", "dev1"}, Device: DeviceID{"PID0000001", "dev1"}, Topic: "PID0000001/dev1/ping", Payload: []byte("x"), QoS: 1}
	if fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("uplink %+v, want %+v", u, want)
	}
}

func TestUplinkOrderPerDevice(t *testing.T) {
	s := coreServer(t)
	const n = 200
	type rec struct {
		dev string
		seq int
	}
	recs := make(chan rec, 2*n)
	s.handleUplink("$thing/up/event/", func(u uplink) {
		seq, err := strconv.Atoi(string(u.Payload))
		if err != nil {
			t.Errorf("payload %q", u.Payload)
		}
		recs <- rec{u.Device.DeviceName, seq}
	})
	var clients []func()
	for _, dn := range []string{"a", "b"} {
		c := coreDevice(t, s, "PID0000001", dn).mustConnect(t)
		topic := "$thing/up/event/PID0000001/" + dn
		clients = append(clients, func() {
			for i := 0; i < n; i++ {
				qos := byte(i % 2)
				c.Publish(topic, qos, false, strconv.Itoa(i))
			}
		})
	}
	for _, send := range clients {
		go send()
	}
	next := map[string]int{}
	for i := 0; i < 2*n; i++ {
		r := coreRecvT(t, recs)
		if r.seq != next[r.dev] {
			t.Fatalf("device %s: got message %d, want %d (order lost)", r.dev, r.seq, next[r.dev])
		}
		next[r.dev]++
	}
}

func coreRecvT[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-timeAfterCore():
		t.Fatal("timed out waiting")
		var zero T
		return zero
	}
}

func TestHandlerPanicIsContained(t *testing.T) {
	s := coreServer(t)
	done := make(chan struct{}, 1)
	s.handleUplink("PID0000001/dev1/boom", func(uplink) { panic("feature bug") })
	s.handleUplink("PID0000001/dev1/ok", func(uplink) { done <- struct{}{} })
	c := coreDevice(t, s, "PID0000001", "dev1").mustConnect(t)
	coreWait(t, c.Publish("PID0000001/dev1/boom", 1, false, "x"), "publish")
	coreWait(t, c.Publish("PID0000001/dev1/ok", 1, false, "x"), "publish")
	coreRecvT(t, done)
}

func TestSecondLoginKicksFirst(t *testing.T) {
	s := coreServer(t)
	states := watchStates(s)
	l := coreDevice(t, s, "PID0000001", "dev1")
	first := l
	first.lost = make(chan error, 1)
	c1 := first.mustConnect(t)
	states.expect(t, "PID0000001/dev1 true")
	_, ch1 := coreSubscribe(t, c1, "$thing/down/property/PID0000001/dev1", 0)

	second := l
	second.protocol = 3
	c2 := second.mustConnect(t)
	coreLost(t, first.lost, "first connection")
	states.expect(t, "PID0000001/dev1 false")
	states.expect(t, "PID0000001/dev1 true")
	if !s.Online("PID0000001", "dev1") {
		t.Fatal("device offline after takeover")
	}
	// The new connection works; the old one gets nothing.
	_, ch2 := coreSubscribe(t, c2, "$thing/down/property/PID0000001/dev1", 0)
	if err := s.Publish("$thing/down/property/PID0000001/dev1", []byte(`{"method":"control"}`), 0); err != nil {
		t.Fatal(err)
	}
	coreRecv(t, ch2, "message on the new connection")
	select {
	case m := <-ch1:
		t.Fatalf("kicked connection received %s", m.Payload())
	default:
	}
	c2.Disconnect(0)
	states.expect(t, "PID0000001/dev1 false")
	if s.Online("PID0000001", "dev1") {
		t.Fatal("device online after disconnect")
	}
}

func TestRemoveDeviceDisconnects(t *testing.T) {
	s := coreServer(t)
	states := watchStates(s)
	l := coreDevice(t, s, "PID0000001", "dev1")
	l.lost = make(chan error, 1)
	l.mustConnect(t)
	states.expect(t, "PID0000001/dev1 true")
	if err := s.RemoveDevice("PID0000001", "dev1"); err != nil {
		t.Fatal(err)
	}
	states.expect(t, "PID0000001/dev1 false")
	coreLost(t, l.lost, "removed device")
	if _, err := l.connect(t); err == nil {
		t.Fatal("removed device could log in")
	}
	if err := s.RemoveDevice("PID0000001", "dev1"); err == nil {
		t.Fatal("second RemoveDevice succeeded")
	}
}

// Deleting a device drops every feature's state about it, so an API client that creates and
// deletes devices without end cannot grow the platform, and a device added again under the same
// name starts clean.
func TestRemoveDeviceDropsFeatureState(t *testing.T) {
	s := newThingServer(t)
	if _, err := s.UploadFirmware(thLightPID, "2.0.0", strings.NewReader("img")); err != nil {
		t.Fatal(err)
	}
	addLight(t, s, "gw")
	for i := range 50 {
		dn := fmt.Sprintf("lamp%d", i%5)
		d := thConnect(t, s, thLightPID, dn, addLight(t, s, dn))
		d.call("property", `{"method":"report","clientToken":"r","params":{"brightness":7}}`)
		if err := s.PushUpdate(thLightPID, dn, "2.0.0"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.IssueAppToken(thLightPID, dn, "", 0); err != nil {
			t.Fatal(err)
		}
		if err := s.BindDevice(thLightPID, dn, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := s.BindSubDevices(thLightPID, "gw", DeviceID{thLightPID, dn}); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveDevice(thLightPID, dn); err != nil {
			t.Fatal(err)
		}
		d.close()
	}
	if _, err := s.AddDevice(thLightPID, "lamp0"); err != nil {
		t.Fatal(err)
	}
	if r := s.Reported(thLightPID, "lamp0"); len(r) != 0 {
		t.Errorf("re-added device has old reported state: %s", mustJSON(r))
	}
	if _, ok := s.OTAJob(thLightPID, "lamp0"); ok {
		t.Error("re-added device has the old OTA job")
	}
	if _, ok := s.Binding(thLightPID, "lamp0"); ok {
		t.Error("re-added device is still bound")
	}
	if subs := s.SubDevices(thLightPID, "gw"); len(subs) != 0 {
		t.Errorf("deleted devices still bound to the gateway: %v", subs)
	}
	// Uplinks of a removed device still in flight are dropped behind it: nothing reappears.
	s.feat.wait()
	s.thing.mu.Lock()
	things := len(s.thing.devices)
	s.thing.mu.Unlock()
	s.ota.mu.Lock()
	jobs := len(s.ota.jobs) + len(s.ota.versions)
	s.ota.mu.Unlock()
	kept, _ := s.AppTokenStats()
	if things != 0 || jobs != 0 || kept != 0 {
		t.Fatalf("state left after deleting every device: %d thing, %d ota, %d tokens", things, jobs, kept)
	}
	if err := s.RemoveDevice(thLightPID, "ghost"); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("removing an unknown device: %v", err)
	}
}
