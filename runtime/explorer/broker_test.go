package explorer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// testBroker is a mochi-mqtt broker on 127.0.0.1 that authenticates like the platform
// (Tencent username/password, certificate devices by client certificate CN), can be
// stopped and restarted on the same ports, and records what devices publish.
type testBroker struct {
	t        testing.TB
	plain    string // host:port
	tlsAddr  string
	caPool   *x509.CertPool
	ca       *x509.Certificate
	caKey    *ecdsa.PrivateKey
	serverTL *tls.Config
	plainLn  net.Listener // listening sockets for the first start, nil after
	tlsLn    net.Listener
	wsAddr   string // MQTT over WebSocket (plain and TLS), when started by newTestBrokerWS
	wssAddr  string

	mu       sync.Mutex
	srv      *mqtt.Server
	devices  map[string]string // client id -> secret ("" for certificate devices)
	stalls   map[string]chan struct{}
	received chan explorer.Message
	noRecord bool                  // benchmarks: skip recording uplinks
	live     map[*mqtt.Client]bool // connected device clients
	users    []string
}

const (
	testPID    = "ABCDEFGHIJ"
	testDN     = "dev1"
	testSecret = "ZmFrZS1wc2stMDEyMzQ1Ng=="
)

func newTestBroker(t testing.TB) *testBroker {
	t.Helper()
	b := &testBroker{
		t:        t,
		devices:  map[string]string{testPID + testDN: testSecret},
		stalls:   map[string]chan struct{}{},
		live:     map[*mqtt.Client]bool{},
		received: make(chan explorer.Message, 1000),
	}
	b.makeCA()
	for _, p := range []*net.Listener{&b.plainLn, &b.tlsLn} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*p = ln
	}
	b.plain, b.tlsAddr = b.plainLn.Addr().String(), b.tlsLn.Addr().String()
	b.start()
	t.Cleanup(b.stop)
	return b
}

// newTestBrokerWS is newTestBroker with WebSocket listeners too (ws and wss).
func newTestBrokerWS(t testing.TB) *testBroker {
	b := newTestBroker(t)
	b.stop()
	b.wsAddr, b.wssAddr = freeAddr(t), freeAddr(t)
	b.start()
	return b
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func (b *testBroker) URL() string    { return "tcp://" + b.plain }
func (b *testBroker) TLSURL() string { return "tls://" + b.tlsAddr }

// config returns a key-device config for the plain listener.
func (b *testBroker) config() explorer.Config {
	return explorer.Config{ProductID: testPID, DeviceName: testDN, DeviceSecret: testSecret, Broker: b.URL()}
}

// start (re)starts the broker on its fixed ports.
func (b *testBroker) start() {
	b.t.Helper()
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.AddHook(&authHook{b: b, srv: srv}, nil); err != nil {
		b.t.Fatal(err)
	}
	// The sockets opened by newTestBroker serve the first start; restarts bind again.
	plainLn, tlsLn := b.plainLn, b.tlsLn
	b.plainLn, b.tlsLn = nil, nil
	if err := srv.AddListener(newTCPListener("plain", b.plain, nil, plainLn)); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.AddListener(newTCPListener("tls", b.tlsAddr, b.serverTL, tlsLn)); err != nil {
		b.t.Fatal(err)
	}
	if b.wsAddr != "" {
		for _, l := range []listeners.Config{
			{Type: "ws", ID: "ws", Address: b.wsAddr},
			{Type: "ws", ID: "wss", Address: b.wssAddr, TLSConfig: b.serverTL},
		} {
			if err := srv.AddListener(listeners.NewWebsocket(l)); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	// Record every device uplink except the time requests answered below.
	if !b.noRecord {
		if err := srv.Subscribe("#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			b.received <- explorer.Message{Topic: pk.TopicName, Payload: append([]byte(nil), pk.Payload...), QoS: pk.FixedHeader.Qos}
		}); err != nil {
			b.t.Fatal(err)
		}
	}
	// mochi refuses client publishes to "$sys..." (it folds case against $SYS), so
	// OnPacketRead renames the time request to "sysop/..." before validation.
	if err := srv.Subscribe("sysop/+/+", 2, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		parts := strings.Split(pk.TopicName, "/")
		now := time.Now().UnixMilli()
		reply := `{"type":"get","time":` + strconv.FormatInt(now/1000, 10) + `,"ntptime1":` + strconv.FormatInt(now, 10) + `,"ntptime2":` + strconv.FormatInt(now, 10) + `}`
		go srv.Publish("$sys/operation/result/"+parts[1]+"/"+parts[2], []byte(reply), false, 0)
	}); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		b.t.Fatal(err)
	}
	// mochi's WebSocket listener binds inside Serve's goroutine: wait until it accepts.
	for _, addr := range []string{b.wsAddr, b.wssAddr} {
		for i := 0; addr != ""; i++ {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if i > 500 {
				b.t.Fatalf("WebSocket listener %s did not come up: %v", addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
}

func (b *testBroker) stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (b *testBroker) server() *mqtt.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

// publish sends a cloud->device message.
func (b *testBroker) publish(topic, payload string, qos byte) {
	b.t.Helper()
	if err := b.server().Publish(topic, []byte(payload), false, qos); err != nil {
		b.t.Fatal(err)
	}
}

// dropAll closes every client connection, as a network fault would. Connections are
// tracked by the hook rather than read from mochi's client map: when a client id
// reconnects quickly, the old connection's late cleanup deletes the new entry by id.
func (b *testBroker) dropAll() {
	b.mu.Lock()
	var clients []*mqtt.Client
	for cl := range b.live {
		clients = append(clients, cl)
	}
	b.mu.Unlock()
	for _, cl := range clients {
		cl.Stop(errors.New("test: dropped"))
	}
}

// stall makes the broker hold any packet about a topic starting with prefix (publish,
// subscribe, unsubscribe) until the returned release func is called.
func (b *testBroker) stall(prefix string) (release func()) {
	ch := make(chan struct{})
	b.mu.Lock()
	b.stalls[prefix] = ch
	b.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.stalls, prefix)
			b.mu.Unlock()
			close(ch)
		})
	}
	b.t.Cleanup(release)
	return release
}

func (b *testBroker) waitStall(topic string) {
	b.mu.Lock()
	var ch chan struct{}
	for p, c := range b.stalls {
		if strings.HasPrefix(topic, p) {
			ch = c
		}
	}
	b.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (b *testBroker) usernames() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.users...)
}

// nextMessage waits for the next device uplink on topic (others are skipped).
func (b *testBroker) nextMessage(t testing.TB, topic string) explorer.Message {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-b.received:
			if m.Topic == topic {
				return m
			}
		case <-timeout:
			t.Fatalf("no message on %q within 15s", topic)
		}
	}
}

// authHook checks credentials the way the platform does (docs/PROTOCOL.md §1.2-1.5).
type authHook struct {
	mqtt.HookBase
	b   *testBroker
	srv *mqtt.Server
}

func (h *authHook) ID() string { return "tencent-auth" }

func (h *authHook) Provides(x byte) bool {
	switch x {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribe, mqtt.OnUnsubscribe,
		mqtt.OnPublish, mqtt.OnPacketRead, mqtt.OnSessionEstablished, mqtt.OnDisconnect:
		return true
	}
	return false
}

func (h *authHook) refuse(cl *mqtt.Client, code byte) error {
	_ = h.srv.SendConnack(cl, packets.Code{Code: code}, false, nil)
	return errors.New("refused")
}

func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	id := string(cl.ID)
	user := string(pk.Connect.Username)
	h.b.mu.Lock()
	secret, known := h.b.devices[id]
	h.b.users = append(h.b.users, user)
	h.b.mu.Unlock()
	if !known {
		return h.refuse(cl, 5)
	}
	f := strings.Split(user, ";")
	if len(f) != 4 || f[0] != id {
		return h.refuse(cl, 4)
	}
	if exp, err := strconv.ParseInt(f[3], 10, 64); err != nil || exp < time.Now().Unix() {
		return h.refuse(cl, 4)
	}
	if secret == "" { // certificate device: the TLS client certificate must name it
		tc, ok := cl.Net.Conn.(*tls.Conn)
		if !ok || len(tc.ConnectionState().PeerCertificates) == 0 || tc.ConnectionState().PeerCertificates[0].Subject.CommonName != id {
			return h.refuse(cl, 5)
		}
		return nil
	}
	pw := string(pk.Connect.Password)
	method := explorer.HMACSHA256
	if strings.HasSuffix(pw, ";hmacsha1") {
		method = explorer.HMACSHA1
	}
	want, err := explorer.Password(secret, user, method)
	if err != nil || pw != want {
		return h.refuse(cl, 4)
	}
	return nil
}

func (h *authHook) OnPacketRead(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish && strings.HasPrefix(pk.TopicName, "$sys/operation/") {
		pk.TopicName = "sysop/" + strings.TrimPrefix(pk.TopicName, "$sys/operation/")
	}
	return pk, nil
}

func (h *authHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.b.mu.Lock()
	h.b.live[cl] = true
	h.b.mu.Unlock()
}

func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.b.mu.Lock()
	delete(h.b.live, cl)
	h.b.mu.Unlock()
}

func (h *authHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnACLCheck lets a device use only topics that carry its own pid/dn, like the platform.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, _ bool) bool {
	return cl.Net.Inline || strings.Contains(topic, testPID+"/") || strings.HasPrefix(topic, "test/")
}

func (h *authHook) OnSubscribe(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	for _, f := range pk.Filters {
		h.b.waitStall(f.Filter)
	}
	return pk
}

func (h *authHook) OnUnsubscribe(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	for _, f := range pk.Filters {
		h.b.waitStall(f.Filter)
	}
	return pk
}

// OnPublish holds stalled topics, and answers a publish to "test/poison..." by
// disconnecting the client, as the platform does for a publish its ACL refuses.
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.b.waitStall(pk.TopicName)
	if strings.HasPrefix(pk.TopicName, "test/poison") {
		cl.Stop(errors.New("test: refused publish"))
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

// makeCA creates the broker's test CA and server certificate (127.0.0.1 only).
func (b *testBroker) makeCA() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "explorer test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.t.Fatal(err)
	}
	b.ca, _ = x509.ParseCertificate(der)
	b.caKey = key
	b.caPool = x509.NewCertPool()
	b.caPool.AddCert(b.ca)
	srvCert := b.issue("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth)
	b.serverTL = &tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    b.caPool,
		MinVersion:   tls.VersionTLS12,
	}
}

// issue signs a leaf certificate with the test CA.
func (b *testBroker) issue(cn string, ips []net.IP, usage x509.ExtKeyUsage) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  ips,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.ca, &key.PublicKey, b.caKey)
	if err != nil {
		b.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// addCertDevice registers a certificate device and returns its client certificate.
func (b *testBroker) addCertDevice(dn string) tls.Certificate {
	b.mu.Lock()
	b.devices[testPID+dn] = ""
	b.mu.Unlock()
	return b.issue(testPID+dn, nil, x509.ExtKeyUsageClientAuth)
}
