package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/dynreg"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// regPlatform starts the in-process platform with dynamic registration for a PSK and a
// certificate product, and writes its CA to a file for --ca.
func regPlatform(t *testing.T) (s *explorertest.Server, caFile, pskSecret, certSecret string) {
	t.Helper()
	s, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if pskSecret, err = s.EnableDynamicRegistration("REGPSK0001", explorertest.DynregConfig{AutoCreate: true}); err != nil {
		t.Fatal(err)
	}
	if certSecret, err = s.EnableDynamicRegistration("REGCERT001", explorertest.DynregConfig{AutoCreate: true, Certificate: true}); err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, caFile, pskSecret, certSecret
}

func TestRegisterCommand(t *testing.T) {
	s, caFile, pskSecret, certSecret := regPlatform(t)
	cases := []struct {
		name, pid, secret string
		extra             []string
		kind              string
	}{
		{"v2 psk", "REGPSK0001", pskSecret, nil, "psk"},
		{"legacy cert", "REGCERT001", certSecret, []string{"--legacy"}, "cert"},
		{"plain http", "REGPSK0001", pskSecret, []string{"--insecure-http"}, "psk"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "creds.json")
			dn := "cli-dev-" + string(rune('a'+i))
			endpoint := s.HTTPSURL()
			if tc.name == "plain http" {
				endpoint = s.HTTPURL()
			}
			args := append([]string{"register", "--product", tc.pid, "--product-secret", tc.secret, "--device", dn,
				"--endpoint", endpoint, "--ca", caFile, "--out", out, "--verbose"}, tc.extra...)
			code, stdout, stderr := tplgen(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, "registered "+tc.pid+"/"+dn+" ("+tc.kind+" credentials)") {
				t.Fatalf("stdout %q", stdout)
			}
			creds, err := dynreg.LoadCredentials(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{tc.secret, creds.DeviceSecret, string(creds.KeyPEM)} {
				if secret != "" && strings.Contains(stdout+stderr, secret) {
					t.Fatalf("secret printed: %s %s", stdout, stderr)
				}
			}
			cfg, err := creds.Config("", s.TLSBrokerURL())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			conn, err := explorer.Dial(ctx, cfg, s.DialOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
		})
	}
}

func TestRegisterCommandErrors(t *testing.T) {
	s, caFile, pskSecret, _ := regPlatform(t)
	existing := filepath.Join(t.TempDir(), "existing.json")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := func() string { return filepath.Join(t.TempDir(), "c.json") }
	base := func(extra ...string) []string {
		return append([]string{"register", "--product", "REGPSK0001", "--product-secret", pskSecret, "--device", "d1"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no out", base("--endpoint", s.HTTPSURL(), "--ca", caFile), `"out"`},
		{"no secret", []string{"register", "--product", "P", "--device", "d", "--out", out()}, "--product-secret"},
		{"region and endpoint", base("--region", "china", "--endpoint", s.HTTPSURL(), "--out", out()), "either --region or --endpoint"},
		{"out exists", base("--endpoint", s.HTTPSURL(), "--ca", caFile, "--out", existing), "already exists"},
		{"ca missing", base("--endpoint", s.HTTPSURL(), "--ca", filepath.Join(t.TempDir(), "none.pem"), "--out", out()), "--ca"},
		{"ca not pem", base("--endpoint", s.HTTPSURL(), "--ca", notPEM, "--out", out()), "no PEM certificate"},
		{"untrusted server", base("--endpoint", s.HTTPSURL(), "--out", out()), "certificate"},
		{"plain http refused", base("--endpoint", s.HTTPURL(), "--out", out()), "--insecure-http"},
		{"unknown region", base("--region", "mars", "--out", out()), `unknown region "mars"`},
		{"wrong secret", []string{"register", "--product", "REGPSK0001", "--product-secret", "WrongSecretWrongSecret", "--device", "d1",
			"--endpoint", s.HTTPSURL(), "--ca", caFile, "--out", out()}, "AuthFailure.SignatureFailure"},
		{"unknown product legacy", []string{"register", "--product", "NOPE000001", "--product-secret", pskSecret, "--device", "d1",
			"--endpoint", s.HTTPSURL(), "--ca", caFile, "--legacy", "--out", out()}, "code 1003"},
		{"extra argument", base("--endpoint", s.HTTPSURL(), "--out", out(), "stray"), `unexpected argument "stray"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tplgen(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0; stdout %q", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, tc.want)
			}
			if strings.Contains(stdout+stderr, pskSecret) {
				t.Fatalf("product secret printed: %s", stderr)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("existing --out file was modified")
	}
	// --force replaces it; the secret may also come from the environment.
	t.Setenv("TPLGEN_PRODUCT_SECRET", pskSecret)
	code, _, stderr := tplgen(t, "register", "--product", "REGPSK0001", "--device", "d2", "--endpoint", s.HTTPSURL(), "--ca", caFile, "--out", existing, "--force")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := dynreg.LoadCredentials(existing); err != nil {
		t.Fatal(err)
	}
}
