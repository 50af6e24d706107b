package dynreg_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/dynreg"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

var benchBody = []byte(`{"ProductId":"Q51820J3QD","DeviceName":"light_001"}`)

func BenchmarkSignV2(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		dynreg.SignV2("hzvf5LF9S0isvBhDSauWMaIk", dynreg.StringToSign("ap-guangzhou.gateway.tencentdevices.com", dynreg.PathV2, "hmacsha256", 1700000000, 1234567, benchBody))
	}
}

func BenchmarkSignLegacy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		dynreg.SignLegacy("hzvf5LF9S0isvBhDSauWMaIk", dynreg.LegacyStringToSign("Q51820J3QD", "light_001", 1234567, 1700000000))
	}
}

func BenchmarkDecrypt(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dynreg.Decrypt("hzvf5LF9S0isvBhDSauWMaIk", "s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSiWphfTg==", 53); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPlatform(b *testing.B, cert bool) (*explorertest.Server, string) {
	s, err := explorertest.NewServer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	secret, err := s.EnableDynamicRegistration("BENCHPROD1", explorertest.DynregConfig{AutoCreate: true, Certificate: cert})
	if err != nil {
		b.Fatal(err)
	}
	return s, secret
}

// BenchmarkRegister is one whole registration over HTTPS against the in-process platform: a new
// TLS connection (Register builds a one-shot client), signing, platform verification, issuing,
// encryption and decryption. A device never yet connected may register repeatedly.
func BenchmarkRegister(b *testing.B) {
	for _, tc := range []struct {
		name string
		api  dynreg.APIVersion
		cert bool
	}{{"v2-psk", dynreg.V2, false}, {"legacy-psk", dynreg.Legacy, false}, {"v2-cert", dynreg.V2, true}} {
		b.Run(tc.name, func(b *testing.B) {
			s, secret := benchPlatform(b, tc.cert)
			req := dynreg.Request{ProductID: "BENCHPROD1", ProductSecret: secret, DeviceName: "dev", Endpoint: s.HTTPSURL(), API: tc.api}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for b.Loop() {
				if _, err := dynreg.Register(ctx, req, dynreg.WithRootCAs(s.RootCAs())); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaselineHTTPSPost is the floor for BenchmarkRegister: the same POST on a fresh TLS
// connection to the same server, answered with a platform error (unsigned request), with no
// signing, issuing or crypto.
func BenchmarkBaselineHTTPSPost(b *testing.B) {
	s, _ := benchPlatform(b, false)
	url := s.HTTPSURL() + dynreg.PathV2
	for b.Loop() {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.RootCAs()}}
		resp, err := (&http.Client{Transport: tr}).Post(url, "application/json", bytes.NewReader(benchBody))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
}
