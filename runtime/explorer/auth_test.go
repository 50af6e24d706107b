package explorer_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// TestPasswordVectors checks every mqtt_password vector of the conformance data
// (testdata/conformance/vectors.json at the repository root, copied from the shared conformance set).
func TestPasswordVectors(t *testing.T) {
	data, err := os.ReadFile("../../testdata/conformance/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		MQTTPassword []struct {
			Source       string `json:"source"`
			ProductID    string `json:"product_id"`
			DeviceName   string `json:"device_name"`
			DeviceSecret string `json:"device_secret"`
			Username     string `json:"username"`
			Algorithm    string `json:"algorithm"`
			Password     string `json:"password"`
		} `json:"mqtt_password"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.MQTTPassword) == 0 {
		t.Fatal("no mqtt_password vectors")
	}
	for i, vec := range v.MQTTPassword {
		t.Run(fmt.Sprintf("%d-%s-%s", i, vec.Source, vec.Algorithm), func(t *testing.T) {
			f := strings.Split(vec.Username, ";")
			if len(f) != 4 {
				t.Fatalf("vector username %q", vec.Username)
			}
			var expiry int64
			fmt.Sscan(f[3], &expiry)
			if got := explorer.Username(vec.ProductID, vec.DeviceName, f[1], f[2], expiry); got != vec.Username {
				t.Errorf("Username = %q, want %q", got, vec.Username)
			}
			m := explorer.HMACSHA256
			if vec.Algorithm == "hmacsha1" {
				m = explorer.HMACSHA1
			}
			got, err := explorer.Password(vec.DeviceSecret, vec.Username, m)
			if err != nil {
				t.Fatal(err)
			}
			if got != vec.Password {
				t.Errorf("Password = %q, want %q", got, vec.Password)
			}
		})
	}
}

func TestPasswordBadSecretHidesSecret(t *testing.T) {
	const secret = "not*base64*secret"
	_, err := explorer.Password(secret, "u", explorer.HMACSHA256)
	if !errors.Is(err, explorer.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error leaks the secret: %v", err)
	}
	if _, err := explorer.Password(testSecret, "u", explorer.SignMethod(7)); !errors.Is(err, explorer.ErrInvalidConfig) {
		t.Fatalf("unknown method: err = %v", err)
	}
}

func TestSignMethodString(t *testing.T) {
	for m, want := range map[explorer.SignMethod]string{explorer.HMACSHA256: "hmacsha256", explorer.HMACSHA1: "hmacsha1", 9: "SignMethod(9)"} {
		if m.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(m), m.String(), want)
		}
	}
}

// TestTencentRootCA pins the embedded CA to the fingerprint in docs/PROTOCOL.md §1.6.
func TestTencentRootCA(t *testing.T) {
	block, _ := pem.Decode(explorer.TencentRootCAPEM())
	if block == nil {
		t.Fatal("embedded CA is not PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	var parts []string
	for _, b := range sum {
		parts = append(parts, fmt.Sprintf("%02X", b))
	}
	const want = "3B:1F:A1:E1:14:9E:3F:3B:D3:72:27:30:DB:EF:9E:B7:2E:C4:B9:FD:95:55:30:63:A9:C6:0B:A6:27:78:E7:40"
	if got := strings.Join(parts, ":"); got != want {
		t.Fatalf("SHA-256 fingerprint %s, want %s", got, want)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.OrganizationalUnit[0] != "Tencent Iothub" || !cert.IsCA {
		t.Fatalf("unexpected CA subject %v", cert.Subject)
	}
	if explorer.TencentRootCAs() == nil {
		t.Fatal("nil pool")
	}
}
