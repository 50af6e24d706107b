package explorertest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bindDevice connects a raw device that also subscribes its service topic.
func bindDevice(t *testing.T, s *Server, dn, secret string) *thDevice {
	t.Helper()
	d := thConnect(t, s, thLightPID, dn, secret)
	d.subscribe(d.topic("down", "service"))
	return d
}

func TestAppTokenBinding(t *testing.T) {
	var skew atomic.Int64 // the platform clock runs this far ahead of real time
	s := newThingServer(t, WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	d := bindDevice(t, s, "lamp", addLight(t, s, "lamp"))
	addLight(t, s, "lamp2")
	base := s.HTTPURL() + "/api/devices/" + thLightPID + "/"

	code, doc, raw := apiCall(t, "POST", base+"lamp/app-token", `{"user":"alice","ttl":"5m"}`)
	tok, _ := doc["token"].(string)
	if code != 201 || tok == "" || doc["user"] != "alice" || doc["device_name"] != "lamp" {
		t.Fatalf("POST app-token = %d %s", code, raw)
	}
	bindMsg := func(token string) string {
		return fmt.Sprintf(`{"method":"app_bind_token","clientToken":"lamp-%d","params":{"token":%q,"pairTime":{"start":1}}}`, time.Now().UnixNano(), token)
	}
	m := d.call("service", bindMsg(tok))
	if m.str("method") != "app_bind_token_reply" || m.code(t) != BindCodeSuccess {
		t.Fatalf("bind with a fresh token: %s", m.Raw)
	}
	if bd, ok := s.Binding(thLightPID, "lamp"); !ok || bd.User != "alice" || bd.Via != "app_bind_token" {
		t.Fatalf("Binding = %+v %v", bd, ok)
	}
	if _, doc, raw := apiCall(t, "GET", base+"lamp", ""); !strings.Contains(string(mustJSON(doc["binding"])), `"user":"alice"`) {
		t.Fatalf("GET device does not show the bound user: %s", raw)
	}

	other, err := s.IssueAppToken(thLightPID, "lamp2", "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	short, err := s.IssueAppToken(thLightPID, "lamp", "carol", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, payload string
		code          int
		status        string
	}{
		{"token used twice", bindMsg(tok), BindCodeTokenUsed, "already used"},
		{"unknown token", bindMsg("0123456789abcdef"), BindCodeUnknownToken, "unknown token"},
		{"token of another device", bindMsg(other.Token), BindCodeOtherDevice, "another device"},
		{"no params", `{"method":"app_bind_token","clientToken":"x1"}`, BindCodeMalformed, "params: missing"},
		{"token not a string", `{"method":"app_bind_token","clientToken":"x2","params":{"token":42}}`, BindCodeMalformed, "params.token: must be a string"},
		{"empty token", `{"method":"app_bind_token","clientToken":"x3","params":{"token":""}}`, BindCodeMalformed, "params.token: missing"},
		{"huge token", bindMsg(strings.Repeat("t", 300)), BindCodeMalformed, "longer than 256"},
	} {
		m := d.call("service", c.payload)
		if m.str("method") != "app_bind_token_reply" || m.code(t) != c.code || !strings.Contains(m.str("status"), c.status) {
			t.Errorf("%s: got %s, want code %d status containing %q", c.name, m.Raw, c.code, c.status)
		}
	}
	skew.Store(int64(2 * time.Minute))
	if m := d.call("service", bindMsg(short.Token)); m.code(t) != BindCodeTokenExpired || !strings.Contains(m.str("status"), "expired") {
		t.Errorf("expired token: %s", m.Raw)
	}
	if bd, _ := s.Binding(thLightPID, "lamp"); bd.User != "alice" {
		t.Fatalf("a refused token changed the binding: %+v", bd)
	}

	// Factory reset: reply, then the unbind_device notice; the binding is gone.
	if m := d.call("service", `{"method":"unbind_device_request","clientToken":"ZPHBLEB4J5-1","deviceName":"lamp2","productId":"ZPHBLEB4J5"}`); m.code(t) != BindCodeOtherDevice {
		t.Fatalf("unbind naming another device: %s", m.Raw)
	}
	m = d.call("service", `{"method":"unbind_device_request","clientToken":"ZPHBLEB4J5-2","deviceName":"lamp","productId":"ZPHBLEB4J5"}`)
	if m.str("method") != "unbind_device_reply" || m.code(t) != 0 || m.str("clientToken") != "ZPHBLEB4J5-2" {
		t.Fatalf("unbind_device_reply: %s", m.Raw)
	}
	if n := d.next(); n.str("method") != "unbind_device" || n.Body["timestamp"] == nil || n.str("clientToken") == "" {
		t.Fatalf("unbind_device notice: %s", n.Raw)
	}
	if _, ok := s.Binding(thLightPID, "lamp"); ok {
		t.Fatal("still bound after unbind_device_request")
	}

	// Cloud side: bind and unbind push their notices.
	if code, doc, raw := apiCall(t, "POST", base+"lamp/bind", `{"user":"dave"}`); code != 200 || doc["user"] != "dave" || doc["via"] != "cloud" {
		t.Fatalf("POST bind = %d %s", code, raw)
	}
	if n := d.next(); n.str("method") != "bind_device" {
		t.Fatalf("bind_device notice: %s", n.Raw)
	}
	if code, doc, raw := apiCall(t, "POST", base+"lamp/unbind", ""); code != 200 || doc["bound"] != false {
		t.Fatalf("POST unbind = %d %s", code, raw)
	}
	if n := d.next(); n.str("method") != "unbind_device" {
		t.Fatalf("unbind_device notice: %s", n.Raw)
	}
	for _, bad := range []struct{ route, body string }{
		{"lamp/app-token", `{"ttl":"soon"}`},
		{"lamp/app-token", `{"user":"x","owner":"y"}`},
		{"lamp/bind", `{}`},
		{"lamp/unbind", `{"why":1}`},
	} {
		if code, _, raw := apiCall(t, "POST", base+bad.route, bad.body); code != 400 {
			t.Errorf("POST %s %s = %d %s, want 400", bad.route, bad.body, code, raw)
		}
	}
	if code, _, _ := apiCall(t, "POST", base+"ghost/app-token", ""); code != 404 {
		t.Errorf("app-token for an unknown device = %d", code)
	}
	// A service method of another feature gets no answer from this one.
	d.publish(d.topic("up", "service"), `{"method":"alert_fence_event_reply","clientToken":"f","code":0}`)
	if m := d.call("service", bindMsg("nope")); m.code(t) != BindCodeUnknownToken {
		t.Fatalf("the next reply is not the bind's: %s", m.Raw)
	}
}

// Issuing tokens without end keeps at most maxAppTokens and counts the dropped ones.
func TestAppTokensBounded(t *testing.T) {
	s := newThingServer(t)
	addLight(t, s, "lamp")
	first, _ := s.IssueAppToken(thLightPID, "lamp", "", 0)
	for range maxAppTokens + 10 {
		if _, err := s.IssueAppToken(thLightPID, "lamp", "", 0); err != nil {
			t.Fatal(err)
		}
	}
	kept, dropped := s.AppTokenStats()
	if kept != maxAppTokens || dropped != 11 {
		t.Fatalf("kept %d dropped %d, want %d and 11", kept, dropped, maxAppTokens)
	}
	s.bind.mu.Lock()
	_, stillThere := s.bind.tokens[first.Token]
	s.bind.mu.Unlock()
	if stillThere {
		t.Fatal("the oldest token was not the one dropped")
	}
}
