// Package httppub publishes device messages over HTTPS, without an MQTT connection
// (docs/PROTOCOL.md §7.9): POST {endpoint}/device/publish with
//
//	{"ProductId","DeviceName","TopicName","Payload","PayloadEncoding"?,"Qos"}
//
// signed like the dynamic registration API (§6.2). Key devices sign with HMAC-SHA256 keyed with
// the DeviceSecret text (not base64-decoded, unlike the MQTT password); certificate devices sign
// with their private key (RSA-SHA256 as the platform documents; ECDSA-SHA256 for ECDSA keys, a
// choice of this project, see runtime/internal/devhttp).
//
// A payload that is valid UTF-8 is sent as text; anything else is base64-encoded with
// "PayloadEncoding":"base64". The platform treats a message published this way exactly like one
// published over MQTT: a $thing/up/property report updates the reported state (its reply goes
// to the device's MQTT subscription, if any).
//
// Errors from the gateway are *[APIError] values carrying its error code (e.g.
// AuthFailure.SignatureFailure for a bad signature).
//
// # The official Python SDK's call
//
//	httpDevice / httpPublish(topic, payload, qos)   New(cfg, ...) then Client.Publish
package httppub

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/internal/devhttp"
)

// Path is the publish API's path.
const Path = "/device/publish"

// DefaultEndpoint is the platform's device gateway.
const DefaultEndpoint = devhttp.DefaultEndpoint

// APIError is a refusal answered by the gateway (HTTP status, error code and message).
type APIError = devhttp.APIError

// ErrInvalid is wrapped by errors about the arguments of Publish or New.
var ErrInvalid = errors.New("httppub: invalid argument")

// Client publishes for one device. It is safe for concurrent use.
type Client struct {
	pid, dn  string
	signer   *devhttp.Signer
	url      string
	client   *http.Client
	now      func() time.Time
	roots    *x509.CertPool
	endpoint string
	insecure bool
}

// Option configures New.
type Option func(*Client)

// WithEndpoint sets the gateway base URL (default DefaultEndpoint), e.g. the HTTPS URL of
// runtime/explorertest.
func WithEndpoint(url string) Option { return func(c *Client) { c.endpoint = url } }

// WithRootCAs sets the CAs trusted for the endpoint (default: the embedded Tencent root CA).
func WithRootCAs(pool *x509.CertPool) Option { return func(c *Client) { c.roots = pool } }

// WithHTTPClient uses hc as is (its TLS settings and timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.client = hc } }

// WithInsecureHTTP allows an http:// endpoint.
func WithInsecureHTTP() Option { return func(c *Client) { c.insecure = true } }

// WithClock sets the clock of the signature timestamp (default time.Now). A device that also
// has an MQTT connection passes its corrected clock (explorer.Conn.Now): the gateway refuses
// timestamps more than a few minutes from its own.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a Client for the device cfg names (ProductID, DeviceName and DeviceSecret or
// Certificate; Broker and Region are not used).
func New(cfg explorer.Config, opts ...Option) (*Client, error) {
	c := &Client{pid: cfg.ProductID, dn: cfg.DeviceName, endpoint: DefaultEndpoint, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	signer, err := signerFor(cfg)
	if err != nil {
		return nil, err
	}
	c.signer = signer
	base, err := devhttp.CheckEndpoint(c.endpoint, c.insecure)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	c.url = base + Path
	if c.client == nil {
		roots := c.roots
		if roots == nil {
			roots = explorer.TencentRootCAs()
		}
		c.client = devhttp.NewHTTPClient(roots, 30*time.Second)
	}
	return c, nil
}

// signerFor builds the request signer of a device configuration.
func signerFor(cfg explorer.Config) (*devhttp.Signer, error) {
	if cfg.ProductID == "" || cfg.DeviceName == "" {
		return nil, fmt.Errorf("%w: ProductID and DeviceName are required", ErrInvalid)
	}
	switch {
	case cfg.DeviceSecret != "" && cfg.Certificate != nil:
		return nil, fmt.Errorf("%w: both DeviceSecret and Certificate are set; set exactly one", ErrInvalid)
	case cfg.DeviceSecret != "":
		return devhttp.NewSecretSigner(cfg.DeviceSecret)
	case cfg.Certificate != nil:
		s, err := devhttp.NewKeySigner(cfg.Certificate.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: neither DeviceSecret nor Certificate is set", ErrInvalid)
}

// Message is the request body of the publish API.
type Message struct {
	ProductID       string `json:"ProductId"`
	DeviceName      string `json:"DeviceName"`
	TopicName       string `json:"TopicName"`
	Payload         string `json:"Payload"`
	PayloadEncoding string `json:"PayloadEncoding,omitempty"`
	Qos             int    `json:"Qos"`
}

// Publish sends payload to topic with qos (0 or 1) and returns the gateway's RequestId.
// The topic must belong to the device (the gateway checks it like an MQTT publish); the
// payload is at most explorer.MaxPayloadSize bytes.
func (c *Client) Publish(ctx context.Context, topic string, qos byte, payload []byte) (string, error) {
	switch {
	case topic == "" || strings.ContainsAny(topic, "+#"):
		return "", fmt.Errorf("%w: topic %q is empty or has a wildcard", ErrInvalid, topic)
	case qos > 1:
		return "", fmt.Errorf("%w: qos %d (the platform has 0 and 1)", ErrInvalid, qos)
	case len(payload) > explorer.MaxPayloadSize:
		return "", fmt.Errorf("%w: payload of %d bytes, the limit is %d", ErrInvalid, len(payload), explorer.MaxPayloadSize)
	}
	m := Message{ProductID: c.pid, DeviceName: c.dn, TopicName: topic, Qos: int(qos)}
	if utf8.Valid(payload) {
		m.Payload = string(payload)
	} else {
		m.Payload, m.PayloadEncoding = base64.StdEncoding.EncodeToString(payload), "base64"
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("httppub: encoding the request: %w", err)
	}
	id, err := devhttp.Post(ctx, c.client, c.url, body, c.signer, c.now())
	if err != nil {
		return "", fmt.Errorf("httppub: publish %s: %w", topic, err)
	}
	return id, nil
}
