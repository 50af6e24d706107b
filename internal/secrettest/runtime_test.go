package secrettest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/secrettest"
	"github.com/tplgen/tplgen/runtime/dynreg"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/gateway"
	"github.com/tplgen/tplgen/runtime/httppub"
	"github.com/tplgen/tplgen/runtime/ota"
)

// TestRuntimeTypesNeverPrintSecrets logs every runtime type that holds a credential, as a
// value and as a pointer, through fmt and slog's text and JSON handlers: the
// device secret, the private key and a firmware URL's signature never appear.
func TestRuntimeTypesNeverPrintSecrets(t *testing.T) {
	const secret = "c2VjcmV0LWRldmljZS1rZXktMTIzNDU2" // base64, as the console shows it
	raw, _ := base64.StdEncoding.DecodeString(secret)
	cert, keyPEM, keyBytes := selfSigned(t)
	psk := explorer.Config{ProductID: "PID0000001", DeviceName: "dev1", DeviceSecret: secret}
	withCert := explorer.Config{ProductID: "PID0000001", DeviceName: "dev1", Certificate: &cert}
	pub, err := httppub.New(psk)
	if err != nil {
		t.Fatal(err)
	}
	sig := "q-signature=0123456789abcdef"
	fw := ota.Firmware{Version: "1.0.0", URL: "https://cos.example.test/fw.bin?" + sig, MD5: "0123456789abcdef0123456789abcdef", Size: 1}
	for name, v := range map[string]any{
		"explorer.Config psk":  psk,
		"explorer.Config cert": withCert,
		"dynreg.Request":       dynreg.Request{ProductID: "PID0000001", ProductSecret: secret, DeviceName: "dev1"},
		"dynreg.Credentials":   dynreg.Credentials{ProductID: "PID0000001", DeviceName: "dev1", DeviceSecret: secret},
		"dynreg.Payload":       dynreg.Payload{EncryptionType: 1, ClientCert: "x", ClientKey: keyPEM},
		"gateway.SubDevice":    gateway.SubDevice{Device: gateway.Device{ProductID: "P", DeviceName: "d"}, DeviceSecret: secret},
		"ota.Firmware":         fw,
		"ota.File":             fw.File(),
		"httppub.Client":       pub,
	} {
		t.Run(name, func(t *testing.T) {
			secrettest.Check(t, v, secret, string(raw), keyPEM, string(keyBytes), sig)
		})
	}
	for name, v := range map[string]any{"*explorer.Config": &psk, "*dynreg.Request": &dynreg.Request{ProductSecret: secret}} {
		t.Run(name, func(t *testing.T) { secrettest.Check(t, v, secret) })
	}
}

// selfSigned returns a certificate with its key, the key's PEM and the key's secret scalar
// in decimal.
func selfSigned(t *testing.T) (tls.Certificate, string, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	// %#v of an *ecdsa.PrivateKey would print D (the secret scalar) in decimal.
	scalar, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, keyPEM, []byte(new(big.Int).SetBytes(scalar).String())
}
