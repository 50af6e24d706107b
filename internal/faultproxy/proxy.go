// Package faultproxy is a TCP proxy on 127.0.0.1 that tests use to put a real, misbehaving
// network between a client and a server: it forwards bytes unchanged until told to black-hole
// them, stall, throttle, half-close or cut the connections it carries, or to refuse new ones.
//
// It exists so timeout and reconnect behaviour is tested against real sockets and real kernel
// buffers instead of mocked connections. Every fault is switched at run time and applies at once
// to the connections already open and to the ones accepted later (except [Proxy.HalfClose],
// [Proxy.Cut] and [Proxy.Reset], which act on the open connections only).
//
// Faults per direction: [Up] is client → target, [Down] is target → client.
//
//   - [PassThrough]: bytes are forwarded (at the throttled rate, if any).
//   - [BlackHole]: bytes are read and thrown away, nothing is sent back, no FIN, no RST: to the
//     sender the peer looks alive but never answers (a dead route or a half-open connection).
//     The stream is corrupt afterwards, so a test that ends a black hole usually also calls
//     [Proxy.Cut] to force a fresh connection.
//   - [Stall]: bytes are no longer read, so they pile up in the kernel's buffers until the
//     sender's writes block (a peer that stopped reading: zero window). Returning to
//     [PassThrough] delivers everything that piled up; nothing is lost.
//
// The proxy only ever listens on 127.0.0.1.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names one half of a proxied connection.
type Direction int

const (
	// Up is the client → target half.
	Up Direction = iota
	// Down is the target → client half.
	Down
)

// String returns "up" or "down".
func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// Mode is what the proxy does with the bytes of one direction.
type Mode int

const (
	// PassThrough forwards bytes (subject to the direction's throttle).
	PassThrough Mode = iota
	// BlackHole reads bytes and discards them without any signal to either side.
	BlackHole
	// Stall stops reading, so the sender's writes block once the kernel buffers are full.
	Stall
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case PassThrough:
		return "pass-through"
	case BlackHole:
		return "black-hole"
	case Stall:
		return "stall"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Stats counts what the proxy did since it started.
type Stats struct {
	Accepted  int64 // connections accepted (including refused ones)
	Refused   int64 // connections reset at once because of [Proxy.Refuse]
	Active    int   // connections open now
	Forwarded [2]int64
	Dropped   [2]int64 // bytes discarded by [BlackHole] or after [Proxy.HalfClose], per Direction
}

// state is the switchable fault configuration; a new value replaces the old one whole and
// changed is closed so waiting pumps look again.
type state struct {
	mode    [2]Mode
	rate    [2]int // bytes per second, 0 = unlimited
	refuse  bool
	changed chan struct{}
}

// Proxy is a running fault-injecting TCP proxy. Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	st    *state
	links map[*link]struct{}

	accepted, refused  atomic.Int64
	forwarded, dropped [2]atomic.Int64
	closed             chan struct{}
	closeOnce          sync.Once
	wg                 sync.WaitGroup
	dialTimeout        time.Duration
}

// New starts a proxy on 127.0.0.1 (a free port) forwarding to target ("host:port").
// The target is dialled once per accepted connection. Stop it with [Proxy.Close].
func New(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("faultproxy: target %q is not host:port: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on 127.0.0.1: %w", err)
	}
	p := &Proxy{
		target:      target,
		ln:          ln,
		st:          &state{changed: make(chan struct{})},
		links:       make(map[*link]struct{}),
		closed:      make(chan struct{}),
		dialTimeout: 5 * time.Second,
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's listening address ("127.0.0.1:port"); point the client here.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// update applies fn to a copy of the fault state and wakes every waiting pump.
func (p *Proxy) update(fn func(s *state)) {
	p.mu.Lock()
	old := p.st
	next := *old
	next.changed = make(chan struct{})
	fn(&next)
	p.st = &next
	p.mu.Unlock()
	close(old.changed)
}

func (p *Proxy) state() *state {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// SetMode sets the mode of both directions.
func (p *Proxy) SetMode(m Mode) {
	p.update(func(s *state) { s.mode = [2]Mode{m, m} })
}

// SetDirMode sets the mode of one direction.
func (p *Proxy) SetDirMode(d Direction, m Mode) {
	p.update(func(s *state) { s.mode[d] = m })
}

// Throttle limits both directions to bytesPerSec each (per connection); 0 removes the limit.
func (p *Proxy) Throttle(bytesPerSec int) {
	p.update(func(s *state) { s.rate = [2]int{bytesPerSec, bytesPerSec} })
}

// ThrottleDir limits one direction to bytesPerSec (per connection); 0 removes the limit.
func (p *Proxy) ThrottleDir(d Direction, bytesPerSec int) {
	p.update(func(s *state) { s.rate[d] = bytesPerSec })
}

// Refuse makes the proxy reset every new connection at once (RST right after accept), as a
// host whose service is down would; false accepts them again. Open connections are not touched.
func (p *Proxy) Refuse(on bool) {
	p.update(func(s *state) { s.refuse = on })
}

// Heal returns to the initial state: pass-through both ways, no throttle, accepting.
func (p *Proxy) Heal() {
	p.update(func(s *state) { *s = state{changed: s.changed} })
}

// HalfClose half-closes direction d of every open connection: the receiving side of d gets a
// FIN (reads return EOF) and whatever the sender still writes that way is discarded, while the
// other direction keeps working. New connections are not affected.
func (p *Proxy) HalfClose(d Direction) {
	for _, l := range p.snapshot() {
		l.halfClose(d)
	}
}

// Cut closes every open connection on both sides with a normal close (FIN), as a server that
// drops its clients does. It returns how many connections it closed.
func (p *Proxy) Cut() int {
	ls := p.snapshot()
	for _, l := range ls {
		l.close(false)
	}
	return len(ls)
}

// Reset aborts every open connection on both sides with a TCP RST. It returns how many
// connections it aborted.
func (p *Proxy) Reset() int {
	ls := p.snapshot()
	for _, l := range ls {
		l.close(true)
	}
	return len(ls)
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	s := Stats{Accepted: p.accepted.Load(), Refused: p.refused.Load()}
	p.mu.Lock()
	s.Active = len(p.links)
	p.mu.Unlock()
	for d := range 2 {
		s.Forwarded[d] = p.forwarded[d].Load()
		s.Dropped[d] = p.dropped[d].Load()
	}
	return s
}

// Close stops listening, closes every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		_ = p.ln.Close()
		p.Cut()
	})
	p.wg.Wait()
	return nil
}

func (p *Proxy) snapshot() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*link, 0, len(p.links))
	for l := range p.links {
		out = append(out, l)
	}
	return out
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		p.accepted.Add(1)
		if p.state().refuse {
			p.refused.Add(1)
			abort(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target for one accepted client and runs both pumps.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: p.dialTimeout}
	server, err := d.Dial("tcp", p.target)
	if err != nil {
		// The target is down: the client sees what it would see from the real server.
		abort(client)
		return
	}
	l := &link{p: p, conns: [2]net.Conn{client, server}, done: make(chan struct{})}
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	default:
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); l.pump(Up) }()
	go func() { defer pumps.Done(); l.pump(Down) }()
	pumps.Wait()
	l.close(false)
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// abort closes c with an RST (linger 0) where the platform allows it.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// link is one proxied connection: conns[0] is the client side, conns[1] the target side.
type link struct {
	p     *Proxy
	conns [2]net.Conn

	mu        sync.Mutex
	halfShut  [2]bool
	closeOnce sync.Once
	done      chan struct{}
}

// src and dst of a direction.
func (l *link) ends(d Direction) (src, dst net.Conn) {
	if d == Up {
		return l.conns[0], l.conns[1]
	}
	return l.conns[1], l.conns[0]
}

func (l *link) halfClose(d Direction) {
	l.mu.Lock()
	already := l.halfShut[d]
	l.halfShut[d] = true
	l.mu.Unlock()
	if already {
		return
	}
	_, dst := l.ends(d)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

func (l *link) isHalfShut(d Direction) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.halfShut[d]
}

func (l *link) close(rst bool) {
	l.closeOnce.Do(func() {
		close(l.done)
		for _, c := range l.conns {
			if rst {
				abort(c)
			} else {
				_ = c.Close()
			}
		}
	})
}

// waitNotStalled blocks while direction d is stalled; it returns the current state, or nil when
// the link closed.
func (l *link) waitNotStalled(d Direction) *state {
	for {
		st := l.p.state()
		if st.mode[d] != Stall {
			return st
		}
		select {
		case <-st.changed:
		case <-l.done:
			return nil
		}
	}
}

// sleep waits for dur unless the link closes first; false means it closed.
func (l *link) sleep(dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// pump moves the bytes of one direction until either side ends.
func (l *link) pump(d Direction) {
	src, dst := l.ends(d)
	buf := make([]byte, 32<<10)
	var next time.Time // throttle: earliest time the next chunk may go out
	for {
		st := l.waitNotStalled(d)
		if st == nil {
			return
		}
		chunk := len(buf)
		if r := st.rate[d]; r > 0 {
			// Small chunks keep a throttled stream smooth: about 20 writes a second.
			chunk = min(chunk, max(1, r/20))
		}
		n, err := src.Read(buf[:chunk])
		if n > 0 {
			// A fault switched on while Read blocked applies to the bytes it returned.
			st = l.waitNotStalled(d)
			if st == nil {
				return
			}
			if st.mode[d] == BlackHole || l.isHalfShut(d) {
				l.p.dropped[d].Add(int64(n))
			} else {
				if r := st.rate[d]; r > 0 {
					now := time.Now()
					if next.Before(now) {
						next = now
					}
					next = next.Add(time.Duration(n) * time.Second / time.Duration(r))
					if wait := time.Until(next); wait > 0 && !l.sleep(wait) {
						return
					}
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					l.close(false)
					return
				}
				l.p.forwarded[d].Add(int64(n))
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && !l.isHalfShut(d) && l.p.state().mode[d] == PassThrough {
				// Propagate the sender's FIN; the other direction may still carry data.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			if !errors.Is(err, io.EOF) {
				l.close(false)
			}
			return
		}
	}
}
