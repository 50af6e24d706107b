package dynreg

import (
	"crypto/tls"
	"fmt"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// Config returns the explorer.Config that connects the registered device. region and broker are
// passed through to explorer.Config (both may be empty: region defaults to china, broker to the
// region's host). A certificate is parsed with tls.X509KeyPair; the result is validated.
func (c *Credentials) Config(region, broker string) (explorer.Config, error) {
	if err := c.Validate(); err != nil {
		return explorer.Config{}, err
	}
	cfg := explorer.Config{ProductID: c.ProductID, DeviceName: c.DeviceName, DeviceSecret: c.DeviceSecret, Region: region, Broker: broker}
	if len(c.CertPEM) > 0 {
		cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return explorer.Config{}, fmt.Errorf("dynreg: credentials of %s/%s: certificate/key pair: %v", c.ProductID, c.DeviceName, err)
		}
		cfg.Certificate = &cert
	}
	if err := cfg.Validate(); err != nil {
		return explorer.Config{}, fmt.Errorf("dynreg: credentials of %s/%s: %w", c.ProductID, c.DeviceName, err)
	}
	return cfg, nil
}
