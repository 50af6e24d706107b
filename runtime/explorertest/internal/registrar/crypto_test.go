package registrar

import (
	"os"
	"strconv"
	"testing"

	"github.com/goccy/go-json"
)

type vectors struct {
	Decrypt []struct {
		ProductSecret string `json:"product_secret"`
		Payload       string `json:"payload"`
		Len           int    `json:"len"`
		Plaintext     string `json:"plaintext"`
	} `json:"dynreg_decrypt"`
	Legacy []struct {
		ProductID     string `json:"product_id"`
		DeviceName    string `json:"device_name"`
		Nonce         int64  `json:"nonce"`
		Timestamp     int64  `json:"timestamp"`
		ProductSecret string `json:"product_secret"`
		Signature     string `json:"signature"`
	} `json:"dynreg_sign_legacy"`
	V2 []struct {
		Host          string `json:"host"`
		Path          string `json:"path"`
		Body          string `json:"body"`
		Algorithm     string `json:"algorithm"`
		Timestamp     int64  `json:"timestamp"`
		Nonce         int64  `json:"nonce"`
		ProductSecret string `json:"product_secret"`
		Signature     string `json:"signature"`
	} `json:"dynreg_sign_v2"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile("../../../../testdata/conformance/dynreg_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Encryption is deterministic (fixed IV), so re-encrypting each vector's plaintext must give the
// platform's payload byte for byte, including the zero padding.
func TestEncryptVectors(t *testing.T) {
	v := loadVectors(t)
	if len(v.Decrypt) == 0 {
		t.Fatal("no vectors")
	}
	for i, tc := range v.Decrypt {
		got, err := Encrypt(tc.ProductSecret, []byte(tc.Plaintext))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.Payload || len(tc.Plaintext) != tc.Len {
			t.Errorf("vector %d: payload\n got %s\nwant %s", i, got, tc.Payload)
		}
	}
	if _, err := Encrypt("short", nil); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestSignatureVectors(t *testing.T) {
	v := loadVectors(t)
	for i, tc := range v.Legacy {
		if got := legacySignature(tc.ProductSecret, tc.ProductID, tc.DeviceName, tc.Nonce, tc.Timestamp); got != tc.Signature {
			t.Errorf("legacy vector %d: %s, want %s", i, got, tc.Signature)
		}
	}
	for i, tc := range v.V2 {
		got := v2Signature(tc.ProductSecret, tc.Host, tc.Path, tc.Algorithm,
			strconv.FormatInt(tc.Timestamp, 10), strconv.FormatInt(tc.Nonce, 10), []byte(tc.Body))
		if got != tc.Signature {
			t.Errorf("v2 vector %d: %s, want %s", i, got, tc.Signature)
		}
	}
}
