package registrar

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Encrypt encrypts a registration plaintext like the platform: zero-pad to the AES block size (no
// padding when already aligned), AES-128-CBC with key = productSecret[:16] and IV = sixteen ASCII
// '0', base64. The plaintext length goes in the response's len/Len field.
func Encrypt(productSecret string, plaintext []byte) (string, error) {
	if len(productSecret) < 16 {
		return "", fmt.Errorf("registrar: ProductSecret is %d bytes, need at least 16", len(productSecret))
	}
	block, err := aes.NewCipher([]byte(productSecret[:16]))
	if err != nil {
		return "", err
	}
	n := (len(plaintext) + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	buf := make([]byte, n)
	copy(buf, plaintext)
	cipher.NewCBCEncrypter(block, []byte("0000000000000000")).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// legacySignature computes base64(hex(HMAC-SHA1(secret, "deviceName=..&nonce=..&productId=..&timestamp=..")).
func legacySignature(secret, productID, deviceName string, nonce, timestamp int64) string {
	text := "deviceName=" + deviceName + "&nonce=" + strconv.FormatInt(nonce, 10) +
		"&productId=" + productID + "&timestamp=" + strconv.FormatInt(timestamp, 10)
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(text))
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(m.Sum(nil))))
}

// v2Signature computes base64(HMAC-SHA256(secret, StringToSign)) for a POST.
func v2Signature(secret, host, path, algorithm, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	text := "POST\n" + host + "\n" + path + "\n\n" + algorithm + "\n" + timestamp + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(text))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func equalStrings(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
