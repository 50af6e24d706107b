package dynreg

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// selfSigned returns a throwaway certificate and PKCS#8 key in PEM.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "PRODUCT01dev"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

func TestCredentialsFileRoundTrip(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	for _, c := range []*Credentials{
		{ProductID: "PRODUCT01", DeviceName: "dev", DeviceSecret: docPSK},
		{ProductID: "PRODUCT01", DeviceName: "dev", CertPEM: certPEM, KeyPEM: keyPEM},
	} {
		t.Run(c.Kind(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "creds.json")
			// An existing, world-readable file is replaced by a private one.
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := SaveCredentials(path, c); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", st.Mode().Perm())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("temporary files left behind: %v", entries)
			}
			got, err := LoadCredentials(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.ProductID != c.ProductID || got.DeviceName != c.DeviceName || got.DeviceSecret != c.DeviceSecret ||
				string(got.CertPEM) != string(c.CertPEM) || string(got.KeyPEM) != string(c.KeyPEM) {
				t.Fatalf("round trip changed credentials")
			}
			cfg, err := got.Config("", "tls://127.0.0.1:8883")
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ProductID != "PRODUCT01" || cfg.DeviceName != "dev" || cfg.Broker != "tls://127.0.0.1:8883" {
				t.Fatalf("config %v", cfg)
			}
			if (cfg.Certificate != nil) != (c.Kind() == "cert") || cfg.DeviceSecret != c.DeviceSecret {
				t.Fatalf("config credentials wrong for %s", c.Kind())
			}
		})
	}
}

func TestSaveCredentialsRejectsInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	for _, c := range []*Credentials{
		nil,
		{DeviceName: "d", DeviceSecret: docPSK},
		{ProductID: "P", DeviceSecret: docPSK},
		{ProductID: "P", DeviceName: "d"},
		{ProductID: "P", DeviceName: "d", DeviceSecret: docPSK, CertPEM: []byte("c")},
		{ProductID: "P", DeviceName: "d", DeviceSecret: "not base64!"},
		{ProductID: "P", DeviceName: "d", CertPEM: []byte("c")},
		{ProductID: "P", DeviceName: "d", KeyPEM: []byte("k")},
	} {
		if err := SaveCredentials(path, c); err == nil {
			t.Errorf("SaveCredentials(%v) succeeded", c)
		} else if strings.Contains(err.Error(), docPSK) {
			t.Errorf("error leaks secret: %v", err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file written for invalid credentials: %v", err)
	}
	if err := SaveCredentials(filepath.Join(t.TempDir(), "missing-dir", "c.json"), &Credentials{ProductID: "P", DeviceName: "d", DeviceSecret: docPSK}); err == nil {
		t.Fatal("saving into a missing directory succeeded")
	}
}

func TestLoadCredentialsErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct{ path, want string }{
		{filepath.Join(dir, "absent.json"), "no such file"},
		{write("garbage.json", `{"deviceSecret":"`+docPSK+`"`), "not a credentials JSON object"},
		{write("noproduct.json", `{"deviceName":"d","deviceSecret":"`+docPSK+`"}`), "productId is empty"},
		{write("nothing.json", `{"productId":"P","deviceName":"d"}`), "neither deviceSecret nor certificate"},
		{write("nokey.json", `{"productId":"P","deviceName":"d","clientCert":"x"}`), "clientKey"},
	}
	for _, tc := range cases {
		_, err := LoadCredentials(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), docPSK) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestCredentialsConfigErrors(t *testing.T) {
	c := &Credentials{ProductID: "P", DeviceName: "d", CertPEM: []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"), KeyPEM: []byte("PRIVATE")}
	if _, err := c.Config("", ""); err == nil || !strings.Contains(err.Error(), "certificate/key pair") || strings.Contains(err.Error(), "PRIVATE") {
		t.Fatalf("err = %v", err)
	}
	c = &Credentials{ProductID: "P/x", DeviceName: "d", DeviceSecret: docPSK}
	if _, err := c.Config("", ""); !errors.Is(err, explorer.ErrInvalidConfig) {
		t.Fatalf("err = %v, want explorer.ErrInvalidConfig", err)
	}
}
