package explorertest

import (
	"testing"
)

// FuzzHTTPPublishBody feeds arbitrary /device/publish bodies (after the signature check) to
// the decoding and validation of an HTTP publish: it must answer an error or accept, never panic.
func FuzzHTTPPublishBody(f *testing.F) {
	s, err := NewServer()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	if _, err := s.AddDevice("FUZZPROD01", "dev1"); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"ProductId":"FUZZPROD01","DeviceName":"dev1","TopicName":"FUZZPROD01/dev1/x","Payload":"aGk=","PayloadEncoding":"base64","Qos":1}`))
	f.Add([]byte(`{"TopicName":"$thing/up/property/FUZZPROD01/dev1","Payload":"{}","Qos":7}`))
	f.Add([]byte(`{"TopicName":"FUZZPROD01/dev1/#","PayloadEncoding":"hex"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var m httpPublishBody
		if err := unmarshalUntrusted(body, &m); err != nil {
			return
		}
		if e := s.httpPublish(DeviceID{"FUZZPROD01", "dev1"}, m); e != nil && (e.code == "" || e.message == "") {
			t.Fatalf("refusal without code or message: %+v", e)
		}
	})
}
