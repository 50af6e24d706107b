package dynreg

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// Paths of the two registration API generations.
const (
	PathV2     = "/device/register"
	PathLegacy = "/register/dev"
)

// AlgorithmHMACSHA256 is the X-TC-Algorithm value sent with V2 requests.
const AlgorithmHMACSHA256 = "hmacsha256"

// LegacyStringToSign returns the text signed by the legacy API:
// deviceName={dn}&nonce={nonce}&productId={pid}&timestamp={ts} (keys in sorted order).
func LegacyStringToSign(productID, deviceName string, nonce, timestamp int64) string {
	var b strings.Builder
	b.WriteString("deviceName=")
	b.WriteString(deviceName)
	b.WriteString("&nonce=")
	b.WriteString(strconv.FormatInt(nonce, 10))
	b.WriteString("&productId=")
	b.WriteString(productID)
	b.WriteString("&timestamp=")
	b.WriteString(strconv.FormatInt(timestamp, 10))
	return b.String()
}

// SignLegacy returns the legacy API signature of stringToSign:
// base64(lowercase_hex(HMAC-SHA1(productSecret, stringToSign))). The hex step is what the C and
// Java SDKs do (the platform documentation omits it).
func SignLegacy(productSecret, stringToSign string) string {
	m := hmac.New(sha1.New, []byte(productSecret))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(m.Sum(nil))))
}

// StringToSign returns the text signed by the V2 API:
// POST\n{host}\n{path}\n\n{algorithm}\n{timestamp}\n{nonce}\n{lowercase_hex(SHA256(body))}.
// host is the request's Host header value (including a port when the URL has one).
func StringToSign(host, path, algorithm string, timestamp, nonce int64, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{
		"POST", host, path, "", algorithm,
		strconv.FormatInt(timestamp, 10),
		strconv.FormatInt(nonce, 10),
		hex.EncodeToString(sum[:]),
	}, "\n")
}

// SignV2 returns the V2 API signature of stringToSign:
// base64(HMAC-SHA256(productSecret, stringToSign)).
func SignV2(productSecret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(productSecret))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
