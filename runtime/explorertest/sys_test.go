package explorertest

import (
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

func TestTimeService(t *testing.T) {
	now := time.Date(2031, 2, 3, 4, 5, 6, 789_000_000, time.UTC)
	s := coreServer(t, WithClock(func() time.Time { return now }))
	l := coreDevice(t, s, "ABCDEFGHIJ", "dev1")
	l.protocol = 3 // as the official Python SDK
	c := l.mustConnect(t)
	_, ch := coreSubscribe(t, c, "$sys/operation/result/ABCDEFGHIJ/dev1", 0)
	for _, qos := range []byte{0, 1} {
		coreWait(t, c.Publish("$sys/operation/ABCDEFGHIJ/dev1", qos, false, `{"type":"get","resource":["time"]}`), "publish time request")
		m := coreRecv(t, ch, "time reply")
		// Field order as on the wire (official-python-sdk-transcript.jsonl).
		want := `{"type":"get","time":1927857906,"ntptime1":1927857906789,"ntptime2":1927857906789}`
		if string(m.Payload()) != want {
			t.Fatalf("qos %d: reply %s\nwant %s", qos, m.Payload(), want)
		}
	}
	// Malformed requests are ignored (and logged), the connection stays up, good ones still work.
	for _, bad := range []string{`{`, `{"resource":["time"]}`, `{"type":"set","resource":["time"]}`, `{"type":"get","resource":["x"]}`} {
		coreWait(t, c.Publish("$sys/operation/ABCDEFGHIJ/dev1", 1, false, bad), "publish bad request")
	}
	coreWait(t, c.Publish("$sys/operation/ABCDEFGHIJ/dev1", 0, false, `{"type":"get","resource":["time"]}`), "publish")
	var reply map[string]any
	if err := json.Unmarshal(coreRecv(t, ch, "reply after bad requests").Payload(), &reply); err != nil || reply["type"] != "get" {
		t.Fatalf("reply %v, %v", reply, err)
	}
	select {
	case m := <-ch:
		t.Fatalf("unexpected extra reply %s", m.Payload())
	default:
	}
}

func TestTimeServiceExplorerConn(t *testing.T) {
	s := coreServer(t)
	if _, err := s.AddDevice("ABCDEFGHIJ", "dev1"); err != nil {
		t.Fatal(err)
	}
	ctx := coreCtx(t)
	conn, err := explorerDial(ctx, s, "ABCDEFGHIJ", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := time.Now()
	got, err := conn.ServerTime(ctx)
	if err != nil {
		t.Fatalf("ServerTime: %v", err)
	}
	if got.Before(before.Add(-time.Second)) || got.After(time.Now().Add(time.Second)) {
		t.Fatalf("ServerTime %v not around now %v", got, before)
	}
}
