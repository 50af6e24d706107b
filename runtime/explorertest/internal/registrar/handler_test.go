package registrar

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/dynreg"
)

const (
	pskPID     = "PSKPROD001"
	certPID    = "CERTPROD01"
	secret     = "TestProductSecret0123456"
	devicePSK  = "ZmFrZS1wc2stMDEyMzQ1Ng=="
	fixedClock = 1700000000
)

// memDevices is an in-memory registry standing in for the platform server's.
type memDevices struct {
	mu        sync.Mutex
	state     map[string]DeviceState
	kind      map[string]Credential
	fail      bool // every registry call fails
	certCalls int
	certPEM   []byte
	keyPEM    []byte
}

func newMemDevices(t *testing.T) *memDevices {
	c, k := selfSigned(t)
	return &memDevices{state: map[string]DeviceState{}, kind: map[string]Credential{}, certPEM: c, keyPEM: k}
}

func (m *memDevices) set(pid, dn string, s DeviceState, kind Credential) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state[pid+"/"+dn], m.kind[pid+"/"+dn] = s, kind
}

func (m *memDevices) State(pid, dn string) DeviceState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state[pid+"/"+dn]
}

func (m *memDevices) Create(pid, dn string, kind Credential) error {
	if m.fail {
		return errors.New("registry down")
	}
	m.set(pid, dn, DeviceInactive, kind)
	return nil
}

func (m *memDevices) PSK(pid, dn string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail || m.kind[pid+"/"+dn] != PSK {
		return "", errors.New("not a psk device")
	}
	return devicePSK, nil
}

func (m *memDevices) Certificate(pid, dn string) ([]byte, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail || m.kind[pid+"/"+dn] != Cert {
		return nil, nil, errors.New("not a cert device")
	}
	m.certCalls++
	return m.certPEM, m.keyPEM, nil
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: certPID + "dev"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	reg  *Registrar
	devs *memDevices
	srv  *httptest.Server
	logs *syncBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{devs: newMemDevices(t), logs: &syncBuffer{}}
	var err error
	f.reg, err = New(f.devs, WithClock(func() time.Time { return time.Unix(fixedClock, 0) }),
		WithLogger(slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	must(t, f.reg.SetProduct(pskPID, Product{Secret: secret, Enabled: true, Credential: PSK}))
	must(t, f.reg.SetProduct(certPID, Product{Secret: secret, Enabled: true, Credential: Cert}))
	f.devs.set(pskPID, "dev", DeviceInactive, PSK)
	f.devs.set(certPID, "dev", DeviceInactive, Cert)
	f.srv = httptest.NewServer(f.reg)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() {
		for _, s := range []string{secret, devicePSK, "PRIVATE KEY"} {
			if strings.Contains(f.logs.String(), s) {
				t.Errorf("registrar logs leak %q:\n%s", s, f.logs.String())
			}
		}
	})
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// register uses the device-side client, so success paths cross-check both implementations.
func (f *fixture) register(t *testing.T, pid, dn string, api dynreg.APIVersion) (*dynreg.Credentials, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return dynreg.Register(ctx, dynreg.Request{ProductID: pid, ProductSecret: secret, DeviceName: dn, Endpoint: f.srv.URL, API: api},
		dynreg.WithInsecureHTTP(), dynreg.WithClock(func() time.Time { return time.Unix(fixedClock, 0) }))
}

var apis = []dynreg.APIVersion{dynreg.V2, dynreg.Legacy}

func TestRegisterPSKAndCert(t *testing.T) {
	for _, api := range apis {
		t.Run(api.String(), func(t *testing.T) {
			f := newFixture(t)
			c, err := f.register(t, pskPID, "dev", api)
			if err != nil {
				t.Fatal(err)
			}
			if c.DeviceSecret != devicePSK {
				t.Fatalf("psk %q", c.DeviceSecret)
			}
			c, err = f.register(t, certPID, "dev", api)
			if err != nil {
				t.Fatal(err)
			}
			if string(c.CertPEM) != string(f.devs.certPEM) || string(c.KeyPEM) != string(f.devs.keyPEM) {
				t.Fatal("certificate/key differ from the issued ones")
			}
			// Registration may be repeated until the device connects.
			if _, err := f.register(t, certPID, "dev", api); err != nil {
				t.Fatal(err)
			}
			if f.devs.certCalls != 2 {
				t.Fatalf("certificate issued %d times, want 2", f.devs.certCalls)
			}
		})
	}
}

func TestAutoCreate(t *testing.T) {
	for _, api := range apis {
		t.Run(api.String(), func(t *testing.T) {
			f := newFixture(t)
			_, err := f.register(t, pskPID, "newdev", api)
			assertPlatformError(t, err, api, CodeDeviceNotExist, LegacyDeviceNotExist, "auto-create is off")
			must(t, f.reg.SetProduct(pskPID, Product{Secret: secret, Enabled: true, AutoCreate: true, Credential: PSK}))
			if _, err := f.register(t, pskPID, "newdev", api); err != nil {
				t.Fatal(err)
			}
			if f.devs.State(pskPID, "newdev") != DeviceInactive {
				t.Fatal("device not created")
			}
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, api := range apis {
		t.Run(api.String(), func(t *testing.T) {
			f := newFixture(t)
			_, err := f.register(t, "NOSUCHPROD", "dev", api)
			assertPlatformError(t, err, api, CodeProductNotExist, LegacyProductNotExist, "NOSUCHPROD")

			f.devs.set(pskPID, "dev", DeviceActivated, PSK)
			_, err = f.register(t, pskPID, "dev", api)
			assertPlatformError(t, err, api, CodeActivated, LegacyActivated, "already activated")

			must(t, f.reg.SetProduct(pskPID, Product{Secret: secret, Enabled: false, Credential: PSK}))
			_, err = f.register(t, pskPID, "dev", api)
			assertPlatformError(t, err, api, CodeDisabled, LegacyDisabled, "disabled")

			f.devs.fail = true
			_, err = f.register(t, certPID, "dev", api)
			assertPlatformError(t, err, api, CodeInternal, LegacyInternal, "no certificate")
		})
	}
}

func TestBadSignatureAndClock(t *testing.T) {
	for _, api := range apis {
		t.Run(api.String(), func(t *testing.T) {
			f := newFixture(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req := dynreg.Request{ProductID: pskPID, ProductSecret: "WrongProductSecret000000", DeviceName: "dev", Endpoint: f.srv.URL, API: api}
			_, err := dynreg.Register(ctx, req, dynreg.WithInsecureHTTP())
			assertPlatformError(t, err, api, CodeSignature, LegacySignature, "signature")
			// The emulator's log names the device a refusal was for (its only debugger).
			if logs := f.logs.String(); !strings.Contains(logs, `registration rejected" product=`+pskPID+" device=dev ") {
				t.Errorf("refusal log does not name the device:\n%s", logs)
			}

			req.ProductSecret = secret
			for _, skew := range []time.Duration{-301 * time.Second, 301 * time.Second} {
				_, err = dynreg.Register(ctx, req, dynreg.WithInsecureHTTP(),
					dynreg.WithClock(func() time.Time { return time.Unix(fixedClock, 0).Add(skew) }))
				assertPlatformError(t, err, api, CodeExpired, LegacyExpired, "outside ±300s")
			}
			_, err = dynreg.Register(ctx, req, dynreg.WithInsecureHTTP(),
				dynreg.WithClock(func() time.Time { return time.Unix(fixedClock, 0).Add(299 * time.Second) }))
			if err != nil {
				t.Fatalf("timestamp inside the window rejected: %v", err)
			}
		})
	}
}

func assertPlatformError(t *testing.T, err error, api dynreg.APIVersion, code string, legacy int, msg string) {
	t.Helper()
	var pe *dynreg.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *dynreg.Error", err)
	}
	want := code
	if api == dynreg.Legacy {
		want = strconv.Itoa(legacy)
	}
	if pe.Code != want || !strings.Contains(pe.Message, msg) {
		t.Fatalf("error %+v, want code %s and message containing %q", *pe, want, msg)
	}
	if api == dynreg.V2 && pe.RequestID == "" {
		t.Fatal("v2 error without RequestId")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatal("error leaks the ProductSecret")
	}
}

// raw sends a hand-built request and decodes the platform's answer.
func raw(t *testing.T, f *fixture, method, path string, hdr map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	must(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer is not JSON: %q", b)
	}
	return resp.StatusCode, m
}

func v2Headers(f *fixture, body string, mutate func(h map[string]string)) map[string]string {
	host := strings.TrimPrefix(f.srv.URL, "http://")
	sts := dynreg.StringToSign(host, PathV2, "hmacsha256", fixedClock, 42, []byte(body))
	h := map[string]string{
		"X-TC-Algorithm": "hmacsha256", "X-TC-Timestamp": strconv.Itoa(fixedClock), "X-TC-Nonce": "42",
		"X-TC-Signature": dynreg.SignV2(secret, sts), "Content-Type": "application/json; charset=utf-8",
	}
	if mutate != nil {
		mutate(h)
	}
	return h
}

func v2Error(t *testing.T, m map[string]any) (code, msg string) {
	t.Helper()
	r, _ := m["Response"].(map[string]any)
	e, _ := r["Error"].(map[string]any)
	if r == nil || e == nil || r["RequestId"] == "" {
		t.Fatalf("not a v2 error answer: %v", m)
	}
	code, _ = e["Code"].(string)
	msg, _ = e["Message"].(string)
	return code, msg
}

func TestV2MalformedRequests(t *testing.T) {
	f := newFixture(t)
	good := `{"ProductId":"` + pskPID + `","DeviceName":"dev"}`
	cases := []struct {
		name, method, body string
		hdr                map[string]string
		status             int
		code, msg          string
	}{
		{"GET", "GET", "", nil, 405, CodeMethod, "use POST"},
		{"no algorithm", "POST", good, v2Headers(f, good, func(h map[string]string) { delete(h, "X-TC-Algorithm") }), 200, CodeInvalidParameter, "X-TC-Algorithm"},
		{"sha1 algorithm", "POST", good, v2Headers(f, good, func(h map[string]string) { h["X-TC-Algorithm"] = "hmacsha1" }), 200, CodeInvalidParameter, "not supported"},
		{"no signature", "POST", good, v2Headers(f, good, func(h map[string]string) { delete(h, "X-TC-Signature") }), 200, CodeInvalidParameter, "X-TC-Signature"},
		{"bad timestamp", "POST", good, v2Headers(f, good, func(h map[string]string) { h["X-TC-Timestamp"] = "soon" }), 200, CodeInvalidParameter, "X-TC-Timestamp"},
		{"bad nonce", "POST", good, v2Headers(f, good, func(h map[string]string) { h["X-TC-Nonce"] = "" }), 200, CodeInvalidParameter, "X-TC-Nonce"},
		{"body not json", "POST", "nope", v2Headers(f, "nope", nil), 200, CodeInvalidParameter, "not a JSON object"},
		{"body missing device", "POST", `{"ProductId":"X"}`, v2Headers(f, `{"ProductId":"X"}`, nil), 200, CodeInvalidParameter, "DeviceName"},
		{"body tampered", "POST", strings.Replace(good, "dev", "deV", 1), v2Headers(f, good, nil), 200, CodeSignature, "signature"},
		{"custom cert", "POST", `{"ProductId":"` + pskPID + `","DeviceName":"dev","EncryptionType":1,"ClientCert":"x"}`,
			v2Headers(f, `{"ProductId":"`+pskPID+`","DeviceName":"dev","EncryptionType":1,"ClientCert":"x"}`, nil), 200, CodeUnsupported, "custom ClientCert"},
		{"too large", "POST", strings.Repeat(" ", maxBody+1), nil, 413, CodeTooLarge, "exceeds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, m := raw(t, f, tc.method, PathV2, tc.hdr, tc.body)
			code, msg := v2Error(t, m)
			if status != tc.status || code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", status, code, msg, tc.status, tc.code, tc.msg)
			}
		})
	}
	// Mixed-case algorithm (the documentation's "HmacSha256") is accepted when signed as sent.
	host := strings.TrimPrefix(f.srv.URL, "http://")
	h := v2Headers(f, good, func(h map[string]string) {
		h["X-TC-Algorithm"] = "HmacSha256"
		h["X-TC-Signature"] = dynreg.SignV2(secret, dynreg.StringToSign(host, PathV2, "HmacSha256", fixedClock, 42, []byte(good)))
	})
	status, m := raw(t, f, "POST", PathV2, h, good)
	r, _ := m["Response"].(map[string]any)
	if status != 200 || r["Payload"] == nil || r["Len"] == nil {
		t.Fatalf("HmacSha256 request: %d %v", status, m)
	}
	plain, err := dynreg.Decrypt(secret, r["Payload"].(string), int(r["Len"].(float64)))
	must(t, err)
	if string(plain) != `{"encryptionType":2,"psk":"`+devicePSK+`"}` {
		t.Fatalf("plaintext %q", plain)
	}
}

func TestLegacyMalformedRequests(t *testing.T) {
	f := newFixture(t)
	body := func(fields map[string]any) string {
		b, _ := json.Marshal(fields)
		return string(b)
	}
	sig := dynreg.SignLegacy(secret, dynreg.LegacyStringToSign(pskPID, "dev", 7, fixedClock))
	full := map[string]any{"deviceName": "dev", "nonce": 7, "productId": pskPID, "timestamp": fixedClock, "signature": sig}
	without := func(k string) string {
		m := map[string]any{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return body(m)
	}
	cases := []struct {
		name, method, body string
		status, code       int
		msg                string
	}{
		{"GET", "GET", "", 405, LegacyMethod, "use POST"},
		{"not json", "POST", "deviceName=dev", 200, LegacyInvalidParameter, "not a JSON object"},
		{"no productId", "POST", without("productId"), 200, LegacyInvalidParameter, "productId"},
		{"no deviceName", "POST", without("deviceName"), 200, LegacyInvalidParameter, "deviceName"},
		{"no nonce", "POST", without("nonce"), 200, LegacyInvalidParameter, "nonce"},
		{"no timestamp", "POST", without("timestamp"), 200, LegacyInvalidParameter, "timestamp"},
		{"no signature", "POST", without("signature"), 200, LegacyInvalidParameter, "signature"},
		{"nonce changed", "POST", strings.Replace(body(full), `"nonce":7`, `"nonce":8`, 1), 200, LegacySignature, "signature"},
		{"too large", "POST", strings.Repeat(" ", maxBody+1), 413, LegacyTooLarge, "exceeds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The C SDK's content type, to show it is not held against the request.
			status, m := raw(t, f, tc.method, PathLegacy, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, tc.body)
			code, _ := m["code"].(float64)
			msg, _ := m["message"].(string)
			if status != tc.status || int(code) != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %v, want %d code %d containing %q", status, m, tc.status, tc.code, tc.msg)
			}
		})
	}
	status, m := raw(t, f, "POST", PathLegacy, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body(full))
	if status != 200 || m["code"] != float64(0) || m["payload"] == nil || m["len"] == nil {
		t.Fatalf("valid legacy request: %d %v", status, m)
	}
}

func TestUnknownPathAndConfig(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Post(f.srv.URL+"/other", "application/json", nil)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		pid string
		p   Product
	}{
		{"", Product{Secret: secret, Credential: PSK}},
		{"P", Product{Secret: "short", Credential: PSK}},
		{"P", Product{Secret: secret, Credential: "x509"}},
	} {
		if err := f.reg.SetProduct(tc.pid, tc.p); err == nil {
			t.Errorf("SetProduct(%q, %+v) accepted", tc.pid, tc.p)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks secret: %v", err)
		}
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil) accepted")
	}
	if _, err := New(f.devs, WithMaxSkew(0)); err == nil {
		t.Fatal("zero skew accepted")
	}
	if s := NewProductSecret(); len(s) != 24 || s == NewProductSecret() {
		t.Fatalf("NewProductSecret %q", s)
	}
}

func TestMount(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	f.reg.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, api := range apis {
		c, err := dynreg.Register(ctx, dynreg.Request{ProductID: pskPID, ProductSecret: secret, DeviceName: "dev", Endpoint: srv.URL, API: api},
			dynreg.WithInsecureHTTP(), dynreg.WithClock(func() time.Time { return time.Unix(fixedClock, 0) }))
		if err != nil || c.DeviceSecret != devicePSK {
			t.Fatalf("%s via mux: %v %v", api, c, err)
		}
	}

}
