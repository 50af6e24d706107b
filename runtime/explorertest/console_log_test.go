package explorertest

import "testing"

// The platform's log records reach /api/stream as "log" events (the console's platform log),
// with the record's device as the event's device, also when the platform's own logger keeps
// nothing.
func TestStreamCarriesPlatformLog(t *testing.T) {
	s := newThingServer(t) // logs to io.Discard at the default level
	secret := addLight(t, s, "lamp")
	sr := openStream(t, s, "")
	thConnect(t, s, thLightPID, "lamp", secret)
	for {
		typ, ev := sr.next(t)
		if typ != "log" {
			continue
		}
		data := ev["data"].(map[string]any)
		if data["msg"] != "explorertest: device online" {
			continue
		}
		attrs := data["attrs"].(map[string]any)
		if ev["device"] != "ZPHBLEB4J5/lamp" || data["level"] != "INFO" || attrs["device"] != "ZPHBLEB4J5/lamp" || attrs["listener"] == nil {
			t.Fatalf("log event %v", ev)
		}
		return
	}
}
