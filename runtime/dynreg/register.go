package dynreg

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"
)

// APIVersion selects the registration HTTP API generation.
type APIVersion int

const (
	// V2 is POST /device/register with X-TC-* signature headers (the default).
	V2 APIVersion = iota
	// Legacy is POST /register/dev with the signature in the body (Explorer C and Java SDKs).
	Legacy
)

// String returns "v2" or "legacy".
func (v APIVersion) String() string {
	switch v {
	case V2:
		return "v2"
	case Legacy:
		return "legacy"
	}
	return "APIVersion(" + strconv.Itoa(int(v)) + ")"
}

// Path returns the HTTP path of the API generation.
func (v APIVersion) Path() string {
	if v == Legacy {
		return PathLegacy
	}
	return PathV2
}

// Request identifies the device to register.
type Request struct {
	ProductID     string
	ProductSecret string // from the console's product page; never logged
	DeviceName    string
	Region        string     // "china" (default), "us-east", "europe", "ap-bangkok"
	Endpoint      string     // explicit base URL (https://host[:port][/prefix]); overrides Region
	API           APIVersion // V2 (default) or Legacy
}

// String describes the request without its ProductSecret.
func (r Request) String() string {
	endpoint := r.Endpoint
	if u, err := url.Parse(endpoint); err == nil {
		endpoint = u.Redacted() // user info is rejected by Register, but never print it
	}
	return fmt.Sprintf("dynreg.Request{ProductID:%q DeviceName:%q Region:%q Endpoint:%q API:%s ProductSecret:<redacted>}",
		r.ProductID, r.DeviceName, r.Region, endpoint, r.API)
}

// GoString is String, so %#v does not print the ProductSecret either.
func (r Request) GoString() string { return r.String() }

// LogValue keeps the ProductSecret out of structured logs.
func (r Request) LogValue() slog.Value {
	return slog.GroupValue(slog.String("product", r.ProductID), slog.String("device", r.DeviceName),
		slog.String("api", r.API.String()))
}

// maxResponse bounds what we read from the gateway; a real answer is a few KB.
const maxResponse = 1 << 20

// Register asks the platform for the device's credentials and returns them decrypted and checked:
// a DeviceSecret (PSK products) or a certificate and private key (certificate products). A
// platform rejection is an *Error; malformed answers wrap ErrBadResponse or ErrPayload.
func Register(ctx context.Context, req Request, opts ...Option) (*Credentials, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	target, err := req.url(o.insecureHTTP)
	if err != nil {
		return nil, err
	}
	client, release, err := o.httpClient()
	if err != nil {
		return nil, err
	}
	defer release()
	if _, ok := ctx.Deadline(); !ok && o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}

	httpReq, err := req.build(ctx, target, o.now().Unix(), nonce())
	if err != nil {
		return nil, err
	}
	log := o.logger.With("product", req.ProductID, "device", req.DeviceName, "api", req.API.String())
	log.DebugContext(ctx, "dynreg: registering", "url", target.String())

	resp, err := client.Do(httpReq)
	if err != nil {
		return nil, fmt.Errorf("dynreg: POST %s: %w", target.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("dynreg: reading answer of POST %s: %w", target.Redacted(), err)
	}
	if len(body) > maxResponse {
		return nil, fmt.Errorf("%w: answer of POST %s exceeds %d bytes", ErrBadResponse, target.Redacted(), maxResponse)
	}
	payload, length, err := parseResponse(req.API, resp.StatusCode, body)
	if err != nil {
		if pe, ok := err.(*Error); ok {
			log.WarnContext(ctx, "dynreg: platform rejected registration", "code", pe.Code, "message", pe.Message, "request_id", pe.RequestID)
			return nil, err
		}
		return nil, fmt.Errorf("POST %s: %w", target.Redacted(), err)
	}
	plain, err := Decrypt(req.ProductSecret, payload, length)
	if err != nil {
		return nil, err
	}
	p, err := ParsePayload(plain)
	if err != nil {
		return nil, err
	}
	creds := &Credentials{ProductID: req.ProductID, DeviceName: req.DeviceName}
	switch p.EncryptionType {
	case EncryptionPSK:
		creds.DeviceSecret = p.PSK
	case EncryptionCert:
		creds.CertPEM, creds.KeyPEM = []byte(p.ClientCert), []byte(p.ClientKey)
		if _, err := tls.X509KeyPair(creds.CertPEM, creds.KeyPEM); err != nil {
			return nil, fmt.Errorf("%w: issued certificate/key pair is unusable: %v", ErrPayload, err)
		}
	}
	log.InfoContext(ctx, "dynreg: registered", "credential", creds.Kind())
	return creds, nil
}

// url validates the request and returns the full registration URL.
func (r Request) url(insecureHTTP bool) (*url.URL, error) {
	switch {
	case r.ProductID == "":
		return nil, invalid("ProductID is empty")
	case r.DeviceName == "":
		return nil, invalid("DeviceName is empty")
	case len(r.ProductSecret) < MinProductSecretLen:
		return nil, invalid("ProductSecret is %d bytes, need at least %d", len(r.ProductSecret), MinProductSecretLen)
	case r.API != V2 && r.API != Legacy:
		return nil, invalid("API %s is neither V2 nor Legacy", r.API)
	}
	if r.Endpoint == "" {
		host, err := RegionHost(r.Region)
		if err != nil {
			return nil, err
		}
		return &url.URL{Scheme: "https", Host: host, Path: r.API.Path()}, nil
	}
	u, err := url.Parse(r.Endpoint)
	if err != nil {
		return nil, invalid("Endpoint %q: %v", r.Endpoint, err)
	}
	switch {
	case u.Host == "":
		return nil, invalid("Endpoint %q has no host (want https://host[:port])", r.Endpoint)
	case u.User != nil:
		return nil, invalid("Endpoint must not carry user info")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, invalid("Endpoint %q must not have a query or fragment", r.Endpoint)
	case u.Scheme == "http" && !insecureHTTP:
		return nil, invalid("Endpoint %q is plain http: pass WithInsecureHTTP() to allow it", r.Endpoint)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, invalid("Endpoint %q: scheme must be https (or http with WithInsecureHTTP)", r.Endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + r.API.Path()
	u.RawPath = ""
	return u, nil
}

// build creates the signed HTTP request for either API generation.
func (r Request) build(ctx context.Context, u *url.URL, ts, nonce int64) (*http.Request, error) {
	var body []byte
	var err error
	if r.API == Legacy {
		sig := SignLegacy(r.ProductSecret, LegacyStringToSign(r.ProductID, r.DeviceName, nonce, ts))
		body, err = json.Marshal(legacyRequest{DeviceName: r.DeviceName, Nonce: nonce, ProductID: r.ProductID, Timestamp: ts, Signature: sig})
	} else {
		body, err = json.Marshal(v2Request{ProductID: r.ProductID, DeviceName: r.DeviceName})
	}
	if err != nil {
		return nil, fmt.Errorf("dynreg: encoding request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, invalid("%v", err)
	}
	hr.Header.Set("Accept", "application/json")
	if r.API == Legacy {
		hr.Header.Set("Content-Type", "application/json;charset=UTF-8")
		return hr, nil
	}
	hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	// hr.Host is exactly what net/http sends as Host, so sign that.
	sts := StringToSign(hr.Host, u.Path, AlgorithmHMACSHA256, ts, nonce, body)
	hr.Header.Set("X-TC-Algorithm", AlgorithmHMACSHA256)
	hr.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	hr.Header.Set("X-TC-Nonce", strconv.FormatInt(nonce, 10))
	hr.Header.Set("X-TC-Signature", SignV2(r.ProductSecret, sts))
	return hr, nil
}

type legacyRequest struct {
	DeviceName string `json:"deviceName"`
	Nonce      int64  `json:"nonce"`
	ProductID  string `json:"productId"`
	Timestamp  int64  `json:"timestamp"`
	Signature  string `json:"signature"`
}

type v2Request struct {
	ProductID  string `json:"ProductId"`
	DeviceName string `json:"DeviceName"`
}

// nonce returns a random positive 31-bit integer (the SDKs use C rand() / random ints).
func nonce() int64 {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<31-1))
	if err != nil {
		return time.Now().UnixNano()&(1<<31-1) | 1
	}
	return n.Int64() + 1
}

// httpClient returns the client to use and a release func that drops the connections of a
// client built here (registration is one request; idle connections would only linger).
func (o *options) httpClient() (*http.Client, func(), error) {
	if o.client != nil {
		if o.rootCAs != nil {
			return nil, nil, invalid("WithRootCAs and WithHTTPClient cannot be combined: set RootCAs in the client's transport")
		}
		return o.client, func() {}, nil
	}
	pool := o.rootCAs
	if pool == nil {
		var err error
		if pool, err = tencentRootCAs(); err != nil {
			return nil, nil, err
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// One request per client: HTTP/2 setup would only add round trips and goroutines.
	tr.ForceAttemptHTTP2 = false
	return &http.Client{
		Transport: tr,
		// A redirect would re-send the signed request to a host we did not choose.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, tr.CloseIdleConnections, nil
}
