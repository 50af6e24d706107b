package explorer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
)

// SignMethod is the HMAC used for the MQTT password (docs/PROTOCOL.md §1.4).
type SignMethod int

const (
	// HMACSHA256 signs with HMAC-SHA256 (password suffix ";hmacsha256"); the default.
	HMACSHA256 SignMethod = iota
	// HMACSHA1 signs with HMAC-SHA1 (password suffix ";hmacsha1"), as the C and Python SDKs do.
	HMACSHA1
)

// String returns the wire name of the method ("hmacsha256" or "hmacsha1").
func (m SignMethod) String() string {
	switch m {
	case HMACSHA256:
		return "hmacsha256"
	case HMACSHA1:
		return "hmacsha1"
	}
	return "SignMethod(" + strconv.Itoa(int(m)) + ")"
}

func (m SignMethod) newHash() (func() hash.Hash, error) {
	switch m {
	case HMACSHA256:
		return sha256.New, nil
	case HMACSHA1:
		return sha1.New, nil
	}
	return nil, fmt.Errorf("%w: unknown sign method %d (want HMACSHA256 or HMACSHA1)", ErrInvalidConfig, int(m))
}

// SDK app ids accepted by the platform in the username (docs/PROTOCOL.md §1.3).
const (
	// SDKAppIDDoc is the value from the platform documentation and the Java SDK; the default.
	SDKAppIDDoc = "12010126"
	// SDKAppIDEmbedded is the value the C and Python SDKs send.
	SDKAppIDEmbedded = "21010406"
)

// Username builds the MQTT username "{pid}{dn};{sdkappid};{connid};{expiry}" where expiry is
// the signature's expiry time in Unix seconds.
func Username(productID, deviceName, sdkAppID, connID string, expiry int64) string {
	return productID + deviceName + ";" + sdkAppID + ";" + connID + ";" + strconv.FormatInt(expiry, 10)
}

// Password signs username with the base64 DeviceSecret and returns
// lower-hex(HMAC(base64decode(secret), username)) + ";" + method. The error never contains
// the secret.
func Password(deviceSecret, username string, m SignMethod) (string, error) {
	newHash, err := m.newHash()
	if err != nil {
		return "", err
	}
	key, err := decodeSecret(deviceSecret)
	if err != nil {
		return "", fmt.Errorf("%w: DeviceSecret %v", ErrInvalidConfig, err)
	}
	mac := hmac.New(newHash, key)
	mac.Write([]byte(username))
	return hex.EncodeToString(mac.Sum(nil)) + ";" + m.String(), nil
}

const connIDAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newConnID returns 5 random alphanumerics, the tracing id the SDKs put in the username.
func newConnID() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	for i := range b {
		b[i] = connIDAlphabet[int(b[i])%len(connIDAlphabet)]
	}
	return string(b[:])
}
