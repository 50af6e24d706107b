package dynreg

import (
	"crypto/x509"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// tencentRootCAs returns the Tencent IoT root CA, which also signs the registration gateway
// (the C SDK verifies dynreg HTTPS against it, docs/PROTOCOL.md §1.6).
func tencentRootCAs() (*x509.CertPool, error) {
	return explorer.TencentRootCAs(), nil
}
