package devhttp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, key any, pub any) *x509.Certificate {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dev"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func signedRequest(t *testing.T, s *Signer, host string, body []byte, now time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://"+host+"/device/publish", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRequest(req, body, s, now); err != nil {
		t.Fatal(err)
	}
	// What a server sees: Host header and the path.
	req.Host = host
	return req
}

func TestSignVerifyAllAlgorithms(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"ProductId":"P","DeviceName":"d"}`)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := NewSecretSigner("c2VjcmV0c2VjcmV0MTIzNA==")
	rs, _ := NewKeySigner(rk)
	es, _ := NewKeySigner(ek)
	cases := []struct {
		name string
		s    *Signer
		cred Credentials
		alg  string
	}{
		{"hmac", hs, Credentials{Secret: "c2VjcmV0c2VjcmV0MTIzNA=="}, AlgHMACSHA256},
		{"rsa", rs, Credentials{Certificate: selfSigned(t, rk, &rk.PublicKey)}, AlgRSASHA256},
		{"ecdsa", es, Credentials{Certificate: selfSigned(t, ek, &ek.PublicKey)}, AlgECDSASHA256},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, host := range []string{"127.0.0.1:8443", "gw.example.com"} {
				req := signedRequest(t, c.s, host, body, now)
				if got := req.Header.Get(HeaderAlgorithm); got != c.alg {
					t.Fatalf("algorithm %q, want %q", got, c.alg)
				}
				if err := Verify(req, body, c.cred, now.Add(10*time.Second), time.Minute); err != nil {
					t.Fatalf("host %s: %v", host, err)
				}
				if err := Verify(req, append([]byte(nil), append(body, ' ')...), c.cred, now, time.Minute); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("tampered body: %v, want ErrBadSignature", err)
				}
				if err := Verify(req, body, c.cred, now.Add(time.Hour), time.Minute); !errors.Is(err, ErrExpired) {
					t.Fatalf("late: %v, want ErrExpired", err)
				}
			}
		})
	}
	// A key device's signature checked against a certificate, and the reverse.
	req := signedRequest(t, hs, "h", body, now)
	if err := Verify(req, body, cases[1].cred, now, time.Minute); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("hmac against a certificate: %v", err)
	}
	req = signedRequest(t, rs, "h", body, now)
	if err := Verify(req, body, cases[0].cred, now, time.Minute); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("rsa against a secret: %v", err)
	}
	// The secret is used as text: the decoded bytes give another signature.
	wrong := Credentials{Secret: "secretsecret1234"}
	req = signedRequest(t, hs, "h", body, now)
	if err := Verify(req, body, wrong, now, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other secret: %v", err)
	}
}

func TestVerifyNamesTheBadHeader(t *testing.T) {
	hs, _ := NewSecretSigner("abc")
	body := []byte(`{}`)
	now := time.Unix(1_700_000_000, 0)
	for _, h := range []string{HeaderAlgorithm, HeaderTimestamp, HeaderNonce, HeaderSignature} {
		req := signedRequest(t, hs, "h", body, now)
		req.Header.Del(h)
		err := Verify(req, body, Credentials{Secret: "abc"}, now, time.Minute)
		if !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), h) {
			t.Errorf("without %s: %v", h, err)
		}
	}
	req := signedRequest(t, hs, "h", body, now)
	req.Header.Set(HeaderAlgorithm, "md5")
	if err := Verify(req, body, Credentials{Secret: "abc"}, now, time.Minute); !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), "md5") {
		t.Errorf("unknown algorithm: %v", err)
	}
	req = signedRequest(t, hs, "h", body, now)
	req.Header.Set(HeaderSignature, "!!!")
	if err := Verify(req, body, Credentials{Secret: "abc"}, now, time.Minute); !errors.Is(err, ErrBadHeader) {
		t.Errorf("non-base64 signature: %v", err)
	}
}

func TestStringToSignLayout(t *testing.T) {
	got := StringToSign("POST", "h", "/p", "", "hmacsha256", "1", "2", []byte("x"))
	want := "POST\nh\n/p\n\nhmacsha256\n1\n2\n2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestParseResponse(t *testing.T) {
	id, err := ParseResponse(200, []byte(`{"Response":{"RequestId":"r1"}}`))
	if err != nil || id != "r1" {
		t.Fatalf("success: %q %v", id, err)
	}
	_, err = ParseResponse(200, []byte(`{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad"},"RequestId":"r2"}}`))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "AuthFailure.SignatureFailure" || ae.RequestID != "r2" {
		t.Fatalf("error envelope: %v", err)
	}
	_, err = ParseResponse(502, []byte("bad gateway"))
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(err.Error(), "bad gateway") {
		t.Fatalf("plain failure: %v", err)
	}
	if _, err = ParseResponse(200, []byte("{")); err == nil {
		t.Fatal("broken JSON accepted")
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add(200, []byte(`{"Response":{"RequestId":"r1"}}`))
	f.Add(400, []byte(`{"Response":{"Error":{"Code":"x","Message":"y"}}}`))
	f.Add(200, []byte(`{"Response":{"Error":null}}`))
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		id, err := ParseResponse(status, raw)
		if err == nil && status/100 != 2 {
			t.Fatalf("status %d accepted (id %q)", status, id)
		}
	})
}

func FuzzVerifyHeaders(f *testing.F) {
	f.Add("hmacsha256", "1700000000", "1", "AAAA", []byte(`{}`))
	f.Add("rsa-sha256", "x", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, alg, ts, nonce, sig string, body []byte) {
		req, err := http.NewRequest(http.MethodPost, "https://h/device/publish", nil)
		if err != nil {
			t.Skip()
		}
		req.Header.Set(HeaderAlgorithm, alg)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderNonce, nonce)
		req.Header.Set(HeaderSignature, sig)
		if Verify(req, body, Credentials{Secret: "abc"}, time.Unix(1_700_000_000, 0), time.Minute) == nil {
			t.Fatal("forged request accepted")
		}
	})
}
