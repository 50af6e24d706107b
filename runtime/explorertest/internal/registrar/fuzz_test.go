package registrar

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

// FuzzHandler: any request body and signature headers get a well-formed platform answer of the
// API's shape, never a panic.
func FuzzHandler(f *testing.F) {
	f.Add(true, `{"ProductId":"PSKPROD001","DeviceName":"dev"}`, "hmacsha256", "1700000000", "1", "sig", "127.0.0.1:8080")
	f.Add(false, `{"deviceName":"dev","nonce":1,"productId":"PSKPROD001","timestamp":1700000000,"signature":"x"}`, "", "", "", "", "")
	f.Add(false, `{"nonce":1e99}`, "", "", "", "", "[::1]:80")
	f.Add(true, `{}`, "hmacsha256", "1", "1", "x", ":")
	f.Fuzz(func(t *testing.T, v2 bool, body, alg, ts, nonce, sig, host string) {
		r, err := New(newMemDevicesNoCert())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetProduct("PSKPROD001", Product{Secret: secret, Enabled: true, AutoCreate: true, Credential: PSK}); err != nil {
			t.Fatal(err)
		}
		path := PathLegacy
		if v2 {
			path = PathV2
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Host = host // signed with or without its port (signedHostMatches)
		for k, v := range map[string]string{"X-TC-Algorithm": alg, "X-TC-Timestamp": ts, "X-TC-Nonce": nonce, "X-TC-Signature": sig} {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if v2 {
			if _, ok := m["Response"].(map[string]any); !ok {
				t.Fatalf("v2 answer without Response: %v", m)
			}
		} else if _, ok := m["code"].(float64); !ok {
			t.Fatalf("legacy answer without numeric code: %v", m)
		}
	})
}

func newMemDevicesNoCert() *memDevices {
	return &memDevices{state: map[string]DeviceState{}, kind: map[string]Credential{}}
}
