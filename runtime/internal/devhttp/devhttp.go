// Package devhttp signs, verifies and sends the device-side HTTPS requests of the platform's
// device gateway (docs/PROTOCOL.md §6.2, used by §7.2 log upload and §7.9 HTTP publish).
//
// A request is signed over
//
//	POST\n{host}\n{path}\n{query}\n{algorithm}\n{timestamp}\n{nonce}\n{lowercase_hex(SHA256(body))}
//
// and carries X-TC-Algorithm, X-TC-Timestamp, X-TC-Nonce and X-TC-Signature headers. Key
// devices sign with HMAC-SHA256 keyed with the DeviceSecret *text* bytes (not base64-decoded);
// certificate devices sign with their private key: "rsa-sha256" (PKCS#1 v1.5) for RSA keys,
// as the platform documents, and "ecdsa-sha256" (ASN.1 signature) for ECDSA keys. The ECDSA
// algorithm is this project's choice for certificates the platform would not issue (the test
// CA of runtime/explorertest issues ECDSA device certificates); the real platform's support
// for it is unconfirmed.
//
// {host} is the host name without a port, as the official Python SDK signs it; Verify also
// accepts the Host header with its port.
package devhttp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// Header names of a signed request.
const (
	HeaderAlgorithm = "X-TC-Algorithm"
	HeaderTimestamp = "X-TC-Timestamp"
	HeaderNonce     = "X-TC-Nonce"
	HeaderSignature = "X-TC-Signature"
)

// Algorithms (values of X-TC-Algorithm).
const (
	AlgHMACSHA256  = "hmacsha256"
	AlgRSASHA256   = "rsa-sha256"
	AlgECDSASHA256 = "ecdsa-sha256"
)

// MaxResponse bounds how much of a gateway response is read.
const MaxResponse = 64 << 10

// Errors of signing and verification.
var (
	ErrNoCredentials = errors.New("devhttp: neither a device secret nor a private key is set")
	ErrBadSignature  = errors.New("signature does not match")
	ErrExpired       = errors.New("timestamp outside the accepted window")
	ErrBadHeader     = errors.New("missing or malformed signature header")
)

// Signer signs StringToSign texts for one device.
type Signer struct {
	secret []byte
	key    crypto.Signer
	alg    string
}

// NewSecretSigner signs with HMAC-SHA256 keyed with the DeviceSecret text as it is shown in
// the console (base64 text, used as bytes, never decoded).
func NewSecretSigner(deviceSecret string) (*Signer, error) {
	if deviceSecret == "" {
		return nil, ErrNoCredentials
	}
	return &Signer{secret: []byte(deviceSecret), alg: AlgHMACSHA256}, nil
}

// NewKeySigner signs with a certificate device's private key (RSA or ECDSA).
func NewKeySigner(key crypto.PrivateKey) (*Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return &Signer{key: k, alg: AlgRSASHA256}, nil
	case *ecdsa.PrivateKey:
		return &Signer{key: k, alg: AlgECDSASHA256}, nil
	case nil:
		return nil, ErrNoCredentials
	}
	return nil, fmt.Errorf("devhttp: private key of type %T is not supported (want RSA or ECDSA)", key)
}

// Algorithm is the X-TC-Algorithm value the signer produces.
func (s *Signer) Algorithm() string { return s.alg }

// Sign returns the base64 signature of text.
func (s *Signer) Sign(text string) (string, error) {
	if s.secret != nil {
		m := hmac.New(sha256.New, s.secret)
		m.Write([]byte(text))
		return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
	}
	sum := sha256.Sum256([]byte(text))
	sig, err := s.key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("devhttp: signing with the device key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// StringToSign is the signed text of a request (see the package doc).
func StringToSign(method, host, path, query, alg, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	var b strings.Builder
	for i, part := range []string{method, host, path, query, alg, timestamp, nonce, hex.EncodeToString(sum[:])} {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(part)
	}
	return b.String()
}

// hostname strips a port from a Host header value.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return strings.Trim(h, "[]")
	}
	return host
}

// SignRequest sets the four signature headers of req, a POST whose body is body.
func SignRequest(req *http.Request, body []byte, s *Signer, now time.Time) error {
	nonce, err := rand.Int(rand.Reader, big.NewInt(1<<31-1))
	if err != nil {
		return fmt.Errorf("devhttp: nonce: %w", err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	n := nonce.String()
	text := StringToSign(req.Method, hostname(req.URL.Host), req.URL.EscapedPath(), req.URL.RawQuery, s.alg, ts, n, body)
	sig, err := s.Sign(text)
	if err != nil {
		return err
	}
	req.Header.Set(HeaderAlgorithm, s.alg)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, n)
	req.Header.Set(HeaderSignature, sig)
	return nil
}

// Credentials is what the platform knows to check a device's signature: its secret (key
// devices) or its certificate (certificate devices).
type Credentials struct {
	Secret      string
	Certificate *x509.Certificate
}

// Verify checks the signature headers of a received request whose body is body against the
// device's credentials and that the timestamp is within maxSkew of now. The error names the
// header or the reason (wrapping ErrBadHeader, ErrBadSignature or ErrExpired).
func Verify(req *http.Request, body []byte, cred Credentials, now time.Time, maxSkew time.Duration) error {
	alg := req.Header.Get(HeaderAlgorithm)
	ts := req.Header.Get(HeaderTimestamp)
	nonce := req.Header.Get(HeaderNonce)
	sigText := req.Header.Get(HeaderSignature)
	for _, h := range [][2]string{{HeaderAlgorithm, alg}, {HeaderTimestamp, ts}, {HeaderNonce, nonce}, {HeaderSignature, sigText}} {
		if h[1] == "" {
			return fmt.Errorf("%w: %s is missing", ErrBadHeader, h[0])
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not an integer", ErrBadHeader, HeaderTimestamp, clip(ts))
	}
	if _, err := strconv.ParseInt(nonce, 10, 64); err != nil {
		return fmt.Errorf("%w: %s %q is not an integer", ErrBadHeader, HeaderNonce, clip(nonce))
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrBadHeader, HeaderSignature)
	}
	hosts := []string{hostname(req.Host)}
	if req.Host != hosts[0] {
		hosts = append(hosts, req.Host)
	}
	ok := false
	for _, h := range hosts {
		text := StringToSign(req.Method, h, req.URL.EscapedPath(), req.URL.RawQuery, alg, ts, nonce, body)
		match, err := verifyText(alg, text, sig, cred)
		if err != nil {
			return err
		}
		if match {
			ok = true
			break
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(t, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: %s %d is %v away from the platform's time", ErrExpired, HeaderTimestamp, t, d.Round(time.Second))
	}
	return nil
}

func verifyText(alg, text string, sig []byte, cred Credentials) (bool, error) {
	sum := sha256.Sum256([]byte(text))
	switch strings.ToLower(alg) {
	case AlgHMACSHA256:
		if cred.Secret == "" {
			return false, fmt.Errorf("%w: %s %q needs a key device, this is a certificate device", ErrBadHeader, HeaderAlgorithm, alg)
		}
		m := hmac.New(sha256.New, []byte(cred.Secret))
		m.Write([]byte(text))
		return hmac.Equal(m.Sum(nil), sig), nil
	case AlgRSASHA256:
		pub, ok := certKey(cred).(*rsa.PublicKey)
		if !ok {
			return false, fmt.Errorf("%w: %s %q needs a device certificate with an RSA key", ErrBadHeader, HeaderAlgorithm, alg)
		}
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil, nil
	case AlgECDSASHA256:
		pub, ok := certKey(cred).(*ecdsa.PublicKey)
		if !ok {
			return false, fmt.Errorf("%w: %s %q needs a device certificate with an ECDSA key", ErrBadHeader, HeaderAlgorithm, alg)
		}
		return ecdsa.VerifyASN1(pub, sum[:], sig), nil
	}
	return false, fmt.Errorf("%w: %s %q is not one of %s, %s, %s", ErrBadHeader, HeaderAlgorithm, clip(alg), AlgHMACSHA256, AlgRSASHA256, AlgECDSASHA256)
}

func certKey(c Credentials) any {
	if c.Certificate == nil {
		return nil
	}
	return c.Certificate.PublicKey
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// APIError is a failure answered by the gateway in its {"Response":{"Error":{...}}} shape, or
// an HTTP status without that shape.
type APIError struct {
	Status    int    // HTTP status
	Code      string // Error.Code, e.g. "AuthFailure.SignatureFailure"
	Message   string // Error.Message
	RequestID string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

// Response is the gateway's answer envelope.
type Response struct {
	Response struct {
		RequestID string `json:"RequestId"`
		Error     *struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error,omitempty"`
	} `json:"Response"`
}

// Post signs body with s and POSTs it as JSON to url; it returns the RequestId of a success
// or an *APIError. The URL (which carries no secret) may appear in errors.
func Post(ctx context.Context, client *http.Client, url string, body []byte, s *Signer, now time.Time) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("devhttp: request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if err := SignRequest(req, body, s, now); err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("devhttp: POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return "", fmt.Errorf("devhttp: POST %s: reading the answer: %w", url, err)
	}
	return ParseResponse(resp.StatusCode, raw)
}

// ParseResponse interprets a gateway answer: the RequestId of a success, or an *APIError.
func ParseResponse(status int, raw []byte) (string, error) {
	var r Response
	jerr := unmarshalChecked(raw, &r)
	if jerr == nil && r.Response.Error != nil {
		return "", &APIError{Status: status, Code: r.Response.Error.Code, Message: r.Response.Error.Message, RequestID: r.Response.RequestID}
	}
	if status/100 != 2 {
		return "", &APIError{Status: status, Message: strings.TrimSpace(clip(string(raw)))}
	}
	if jerr != nil {
		return "", &APIError{Status: status, Message: "answer is not the gateway's JSON envelope: " + jerr.Error()}
	}
	return r.Response.RequestID, nil
}

// unmarshalChecked decodes an untrusted answer with the project's JSON guard.
func unmarshalChecked(raw []byte, v any) error { return jsonguard.Unmarshal(raw, v) }
