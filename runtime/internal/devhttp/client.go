package devhttp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultEndpoint is the device gateway's HTTPS base URL (docs/PROTOCOL.md §6.2, §7.2, §7.9).
const DefaultEndpoint = "https://ap-guangzhou.gateway.tencentdevices.com"

// NewHTTPClient returns an HTTPS client trusting roots (for the gateway: the embedded Tencent
// root CA when the caller passes it; runtime/resource: the pool given to WithRootCAs) with an
// overall timeout.
func NewHTTPClient(roots *x509.CertPool, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// CheckEndpoint validates a base URL: http(s), a host, no query; plain http only when allowed.
func CheckEndpoint(raw string, allowHTTP bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("endpoint %q is not a URL like https://host[:port]", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return "", fmt.Errorf("endpoint %q is plain http: the answer would not be authenticated (allow it explicitly)", raw)
		}
	default:
		return "", fmt.Errorf("endpoint %q: scheme %q is not https or http", raw, u.Scheme)
	}
	if u.RawQuery != "" {
		return "", fmt.Errorf("endpoint %q must not have a query", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}
