package dynreg

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// MinProductSecretLen is the shortest usable ProductSecret: its first 16 bytes are the AES-128 key.
const MinProductSecretLen = 16

// ErrPayload marks a registration response whose encrypted payload cannot be decrypted or parsed.
var ErrPayload = errors.New("dynreg: bad registration payload")

// iv is sixteen ASCII '0' characters (not zero bytes), as the platform uses.
var iv = []byte("0000000000000000")

// Encryption types carried in the decrypted payload.
const (
	EncryptionCert = 1 // clientCert + clientKey
	EncryptionPSK  = 2 // psk
)

// Decrypt decodes and decrypts a registration payload: base64, then AES-128-CBC with key = the
// first 16 bytes of productSecret and IV = "0000000000000000". The platform zero-pads (no PKCS#7),
// so the plaintext is cut to length when length > 0, and trailing NUL bytes are removed.
func Decrypt(productSecret, payload string, length int) ([]byte, error) {
	if len(productSecret) < MinProductSecretLen {
		return nil, fmt.Errorf("dynreg: ProductSecret is %d bytes, need at least %d", len(productSecret), MinProductSecretLen)
	}
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64: %v", ErrPayload, err)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: payload is %d bytes, not a positive multiple of %d", ErrPayload, len(ct), aes.BlockSize)
	}
	if length < 0 || length > len(ct) {
		return nil, fmt.Errorf("%w: len %d outside 0..%d (decrypted size)", ErrPayload, length, len(ct))
	}
	block, err := aes.NewCipher([]byte(productSecret[:MinProductSecretLen]))
	if err != nil {
		return nil, fmt.Errorf("dynreg: %v", err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	if length > 0 {
		pt = pt[:length]
	}
	return bytes.TrimRight(pt, "\x00"), nil
}

// Payload is the decrypted registration result.
type Payload struct {
	EncryptionType int    `json:"encryptionType"`
	PSK            string `json:"psk,omitempty"`
	ClientCert     string `json:"clientCert,omitempty"`
	ClientKey      string `json:"clientKey,omitempty"`
}

// String describes the payload without the PSK or the private key.
func (p Payload) String() string {
	return fmt.Sprintf("dynreg.Payload{EncryptionType:%d PSK:%s ClientCert:%d bytes ClientKey:%s}",
		p.EncryptionType, redacted(p.PSK), len(p.ClientCert), redacted(p.ClientKey))
}

// GoString is String, so %#v does not print secrets either.
func (p Payload) GoString() string { return p.String() }

// LogValue keeps secrets out of structured logs.
func (p Payload) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("encryptionType", p.EncryptionType), slog.Bool("psk", p.PSK != ""),
		slog.Int("clientCertBytes", len(p.ClientCert)), slog.Bool("clientKey", p.ClientKey != ""))
}

// redacted stands in for a secret: whether it is set, never its bytes.
func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// ParsePayload parses decrypted plaintext into a Payload and checks that it carries what its
// encryptionType promises. PEM text is normalised: the two-character sequence backslash-n (which
// the platform may leave in certificates) becomes a newline.
func ParsePayload(plaintext []byte) (*Payload, error) {
	var p Payload
	if err := jsonguard.Unmarshal(plaintext, &p); err != nil {
		// The plaintext holds secrets: report only its size, never its text.
		return nil, fmt.Errorf("%w: decrypted payload (%d bytes) is not a JSON object: wrong ProductSecret?", ErrPayload, len(plaintext))
	}
	switch p.EncryptionType {
	case EncryptionPSK:
		if p.PSK == "" {
			return nil, fmt.Errorf("%w: encryptionType 2 (psk) without psk", ErrPayload)
		}
		if _, err := base64.StdEncoding.DecodeString(p.PSK); err != nil {
			return nil, fmt.Errorf("%w: psk is not base64", ErrPayload)
		}
	case EncryptionCert:
		if p.ClientCert == "" || p.ClientKey == "" {
			return nil, fmt.Errorf("%w: encryptionType 1 (certificate) needs clientCert and clientKey", ErrPayload)
		}
		p.ClientCert = fixNewlines(p.ClientCert)
		p.ClientKey = fixNewlines(p.ClientKey)
	default:
		return nil, fmt.Errorf("%w: encryptionType %d is neither 1 (certificate) nor 2 (psk)", ErrPayload, p.EncryptionType)
	}
	return &p, nil
}

func fixNewlines(pem string) string {
	return strings.ReplaceAll(pem, `\n`, "\n")
}
