package explorertest

import (
	"strings"
	"testing"
)

func TestCheckTopicRules(t *testing.T) {
	s := coreServer(t)
	me := DeviceID{"PID0000001", "dev1"}
	sub := DeviceID{"PID0000002", "child"}
	s.proxyAllowed = func(gw, d DeviceID) bool { return gw == me && d == sub }
	defer func() { s.proxyAllowed = nil }()

	const P, S = accessPublish, accessSubscribe
	allowed := []struct {
		topic string
		a     access
	}{
		{"$thing/up/property/PID0000001/dev1", P},
		{"$thing/up/event/PID0000001/dev1", P},
		{"$thing/up/action/PID0000001/dev1", P},
		{"$thing/up/service/PID0000001/dev1", P},
		{"$thing/up/raw/PID0000001/dev1", P},
		{"$thing/down/property/PID0000001/dev1", S},
		{"$thing/down/raw/PID0000001/dev1", S},
		{"$ota/report/PID0000001/dev1", P},
		{"$ota/update/PID0000001/dev1", S},
		{"$gateway/operation/PID0000001/dev1", P},
		{"$gateway/operation/result/PID0000001/dev1", S},
		{"$sys/operation/PID0000001/dev1", P},
		{"$sys/operation/result/PID0000001/dev1", S},
		{"$log/operation/PID0000001/dev1", P},
		{"$log/operation/result/PID0000001/dev1", S},
		{"$shadow/operation/PID0000001/dev1", P},
		{"$shadow/operation/result/PID0000001/dev1", S},
		{"$config/operation/PID0000001/dev1", P}, // remote config, Java SDK (docs/PROTOCOL.md §7.8)
		{"$config/operation/result/PID0000001/dev1", S},
		{"$template/operation/PID0000001/dev1", P},
		{"$template/operation/result/PID0000001/dev1", S},
		{"$rrpc/rxd/PID0000001/dev1/+", S},
		{"$rrpc/rxd/PID0000001/dev1/12345", S},
		{"$rrpc/txd/PID0000001/dev1/12345", P},
		{"$broadcast/rxd/PID0000001/dev1", S},
		{"$resource/up/service/PID0000001/dev1", P},
		{"$resource/down/service/PID0000001/dev1", S},
		{"PID0000001/dev1/data", P | S},
		{"PID0000001/dev1/a/b/c", P | S},
		{"PID0000001/dev1/#", S},
		{"PID0000001/dev1/+/x", S},
		// a gateway acting for its sub-device
		{"$thing/up/property/PID0000002/child", P},
		{"$thing/down/property/PID0000002/child", S},
		{"PID0000002/child/data", P | S},
	}
	for _, c := range allowed {
		for _, a := range []access{P, S} {
			err := s.checkTopic(me, c.topic, a)
			if want := c.a&a != 0; (err == nil) != want {
				t.Errorf("%s access %d: err %v, want allowed=%v", c.topic, a, err, want)
			}
		}
	}
	denied := []struct{ topic, why string }{
		{"$thing/up/property/PID0000001/dev2", "belongs to device PID0000001/dev2"},
		{"$thing/down/property/PID0000009/dev1", "belongs to device"},
		{"$thing/up/bogus/PID0000001/dev1", "not a platform topic"},
		{"$thing/up/property/PID0000001/dev1/extra", "not a platform topic"},
		{"$thing/up/property/+/dev1", "not a platform topic"},
		{"$thing/down/property/PID0000001/+", "not a platform topic"},
		{"$thing/down/#", "not a platform topic"},
		{"#", "not a platform topic"},
		{"+/+/data", "not a platform topic"},
		{"$SYS/broker/clients", "not a platform topic"},
		{"PID0000001/dev1", "not a platform topic"},
		{"PID0000001/dev2/data", "belongs to device"},
		{"$explorertest-sys/operation/PID0000001/dev9", "belongs to device"},
		{"PID0000001/dev1/" + strings.Repeat("x", 250), "longer than 255"},
	}
	for _, c := range denied {
		for _, a := range []access{P, S} {
			err := s.checkTopic(me, c.topic, a)
			wild := a == P && strings.ContainsAny(c.topic, "+#") && err != nil && strings.Contains(err.Error(), "wildcards")
			if err == nil || !strings.Contains(err.Error(), c.why) && !wild {
				t.Errorf("%s access %d: err %v, want %q", c.topic, a, err, c.why)
			}
		}
	}
	if err := s.checkTopic(me, "$thing/down/property/PID0000001/dev1", P); err == nil || !strings.Contains(err.Error(), "may not publish") {
		t.Errorf("publish on down topic: %v", err)
	}
	if err := s.checkTopic(me, "$thing/up/property/PID0000001/dev1", S); err == nil || !strings.Contains(err.Error(), "may not subscribe") {
		t.Errorf("subscribe to up topic: %v", err)
	}
	// Without a proxy rule a sub-device's topics are someone else's.
	s.proxyAllowed = nil
	if err := s.checkTopic(me, "$thing/up/property/PID0000002/child", P); err == nil {
		t.Error("sub-device topic allowed without proxy rule")
	}
}

func TestACLSubscribe(t *testing.T) {
	s := coreServer(t)
	l := coreDevice(t, s, "PID0000001", "dev1")
	coreDevice(t, s, "PID0000001", "dev2")
	c := l.mustConnect(t)
	for _, tc := range []struct {
		filter string
		qos    byte
		want   byte
	}{
		{"$thing/down/property/PID0000001/dev1", 1, 1},
		{"$thing/down/property/PID0000001/dev1", 0, 0},
		{"$thing/down/property/PID0000001/dev2", 0, 0x80}, // another device's
		{"$thing/up/property/PID0000001/dev1", 0, 0x80},   // an uplink topic
		{"$thing/down/event/PID0000001/dev1", 2, 0x80},    // QoS 2
		{"#", 0, 0x80},
		{"$SYS/#", 0, 0x80},
	} {
		if got, _ := coreSubscribe(t, c, tc.filter, tc.qos); got != tc.want {
			t.Errorf("subscribe %s qos %d: granted 0x%02x, want 0x%02x", tc.filter, tc.qos, got, tc.want)
		}
	}
	if !c.IsConnectionOpen() {
		t.Fatal("refused subscriptions must not disconnect")
	}
}

func TestACLPublishViolationsDisconnect(t *testing.T) {
	s := coreServer(t)
	l := coreDevice(t, s, "PID0000001", "dev1")
	coreDevice(t, s, "PID0000001", "dev2")
	for _, tc := range []struct {
		name    string
		topic   string
		qos     byte
		retain  bool
		payload []byte
	}{
		{"another device's topic qos0", "$thing/up/property/PID0000001/dev2", 0, false, []byte("{}")},
		{"another device's topic qos1", "$thing/up/property/PID0000001/dev2", 1, false, []byte("{}")},
		{"down topic", "$thing/down/property/PID0000001/dev1", 0, false, []byte("{}")},
		{"qos 2", "$thing/up/property/PID0000001/dev1", 2, false, []byte("{}")},
		{"retained", "$thing/up/property/PID0000001/dev1", 0, true, []byte("{}")},
		{"payload over 16 KB", "PID0000001/dev1/data", 1, false, make([]byte, MaxPayload+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := l
			l.lost = make(chan error, 1)
			c := l.mustConnect(t)
			c.Publish(tc.topic, tc.qos, tc.retain, tc.payload) // its token may never complete
			coreLost(t, l.lost, tc.name)
		})
	}
}

func TestACLCustomTopicAndMaxPayload(t *testing.T) {
	s := coreServer(t)
	l := coreDevice(t, s, "PID0000001", "dev1")
	c := l.mustConnect(t)
	code, ch := coreSubscribe(t, c, "PID0000001/dev1/#", 1)
	if code != 1 {
		t.Fatalf("granted %d", code)
	}
	big := make([]byte, MaxPayload)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	coreWait(t, c.Publish("PID0000001/dev1/data", 1, false, big), "publish 16 KB")
	m := coreRecv(t, ch, "echo of custom topic")
	if m.Topic() != "PID0000001/dev1/data" || string(m.Payload()) != string(big) {
		t.Fatalf("got %s (%d bytes)", m.Topic(), len(m.Payload()))
	}
	// The cloud can publish there too.
	if err := s.Publish("PID0000001/dev1/cmd", []byte("hi"), 1); err != nil {
		t.Fatal(err)
	}
	if m := coreRecv(t, ch, "cloud publish"); string(m.Payload()) != "hi" {
		t.Fatalf("got %q", m.Payload())
	}
}

func TestPublishValidation(t *testing.T) {
	s := coreServer(t)
	for _, c := range []struct {
		topic string
		qos   byte
		size  int
		want  string
	}{
		{"", 0, 0, "invalid topic"},
		{"a/+/b", 0, 0, "invalid topic"},
		{"a/b", 2, 0, "QoS 2"},
		{"a/b", 0, MaxPayload + 1, "exceeds"},
	} {
		err := s.Publish(c.topic, make([]byte, c.size), c.qos)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Publish(%q, qos %d, %d bytes): %v, want %q", c.topic, c.qos, c.size, err, c.want)
		}
	}
}
