package ota

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// tlsFailure turns an HTTPS failure that no retry can fix into an ErrTLS error naming the
// cause and what to do about it; it returns nil for anything else (a network failure is
// retried as usual). A certificate the device does not trust, an expired or not-yet-valid
// certificate, a name mismatch and a server that does not speak TLS are configuration
// problems of the device or the server, not a slow network.
func tlsFailure(rawURL string, err error) error {
	host := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		host = u.Host
	}
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		system   x509.SystemRootsError
	)
	var why, fix string
	switch {
	case errors.As(err, &unknown):
		why = "its certificate is signed by an authority the device does not trust"
		fix = "add the server's CA with WithRootCAs (or WithHTTPClient), or update the device's system trust store"
	case errors.As(err, &hostname):
		why = fmt.Sprintf("its certificate is not valid for %q", hostname.Host)
		fix = "check the host name in the firmware URL and the server's certificate"
	case errors.As(err, &invalid):
		why = "its certificate is invalid: " + invalid.Error()
		if invalid.Reason == x509.Expired {
			fix = "check the device's clock (a certificate is expired or not yet valid for it) and the server's certificate"
		} else {
			fix = "check the server's certificate chain"
		}
	case errors.As(err, &system):
		why = "the device has no system trust store"
		fix = "pass the CA with WithRootCAs"
	case errors.As(err, &verify):
		why = "its certificate failed verification: " + verify.Err.Error()
		fix = "check the server's certificate and the device's trust store (WithRootCAs)"
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http replaces the RecordHeaderError of an HTTP answer by that text.
		why = "the server does not speak TLS"
		fix = "use an http:// URL with WithInsecureHTTP, or fix the server's port"
	case errors.As(err, &alert):
		why = "the server refused the TLS handshake (" + alert.Error() + ")"
		fix = "check the TLS versions and client certificate the server requires"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s: %s; %s (cause: %v)", ErrTLS, host, why, fix, stripURL(err))
}
