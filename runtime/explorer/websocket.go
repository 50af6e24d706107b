package explorer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MQTT over WebSocket (docs/PROTOCOL.md §1.1): the same MQTT byte stream carried in binary
// WebSocket messages with the "mqtt" subprotocol. The Conn opens the WebSocket itself (as it
// opens TCP and TLS) so that ctx bounds the whole handshake, and hands paho a net.Conn.

// dialWebSocket opens the WebSocket for c.addr, recording the raw socket in a so that a ctx
// that ends mid-handshake closes it.
func (c *Conn) dialWebSocket(ctx context.Context, a *attempt) (net.Conn, error) {
	d := websocket.Dialer{
		Subprotocols:    []string{"mqtt"},
		TLSClientConfig: c.tlsCfg,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			raw, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.aborted {
				_ = raw.Close()
				return nil, context.Canceled
			}
			a.conn = raw
			return raw, nil
		},
		Proxy: http.ProxyFromEnvironment,
	}
	scheme := "ws"
	if c.addr.tls {
		scheme = "wss"
	}
	u := url.URL{Scheme: scheme, Host: c.addr.hostPort(), Path: c.addr.path}
	if p, err := url.PathUnescape(c.addr.path); err == nil {
		u.Path, u.RawPath = p, c.addr.path
	}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		kind := ErrConnectionRefused
		var ne net.Error
		switch {
		case isTLSError(err):
			kind = ErrTLS
		case errorsAs(err, &ne) && ne.Timeout():
			kind = ErrTimeout
		}
		if resp != nil {
			return nil, c.stageError(ctx, kind, &wsStatusError{status: resp.Status, cause: err})
		}
		return nil, c.stageError(ctx, kind, err)
	}
	wc := &wsConn{ws: ws}
	a.mu.Lock()
	a.conn = wc
	a.mu.Unlock()
	return wc, nil
}

// wsStatusError keeps the HTTP status of a refused WebSocket upgrade in the error text.
type wsStatusError struct {
	status string
	cause  error
}

func (e *wsStatusError) Error() string {
	return "WebSocket upgrade answered " + e.status + ": " + e.cause.Error()
}
func (e *wsStatusError) Unwrap() error { return e.cause }

// wsConn presents a WebSocket as the byte stream paho reads and writes. An MQTT packet may
// span WebSocket messages and a message may hold several packets, so reads run across
// message boundaries; every Write is one binary message.
type wsConn struct {
	ws  *websocket.Conn
	rmu sync.Mutex
	r   io.Reader // the message being read
	wmu sync.Mutex
}

func (w *wsConn) Read(p []byte) (int, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	for {
		if w.r == nil {
			typ, r, err := w.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				continue // MQTT travels in binary messages only; ignore anything else
			}
			w.r = r
		}
		n, err := w.r.Read(p)
		if err == io.EOF {
			w.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (w *wsConn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *wsConn) Close() error                       { return w.ws.Close() }
func (w *wsConn) LocalAddr() net.Addr                { return w.ws.LocalAddr() }
func (w *wsConn) RemoteAddr() net.Addr               { return w.ws.RemoteAddr() }
func (w *wsConn) SetReadDeadline(t time.Time) error  { return w.ws.SetReadDeadline(t) }
func (w *wsConn) SetWriteDeadline(t time.Time) error { return w.ws.SetWriteDeadline(t) }
func (w *wsConn) SetDeadline(t time.Time) error {
	if err := w.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return w.ws.SetWriteDeadline(t)
}

// errorsAs is errors.As (kept short for the switch above).
func errorsAs(err error, target any) bool { return errors.As(err, target) }

// isTLSError reports whether err comes from the TLS handshake or certificate verification.
func isTLSError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		rerr tls.RecordHeaderError
		aerr tls.AlertError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &rerr) || errors.As(err, &aerr) ||
		errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}
