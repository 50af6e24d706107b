package dynreg

import (
	"testing"

	"github.com/tplgen/tplgen/internal/secrettest"
)

func TestSecretsNeverPrint(t *testing.T) {
	const (
		productSecret = "UHJvZHVjdFNlY3JldFZhbHVlMTIz"
		deviceSecret  = "RGV2aWNlU2VjcmV0VmFsdWU="
		keyPEM        = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAprivatekeybytes\n-----END PRIVATE KEY-----\n"
	)
	req := Request{ProductID: "PID0000001", ProductSecret: productSecret, DeviceName: "dev1", Endpoint: "https://u:pw@example.test"}
	secrettest.Check(t, req, productSecret, "pw@")
	secrettest.Check(t, &req, productSecret, "pw@")

	psk := Credentials{ProductID: "PID0000001", DeviceName: "dev1", DeviceSecret: deviceSecret}
	secrettest.Check(t, psk, deviceSecret)
	secrettest.Check(t, &psk, deviceSecret)
	cert := Credentials{ProductID: "PID0000001", DeviceName: "dev1", CertPEM: []byte("-----BEGIN CERTIFICATE-----"), KeyPEM: []byte(keyPEM)}
	secrettest.Check(t, cert, "MIGHAgEAprivatekeybytes")
	secrettest.Check(t, &cert, "MIGHAgEAprivatekeybytes")

	for _, p := range []Payload{
		{EncryptionType: EncryptionPSK, PSK: deviceSecret},
		{EncryptionType: EncryptionCert, ClientCert: "-----BEGIN CERTIFICATE-----", ClientKey: keyPEM},
	} {
		secrettest.Check(t, p, deviceSecret, "MIGHAgEAprivatekeybytes")
		secrettest.Check(t, &p, deviceSecret, "MIGHAgEAprivatekeybytes")
	}
}
