package explorertest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Accepted sdkappid values in the username (docs/PROTOCOL.md §1.3): C/Python send 21010406,
// Java and the documentation 12010126.
const (
	sdkAppIDDoc = "12010126"
	sdkAppIDC   = "21010406"
)

// msExpiryThreshold: an expiry above this is taken as milliseconds (the Python SDK sends
// time.time()*1000); 1e11 seconds is the year 5138, so no real seconds value is that large.
const msExpiryThreshold = 100_000_000_000

// msExpiryGrace: the Python SDK puts its *current* time in milliseconds in the expiry field and
// the real platform accepts it (docs/PROTOCOL.md §1.3, evidently reading it as a far-future seconds
// value). Checked strictly as milliseconds such a login would already be expired on arrival, so
// a millisecond expiry stays valid this long after the instant it names; older ones are refused.
const msExpiryGrace = 24 * time.Hour

// session is one authenticated MQTT connection of a device.
type session struct {
	id          DeviceID
	cl          *mqtt.Client
	conn        *latConn
	listener    string
	connectedAt time.Time
}

// kick disconnects the session without a DISCONNECT packet (MQTT 3 has none from the server).
func (ss *session) kick() { ss.cl.Stop(packets.ErrNotAuthorized) }

// connOf finds the latConn under a broker client's connection (below TLS).
func connOf(cl *mqtt.Client) *latConn {
	c := cl.Net.Conn
	if wc, ok := c.(*wsConn); ok {
		c = wc.NetConn()
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*latConn)
	return lc
}

// sessionOf returns the authenticated session of a broker client, nil for the inline client
// and for connections that have not passed authentication.
func sessionOf(cl *mqtt.Client) *session {
	if lc := connOf(cl); lc != nil {
		return lc.sess.Load()
	}
	return nil
}

// authError is why a CONNECT was refused; it never contains a secret.
type authError struct {
	clientID string
	device   string // "PID/DN" when the client id names a registered device
	reason   string
}

func (e *authError) Error() string {
	return fmt.Sprintf("explorertest: CONNECT of client %q refused: %s", e.clientID, e.reason)
}

// authenticate checks a CONNECT like the platform (docs/PROTOCOL.md §1.2–1.5) and returns the
// device it logs in.
func (s *Server) authenticate(cl *mqtt.Client, pk packets.Packet) (DeviceID, error) {
	clientID := pk.Connect.ClientIdentifier
	fail := func(format string, args ...any) (DeviceID, error) {
		return DeviceID{}, &authError{clientID: clientID, reason: fmt.Sprintf(format, args...)}
	}
	s.regMu.Lock()
	d, ok := s.byClientID[clientID]
	var dev device
	if ok {
		dev = *d
	}
	s.regMu.Unlock()
	if !ok {
		return fail("unknown device: the client id is not {ProductID}{DeviceName} of a registered device")
	}
	fail = func(format string, args ...any) (DeviceID, error) {
		return DeviceID{}, &authError{clientID: clientID, device: dev.id.String(), reason: fmt.Sprintf(format, args...)}
	}

	username := string(pk.Connect.Username)
	parts := strings.Split(username, ";")
	if len(parts) != 4 {
		return fail("username %q is not {ProductID}{DeviceName};{sdkappid};{connid};{expiry}", username)
	}
	if parts[0] != clientID {
		return fail("username starts with %q but the client id is %q", parts[0], clientID)
	}
	if parts[1] != sdkAppIDDoc && parts[1] != sdkAppIDC {
		return fail("username sdkappid %q is not %s or %s", parts[1], sdkAppIDDoc, sdkAppIDC)
	}
	if parts[2] == "" {
		return fail("username connid is empty")
	}
	expiry, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return fail("username expiry %q is not a decimal Unix time", parts[3])
	}
	expiresAt := time.Unix(expiry, 0)
	if expiry > msExpiryThreshold {
		expiresAt = time.UnixMilli(expiry).Add(msExpiryGrace)
	}
	if now := s.clock(); expiresAt.Unix() < now.Unix() {
		return fail("signature expired at %s (platform time %s)", expiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}

	if dev.certificate {
		return s.authCertificate(cl, dev, fail)
	}
	if err := checkPassword(dev.secret, username, string(pk.Connect.Password)); err != nil {
		return fail("%v", err)
	}
	return dev.id, nil
}

func (s *Server) authCertificate(cl *mqtt.Client, dev device, fail func(string, ...any) (DeviceID, error)) (DeviceID, error) {
	state, ok := peerTLS(cl.Net.Conn)
	if !ok {
		return fail("certificate device %s must connect over TLS with its client certificate", dev.id)
	}
	certs := state.PeerCertificates
	if len(certs) == 0 {
		return fail("certificate device %s presented no client certificate", dev.id)
	}
	// The handshake already verified the chain to the test CA (tls.VerifyClientCertIfGiven).
	if sha256.Sum256(certs[0].Raw) != dev.certSHA256 {
		return fail("client certificate (CN %q) is not the one issued to %s", certs[0].Subject.CommonName, dev.id)
	}
	return dev.id, nil
}

// checkPassword verifies "{hex};hmacsha256|hmacsha1" = HMAC(base64-decoded secret, username).
func checkPassword(secret, username, password string) error {
	if password == "" {
		return errors.New("password is missing (key devices sign the username)")
	}
	i := strings.LastIndexByte(password, ';')
	if i < 0 {
		return errors.New("password is not {hex signature};hmacsha256 or {hex signature};hmacsha1")
	}
	var newHash func() hash.Hash
	switch method := password[i+1:]; method {
	case "hmacsha256":
		newHash = sha256.New
	case "hmacsha1":
		newHash = sha1.New
	default:
		return fmt.Errorf("password signature method %q is not hmacsha256 or hmacsha1", method)
	}
	got, err := hex.DecodeString(password[:i])
	if err != nil {
		return errors.New("password signature is not hexadecimal")
	}
	key, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return errors.New("device secret on the platform is not base64") // unreachable: checked at AddDevice
	}
	m := hmac.New(newHash, key)
	m.Write([]byte(username))
	if !hmac.Equal(got, m.Sum(nil)) {
		return errors.New("password signature does not match (wrong device secret or username)")
	}
	return nil
}

// refuseConnect sends a CONNACK refusal with an MQTT 3 return code (or the MQTT 5 reason).
// mochi maps its own auth failure to 3.1.1 code 5; the platform answers 4 for bad credentials,
// so the hook sends the CONNACK itself.
func (h *platformHook) refuseConnect(cl *mqtt.Client, v3 byte, v5 packets.Code) {
	code := packets.Code{Code: v3}
	if cl.Properties.ProtocolVersion >= 5 {
		code = v5
	}
	if err := h.b.SendConnack(cl, code, false, nil); err != nil {
		h.s.log.Debug("explorertest: sending CONNACK refusal", "client", cl.ID, "error", err)
	}
}

// MQTT 3 CONNACK return codes used for refusals (docs/PROTOCOL.md §1.8).
const (
	connackBadCredentials = 4
	connackNotAuthorized  = 5
)

// OnConnect authenticates the CONNECT. Doing it here rather than in OnConnectAuthenticate lets
// the platform pick the CONNACK code.
func (h *platformHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	lc := connOf(cl)
	if lc == nil {
		return errors.New("explorertest: connection without platform wrapper")
	}
	if pk.Connect.WillFlag {
		h.s.log.Info("explorertest: CONNECT refused", "client", pk.Connect.ClientIdentifier, "code", connackNotAuthorized,
			"reason", "Will messages are not supported by the platform", "listener", cl.Net.Listener, "remote", cl.Net.Remote)
		h.refuseConnect(cl, connackNotAuthorized, packets.ErrNotAuthorized)
		return packets.ErrNotAuthorized
	}
	id, err := h.s.authenticate(cl, pk)
	if err != nil {
		attrs := []any{"client", pk.Connect.ClientIdentifier}
		var ae *authError
		if errors.As(err, &ae) {
			if ae.device != "" {
				attrs = append(attrs, "device", ae.device)
			}
			attrs = append(attrs, "code", connackBadCredentials, "reason", ae.reason)
		} else {
			attrs = append(attrs, "code", connackBadCredentials, "reason", err.Error())
		}
		h.s.log.Info("explorertest: CONNECT refused", append(attrs, "listener", cl.Net.Listener, "remote", cl.Net.Remote)...)
		h.refuseConnect(cl, connackBadCredentials, packets.ErrBadUsernameOrPassword)
		return err
	}
	lc.sess.Store(&session{id: id, cl: cl, conn: lc, listener: cl.Net.Listener, connectedAt: h.s.clock()})
	return nil
}

// OnConnectAuthenticate accepts what OnConnect already authenticated.
func (h *platformHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return sessionOf(cl) != nil
}

// OnSessionEstablish runs after authentication, just before the CONNACK and before the broker
// takes over an older connection of the same device: the registry switches to the new session
// and features see the old one go offline, then the new one come online.
func (h *platformHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	sess := sessionOf(cl)
	if sess == nil {
		return
	}
	s := h.s
	s.regMu.Lock()
	d, ok := s.devices[sess.id]
	var old *session
	if ok {
		old = d.session
		d.session = sess
		d.connects++
	}
	s.regMu.Unlock()
	if !ok { // removed while connecting
		sess.kick()
		return
	}
	if old != nil {
		s.log.Info("explorertest: second login takes over the device's connection", "device", sess.id.String())
		s.emitState(sess.id, false)
	}
	s.log.Info("explorertest: device online", "device", sess.id.String(), "listener", sess.listener, "protocol", cl.Properties.ProtocolVersion)
	s.emitState(sess.id, true)
}

// endSession runs when a connection's broker goroutine returns. The device goes offline unless
// a newer connection has already taken over.
func (s *Server) endSession(lc *latConn) {
	sess := lc.sess.Load()
	if sess == nil {
		return
	}
	s.regMu.Lock()
	d, ok := s.devices[sess.id]
	current := ok && d.session == sess
	if current {
		d.session = nil
	}
	s.regMu.Unlock()
	if current {
		s.log.Info("explorertest: device offline", "device", sess.id.String())
		s.emitState(sess.id, false)
	}
}
