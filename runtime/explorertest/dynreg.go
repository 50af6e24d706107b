package explorertest

// Dynamic registration (docs/PROTOCOL.md §6): both HTTP API generations, POST /device/register (V2)
// and POST /register/dev (legacy), served on the HTTP and HTTPS listeners. The endpoint logic is
// in internal/registrar; this file connects it to the device registry:
//
//   - a device is "activated" once it has logged in over MQTT (DeviceInfo.Connects > 0) or is
//     online through a gateway; activated devices cannot register again until removed;
//   - PSK products return the device's secret (the same one AddDevice returned);
//   - certificate products issue a fresh certificate on every registration (IssueCertificate),
//     so only the most recently registered certificate can connect.

import (
	"errors"
	"fmt"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/registrar"
)

// DynregConfig configures dynamic registration for one product.
type DynregConfig struct {
	// ProductSecret is the product's secret (at least 16 bytes); empty keeps the product's
	// current secret (one set earlier, or restored by WithDataDir) or else means a random
	// 24-character one. EnableDynamicRegistration returns it.
	ProductSecret string
	// AutoCreate creates devices on registration; otherwise only devices added with AddDevice
	// can register.
	AutoCreate bool
	// Certificate issues certificates (mutual-TLS devices) instead of device secrets (PSK).
	Certificate bool
}

// EnableDynamicRegistration switches dynamic registration on for product pid (replacing any
// earlier configuration) and returns its ProductSecret. Devices register with runtime/dynreg at
// Endpoint HTTPSURL() (trusting RootCAs()) or HTTPURL().
func (s *Server) EnableDynamicRegistration(pid string, cfg DynregConfig) (productSecret string, err error) {
	reg, err := s.registrar()
	if err != nil {
		return "", err
	}
	if err := checkIDPart("product id", pid); err != nil {
		return "", err
	}
	secret := cfg.ProductSecret
	if cur, ok := reg.Product(pid); ok && secret == "" {
		secret = cur.Secret // e.g. restored from --data: devices may hold credentials derived from it
	}
	if secret == "" {
		secret = registrar.NewProductSecret()
	}
	kind := registrar.PSK
	if cfg.Certificate {
		kind = registrar.Cert
	}
	if err := reg.SetProduct(pid, registrar.Product{Secret: secret, Enabled: true, AutoCreate: cfg.AutoCreate, Credential: kind}); err != nil {
		return "", fmt.Errorf("explorertest: EnableDynamicRegistration: %w", err)
	}
	s.changedKey(changeDynreg, pid) // --data (persist.go)
	return secret, nil
}

// DisableDynamicRegistration switches registration off for pid, keeping its configuration:
// registrations are then refused with the platform's "disabled" error.
func (s *Server) DisableDynamicRegistration(pid string) error {
	reg, err := s.registrar()
	if err != nil {
		return err
	}
	p, ok := reg.Product(pid)
	if !ok {
		return fmt.Errorf("explorertest: DisableDynamicRegistration: product %s has no dynamic registration", pid)
	}
	p.Enabled = false
	if err := reg.SetProduct(pid, p); err != nil {
		return err
	}
	s.changedKey(changeDynreg, pid) // --data (persist.go)
	return nil
}

// registrar returns the feature's state, or ErrClosed after Close.
func (s *Server) registrar() (*registrar.Registrar, error) {
	if s.isFinished() {
		return nil, ErrClosed
	}
	return s.dynreg, nil
}

// initDynreg is the dynamic-registration feature's init (features.go): the registrar in
// s.dynreg and its endpoints on the mux.
func (s *Server) initDynreg() error {
	reg, err := registrar.New(dynregDevices{s}, registrar.WithLogger(s.log), registrar.WithClock(s.clock))
	if err != nil {
		return err
	}
	s.dynreg = reg
	reg.Mount(s.mux)
	s.persistSection(changeDynreg, persistFuncs{save: s.saveDynreg, restore: s.restoreDynreg}) // --data (persist.go)
	return nil
}

// dynregDevices adapts the registry to registrar.Devices.
type dynregDevices struct{ s *Server }

func (d dynregDevices) State(pid, dn string) registrar.DeviceState {
	inf, ok := d.s.Device(pid, dn)
	switch {
	case !ok:
		return registrar.DeviceUnknown
	case inf.Connects > 0 || d.s.Online(pid, dn):
		return registrar.DeviceActivated
	}
	return registrar.DeviceInactive
}

func (d dynregDevices) Create(pid, dn string, kind registrar.Credential) error {
	var opts []DeviceOption
	if kind == registrar.Cert {
		opts = append(opts, WithCertificate())
	}
	_, err := d.s.AddDevice(pid, dn, opts...)
	return err
}

func (d dynregDevices) PSK(pid, dn string) (string, error) {
	secret, ok := d.s.deviceSecret(DeviceID{pid, dn})
	if !ok {
		return "", errors.New("explorertest: dynamic registration: " + pid + "/" + dn + " is not a key (PSK) device but its product issues PSKs")
	}
	return secret, nil
}

func (d dynregDevices) Certificate(pid, dn string) (certPEM, keyPEM []byte, err error) {
	return d.s.IssueCertificate(pid, dn)
}
