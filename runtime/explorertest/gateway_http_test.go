package explorertest

import (
	"fmt"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

// TestGatewayJSONAPI drives the cloud-initiated gateway operations through the JSON API against a
// raw gateway that acknowledges them the way the C SDK does (docs/PROTOCOL.md §5.2): change with
// per-device results, unbind_all and search_devices with result 0, and a cloud-sent
// describe_sub_devices with a change listing its local bind list (here: the devices it was sent).
func TestGatewayJSONAPI(t *testing.T) {
	s := newThingServer(t)
	gwSecret := addLight(t, s, "gw")
	addLight(t, s, "sub1")
	addLight(t, s, "sub2")
	user, pass := thSign(t, thLightPID, "gw", gwSecret, thNowMS()/1000+3600)
	gw := thConnectAs(t, s, thLightPID, "gw", user, pass, 4, nil)
	gw.subscribe("$gateway/operation/result/" + thLightPID + "/gw")
	up := "$gateway/operation/" + thLightPID + "/gw"
	gw.serve(func(m thMsg) (string, string) {
		payload, _ := m.Body["payload"].(map[string]any)
		switch m.str("type") {
		case "change":
			devs, _ := payload["devices"].([]any)
			for _, d := range devs {
				d.(map[string]any)["result"] = 0
			}
			return up, string(mustJSON(map[string]any{"type": "change", "payload": map[string]any{"status": payload["status"], "devices": devs}}))
		case "describe_sub_devices":
			return up, string(mustJSON(map[string]any{"type": "change", "payload": map[string]any{"devices": payload["devices"]}}))
		case "unbind_all":
			return up, `{"type":"unbind_all","payload":{"result":0}}`
		case "search_devices":
			return up, fmt.Sprintf(`{"type":"search_devices","payload":{"status":%v,"result":0}}`, payload["status"])
		}
		return "", ""
	})
	base := s.HTTPURL() + "/api/gateways/" + thLightPID + "/gw/"
	subs := func() string {
		_, _, raw := apiCall(t, "GET", base+"subdevices", "")
		return strings.TrimSpace(raw)
	}

	code, doc, raw := apiCall(t, "POST", base+"change", `{"status":1,"devices":[{"product_id":"ZPHBLEB4J5","device_name":"sub1"},{"product_id":"ZPHBLEB4J5","device_name":"sub2"}]}`)
	if code != 200 || !strings.Contains(string(mustJSON(doc["ack"])), `"result":0`) {
		t.Fatalf("change bind = %d %s", code, raw)
	}
	if got := subs(); got != `[{"product_id":"ZPHBLEB4J5","device_name":"sub1","online":false},{"product_id":"ZPHBLEB4J5","device_name":"sub2","online":false}]` {
		t.Fatalf("after bind: %s", got)
	}

	// A refused request changes nothing.
	if code, _, raw := apiCall(t, "POST", base+"change", `{"status":0,"devices":[{"product_id":"ZPHBLEB4J5","device_name":"sub1"},{"product_id":"ZPHBLEB4J5","device_name":"ghost"}]}`); code != 404 || !strings.Contains(raw, "ghost") {
		t.Fatalf("change with an unknown sub-device = %d %s", code, raw)
	}
	if got := subs(); !strings.Contains(got, "sub1") {
		t.Fatalf("a refused unbind removed sub1: %s", got)
	}
	for _, bad := range []struct{ route, body, want string }{
		{"change", `{"status":2,"devices":[{"product_id":"ZPHBLEB4J5","device_name":"sub1"}]}`, "status"},
		{"change", `{"status":1,"devices":[]}`, "devices"},
		{"change", `{"status":1,"devices":[{"product_id":"ZPHBLEB4J5"}]}`, "devices[0]"},
		{"search_devices", `{"status":1,"extra":true}`, `unknown field \"extra\"`},
		{"search_devices", `{}`, "status"},
		{"unbind_all", `{"all":1}`, `unknown field \"all\"`},
		{"describe_sub_devices", `{`, "not valid JSON"},
	} {
		if code, _, raw := apiCall(t, "POST", base+bad.route, bad.body); code != 400 || !strings.Contains(raw, bad.want) {
			t.Errorf("POST %s %s = %d %s, want 400 naming %s", bad.route, bad.body, code, raw, bad.want)
		}
	}

	code, doc, raw = apiCall(t, "POST", base+"describe_sub_devices", "")
	if code != 200 || !strings.Contains(string(mustJSON(doc["sent"])), `"sub2"`) || !strings.Contains(string(mustJSON(doc["ack"])), `"sub2"`) {
		t.Fatalf("describe_sub_devices = %d %s", code, raw)
	}
	code, doc, raw = apiCall(t, "POST", base+"search_devices", `{"status":1}`)
	if code != 200 || !strings.Contains(string(mustJSON(doc["ack"])), `"status":1`) {
		t.Fatalf("search_devices = %d %s", code, raw)
	}
	if code, _, raw := apiCall(t, "POST", base+"unbind_all", ""); code != 200 || !strings.Contains(raw, `"result":0`) {
		t.Fatalf("unbind_all = %d %s", code, raw)
	}
	if got := subs(); got != `[]` {
		t.Fatalf("after unbind_all: %s", got)
	}

	// Bound elsewhere: 409. Offline gateway: sent, no acknowledgement, 202.
	addLight(t, s, "gw2")
	if err := s.BindSubDevices(thLightPID, "gw2", DeviceID{thLightPID, "sub1"}); err != nil {
		t.Fatal(err)
	}
	if code, _, raw := apiCall(t, "POST", base+"change", `{"status":1,"devices":[{"product_id":"ZPHBLEB4J5","device_name":"sub1"}]}`); code != 409 || !strings.Contains(raw, "gw2") {
		t.Fatalf("bind of a sub-device bound elsewhere = %d %s", code, raw)
	}
	if code, doc, raw := apiCall(t, "POST", s.HTTPURL()+"/api/gateways/"+thLightPID+"/gw2/search_devices?timeout=200ms", `{"status":0}`); code != 202 || doc["ack"] != nil || !strings.Contains(raw, "no search_devices acknowledgement") {
		t.Fatalf("offline gateway = %d %s", code, raw)
	}
	if code, _, _ := apiCall(t, "POST", s.HTTPURL()+"/api/gateways/"+thLightPID+"/nobody/unbind_all", ""); code != 404 {
		t.Fatalf("unknown gateway = %d", code)
	}
}

// A gateway that keeps acknowledging cannot grow the platform: the newest maxGatewayAcks are
// kept, and sequence numbers stay absolute so WaitGatewayAck still finds the newest.
func TestGatewayAckLogBounded(t *testing.T) {
	s := newThingServer(t)
	addLight(t, s, "gw")
	id := DeviceID{thLightPID, "gw"}
	const n = maxGatewayAcks + 44
	for i := range n {
		s.gw.handle(uplink{Client: id, Device: id, Topic: "$gateway/operation/" + id.String(), Payload: []byte(fmt.Sprintf(`{"type":"search_devices","payload":{"status":%d,"result":0}}`, i))})
	}
	if l := s.gw.acks[id]; len(l.msgs) != maxGatewayAcks || l.base != n-maxGatewayAcks || cap(l.msgs) > 2*maxGatewayAcks {
		t.Fatalf("ack log: %d kept (cap %d), base %d", len(l.msgs), cap(l.msgs), l.base)
	}
	ack, next, err := s.WaitGatewayAck(thCtx(t), thLightPID, "gw", "search_devices", n-1)
	var m struct {
		Payload struct{ Status int } `json:"payload"`
	}
	if err != nil || next != n || json.Unmarshal(ack, &m) != nil || m.Payload.Status != n-1 {
		t.Fatalf("newest ack = %s next %d err %v", ack, next, err)
	}
	if _, next, err := s.WaitGatewayAck(thCtx(t), thLightPID, "gw", "search_devices", 0); err != nil || next != n-maxGatewayAcks+1 {
		t.Fatalf("since 0 after drops: next %d err %v (want the oldest kept)", next, err)
	}
}

// TestGatewayRole: GET /api/devices/{pid}/{dn} carries "gateway_role" for a device that
// subscribed to its own gateway reply topic or has sub-devices bound, and for no other; the
// console learns of a new gateway from a "gateway" event on the stream. Deleting the device
// forgets the role.
func TestGatewayRole(t *testing.T) {
	s := newThingServer(t)
	gwSecret := addLight(t, s, "gw")
	plainSecret := addLight(t, s, "plain")
	addLight(t, s, "hub2")
	addLight(t, s, "sub1")
	role := func(dn string) string {
		t.Helper()
		code, doc, raw := apiCall(t, "GET", s.HTTPURL()+"/api/devices/"+thLightPID+"/"+dn, "")
		if code != 200 {
			t.Fatalf("GET %s = %d %s", dn, code, raw)
		}
		if doc["gateway_role"] == nil {
			return ""
		}
		return string(mustJSON(doc["gateway_role"]))
	}
	stream := openStream(t, s, "?device="+thLightPID+"/gw")

	// A device subscribing to its data-template topics is no gateway.
	thConnect(t, s, thLightPID, "plain", plainSecret)
	user, pass := thSign(t, thLightPID, "gw", gwSecret, thNowMS()/1000+3600)
	gw := thConnectAs(t, s, thLightPID, "gw", user, pass, 4, []string{"property"})
	for _, dn := range []string{"plain", "gw"} {
		if r := role(dn); r != "" {
			t.Fatalf("%s has a gateway role before subscribing as a gateway: %s", dn, r)
		}
	}
	gw.subscribe("$gateway/operation/result/" + thLightPID + "/gw")
	for {
		typ, data := stream.next(t)
		if typ == "gateway" {
			if data["device"] != thLightPID+"/gw" {
				t.Fatalf("gateway event for %v, want %s/gw", data["device"], thLightPID)
			}
			break
		}
	}
	if r := role("gw"); r != `{"sub_devices":0,"subscribed":true}` {
		t.Fatalf("gateway role after subscribing: %s", r)
	}

	// A device with sub-devices is a gateway even before it connects; its sub-device is not.
	if err := s.BindSubDevices(thLightPID, "hub2", DeviceID{thLightPID, "sub1"}); err != nil {
		t.Fatal(err)
	}
	if r := role("hub2"); r != `{"sub_devices":1,"subscribed":false}` {
		t.Fatalf("role of a gateway with a sub-device: %s", r)
	}
	if r := role("sub1"); r != "" {
		t.Fatalf("a sub-device has a gateway role: %s", r)
	}

	if err := s.RemoveDevice(thLightPID, "gw"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice(thLightPID, "gw"); err != nil {
		t.Fatal(err)
	}
	if r := role("gw"); r != "" {
		t.Fatalf("a deleted and re-created device kept its gateway role: %s", r)
	}
}
