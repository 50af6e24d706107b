package dynreg

import (
	"errors"
	"testing"
)

// FuzzParseResponse: any answer body yields a payload, a *Error or an ErrBadResponse error,
// never a panic.
func FuzzParseResponse(f *testing.F) {
	f.Add(0, 200, []byte(`{"Response":{"Len":53,"Payload":"`+docPayload+`","RequestId":"r"}}`))
	f.Add(0, 200, []byte(`{"Response":{"Error":{"Code":"X","Message":"m"},"RequestId":"r"}}`))
	f.Add(1, 200, []byte(`{"code":0,"message":"","len":53,"payload":"`+docPayload+`"}`))
	f.Add(1, 500, []byte(`{"code":"1","message":"m"}`))
	f.Add(1, 200, []byte(`{"code":1e400}`))
	f.Fuzz(func(t *testing.T, api, status int, body []byte) {
		v := V2
		if api%2 != 0 {
			v = Legacy
		}
		payload, _, err := parseResponse(v, status, body)
		var pe *Error
		switch {
		case err == nil:
			if payload == "" {
				t.Fatal("success without payload")
			}
		case errors.As(err, &pe), errors.Is(err, ErrBadResponse):
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}

// FuzzDecryptParse: any payload and length decrypt to an error or a checked Payload.
func FuzzDecryptParse(f *testing.F) {
	f.Add(docPayload, 53)
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", 0)
	f.Add("", -1)
	f.Fuzz(func(t *testing.T, payload string, length int) {
		plain, err := Decrypt(docSecret, payload, length)
		if err != nil {
			return
		}
		if p, err := ParsePayload(plain); err == nil && p.EncryptionType != EncryptionPSK && p.EncryptionType != EncryptionCert {
			t.Fatalf("accepted encryptionType %d", p.EncryptionType)
		}
	})
}
