package explorertest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// DeviceID names one device: its product id and device name.
type DeviceID struct {
	ProductID  string
	DeviceName string
}

// String returns "pid/dn", the form used in topics.
func (id DeviceID) String() string { return id.ProductID + "/" + id.DeviceName }

// clientID is the MQTT client id the platform expects for the device.
func (id DeviceID) clientID() string { return id.ProductID + id.DeviceName }

// DeviceInfo describes a registered device. It never contains the secret.
type DeviceInfo struct {
	ID DeviceID
	// Certificate is true for certificate devices (mutual TLS), false for key (PSK) devices.
	Certificate bool
	// Online is true while the device has its own authenticated MQTT connection (a sub-device
	// online through its gateway is reported by Server.Online, not here).
	Online bool
	// ConnectedAt is when the current connection was established (zero when offline).
	ConnectedAt time.Time
	// Connects counts successful logins since the device was added.
	Connects int
}

// device is the registry record. Guarded by Server.regMu.
type device struct {
	id          DeviceID
	secret      string // base64 PSK; empty for certificate devices
	certificate bool
	certPEM     []byte
	keyPEM      []byte
	certSHA256  [32]byte // fingerprint of the one accepted certificate
	session     *session // current live connection, nil when offline
	connects    int
}

func (d *device) info() DeviceInfo {
	inf := DeviceInfo{ID: d.id, Certificate: d.certificate, Connects: d.connects}
	if d.session != nil {
		inf.Online = true
		inf.ConnectedAt = d.session.connectedAt
	}
	return inf
}

// checkIDPart rejects names that would break the client id, the username or topics.
func checkIDPart(field, v string) error {
	if v == "" {
		return fmt.Errorf("explorertest: %s is empty", field)
	}
	if i := strings.IndexAny(v, "/+#; \t\r\n\x00"); i >= 0 {
		return fmt.Errorf("explorertest: %s %q contains %q, which cannot appear in a client id, username or topic", field, v, v[i])
	}
	return nil
}

func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("explorertest: generating device secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// AddDevice registers a device and returns its base64 secret (empty for certificate devices).
// The secret is 16 random bytes unless WithSecret gives one. Adding a device whose client id
// ({pid}{dn}) equals an existing device's is an error, because the platform could not tell the
// two apart at CONNECT.
func (s *Server) AddDevice(pid, dn string, opts ...DeviceOption) (secret string, err error) {
	if err := checkIDPart("product id", pid); err != nil {
		return "", err
	}
	if err := checkIDPart("device name", dn); err != nil {
		return "", err
	}
	var dc deviceConfig
	for _, o := range opts {
		if err := o(&dc); err != nil {
			return "", err
		}
	}
	id := DeviceID{pid, dn}
	d := &device{id: id, certificate: dc.certificate}
	switch {
	case dc.certificate && dc.secret != "":
		return "", fmt.Errorf("explorertest: AddDevice %s: WithSecret and WithCertificate are exclusive", id)
	case dc.certificate:
		certPEM, keyPEM, fp, err := s.ca.deviceCertificate(id)
		if err != nil {
			return "", err
		}
		d.certPEM, d.keyPEM, d.certSHA256 = certPEM, keyPEM, fp
	case dc.secret != "":
		d.secret = dc.secret
	default:
		if d.secret, err = randomSecret(); err != nil {
			return "", err
		}
	}

	s.regMu.Lock()
	defer s.regMu.Unlock()
	if _, ok := s.devices[id]; ok {
		return "", fmt.Errorf("explorertest: AddDevice: device %s already exists", id)
	}
	if other, ok := s.byClientID[id.clientID()]; ok {
		return "", fmt.Errorf("explorertest: AddDevice: device %s has the same client id %q as %s", id, id.clientID(), other.id)
	}
	s.devices[id] = d
	s.byClientID[id.clientID()] = d
	s.changed(changeRegistry, id, nil)
	return d.secret, nil
}

// RemoveDevice deletes a device; its live connection, if any, is disconnected.
func (s *Server) RemoveDevice(pid, dn string) error {
	id := DeviceID{pid, dn}
	s.regMu.Lock()
	d, ok := s.devices[id]
	if ok {
		delete(s.devices, id)
		delete(s.byClientID, id.clientID())
	}
	var sess *session
	if ok {
		sess, d.session = d.session, nil
	}
	s.regMu.Unlock()
	if !ok {
		return fmt.Errorf("explorertest: RemoveDevice %s: %w", id, ErrUnknownDevice)
	}
	s.changed(changeRegistry, id, nil)
	if sess != nil {
		s.emitState(id, false)
		sess.kick()
	}
	s.emitRemoved(id)
	return nil
}

// Device returns the device's description.
func (s *Server) Device(pid, dn string) (DeviceInfo, bool) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	d, ok := s.devices[DeviceID{pid, dn}]
	if !ok {
		return DeviceInfo{}, false
	}
	return d.info(), true
}

// Online reports whether the device currently has an authenticated MQTT connection, or, for
// a sub-device, is online through its connected gateway.
func (s *Server) Online(pid, dn string) bool {
	inf, ok := s.Device(pid, dn)
	if !ok {
		return false
	}
	return inf.Online || (s.proxiedOnline != nil && s.proxiedOnline(inf.ID))
}

// Devices lists all registered devices sorted by product id then device name.
func (s *Server) Devices() []DeviceInfo {
	s.regMu.Lock()
	out := make([]DeviceInfo, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, d.info())
	}
	s.regMu.Unlock()
	slices.SortFunc(out, func(a, b DeviceInfo) int {
		if c := strings.Compare(a.ID.ProductID, b.ID.ProductID); c != 0 {
			return c
		}
		return strings.Compare(a.ID.DeviceName, b.ID.DeviceName)
	})
	return out
}

// IssueCertificate issues a new certificate and private key (PEM, PKCS#8) for a certificate
// device from the test CA and makes it the device's only accepted certificate: a certificate
// issued earlier stops working, as when the console (or dynamic registration) re-issues one.
// The certificate's CommonName is {pid}{dn}; the platform matches the whole certificate
// (SHA-256 fingerprint), not the name.
func (s *Server) IssueCertificate(pid, dn string) (certPEM, keyPEM []byte, err error) {
	id := DeviceID{pid, dn}
	s.regMu.Lock()
	d, ok := s.devices[id]
	isCert := ok && d.certificate
	s.regMu.Unlock()
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("explorertest: IssueCertificate: no device %s", id)
	case !isCert:
		return nil, nil, fmt.Errorf("explorertest: IssueCertificate: %s is a key (PSK) device, not a certificate device", id)
	}
	certPEM, keyPEM, fp, err := s.ca.deviceCertificate(id)
	if err != nil {
		return nil, nil, err
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if s.devices[id] != d {
		return nil, nil, fmt.Errorf("explorertest: IssueCertificate: device %s was removed", id)
	}
	d.certPEM, d.keyPEM, d.certSHA256 = certPEM, keyPEM, fp
	return append([]byte(nil), certPEM...), append([]byte(nil), keyPEM...), nil
}

// lookupDevice returns a copy of the registry record (for features in this package).
func (s *Server) lookupDevice(id DeviceID) (device, bool) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return device{}, false
	}
	return *d, true
}

// deviceSecret returns a key device's base64 secret (for features: gateway bind signatures,
// dynamic registration). ok is false for unknown and certificate devices.
func (s *Server) deviceSecret(id DeviceID) (secret string, ok bool) {
	d, found := s.lookupDevice(id)
	if !found || d.certificate {
		return "", false
	}
	return d.secret, true
}

// DeviceConfig returns the explorer.Config that connects the device to this server over TLS
// (Broker = TLSBrokerURL) with its secret or certificate filled in. Dial it with DialOptions.
// For an unknown device the credentials are empty, so explorer.Dial reports the config error.
func (s *Server) DeviceConfig(pid, dn string) explorer.Config {
	cfg := explorer.Config{ProductID: pid, DeviceName: dn, Broker: s.TLSBrokerURL()}
	d, ok := s.lookupDevice(DeviceID{pid, dn})
	switch {
	case !ok:
	case d.certificate:
		if cert, err := tls.X509KeyPair(d.certPEM, d.keyPEM); err == nil {
			cfg.Certificate = &cert
		} else {
			s.log.Error("explorertest: DeviceConfig: stored certificate unusable", "device", d.id.String(), "error", err)
		}
	default:
		cfg.DeviceSecret = d.secret
	}
	return cfg
}

// DialOptions returns the explorer options a device needs to dial this server: trust of the
// test CA and a short reconnect backoff (20 ms to 500 ms) so reconnect tests run quickly.
func (s *Server) DialOptions() []explorer.Option {
	return []explorer.Option{
		explorer.WithRootCAs(s.RootCAs()),
		explorer.WithReconnectBackoff(20*time.Millisecond, 500*time.Millisecond),
	}
}
