package registrar

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// pythonSDKSignature signs a registration request as the official Python SDK does
// (hub/hub.py, dynregDevice): "POST\n{host}\n/device/register\n\nhmacsha256\n{ts}\n{nonce}\n
// {hex sha256(body)}", HMAC-SHA256 with the product secret, base64. The SDK puts the
// endpoint's host NAME there, never a port.
func pythonSDKSignature(productSecret, host string, ts, nonce int64, body string) string {
	sum := sha256.Sum256([]byte(body))
	text := fmt.Sprintf("%s\n%s\n%s\n%s\n%s\n%d\n%d\n%s", "POST", host, "/device/register", "", "hmacsha256", ts, nonce, hex.EncodeToString(sum[:]))
	m := hmac.New(sha256.New, []byte(productSecret))
	m.Write([]byte(text))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestV2SignatureOverHostWithOrWithoutPort(t *testing.T) {
	hostPort := func(f *fixture) string { return strings.TrimPrefix(f.srv.URL, "http://") }
	hostName := func(f *fixture) string { h, _, _ := net.SplitHostPort(hostPort(f)); return h }
	for _, tc := range []struct {
		name   string
		secret string
		host   func(*fixture) string
		ok     bool
	}{
		{"python SDK: host name without the port", secret, hostName, true},
		{"host as in the Host header", secret, hostPort, true},
		{"another port", secret, func(f *fixture) string { return hostName(f) + ":1" }, false},
		{"another host", secret, func(*fixture) string { return "ap-guangzhou.gateway.tencentdevices.com" }, false},
		{"wrong secret, host name", "WrongProductSecret000000", hostName, false},
		{"wrong secret, host and port", "WrongProductSecret000000", hostPort, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			body := `{"ProductId":"` + pskPID + `","DeviceName":"dev"}`
			hdr := map[string]string{
				"Content-Type":   "application/json; charset=utf-8",
				"X-TC-Algorithm": "hmacsha256",
				"X-TC-Timestamp": strconv.Itoa(fixedClock),
				"X-TC-Nonce":     "1234567",
				"X-TC-Signature": pythonSDKSignature(tc.secret, tc.host(f), fixedClock, 1234567, body),
			}
			status, m := raw(t, f, http.MethodPost, PathV2, hdr, body)
			if tc.ok {
				r, _ := m["Response"].(map[string]any)
				if status != http.StatusOK || r["Payload"] == nil {
					t.Fatalf("status %d, answer %v; want the encrypted payload", status, m)
				}
				return
			}
			if code, _ := v2Error(t, m); code != CodeSignature {
				t.Fatalf("status %d, code %s; want %s", status, code, CodeSignature)
			}
		})
	}
}

func TestSignedHostMatchesIPv6(t *testing.T) {
	body := []byte("{}")
	sig := v2Signature(secret, "[::1]", PathV2, "hmacsha256", "1", "2", body)
	if !signedHostMatches(sig, secret, "[::1]:8080", PathV2, "hmacsha256", "1", "2", body) {
		t.Error("IPv6 host signed without the port refused")
	}
	if signedHostMatches(sig, secret, "[::2]:8080", PathV2, "hmacsha256", "1", "2", body) {
		t.Error("signature over another IPv6 host accepted")
	}
}
