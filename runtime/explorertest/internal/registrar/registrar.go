// Package registrar is the platform side of dynamic registration for the in-process test
// platform: an http.Handler for both API generations (POST /device/register and
// POST /register/dev) that verifies signatures, applies the product's registration policy, asks
// the platform's registry for credentials and returns them encrypted exactly as IoT Explorer does
// (AES-128-CBC, zero padding, IV "0"x16, key = first 16 bytes of the ProductSecret, base64).
//
// Requests are accepted within ±300 s (DefaultMaxSkew) of the platform clock; nonces are not
// remembered, so a captured request can be replayed inside that window (it only returns the
// same encrypted credentials).
//
// It deliberately does not import runtime/dynreg: the signing and encryption here are a second,
// independent implementation of docs/PROTOCOL.md §6, so that end-to-end tests cross-check the
// device side instead of agreeing with themselves.
package registrar

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Credential is the kind of credential a product's devices are issued.
type Credential string

// Credential kinds.
const (
	PSK  Credential = "psk"  // DeviceSecret (encryptionType 2)
	Cert Credential = "cert" // certificate + private key (encryptionType 1)
)

// Product is one product's dynamic-registration configuration (the console's settings).
type Product struct {
	Secret     string     // ProductSecret, at least 16 bytes (its first 16 are the AES key)
	Enabled    bool       // dynamic registration switched on
	AutoCreate bool       // unknown device names are created on registration
	Credential Credential // what devices of this product get
}

// DeviceState is what the registry knows of a device.
type DeviceState int

// Device states.
const (
	DeviceUnknown   DeviceState = iota // no such device
	DeviceInactive                     // exists, has never connected: may (re-)register
	DeviceActivated                    // has connected: must be deleted before re-registering
)

// Devices is the registry the registrar works against; the platform server implements it.
// Calls for one registration are made under the registrar's lock, in the order
// State, [Create], PSK or Certificate.
type Devices interface {
	// State reports whether the device exists and whether it has ever connected.
	State(productID, deviceName string) DeviceState
	// Create adds a device of the given credential kind (auto-create).
	Create(productID, deviceName string, kind Credential) error
	// PSK returns the DeviceSecret of a PSK device.
	PSK(productID, deviceName string) (string, error)
	// Certificate returns a certificate and key (PEM) for a certificate device.
	Certificate(productID, deviceName string) (certPEM, keyPEM []byte, err error)
}

// DefaultMaxSkew is the accepted distance between a request's timestamp and the platform clock:
// five minutes either way, the window Tencent Cloud API signatures use.
const DefaultMaxSkew = 300 * time.Second

// Registrar serves dynamic registration. Use New; it is safe for concurrent use.
type Registrar struct {
	devices Devices
	log     *slog.Logger
	now     func() time.Time
	maxSkew time.Duration

	mu       sync.Mutex // guards products and serialises State/Create/issue per registration
	products map[string]Product
}

// Option configures a Registrar.
type Option func(*Registrar)

// WithLogger sets the logger (discard by default). Secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(r *Registrar) {
		if l != nil {
			r.log = l
		}
	}
}

// WithClock sets the platform clock used for the timestamp window.
func WithClock(now func() time.Time) Option {
	return func(r *Registrar) {
		if now != nil {
			r.now = now
		}
	}
}

// WithMaxSkew sets the timestamp window (DefaultMaxSkew by default).
func WithMaxSkew(d time.Duration) Option {
	return func(r *Registrar) { r.maxSkew = d }
}

// New returns a Registrar issuing credentials through devices.
func New(devices Devices, opts ...Option) (*Registrar, error) {
	if devices == nil {
		return nil, errors.New("registrar: nil Devices")
	}
	r := &Registrar{
		devices:  devices,
		log:      slog.New(slog.DiscardHandler),
		now:      time.Now,
		maxSkew:  DefaultMaxSkew,
		products: map[string]Product{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.maxSkew <= 0 {
		return nil, fmt.Errorf("registrar: max skew %v must be positive", r.maxSkew)
	}
	return r, nil
}

// SetProduct sets (or replaces) a product's registration configuration.
func (r *Registrar) SetProduct(productID string, p Product) error {
	if productID == "" {
		return errors.New("registrar: empty product id")
	}
	if len(p.Secret) < 16 {
		return fmt.Errorf("registrar: product %s: ProductSecret is %d bytes, need at least 16", productID, len(p.Secret))
	}
	if p.Credential != PSK && p.Credential != Cert {
		return fmt.Errorf("registrar: product %s: credential %q is neither %q nor %q", productID, p.Credential, PSK, Cert)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.products[productID] = p
	return nil
}

// Product returns a product's configuration.
func (r *Registrar) Product(productID string) (Product, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.products[productID]
	return p, ok
}

// Mount registers both API paths on mux.
func (r *Registrar) Mount(mux *http.ServeMux) {
	mux.HandleFunc(PathV2, r.serveV2)
	mux.HandleFunc(PathLegacy, r.serveLegacy)
}

// ServeHTTP serves both API paths (for use without a mux).
func (r *Registrar) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case PathV2:
		r.serveV2(w, req)
	case PathLegacy:
		r.serveLegacy(w, req)
	default:
		http.NotFound(w, req)
	}
}

// NewProductSecret returns a random 24-character alphanumeric ProductSecret, the console's shape.
func NewProductSecret() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
