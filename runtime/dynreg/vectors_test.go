package dynreg

import (
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

// vectors mirrors testdata/conformance/dynreg_vectors.json at the repository root (see the README there).
type vectors struct {
	Decrypt []struct {
		Source        string `json:"source"`
		ProductSecret string `json:"product_secret"`
		Payload       string `json:"payload"`
		Len           int    `json:"len"`
		Plaintext     string `json:"plaintext"`
	} `json:"dynreg_decrypt"`
	Legacy []struct {
		Source        string `json:"source"`
		ProductID     string `json:"product_id"`
		DeviceName    string `json:"device_name"`
		Nonce         int64  `json:"nonce"`
		Timestamp     int64  `json:"timestamp"`
		ProductSecret string `json:"product_secret"`
		StringToSign  string `json:"string_to_sign"`
		Signature     string `json:"signature"`
	} `json:"dynreg_sign_legacy"`
	V2 []struct {
		Source        string `json:"source"`
		Host          string `json:"host"`
		Path          string `json:"path"`
		Body          string `json:"body"`
		Algorithm     string `json:"algorithm"`
		Timestamp     int64  `json:"timestamp"`
		Nonce         int64  `json:"nonce"`
		ProductSecret string `json:"product_secret"`
		StringToSign  string `json:"string_to_sign"`
		Signature     string `json:"signature"`
	} `json:"dynreg_sign_v2"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	data, err := os.ReadFile("../../testdata/conformance/dynreg_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Decrypt) == 0 || len(v.Legacy) == 0 || len(v.V2) == 0 {
		t.Fatal("dynreg_vectors.json lacks dynreg vectors")
	}
	return v
}

func TestSignLegacyVectors(t *testing.T) {
	for i, tc := range loadVectors(t).Legacy {
		sts := LegacyStringToSign(tc.ProductID, tc.DeviceName, tc.Nonce, tc.Timestamp)
		if sts != tc.StringToSign {
			t.Errorf("vector %d (%s): string to sign\n got %q\nwant %q", i, tc.Source, sts, tc.StringToSign)
		}
		if got := SignLegacy(tc.ProductSecret, sts); got != tc.Signature {
			t.Errorf("vector %d (%s): signature %q, want %q", i, tc.Source, got, tc.Signature)
		}
	}
}

func TestSignV2Vectors(t *testing.T) {
	for i, tc := range loadVectors(t).V2 {
		sts := StringToSign(tc.Host, tc.Path, tc.Algorithm, tc.Timestamp, tc.Nonce, []byte(tc.Body))
		if sts != tc.StringToSign {
			t.Errorf("vector %d (%s): string to sign\n got %q\nwant %q", i, tc.Source, sts, tc.StringToSign)
		}
		if got := SignV2(tc.ProductSecret, sts); got != tc.Signature {
			t.Errorf("vector %d (%s): signature %q, want %q", i, tc.Source, got, tc.Signature)
		}
	}
}

// The V2 vector's body is exactly what Register sends, so the whole signed request matches.
func TestV2BodyMatchesVector(t *testing.T) {
	tc := loadVectors(t).V2[0]
	body, err := json.Marshal(v2Request{ProductID: "Q51820J3QD", DeviceName: "light_001"})
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != tc.Body {
		t.Fatalf("body %s, want %s", body, tc.Body)
	}
}

func TestDecryptVectors(t *testing.T) {
	for i, tc := range loadVectors(t).Decrypt {
		for _, length := range []int{tc.Len, 0} { // 0: no len field, strip NULs like PY
			got, err := Decrypt(tc.ProductSecret, tc.Payload, length)
			if err != nil {
				t.Fatalf("vector %d (%s) len %d: %v", i, tc.Source, length, err)
			}
			if string(got) != tc.Plaintext {
				t.Errorf("vector %d (%s) len %d: plaintext\n got %q\nwant %q", i, tc.Source, length, got, tc.Plaintext)
			}
		}
		p, err := ParsePayload([]byte(tc.Plaintext))
		if err != nil {
			t.Fatalf("vector %d: ParsePayload: %v", i, err)
		}
		switch p.EncryptionType {
		case EncryptionPSK:
			if p.PSK != "lDZ6Uqt+I9E0wW7rvDUs7Q==" {
				t.Errorf("vector %d: psk %q", i, p.PSK)
			}
		case EncryptionCert:
			if !strings.HasPrefix(p.ClientCert, "-----BEGIN CERTIFICATE-----\nMIIBfake\n") ||
				!strings.HasPrefix(p.ClientKey, "-----BEGIN PRIVATE KEY-----\n") {
				t.Errorf("vector %d: cert/key not PEM text: %q / %q", i, p.ClientCert, p.ClientKey)
			}
		}
	}
}
