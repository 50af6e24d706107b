package explorertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/registrar"
)

// MaxPayload is the platform's maximum PUBLISH payload (docs/PROTOCOL.md §8.1), in bytes.
const MaxPayload = 16 * 1024

// Errors shared by every feature, matched with errors.Is.
var (
	// ErrClosed is returned by operations on a closed Server.
	ErrClosed = errors.New("explorertest: server closed")
	// ErrUnknownDevice: the device (or gateway, or sub-device) is not registered (AddDevice).
	ErrUnknownDevice = errors.New("unknown device")
)

// Listener ids; a session records which one it came through.
const (
	listenerTCP = "tcp"
	listenerTLS = "tls"
)

// Server is an in-process IoT Explorer platform. Create it with NewServer and Close it when done.
// All methods are safe for concurrent use.
type Server struct {
	log   *slog.Logger
	clock func() time.Time

	ca         *testCA
	serverCert tls.Certificate

	// mux serves the HTTP and HTTPS listeners. Features add routes in their init function
	// (Go 1.22 patterns, e.g. "POST /register/dev").
	mux *http.ServeMux

	// proxyAllowed is consulted by the topic ACL when a topic's {pid}/{dn} is not the client's
	// own: it reports whether gateway gw may act for sub-device sub. nil denies. Set it only
	// from a feature's init function (before the broker starts); it is read without locking.
	proxyAllowed func(gw, sub DeviceID) bool

	// proxiedOnline reports whether a device is online through a gateway (sub-devices have
	// no connection of their own). Set only from a feature's init; nil means never.
	proxiedOnline func(id DeviceID) bool

	// Features (see features.go): each feature's state is one field, set by its init
	// function in initFeatures and never replaced, so Restart keeps it. Add new ones here.
	thing  *thingCloud          // data template (thing*.go)
	gw     *gatewayCloud        // gateway topology (gateway.go)
	ota    *otaCloud            // firmware store and OTA jobs (ota*.go)
	dynreg *registrar.Registrar // dynamic registration (dynreg.go)
	rr     *rrpcCloud           // RRPC and broadcast (rrpc.go)
	bind   *bindCloud           // app-user binding (binding.go)
	dlog   *logCloud            // device log levels and uploaded logs (devlog.go)
	res    *resCloud            // resource library, device resources and uploads (resource.go)
	cons   *consoleState        // web console, /api/stream, change feed, API token (console.go)
	data   *persister           // --data persistence (persist.go); nil keeps state in memory

	regMu      sync.Mutex
	devices    map[DeviceID]*device
	byClientID map[string]*device

	feat features

	latency atomic.Int64 // nanoseconds added to every delivery in both directions

	connMu sync.Mutex
	conns  map[*latConn]struct{}
	connWG sync.WaitGroup // latency pump and writer goroutines

	// mu guards the network generation below: Restart swaps all of it.
	mu       sync.RWMutex
	closed   bool // no more publishes or restarts (Close, or a Restart that could not rebind)
	finished bool // Close ran
	broker   *mqtt.Server
	mqttLns  []*mqttListener
	httpSrvs []*httpServer
	// bound addresses, fixed after the first start so Restart reuses the same ports.
	mqttAddr, tlsAddr, httpAddr, httpsAddr string
	// firmware download host addresses (ota.go binds them once, in initOTA).
	fwAddr, fwTLSAddr string
	wsAddr, wssAddr   string // MQTT over WebSocket, only when configured (websocket.go)
}

// NewServer starts a platform on 127.0.0.1 ephemeral ports (or the addresses given by options):
// plain MQTT, MQTT over TLS, HTTP and HTTPS. The TLS listeners use a certificate for
// 127.0.0.1, ::1 and localhost issued by the server's own CA.
func NewServer(opts ...Option) (*Server, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	ca, err := newTestCA()
	if err != nil {
		return nil, err
	}
	serverCert, err := ca.serverCertificate()
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:        cfg.logger,
		clock:      cfg.clock,
		ca:         ca,
		serverCert: serverCert,
		mux:        http.NewServeMux(),
		devices:    map[DeviceID]*device{},
		byClientID: map[string]*device{},
		conns:      map[*latConn]struct{}{},
		mqttAddr:   cfg.mqttAddr,
		tlsAddr:    cfg.tlsAddr,
		httpAddr:   cfg.httpAddr,
		httpsAddr:  cfg.httpsAddr,
		fwAddr:     cfg.fwAddr,
		fwTLSAddr:  cfg.fwTLSAddr,
		wsAddr:     cfg.wsAddr,
		wssAddr:    cfg.wssAddr,
	}
	s.log = slog.New(&consoleLogHandler{s: s, inner: cfg.logger.Handler()}) // the console's platform log
	s.feat.init()
	if err := s.openData(cfg); err != nil {
		return nil, err
	}
	if err := s.initFeatures(); err != nil {
		s.runClosers()
		return nil, err
	}
	s.mu.Lock()
	err = s.startLocked()
	s.mu.Unlock()
	if err != nil {
		s.runClosers()
		return nil, err
	}
	s.log.Info("explorertest: platform started", "mqtt", s.mqttAddr, "tls", s.tlsAddr, "http", s.httpAddr, "https", s.httpsAddr)
	return s, nil
}

// Close disconnects every client, stops all listeners and waits for every goroutine the server
// started, including feature handlers in flight. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return nil
	}
	s.closed, s.finished = true, true
	err := s.stopLocked()
	s.mu.Unlock()
	s.feat.wait()
	s.runClosers()
	return err
}

// startLocked binds every listener (on the remembered addresses after the first start) and
// starts a new broker generation. s.mu must be held for writing.
func (s *Server) startLocked() (err error) {
	b := mqtt.New(&mqtt.Options{
		Capabilities:           s.capabilities(),
		Logger:                 slog.New(&minLevel{h: s.log.Handler(), min: slog.LevelWarn}).With("component", "mochi"),
		InlineClient:           true,
		SysTopicResendInterval: 3600, // $SYS topics are unreachable for devices anyway (ACL)
	})
	if err := b.AddHook(&platformHook{s: s, b: b}, nil); err != nil {
		return fmt.Errorf("explorertest: broker hook: %w", err)
	}
	var lns []*mqttListener
	var srvs []*httpServer
	defer func() {
		if err != nil {
			for _, l := range lns {
				l.closeNow()
			}
			for _, h := range srvs {
				h.close()
			}
		}
	}()
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{s.serverCert},
		ClientCAs:    s.ca.pool,
		// Certificate devices present a client certificate; key devices don't. A certificate
		// from another CA fails the handshake, as on the platform.
		ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS12,
		// The platform speaks TLS 1.0–1.2 (docs/PROTOCOL.md §1.6). Capping at 1.2 also makes a rejected
		// client certificate fail the client's handshake rather than its first read (TLS 1.3).
		MaxVersion: tls.VersionTLS12,
	}
	for _, spec := range []struct {
		id   string
		addr *string
		tls  *tls.Config
	}{{listenerTCP, &s.mqttAddr, nil}, {listenerTLS, &s.tlsAddr, tlsCfg}, {listenerWS, &s.wsAddr, nil}, {listenerWSS, &s.wssAddr, tlsCfg}} {
		if *spec.addr == "" {
			continue // an optional listener that is off (WebSocket)
		}
		l, err := s.newMQTTListener(spec.id, *spec.addr, spec.tls)
		if err != nil {
			return err
		}
		lns = append(lns, l)
		*spec.addr = l.ln.Addr().String()
		if err := b.AddListener(l); err != nil {
			return fmt.Errorf("explorertest: broker listener %s: %w", spec.id, err)
		}
	}
	for _, spec := range []struct {
		addr *string
		tls  bool
	}{{&s.httpAddr, false}, {&s.httpsAddr, true}} {
		h, err := s.newHTTPServer(*spec.addr, spec.tls)
		if err != nil {
			return err
		}
		srvs = append(srvs, h)
		*spec.addr = h.ln.Addr().String()
	}
	if err := b.Serve(); err != nil {
		return fmt.Errorf("explorertest: starting broker: %w", err)
	}
	for _, h := range srvs {
		h.serve()
	}
	s.broker, s.mqttLns, s.httpSrvs = b, lns, srvs
	return nil
}

// stopLocked ends the current broker generation: connections that never finished CONNECT are
// cut, authenticated clients are disconnected by the broker, then every listener goroutine is
// awaited. s.mu must be held for writing.
func (s *Server) stopLocked() error {
	if s.broker == nil {
		return nil
	}
	for _, l := range s.mqttLns {
		l.stopAccepting()
	}
	s.closeConns(func(c *latConn) bool { return c.sess.Load() == nil })
	err := s.broker.Close()
	for _, l := range s.mqttLns {
		l.wait()
	}
	// Anything left (e.g. a client stuck in a write) is cut so no goroutine outlives Close.
	s.closeConns(func(*latConn) bool { return true })
	s.connWG.Wait()
	for _, h := range s.httpSrvs {
		h.close()
	}
	s.broker, s.mqttLns, s.httpSrvs = nil, nil, nil
	return err
}

// capabilities mirror the platform's limits (docs/PROTOCOL.md §1.7, §8.1); hooks enforce the rest
// with clear log lines.
func (s *Server) capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MaximumQos = 1
	c.RetainAvailable = 0
	c.SharedSubAvailable = 0
	c.MinimumProtocolVersion = 3 // MQTT 3.1 (MQIsdp), used by the official Python SDK
	c.MaximumSessionExpiryInterval = 24 * 60 * 60
	// fixed header byte + topic length + 255-byte topic + packet id + payload: anything larger is
	// cut before it is read into memory. Smaller oversize payloads are caught in OnPacketRead.
	c.MaximumPacketSize = 1 + 4 + 2 + 255 + 2 + MaxPayload + 1024
	return c
}

// BrokerURL is the plain MQTT address, "tcp://127.0.0.1:port".
func (s *Server) BrokerURL() string { return "tcp://" + s.addr(&s.mqttAddr) }

// TLSBrokerURL is the MQTT-over-TLS address, "tls://127.0.0.1:port".
func (s *Server) TLSBrokerURL() string { return "tls://" + s.addr(&s.tlsAddr) }

// HTTPURL is the plain HTTP base URL, "http://127.0.0.1:port".
func (s *Server) HTTPURL() string { return "http://" + s.addr(&s.httpAddr) }

// HTTPSURL is the HTTPS base URL, "https://127.0.0.1:port" (certificate from RootCAs).
func (s *Server) HTTPSURL() string { return "https://" + s.addr(&s.httpsAddr) }

func (s *Server) addr(p *string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return *p
}

// RootCAs returns a pool holding the server's test CA, to verify the TLS listeners.
func (s *Server) RootCAs() *x509.CertPool { return s.ca.pool.Clone() }

// CACertPEM returns the test CA certificate in PEM form.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.ca.certPEM...) }

// Publish sends a message from the cloud to whoever subscribed to topic (QoS 0 or 1, no
// wildcards, payload at most MaxPayload). Like MQTT, a message no device subscribed to is
// discarded without error.
func (s *Server) Publish(topic string, payload []byte, qos byte) error {
	switch {
	case topic == "" || strings.ContainsAny(topic, "+#"):
		return fmt.Errorf("explorertest: Publish: invalid topic %q (empty or wildcard)", topic)
	case qos > 1:
		return fmt.Errorf("explorertest: Publish %s: QoS %d not supported by the platform (0 or 1)", topic, qos)
	case len(payload) > MaxPayload:
		return fmt.Errorf("explorertest: Publish %s: payload of %d bytes exceeds the %d-byte limit", topic, len(payload), MaxPayload)
	}
	// Holding the read lock keeps Restart from swapping the broker mid-publish, so a message
	// is never handed to a broker that is already closed.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.broker.Publish(topic, append([]byte(nil), payload...), false, qos); err != nil {
		return fmt.Errorf("explorertest: Publish %s: %w", topic, err)
	}
	owner, _ := topicOwner(topic)
	s.logBody("explorertest: downlink", owner, topic, qos, payload)
	return nil
}

// mqttListener is a mochi listener over a raw TCP socket bound with SO_REUSEADDR. It wraps
// every connection in a latConn (latency injection, DropConnections) below TLS.
type mqttListener struct {
	s      *Server
	id     string
	ln     net.Listener
	tlsCfg *tls.Config
	log    *slog.Logger
	wg     sync.WaitGroup
	once   sync.Once
}

// connectTimeout bounds how long a connection may sit before completing CONNECT.
const connectTimeout = 10 * time.Second

func (s *Server) newMQTTListener(id, addr string, tlsCfg *tls.Config) (*mqttListener, error) {
	ln, err := listenReuse(addr)
	if err != nil {
		return nil, fmt.Errorf("explorertest: MQTT %s listener on %s: %w", id, addr, err)
	}
	l := &mqttListener{s: s, id: id, ln: ln, tlsCfg: tlsCfg, log: s.log}
	l.wg.Add(1) // for Serve; added here so wait never races with the broker starting Serve
	return l, nil
}

func (l *mqttListener) ID() string                  { return l.id }
func (l *mqttListener) Address() string             { return l.ln.Addr().String() }
func (l *mqttListener) Protocol() string            { return l.id }
func (l *mqttListener) Init(log *slog.Logger) error { return nil }

// Serve accepts connections until the listener is closed. The broker runs it on its own
// goroutine; the wait group lets Close wait for it and every connection it spawned.
func (l *mqttListener) Serve(establish listeners.EstablishFn) {
	if l.id == listenerWS || l.id == listenerWSS {
		l.serveWebSocket(establish)
		return
	}
	defer l.wg.Done()
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			return
		}
		lc := l.s.track(raw)
		var c net.Conn = lc
		if l.tlsCfg != nil {
			c = tls.Server(lc, l.tlsCfg)
		}
		_ = c.SetDeadline(time.Now().Add(connectTimeout))
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			err := establish(l.id, c)
			l.s.endSession(lc)
			if err != nil && !isConnClosed(err) {
				l.log.Debug("explorertest: connection ended", "listener", l.id, "remote", raw.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

// Close is called by the broker. It cuts the connections itself rather than calling the
// broker's closeClients: in mochi v2.7.9 that can deadlock with a client disconnecting at the
// same moment (mochi-mqtt/server issue #488). Each cut connection's read loop then ends and the
// broker cleans the client up on its own goroutine.
func (l *mqttListener) Close(listeners.CloseFn) {
	l.stopAccepting()
	l.s.closeConns(func(*latConn) bool { return true })
}

func (l *mqttListener) stopAccepting() { l.once.Do(func() { _ = l.ln.Close() }) }

// closeNow is used when a start fails before the broker served the listener.
func (l *mqttListener) closeNow() { l.stopAccepting() }

func (l *mqttListener) wait() { l.wg.Wait() }

func isConnClosed(err error) bool {
	var code packets.Code
	return errors.Is(err, net.ErrClosed) || errors.As(err, &code)
}

// minLevel drops records below min; it keeps the broker's chatty info logs out of test output.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m *minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m *minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return &minLevel{h: m.h.WithAttrs(a), min: m.min}
}
func (m *minLevel) WithGroup(n string) slog.Handler {
	return &minLevel{h: m.h.WithGroup(n), min: m.min}
}

// platformHook is the broker hook implementing the platform: authentication (auth.go), topic
// ACL and publish limits (acl.go), sessions (auth.go) and the uplink router (features.go).
type platformHook struct {
	mqtt.HookBase
	s *Server
	b *mqtt.Server // the broker generation this hook belongs to
}

// ID names the hook for the broker's logs.
func (h *platformHook) ID() string { return "explorertest-platform" }

// Provides lists the hook methods implemented.
func (h *platformHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablish, mqtt.OnACLCheck,
		mqtt.OnPacketRead, mqtt.OnSubscribe, mqtt.OnPublished, mqtt.OnPublishDropped, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnPublishDropped reports a message the broker could not queue for a slow subscriber (its
// pending-writes queue was full), so the loss is never silent.
func (h *platformHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.s.log.Warn("explorertest: message dropped: subscriber is not reading fast enough",
		"client", cl.ID, "topic", unaliasSys(pk.TopicName), "qos", pk.FixedHeader.Qos)
}

// isFinished reports whether Close ran; feature APIs answer ErrClosed from then on.
func (s *Server) isFinished() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.finished
}
