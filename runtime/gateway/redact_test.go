package gateway

import (
	"testing"

	"github.com/tplgen/tplgen/internal/secrettest"
)

func TestSubDeviceNeverPrintsItsCredential(t *testing.T) {
	const secret = "c3ViLWRldmljZS1zZWNyZXQ="
	psk := SubDevice{Device: Device{"PID0000001", "sub1"}, DeviceSecret: secret}
	secrettest.Check(t, psk, secret)
	secrettest.Check(t, &psk, secret)
	cert := SubDevice{Device: Device{"PID0000001", "sub2"}, Certificate: []byte("-----BEGIN CERTIFICATE-----MIIBxyz")}
	key := CertificateBindKey(cert.Certificate)
	secrettest.Check(t, cert, key, "MIIBxyz")
	if got := psk.String(); got != "gateway.SubDevice{PID0000001/sub1 auth:psk <secret redacted>}" {
		t.Errorf("String = %q", got)
	}
	if got := cert.String(); got != "gateway.SubDevice{PID0000001/sub2 auth:certificate <secret redacted>}" {
		t.Errorf("String = %q", got)
	}
}
