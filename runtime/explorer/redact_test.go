package explorer_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// TestConfigNeverPrintsSecrets logs and prints a key device's and a certificate device's
// Config (value and pointer) through slog's text and JSON handlers and every fmt verb, and
// checks that no form of the secret appears.
func TestConfigNeverPrintsSecrets(t *testing.T) {
	const secret = "c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5YWI="
	rawKey, _ := base64.StdEncoding.DecodeString(secret)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cert := &tls.Certificate{Certificate: [][]byte{[]byte("cert-der")}, PrivateKey: key}
	forbidden := []string{
		secret, string(rawKey), hex.EncodeToString(rawKey),
		hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), hex.EncodeToString(keyDER), base64.StdEncoding.EncodeToString(keyDER),
	}
	configs := map[string]explorer.Config{
		"key":         {ProductID: "ABCDEFGHIJ", DeviceName: "dev1", DeviceSecret: secret, Broker: "tls://127.0.0.1:8883"},
		"certificate": {ProductID: "ABCDEFGHIJ", DeviceName: "dev2", Certificate: cert, Region: "china"},
	}
	for name, cfg := range configs {
		var outputs []string
		for _, v := range []any{cfg, &cfg} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				outputs = append(outputs, fmt.Sprintf(verb, v))
			}
			for _, h := range []func(*bytes.Buffer) slog.Handler{
				func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
				func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			} {
				var buf bytes.Buffer
				slog.New(h(&buf)).Info("dial", "config", v, slog.Any("cfg", v))
				outputs = append(outputs, buf.String())
			}
		}
		opts := []explorer.Option{explorer.WithRootCAs(x509.NewCertPool()), explorer.WithPlainTCP()}
		outputs = append(outputs, fmt.Sprintf("%v %+v %#v", opts, opts, opts))
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("options", "opts", opts[0])
		outputs = append(outputs, buf.String())

		for _, out := range outputs {
			for _, f := range forbidden {
				if strings.Contains(out, f) {
					t.Fatalf("%s config: output %q contains secret material %q", name, out, f)
				}
			}
			if !strings.Contains(out, "dev") && !strings.Contains(out, "explorer.Option") {
				t.Fatalf("%s config: output %q does not identify the device", name, out)
			}
		}
		if name == "key" && !strings.Contains(outputs[2], `DeviceSecret:"[redacted]"`) {
			t.Fatalf("%%#v = %s, want the secret shown as redacted", outputs[2])
		}
	}
}
