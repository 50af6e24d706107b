package gateway

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
)

// SignMethod is the HMAC used for bind signatures.
type SignMethod string

// Bind signature methods accepted by the platform.
const (
	HMACSHA1   SignMethod = "hmacsha1"
	HMACSHA256 SignMethod = "hmacsha256"
)

func (m SignMethod) hash() (func() hash.Hash, error) {
	switch m {
	case HMACSHA1:
		return sha1.New, nil
	case HMACSHA256:
		return sha256.New, nil
	}
	return nil, fmt.Errorf("gateway: unsupported sign method %q (want hmacsha1 or hmacsha256)", string(m))
}

// BindStringToSign is the text a bind signature covers: "{pid}{dn};{random};{timestamp}".
func BindStringToSign(productID, deviceName string, random, timestamp int64) string {
	return productID + deviceName + ";" + strconv.FormatInt(random, 10) + ";" + strconv.FormatInt(timestamp, 10)
}

// SignBind computes a bind signature: base64 of the raw HMAC digest keyed with key. For PSK
// sub-devices key is the DeviceSecret text as shown in the console (not base64-decoded); for
// certificate sub-devices use CertificateBindKey.
func SignBind(key, productID, deviceName string, random, timestamp int64, m SignMethod) (string, error) {
	h, err := m.hash()
	if err != nil {
		return "", err
	}
	mac := hmac.New(h, []byte(key))
	mac.Write([]byte(BindStringToSign(productID, deviceName, random, timestamp)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// CertificateBindKey derives the bind key of a certificate sub-device the way the C SDK does:
// the lower-case hex MD5 of the certificate file's bytes. (The platform doc says SHA-1 of the
// certificate; the C SDK is what runs in the field.)
func CertificateBindKey(certFile []byte) string {
	sum := md5.Sum(certFile)
	return hex.EncodeToString(sum[:])
}
