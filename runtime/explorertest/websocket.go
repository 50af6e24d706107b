package explorertest

// MQTT over WebSocket (docs/PROTOCOL.md §1.1, WebSocket variant): the same broker, ACL and
// authentication as the TCP listeners, reached with ws:// (key devices) or wss:// (certificate
// or key devices; the client certificate is checked exactly as on MQTT over TLS). The listeners
// start only when an address is given (WithWebSocketAddr, WithWebSocketTLSAddr).
//
// Choices where the protocol is silent: the upgrade is accepted on any path (the official
// Python SDK uses paho's default "/mqtt"; the path the platform expects is unconfirmed,
// PROTOCOL §9 item 14); the subprotocols "mqtt" and "mqttv3.1" are offered; every WebSocket
// message must be binary (a text frame ends the connection). MQTT packets may span messages
// and a message may hold several packets, as the MQTT-over-WebSocket binding allows.

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Listener ids of the WebSocket listeners.
const (
	listenerWS  = "ws"
	listenerWSS = "wss"
)

var wsUpgrader = websocket.Upgrader{
	Subprotocols:    []string{"mqtt", "mqttv3.1"},
	CheckOrigin:     func(*http.Request) bool { return true }, // devices, not browsers
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
}

// serveWebSocket is mqttListener.Serve for the ws and wss listeners: every accepted TCP
// connection is tracked (latency, DropConnections, Close) below TLS and the WebSocket.
func (l *mqttListener) serveWebSocket(establish listeners.EstablishFn) {
	defer l.wg.Done()
	srv := &http.Server{
		ReadHeaderTimeout: connectTimeout,
		ErrorLog:          nil,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := wsUpgrader.Upgrade(w, r, nil)
			if err != nil {
				return // the upgrader answered 400 with the reason
			}
			ws.SetReadLimit(4 * MaxPayload) // an MQTT packet is at most a 16 KiB payload plus its header
			c := &wsConn{ws: ws}
			lc := connOf2(ws.NetConn())
			_ = c.SetDeadline(time.Now().Add(connectTimeout))
			l.wg.Add(1)
			defer l.wg.Done()
			err = establish(l.id, c)
			if lc != nil {
				l.s.endSession(lc)
			}
			if err != nil && !isConnClosed(err) {
				l.log.Debug("explorertest: connection ended", "listener", l.id, "remote", r.RemoteAddr, "error", err)
			}
		}),
	}
	ln := &trackingListener{Listener: l.ln, s: l.s}
	var serveLn net.Listener = ln
	if l.tlsCfg != nil {
		serveLn = tls.NewListener(ln, l.tlsCfg)
	}
	_ = srv.Serve(serveLn) // returns when the listener closes; connections are cut by Close
}

// trackingListener wraps every accepted connection in a latConn.
type trackingListener struct {
	net.Listener
	s *Server
}

func (t *trackingListener) Accept() (net.Conn, error) {
	raw, err := t.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return t.s.track(raw), nil
}

// connOf2 finds the latConn below TLS of a hijacked connection.
func connOf2(c net.Conn) *latConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*latConn)
	return lc
}

// wsConn is one WebSocket connection as the byte stream the broker reads MQTT from.
type wsConn struct {
	ws  *websocket.Conn
	r   io.Reader
	wmu sync.Mutex
}

// NetConn is the connection under the WebSocket (TLS or the tracked TCP connection).
func (c *wsConn) NetConn() net.Conn { return c.ws.NetConn() }

var errTextFrame = errors.New("explorertest: WebSocket text frame (MQTT needs binary frames)")

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			mt, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error                       { return c.ws.Close() }
func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.ws.NetConn().SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// peerTLS returns the TLS state of a broker connection (direct TLS or wss), if any.
func peerTLS(c net.Conn) (tls.ConnectionState, bool) {
	if wc, ok := c.(*wsConn); ok {
		c = wc.NetConn()
	}
	if tc, ok := c.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// WebSocketURL is the MQTT-over-WebSocket address, "ws://127.0.0.1:port/mqtt" ("" when the
// listener was not enabled with WithWebSocketAddr).
func (s *Server) WebSocketURL() string {
	if a := s.addr(&s.wsAddr); a != "" {
		return "ws://" + a + "/mqtt"
	}
	return ""
}

// WebSocketTLSURL is the MQTT-over-secure-WebSocket address, "wss://127.0.0.1:port/mqtt" (""
// when not enabled with WithWebSocketTLSAddr). It presents the test CA's certificate.
func (s *Server) WebSocketTLSURL() string {
	if a := s.addr(&s.wssAddr); a != "" {
		return "wss://" + a + "/mqtt"
	}
	return ""
}

// WithWebSocketAddr starts the MQTT-over-WebSocket listener (ws://) on addr, e.g. "127.0.0.1:0".
func WithWebSocketAddr(addr string) Option {
	return addrOption("WithWebSocketAddr", func(c *config) *string { return &c.wsAddr })(addr)
}

// WithWebSocketTLSAddr starts the MQTT-over-secure-WebSocket listener (wss://) on addr.
func WithWebSocketTLSAddr(addr string) Option {
	return addrOption("WithWebSocketTLSAddr", func(c *config) *string { return &c.wssAddr })(addr)
}
