package explorertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// testCA is the server's own certificate authority. It signs the broker/HTTPS certificate and
// every device certificate, so a test trusts exactly one root (RootCAs).
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	pool    *x509.CertPool
}

const certValidity = 10 * 365 * 24 * time.Hour

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newTestCA() (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("explorertest: CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("explorertest: CA serial: %w", err)
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"tplgen explorertest"}, CommonName: "explorertest root CA"},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("explorertest: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("explorertest: CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pool:    pool,
	}, nil
}

// issue signs a fresh ECDSA P-256 key pair with tpl's subject, SANs and usages.
func (ca *testCA) issue(tpl *x509.Certificate) (certPEM, keyPEM []byte, cert *x509.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("explorertest: certificate key: %w", err)
	}
	if tpl.SerialNumber, err = newSerial(); err != nil {
		return nil, nil, nil, fmt.Errorf("explorertest: certificate serial: %w", err)
	}
	now := time.Now()
	tpl.NotBefore = now.Add(-time.Hour)
	tpl.NotAfter = now.Add(certValidity)
	tpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("explorertest: certificate: %w", err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		return nil, nil, nil, fmt.Errorf("explorertest: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("explorertest: certificate key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, cert, nil
}

// serverCertificate issues the certificate shared by the MQTT TLS and HTTPS listeners.
func (ca *testCA) serverCertificate() (tls.Certificate, error) {
	certPEM, keyPEM, _, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"tplgen explorertest"}, CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// deviceCertificate issues a client certificate for a device. The subject's CommonName is
// {pid}{dn} (the MQTT client id) and OrganizationalUnit holds the product id, so the
// certificate is readable by humans; the platform identifies the device by the certificate's
// fingerprint, which the registry records (see IssueCertificate).
func (ca *testCA) deviceCertificate(id DeviceID) (certPEM, keyPEM []byte, fingerprint [32]byte, err error) {
	certPEM, keyPEM, cert, err := ca.issue(&x509.Certificate{
		Subject: pkix.Name{
			Organization:       []string{"tplgen explorertest"},
			OrganizationalUnit: []string{id.ProductID},
			CommonName:         id.ProductID + id.DeviceName,
		},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, nil, fingerprint, err
	}
	return certPEM, keyPEM, sha256.Sum256(cert.Raw), nil
}
