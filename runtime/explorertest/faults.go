package explorertest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Fault injection: DropConnections, Restart, SetLatency.

// DropConnections cuts every MQTT connection abruptly (TCP reset, no DISCONNECT), as a network
// failure would. Devices see a lost connection and, if they reconnect, are accepted again.
func (s *Server) DropConnections() {
	n := s.closeConns(func(*latConn) bool { return true })
	s.log.Info("explorertest: dropped all connections", "count", n)
}

// Restart stops the broker and all listeners and starts them again on the same ports, keeping
// the device registry and every feature's state. Connected devices are disconnected; MQTT
// persistent sessions (clean session = false) are not kept. ctx bounds the wait for the ports.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.stopLocked(); err != nil {
		s.log.Debug("explorertest: restart: stopping broker", "error", err)
	}
	// Go listeners set SO_REUSEADDR on Unix, so the ports are normally free at once; a retry
	// loop covers platforms where the release is asynchronous.
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		err := s.startLocked()
		if err == nil {
			s.log.Info("explorertest: platform restarted", "mqtt", s.mqttAddr, "tls", s.tlsAddr)
			return nil
		}
		select {
		case <-ctx.Done():
			// Leave the server closed rather than half-started.
			s.closed = true
			return fmt.Errorf("explorertest: restart: %w (last error: %v)", ctx.Err(), err)
		case <-retry.C:
		}
	}
}

// SetLatency delays every MQTT delivery in both directions by d (0 turns it off), on existing
// and new connections. Bytes keep their order and are pipelined: a burst of messages arrives
// d later, not d apart.
func (s *Server) SetLatency(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.latency.Store(int64(d))
}

// listenReuse binds a TCP listener. Go sets SO_REUSEADDR on listening sockets on Unix, which is
// what lets Restart bind the same port while old connections are in TIME_WAIT.
func listenReuse(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), "tcp", addr)
}

// track wraps a raw connection and records it for DropConnections and Close.
func (s *Server) track(raw net.Conn) *latConn {
	c := &latConn{Conn: raw, s: s, done: make(chan struct{}), abort: make(chan struct{})}
	s.connMu.Lock()
	s.conns[c] = struct{}{}
	s.connMu.Unlock()
	return c
}

func (s *Server) untrack(c *latConn) {
	s.connMu.Lock()
	delete(s.conns, c)
	s.connMu.Unlock()
}

// closeConns aborts the tracked connections selected by pick and returns how many.
func (s *Server) closeConns(pick func(*latConn) bool) int {
	s.connMu.Lock()
	var victims []*latConn
	for c := range s.conns {
		if pick(c) {
			victims = append(victims, c)
		}
	}
	s.connMu.Unlock()
	for _, c := range victims {
		c.abortNow()
	}
	return len(victims)
}

// latConn sits between the TCP socket and TLS/MQTT. With no latency it is a plain pass-through;
// once SetLatency is non-zero a pump goroutine timestamps incoming bytes and a writer goroutine
// delays outgoing ones. It also carries the connection's authenticated session.
type latConn struct {
	net.Conn // the raw TCP connection
	s        *Server
	sess     atomic.Pointer[session]

	closeOnce sync.Once
	abortOnce sync.Once
	done      chan struct{} // closed by Close/abort: reads end
	abort     chan struct{} // closed by abort: queued writes are discarded
	finalOnce sync.Once

	// read side: only the broker's reader goroutine calls Read.
	pumping bool
	chunks  chan chunk
	cur     []byte
	rerr    error

	// write side
	wmu     sync.Mutex
	wq      []chunk
	writing bool
	closing bool
	werr    error
}

type chunk struct {
	data []byte
	at   time.Time
	err  error
}

func (c *latConn) delay() time.Duration { return time.Duration(c.s.latency.Load()) }

// waitUntil sleeps until t or until stop is closed; it reports false when stopped.
func waitUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
		return false
	}
}

func (c *latConn) Read(p []byte) (int, error) {
	if !c.pumping {
		if c.delay() == 0 {
			n, err := c.Conn.Read(p)
			// Latency switched on while this read was blocked: these bytes arrived now.
			if d := c.delay(); d > 0 && n > 0 && !waitUntil(time.Now().Add(d), c.done) {
				return 0, net.ErrClosed
			}
			return n, err
		}
		// From now on every byte goes through the pump, keeping order.
		c.pumping = true
		c.chunks = make(chan chunk, 64)
		c.s.connWG.Add(1)
		go c.pump()
	}
	if len(c.cur) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		var ch chunk
		select {
		case ch = <-c.chunks:
		case <-c.done:
			return 0, net.ErrClosed
		}
		if !waitUntil(ch.at.Add(c.delay()), c.done) {
			return 0, net.ErrClosed
		}
		if ch.err != nil {
			c.rerr = ch.err
			return 0, ch.err
		}
		c.cur = ch.data
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// pump reads the socket as fast as bytes arrive and stamps them, so delivery is arrival + delay.
func (c *latConn) pump() {
	defer c.s.connWG.Done()
	for {
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		now := time.Now()
		if n > 0 {
			select {
			case c.chunks <- chunk{data: buf[:n], at: now}:
			case <-c.done:
				return
			}
		}
		if err != nil {
			select {
			case c.chunks <- chunk{err: err, at: now}:
			case <-c.done:
			}
			return
		}
	}
}

func (c *latConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.closing {
		return 0, net.ErrClosed
	}
	if c.delay() == 0 && !c.writing {
		return c.Conn.Write(p)
	}
	c.wq = append(c.wq, chunk{data: append([]byte(nil), p...), at: time.Now()})
	if !c.writing {
		c.writing = true
		c.s.connWG.Add(1)
		go c.writer()
	}
	return len(p), nil
}

// writer sends queued bytes once their delay has passed; on Close it flushes, then closes.
func (c *latConn) writer() {
	defer c.s.connWG.Done()
	for {
		c.wmu.Lock()
		if len(c.wq) == 0 {
			c.writing = false
			closing := c.closing
			c.wmu.Unlock()
			if closing {
				c.final()
			}
			return
		}
		ch := c.wq[0]
		c.wq = c.wq[1:]
		c.wmu.Unlock()
		if !waitUntil(ch.at.Add(c.delay()), c.abort) {
			return
		}
		if _, err := c.Conn.Write(ch.data); err != nil {
			c.wmu.Lock()
			c.werr, c.wq = err, nil
			c.wmu.Unlock()
		}
	}
}

// Close stops reads now and closes the socket once queued writes are flushed (bytes written
// before a close still reach the peer, e.g. a CONNACK refusal).
func (c *latConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wmu.Lock()
		c.closing = true
		flushing := c.writing
		c.wmu.Unlock()
		if !flushing {
			c.final()
		}
	})
	return nil
}

// abortNow resets the connection at once, discarding queued writes.
func (c *latConn) abortNow() {
	c.abortOnce.Do(func() {
		close(c.abort)
		c.closeOnce.Do(func() { close(c.done) })
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, like a cable pulled or a NAT timeout
		}
		c.final()
	})
}

// final closes the socket and forgets the connection.
func (c *latConn) final() {
	c.finalOnce.Do(func() {
		_ = c.Conn.Close()
		c.s.untrack(c)
	})
}
