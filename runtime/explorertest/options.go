package explorertest

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"time"
)

// Option configures a Server.
type Option func(*config) error

type config struct {
	mqttAddr, tlsAddr, httpAddr, httpsAddr string
	fwAddr, fwTLSAddr                      string
	wsAddr, wssAddr                        string // WebSocket listeners, off when "" (websocket.go)
	logger                                 *slog.Logger
	clock                                  func() time.Time
	dataDir, apiToken                      string // console.go, persist.go
}

func defaultConfig() config {
	return config{
		mqttAddr:  "127.0.0.1:0",
		tlsAddr:   "127.0.0.1:0",
		httpAddr:  "127.0.0.1:0",
		httpsAddr: "127.0.0.1:0",
		fwAddr:    "127.0.0.1:0",
		fwTLSAddr: "127.0.0.1:0",
		logger:    slog.New(slog.DiscardHandler),
		clock:     time.Now,
	}
}

func optErr(format string, args ...any) error {
	return fmt.Errorf("explorertest: option: "+format, args...)
}

func addrOption(name string, dst func(*config) *string) func(string) Option {
	return func(addr string) Option {
		return func(c *config) error {
			if addr == "" {
				return optErr("%s: empty address", name)
			}
			*dst(c) = addr
			return nil
		}
	}
}

// WithMQTTAddr sets the plain MQTT listener address (default "127.0.0.1:0", an ephemeral port).
func WithMQTTAddr(addr string) Option {
	return addrOption("WithMQTTAddr", func(c *config) *string { return &c.mqttAddr })(addr)
}

// WithTLSAddr sets the MQTT-over-TLS listener address (default "127.0.0.1:0").
func WithTLSAddr(addr string) Option {
	return addrOption("WithTLSAddr", func(c *config) *string { return &c.tlsAddr })(addr)
}

// WithHTTPAddr sets the plain HTTP listener address (default "127.0.0.1:0").
func WithHTTPAddr(addr string) Option {
	return addrOption("WithHTTPAddr", func(c *config) *string { return &c.httpAddr })(addr)
}

// WithHTTPSAddr sets the HTTPS listener address (default "127.0.0.1:0").
func WithHTTPSAddr(addr string) Option {
	return addrOption("WithHTTPSAddr", func(c *config) *string { return &c.httpsAddr })(addr)
}

// WithFirmwareAddr sets the plain HTTP address of the firmware download host (default
// "127.0.0.1:0"), the emulator's object-storage host: firmware URLs are http://ADDR/{object}?...
// Use port 80 (e.g. "127.0.0.1:80") for devices built on the C SDK, which always download
// from port 80; URLs on the default port do not name it.
func WithFirmwareAddr(addr string) Option {
	return addrOption("WithFirmwareAddr", func(c *config) *string { return &c.fwAddr })(addr)
}

// WithFirmwareTLSAddr sets the HTTPS address of the firmware download host (default
// "127.0.0.1:0"; port 443 is left out of URLs).
func WithFirmwareTLSAddr(addr string) Option {
	return addrOption("WithFirmwareTLSAddr", func(c *config) *string { return &c.fwTLSAddr })(addr)
}

// WithLogger sets the server's logger (default: discard). Secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optErr("WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithClock replaces time.Now for the platform's notion of time: signature expiry checks and
// the time service ($sys/operation). Certificates are always issued against the real clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return optErr("WithClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// DeviceOption configures a device added with AddDevice.
type DeviceOption func(*deviceConfig) error

type deviceConfig struct {
	secret      string
	certificate bool
}

// WithSecret registers the device with the given base64 device secret (PSK) instead of a
// random one. The secret must decode to at least one byte.
func WithSecret(secret string) DeviceOption {
	return func(d *deviceConfig) error {
		key, err := base64.StdEncoding.DecodeString(secret)
		if err != nil || len(key) == 0 {
			// The secret itself stays out of the error string.
			return fmt.Errorf("explorertest: WithSecret: secret is not non-empty standard base64 (%d characters)", len(secret))
		}
		d.secret = secret
		return nil
	}
}

// WithCertificate makes a certificate device: the server issues it a certificate from the test
// CA (see IssueCertificate) and authenticates it by mutual TLS; it has no secret.
func WithCertificate() DeviceOption {
	return func(d *deviceConfig) error {
		d.certificate = true
		return nil
	}
}
