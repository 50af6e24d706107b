package firmware

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// Host is one listener serving a store's objects at the URL root, like an object-storage host
// of the real cloud. Create it with Store.Serve; Close it when done.
type Host struct {
	srv    *http.Server
	ln     net.Listener
	scheme string
	done   chan struct{}
}

// Serve starts a Host on addr ("127.0.0.1:0" for an ephemeral port, "127.0.0.1:80" for the
// default HTTP port): plain HTTP when tlsCfg is nil, HTTPS otherwise. errorLog receives the
// HTTP server's own errors (aborted downloads, TLS handshakes of untrusting clients); nil
// discards them.
func (s *Store) Serve(addr string, tlsCfg *tls.Config, errorLog *log.Logger) (*Host, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("firmware: listen on %s: %w", addr, err)
	}
	if errorLog == nil {
		errorLog = log.New(io.Discard, "", 0)
	}
	h := &Host{
		srv: &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          errorLog,
		},
		ln:     ln,
		scheme: "http",
		done:   make(chan struct{}),
	}
	serveLn := ln
	if tlsCfg != nil {
		h.scheme = "https"
		serveLn = tls.NewListener(ln, tlsCfg)
	}
	go func() {
		defer close(h.done)
		_ = h.srv.Serve(serveLn)
	}()
	return h, nil
}

// Addr is the bound address, e.g. "127.0.0.1:41234".
func (h *Host) Addr() string { return h.ln.Addr().String() }

// URL is the host's base URL without a trailing "/", the default port left out (BaseURL).
func (h *Host) URL() string { return BaseURL(h.scheme, h.Addr()) }

// Close stops the listener, gives downloads in flight a moment, then cuts them.
func (h *Host) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	if cerr := h.srv.Close(); err == nil {
		err = cerr
	}
	<-h.done
	return err
}

// BaseURL returns scheme://host[:port] for a listener address. The port is left out when it
// is the scheme's default (80 for http, 443 for https): the C SDK keeps any ":port" of the URL
// as part of the host name and connects to the default port anyway, so a URL naming the
// default port fails there. An unspecified listen address (":80", "0.0.0.0:80", "[::]:80")
// becomes 127.0.0.1.
func BaseURL(scheme, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}
