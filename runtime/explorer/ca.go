package explorer

import (
	"crypto/x509"
	_ "embed"
)

// tencentRootCAPEM is the self-signed Tencent IoT root CA the platform's brokers chain to
// (docs/PROTOCOL.md §1.6; the same PEM is embedded in the official C, Python and Java SDKs).
// Subject: C=CN, ST=GuangDong, L=ShenZhen, O=Tencent, OU=Tencent Iothub, CN=www.tencent.com.
//
//go:embed tencent_root_ca.pem
var tencentRootCAPEM []byte

// TencentRootCAPEM returns a copy of the embedded Tencent IoT root CA certificate (PEM).
func TencentRootCAPEM() []byte { return append([]byte(nil), tencentRootCAPEM...) }

// TencentRootCAs returns a pool holding only the Tencent IoT root CA, which is what Dial
// verifies the broker against unless WithRootCAs is given.
func TencentRootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(tencentRootCAPEM) {
		panic("explorer: embedded Tencent root CA is not valid PEM") // build-time invariant
	}
	return pool
}
