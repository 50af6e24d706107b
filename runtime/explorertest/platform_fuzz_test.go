package explorertest

import "testing"

// FuzzServiceAndGatewayUplink feeds arbitrary payloads to the binding feature's
// $thing/up/service handler and the gateway's $gateway/operation handler: neither may panic,
// and no payload may bind the device without a token issued for it, or bind a sub-device without
// its signature.
func FuzzServiceAndGatewayUplink(f *testing.F) {
	s, err := NewServer()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	for _, dn := range []string{"dev1", "dev2"} {
		if _, err := s.AddDevice("FUZZPROD01", dn); err != nil {
			f.Fatal(err)
		}
	}
	other, err := s.IssueAppToken("FUZZPROD01", "dev2", "eve", 0)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"method":"app_bind_token","clientToken":"a","params":{"token":"` + other.Token + `"}}`,
		`{"method":"app_bind_token","params":{"token":null}}`,
		`{"method":"unbind_device_request","clientToken":"b","deviceName":"dev1","productId":"FUZZPROD01"}`,
		`{"method":"unbind_device_request","deviceName":7}`,
		`{"type":"bind","payload":{"devices":[{"product_id":"FUZZPROD01","device_name":"dev2","signature":"AA==","random":1,"timestamp":1,"signmethod":"hmacsha1"}]}}`,
		`{"type":"describe_sub_devices"}`, `{"type":"change","payload":{"status":1}}`, `[]`, ``, `{"method":`,
	} {
		f.Add(false, []byte(seed))
		f.Add(true, []byte(seed))
	}
	id := DeviceID{"FUZZPROD01", "dev1"}
	f.Fuzz(func(t *testing.T, gateway bool, payload []byte) {
		if gateway {
			s.gw.handle(uplink{Client: id, Device: id, Topic: "$gateway/operation/" + id.String(), Payload: payload})
			if subs := s.SubDevices(id.ProductID, id.DeviceName); len(subs) != 0 {
				t.Fatalf("%q bound %v without a valid signature", payload, subs)
			}
			return
		}
		s.bind.handle(uplink{Client: id, Device: id, Topic: "$thing/up/service/" + id.String(), Payload: payload})
		if b, ok := s.Binding(id.ProductID, id.DeviceName); ok {
			t.Fatalf("%q bound dev1 to %q without a token for it", payload, b.User)
		}
	})
}
