package dynreg

import (
	"errors"
	"strings"
	"testing"
)

const docSecret = "hzvf5LF9S0isvBhDSauWMaIk"
const docPayload = "s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSiWphfTg=="
const docPSK = "lDZ6Uqt+I9E0wW7rvDUs7Q=="

func TestDecryptErrors(t *testing.T) {
	cases := []struct {
		name, secret, payload string
		length                int
		want                  string
	}{
		{"short secret", "short", docPayload, 53, "ProductSecret is 5 bytes"},
		{"not base64", docSecret, "!!!", 0, "not base64"},
		{"not block aligned", docSecret, "AAAA", 0, "not a positive multiple of 16"},
		{"empty", docSecret, "", 0, "not a positive multiple of 16"},
		{"len too big", docSecret, docPayload, 65, "len 65 outside 0..64"},
		{"len negative", docSecret, docPayload, -1, "len -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decrypt(tc.secret, tc.payload, tc.length)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), docSecret) {
				t.Fatalf("error leaks the ProductSecret: %v", err)
			}
		})
	}
}

func TestWrongSecretIsPayloadError(t *testing.T) {
	plain, err := Decrypt("WrongSecretWrongSecret", docPayload, 53)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParsePayload(plain)
	if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), "wrong ProductSecret") {
		t.Fatalf("err = %v", err)
	}
}

func TestParsePayload(t *testing.T) {
	t.Run("literal backslash-n in PEM", func(t *testing.T) {
		// JSON `\\n` decodes to the two characters backslash, n: what C rewrites.
		p, err := ParsePayload([]byte(`{"encryptionType":1,"clientCert":"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n","clientKey":"K\\nEY"}`))
		if err != nil {
			t.Fatal(err)
		}
		if p.ClientCert != "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" || p.ClientKey != "K\nEY" {
			t.Fatalf("not normalised: %q %q", p.ClientCert, p.ClientKey)
		}
	})
	bad := []struct{ name, in, want string }{
		{"psk missing", `{"encryptionType":2}`, "without psk"},
		{"psk not base64", `{"encryptionType":2,"psk":"%%%"}`, "psk is not base64"},
		{"cert missing key", `{"encryptionType":1,"clientCert":"x"}`, "needs clientCert and clientKey"},
		{"unknown type", `{"encryptionType":3}`, "encryptionType 3"},
		{"no type", `{"psk":"` + docPSK + `"}`, "encryptionType 0"},
		{"not json", `{"psk":"` + docPSK, "not a JSON object"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePayload([]byte(tc.in))
			if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrPayload mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), docPSK) || strings.Contains(err.Error(), "%%%") {
				t.Fatalf("error leaks payload content: %v", err)
			}
		})
	}
}
