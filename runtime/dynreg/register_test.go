package dynreg

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// cannedPlatform is a real HTTP server that checks the request shape and signature of both API
// generations and answers with the documentation's worked example (secret docSecret, PSK docPSK),
// or with a fixed answer when one is set.
type cannedPlatform struct {
	t      *testing.T
	status int
	answer string // raw body, sent when raw or non-empty
	raw    bool   // send answer even when empty

	mu   sync.Mutex
	seen []*http.Request
}

func (p *cannedPlatform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.seen = append(p.seen, r)
	p.mu.Unlock()
	status := p.status
	if status == 0 {
		status = http.StatusOK
	}
	if p.answer != "" || p.raw {
		w.WriteHeader(status)
		io.WriteString(w, p.answer)
		return
	}
	switch r.URL.Path {
	case PathV2:
		ts, _ := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
		nonce, _ := strconv.ParseInt(r.Header.Get("X-TC-Nonce"), 10, 64)
		want := SignV2(docSecret, StringToSign(r.Host, r.URL.Path, r.Header.Get("X-TC-Algorithm"), ts, nonce, body))
		if r.Header.Get("X-TC-Signature") != want || r.Header.Get("X-TC-Algorithm") != "hmacsha256" {
			p.t.Errorf("v2 request badly signed: headers %v", r.Header)
		}
		io.WriteString(w, `{"Response":{"Len":53,"Payload":"`+docPayload+`","RequestId":"r-1"}}`)
	case PathLegacy:
		var b legacyRequest
		if err := json.Unmarshal(body, &b); err != nil {
			p.t.Errorf("legacy body: %v", err)
		}
		if b.Signature != SignLegacy(docSecret, LegacyStringToSign(b.ProductID, b.DeviceName, b.Nonce, b.Timestamp)) {
			p.t.Errorf("legacy request badly signed: %s", body)
		}
		io.WriteString(w, `{"code":0,"message":"success","len":53,"payload":"`+docPayload+`"}`)
	default:
		http.NotFound(w, r)
	}
}

// logBuffer collects every log record at debug level so tests can look for leaked secrets.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func tlsPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

func docRequest(endpoint string, api APIVersion) Request {
	return Request{ProductID: "Q51820J3QD", ProductSecret: docSecret, DeviceName: "light_001", Endpoint: endpoint, API: api}
}

func TestRegisterOverHTTPS(t *testing.T) {
	for _, api := range []APIVersion{V2, Legacy} {
		t.Run(api.String(), func(t *testing.T) {
			plat := &cannedPlatform{t: t}
			srv := httptest.NewTLSServer(plat)
			defer srv.Close()
			var logs logBuffer
			c, err := Register(ctx10s(t), docRequest(srv.URL, api), WithRootCAs(tlsPool(srv)), WithLogger(logs.logger()))
			if err != nil {
				t.Fatal(err)
			}
			if c.DeviceSecret != docPSK || c.ProductID != "Q51820J3QD" || c.DeviceName != "light_001" || c.Kind() != "psk" {
				t.Fatalf("credentials %+v", *c)
			}
			if len(plat.seen) != 1 || plat.seen[0].URL.Path != api.Path() || plat.seen[0].Method != http.MethodPost {
				t.Fatalf("platform saw %v", plat.seen)
			}
			assertNoSecrets(t, logs.String())
			if !strings.Contains(logs.String(), "registered") {
				t.Fatalf("no success log: %s", logs.String())
			}
		})
	}
}

func TestRegisterEndpointPrefix(t *testing.T) {
	plat := &cannedPlatform{t: t}
	mux := http.NewServeMux()
	mux.Handle("/gw/", http.StripPrefix("/gw", plat))
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	// The signed path is the full request path; the canned platform sees the stripped one, so only
	// the legacy form (path not signed) is checked here.
	c, err := Register(ctx10s(t), docRequest(srv.URL+"/gw/", Legacy), WithRootCAs(tlsPool(srv)))
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceSecret != docPSK {
		t.Fatalf("secret %q", c.DeviceSecret)
	}
}

func TestRegisterPlainHTTPNeedsOption(t *testing.T) {
	srv := httptest.NewServer(&cannedPlatform{t: t})
	defer srv.Close()
	_, err := Register(ctx10s(t), docRequest(srv.URL, V2))
	if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "WithInsecureHTTP") {
		t.Fatalf("err = %v", err)
	}
	c, err := Register(ctx10s(t), docRequest(srv.URL, V2), WithInsecureHTTP())
	if err != nil || c.DeviceSecret != docPSK {
		t.Fatalf("creds %v err %v", c, err)
	}
}

func TestRegisterUntrustedServer(t *testing.T) {
	srv := httptest.NewTLSServer(&cannedPlatform{t: t})
	defer srv.Close()
	// Default trust is the Tencent root CA, which did not sign httptest's certificate.
	_, err := Register(ctx10s(t), docRequest(srv.URL, V2))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate verification error", err)
	}
}

func TestRegisterPlatformErrors(t *testing.T) {
	cases := []struct {
		name   string
		api    APIVersion
		status int
		answer string
		want   Error
	}{
		{"legacy code", Legacy, 200, `{"code":1021,"message":"device has been activated"}`,
			Error{API: Legacy, HTTPStatus: 200, Code: "1021", Message: "device has been activated"}},
		{"legacy string code", Legacy, 200, `{"code":"E1","message":"nope"}`,
			Error{API: Legacy, HTTPStatus: 200, Code: "E1", Message: "nope"}},
		{"legacy code 0 with HTTP 500", Legacy, 500, `{"code":0,"message":"odd"}`,
			Error{API: Legacy, HTTPStatus: 500, Code: "0", Message: "odd"}},
		{"v2 error", V2, 200, `{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad sig"},"RequestId":"abc-123"}}`,
			Error{API: V2, HTTPStatus: 200, Code: "AuthFailure.SignatureFailure", Message: "bad sig", RequestID: "abc-123"}},
		{"v2 error with 403", V2, 403, `{"Response":{"Error":{"Code":"X","Message":"m"},"RequestId":"r"}}`,
			Error{API: V2, HTTPStatus: 403, Code: "X", Message: "m", RequestID: "r"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(&cannedPlatform{t: t, status: tc.status, answer: tc.answer})
			defer srv.Close()
			var logs logBuffer
			_, err := Register(ctx10s(t), docRequest(srv.URL, tc.api), WithRootCAs(tlsPool(srv)), WithLogger(logs.logger()))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if *pe != tc.want {
				t.Fatalf("error %+v, want %+v", *pe, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want.Code) || !strings.Contains(err.Error(), tc.want.Message) {
				t.Fatalf("message %q lacks code/message", err)
			}
			assertNoSecrets(t, err.Error()+logs.String())
		})
	}
}

func TestRegisterBadResponses(t *testing.T) {
	cases := []struct {
		name   string
		api    APIVersion
		status int
		answer string
		want   []string
	}{
		{"html 502", V2, 502, "<html>bad gateway</html>", []string{"HTTP 502 Bad Gateway", "bad gateway", PathV2}},
		{"empty 500", Legacy, 500, "", []string{"HTTP 500", "empty body"}},
		{"empty 200", V2, 200, "", []string{"HTTP 200", "not a registration JSON object"}},
		{"not json", V2, 200, "hello", []string{"not a registration JSON object"}},
		{"legacy not json", Legacy, 200, "[1,2]", []string{"not a legacy registration JSON object"}},
		{"v2 no Response", V2, 200, `{"code":0}`, []string{`no "Response"`}},
		{"v2 no payload", V2, 200, `{"Response":{"RequestId":"x"}}`, []string{`no "Payload"`}},
		{"v2 non-2xx without error", V2, 500, `{"Response":{"RequestId":"x"}}`, []string{"HTTP 500", "without Error"}},
		{"legacy no code", Legacy, 200, `{"payload":"x"}`, []string{`no "code"`}},
		{"legacy no payload", Legacy, 200, `{"code":0}`, []string{`no "payload"`}},
		{"legacy bad code", Legacy, 200, `{"code":true}`, []string{"not a legacy registration JSON object"}},
		{"redirect", V2, 302, "", []string{"HTTP 302"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(&cannedPlatform{t: t, status: tc.status, answer: tc.answer, raw: true})
			defer srv.Close()
			_, err := Register(ctx10s(t), docRequest(srv.URL, tc.api), WithRootCAs(tlsPool(srv)))
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestRegisterPayloadProblems(t *testing.T) {
	v := loadVectors(t)
	cert := v.Decrypt[1] // fake PEM bodies: decrypts fine, but is not a usable key pair
	cases := []struct {
		name, secret, answer, want string
	}{
		{"wrong product secret", "AnotherSecret123456", `{"code":0,"len":53,"payload":"` + docPayload + `"}`, "wrong ProductSecret"},
		{"unusable certificate", cert.ProductSecret, `{"code":0,"len":` + strconv.Itoa(cert.Len) + `,"payload":"` + cert.Payload + `"}`, "certificate/key pair is unusable"},
		{"payload not base64", docSecret, `{"code":0,"len":5,"payload":"@@@"}`, "not base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(&cannedPlatform{t: t, answer: tc.answer})
			defer srv.Close()
			req := docRequest(srv.URL, Legacy)
			req.ProductSecret = tc.secret
			_, err := Register(ctx10s(t), req, WithRootCAs(tlsPool(srv)))
			if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrPayload mentioning %q", err, tc.want)
			}
			assertNoSecrets(t, err.Error())
			if strings.Contains(err.Error(), tc.secret) || strings.Contains(err.Error(), "MIIBfake") {
				t.Fatalf("error leaks secret material: %v", err)
			}
		})
	}
}

func TestRegisterInvalidRequests(t *testing.T) {
	good := docRequest("https://127.0.0.1:1", V2)
	cases := []struct {
		name string
		mod  func(*Request)
		opts []Option
		want string
	}{
		{"no product", func(r *Request) { r.ProductID = "" }, nil, "ProductID is empty"},
		{"no device", func(r *Request) { r.DeviceName = "" }, nil, "DeviceName is empty"},
		{"short secret", func(r *Request) { r.ProductSecret = "abc" }, nil, "ProductSecret is 3 bytes"},
		{"bad api", func(r *Request) { r.API = 7 }, nil, "APIVersion(7)"},
		{"unknown region", func(r *Request) { r.Endpoint = ""; r.Region = "mars" }, nil, `unknown region "mars"`},
		{"endpoint without host", func(r *Request) { r.Endpoint = "/just/a/path" }, nil, "has no host"},
		{"endpoint with query", func(r *Request) { r.Endpoint = "https://h/?a=b" }, nil, "query"},
		{"endpoint scheme", func(r *Request) { r.Endpoint = "ftp://h" }, nil, "scheme must be https"},
		{"endpoint user", func(r *Request) { r.Endpoint = "https://u:p@h" }, nil, "user info"},
		{"endpoint garbage", func(r *Request) { r.Endpoint = "https://h:port:x" }, nil, "Endpoint"},
		{"conflicting options", func(*Request) {}, []Option{WithHTTPClient(http.DefaultClient), WithRootCAs(x509.NewCertPool())}, "cannot be combined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.mod(&r)
			_, err := Register(ctx10s(t), r, tc.opts...)
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidRequest mentioning %q", err, tc.want)
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestRegisterContextCanceled(t *testing.T) {
	arrived, stop := make(chan struct{}), make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		close(arrived)
		<-stop // never answer while the test runs: only the caller's cancel can end the request
	}))
	defer srv.Close()
	defer close(stop)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-arrived
		cancel()
	}()
	_, err := Register(ctx, docRequest(srv.URL, V2), WithRootCAs(tlsPool(srv)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestRegionHost(t *testing.T) {
	for region, want := range map[string]string{
		"":           "ap-guangzhou.gateway.tencentdevices.com",
		"china":      "ap-guangzhou.gateway.tencentdevices.com",
		"us-east":    "us-east.gateway.tencentdevices.com",
		"Europe":     "europe.gateway.tencentdevices.com",
		"ap-bangkok": "ap-bangkok.gateway.tencentdevices.com",
	} {
		got, err := RegionHost(region)
		if err != nil || got != want {
			t.Errorf("RegionHost(%q) = %q, %v; want %q", region, got, err, want)
		}
	}
	u, err := Request{ProductID: "P", DeviceName: "d", ProductSecret: docSecret, Region: "us-east", API: Legacy}.url(false)
	if err != nil || u.String() != "https://us-east.gateway.tencentdevices.com/register/dev" {
		t.Fatalf("url %v, %v", u, err)
	}
}

func TestRequestAndCredentialsRedacted(t *testing.T) {
	r := docRequest("https://x", V2)
	c := &Credentials{ProductID: "P", DeviceName: "d", DeviceSecret: docPSK, KeyPEM: []byte("PRIVATE")}
	var logs logBuffer
	logs.logger().Info("x", "req", r, "creds", c)
	var out bytes.Buffer
	for _, v := range []any{r, &r, c} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			out.WriteString(sprintf(f, v))
		}
	}
	out.WriteString(logs.String())
	assertNoSecrets(t, out.String())
	if strings.Contains(out.String(), "PRIVATE") || strings.Contains(Request{Endpoint: "https://u:hunter2@h"}.String(), "hunter2") {
		t.Fatalf("key leaked: %s", out.String())
	}
}

// assertNoSecrets fails when text contains the documentation example's ProductSecret or PSK.
func assertNoSecrets(t *testing.T, text string) {
	t.Helper()
	for _, s := range []string{docSecret, docPSK, "PRIVATE KEY"} {
		if strings.Contains(text, s) {
			t.Fatalf("secret %q leaked into: %s", s, text)
		}
	}
}

func sprintf(format string, v any) string { return fmt.Sprintf(format, v) }

func TestRegisterWithHTTPClient(t *testing.T) {
	srv := httptest.NewTLSServer(&cannedPlatform{t: t})
	defer srv.Close()
	c, err := Register(ctx10s(t), docRequest(srv.URL, V2), WithHTTPClient(srv.Client()))
	if err != nil || c.DeviceSecret != docPSK {
		t.Fatalf("creds %v, err %v", c, err)
	}
}
