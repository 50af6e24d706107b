package explorer_test

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener is the test broker's TCP/TLS listener. It differs from mochi's listeners.TCP
// in one way: Close closes its own connections instead of calling the broker's CloseFn.
// That CloseFn (Clients.GetByListener in mochi v2.7.9) read-locks the client map twice, so a
// client leaving at the same moment (a write lock between the two) deadlocks the broker's
// Close: mochi-mqtt/server issue #488, fix pending in PR #489.
type tcpListener struct {
	id, addr string
	tlsCfg   *tls.Config

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

var _ listeners.Listener = (*tcpListener)(nil)

// newTCPListener listens on addr when the broker starts; ln, if not nil, is a socket already
// listening there (the first start: no window in which another process takes the port).
func newTCPListener(id, addr string, tlsCfg *tls.Config, ln net.Listener) *tcpListener {
	return &tcpListener{id: id, addr: addr, tlsCfg: tlsCfg, ln: ln, conns: map[net.Conn]struct{}{}}
}

func (l *tcpListener) ID() string       { return l.id }
func (l *tcpListener) Address() string  { return l.addr }
func (l *tcpListener) Protocol() string { return "tcp" }

func (l *tcpListener) Init(*slog.Logger) error {
	ln := l.ln
	if ln == nil {
		var err error
		if ln, err = listenRetry(l.addr); err != nil {
			return err
		}
	}
	if l.tlsCfg != nil {
		ln = tls.NewListener(ln, l.tlsCfg)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	return nil
}

func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		go func() {
			_ = establish(l.id, c)
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// Close stops accepting and closes every connection; the broker's per-connection goroutines
// then clean up as after any dropped connection.
func (l *tcpListener) Close(listeners.CloseFn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	if l.ln != nil {
		_ = l.ln.Close()
	}
	for c := range l.conns {
		_ = c.Close()
	}
}

// listenRetry binds addr again after a restart. The port came from the ephemeral range, so
// while it was free an outgoing connection (another test's) may hold it for a moment.
func listenRetry(addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
