package dynreg

import (
	"crypto/x509"
	"errors"
)

// tencentRootCAs returns the pool holding the Tencent root CA that signs the registration gateway.
// TODO(wire): use explorer's embedded CA once runtime/explorer exports it.
func tencentRootCAs() (*x509.CertPool, error) {
	return nil, errors.New("dynreg: Tencent root CA not available yet")
}
