package explorertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// httpServer is one of the two HTTP listeners (plain and TLS) serving Server.mux.
type httpServer struct {
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	started bool
}

func (s *Server) newHTTPServer(addr string, useTLS bool) (*httpServer, error) {
	ln, err := listenReuse(addr)
	if err != nil {
		return nil, fmt.Errorf("explorertest: HTTP listener on %s: %w", addr, err)
	}
	// Requests' contexts end when the server shuts down, so long-lived responses (the
	// console's /api/stream) finish cleanly instead of holding Shutdown for its grace period.
	base, stop := context.WithCancel(context.Background())
	h := &httpServer{
		srv: &http.Server{
			Handler:           s.rootHandler(), // API token, JSON errors for every route (console.go)
			ReadHeaderTimeout: 10 * time.Second,
			// TLS handshake errors from clients that don't trust the test CA are expected.
			ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			BaseContext: func(net.Listener) context.Context { return base },
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	h.srv.RegisterOnShutdown(stop)
	if useTLS {
		h.ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{s.serverCert},
			MinVersion:   tls.VersionTLS12,
		})
		h.ln = addrListener{h.ln, ln.Addr()}
	}
	return h, nil
}

// addrListener keeps the raw address visible through the TLS listener.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (a addrListener) Addr() net.Addr { return a.addr }

func (h *httpServer) serve() {
	h.started = true
	go func() {
		defer close(h.done)
		_ = h.srv.Serve(h.ln)
	}()
}

// close shuts the server down, giving in-flight requests a moment, then waits for Serve.
func (h *httpServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		_ = h.srv.Close()
	}
	_ = h.srv.Close()
	if h.started {
		<-h.done
	} else {
		_ = h.ln.Close() // a failed start: Serve never owned the listener
	}
}
