package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/faultproxy"
)

// target is a real TCP server on 127.0.0.1 that records what it receives and can echo it.
type target struct {
	ln   net.Listener
	echo bool

	mu       sync.Mutex
	received bytes.Buffer
	conns    []net.Conn
	eofs     int
	accepted chan net.Conn
}

func newTarget(t *testing.T, echo bool) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, echo: echo, accepted: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.mu.Lock()
			tg.conns = append(tg.conns, c)
			tg.mu.Unlock()
			tg.accepted <- c
			go tg.serve(c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		tg.mu.Lock()
		for _, c := range tg.conns {
			_ = c.Close()
		}
		tg.mu.Unlock()
	})
	return tg
}

func (tg *target) serve(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			tg.mu.Lock()
			tg.received.Write(buf[:n])
			tg.mu.Unlock()
			if tg.echo {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				tg.mu.Lock()
				tg.eofs++
				tg.mu.Unlock()
			}
			return
		}
	}
}

func (tg *target) got() []byte {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return bytes.Clone(tg.received.Bytes())
}

func (tg *target) eofCount() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.eofs
}

func start(t *testing.T, tg *target) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(tg.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, p *faultproxy.Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// eventually polls cond for up to 5 s (a correctness wait, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialAndRead connects and reads one byte; the RST of a refused connection can arrive during
// the connect or at the first read, so either error counts.
func dialAndRead(p *faultproxy.Proxy) error {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

func readFull(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

// expectSilence asserts that nothing at all (no data, no FIN, no RST) arrives within d.
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read over a black hole: n=%d err=%v, want a timeout with no data", n, err)
	}
}

func TestPassThrough(t *testing.T) {
	tg := newTarget(t, true)
	p := start(t, tg)
	c := dial(t, p)
	msg := bytes.Repeat([]byte("0123456789"), 10000)
	go func() { _, _ = c.Write(msg) }()
	if got := readFull(t, c, len(msg)); !bytes.Equal(got, msg) {
		t.Fatal("echo through the proxy differs from what was sent")
	}
	s := p.Stats()
	if s.Accepted != 1 || s.Active != 1 || s.Forwarded[faultproxy.Up] != int64(len(msg)) {
		t.Fatalf("stats = %+v", s)
	}
}

func TestBlackHoleDropsBothWaysWithoutSignal(t *testing.T) {
	tg := newTarget(t, true)
	p := start(t, tg)
	c := dial(t, p)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	readFull(t, c, 4)

	p.SetMode(faultproxy.BlackHole)
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatalf("write into a black hole must succeed (no RST): %v", err)
	}
	expectSilence(t, c, 200*time.Millisecond)
	eventually(t, "the proxy to drop the bytes", func() bool { return p.Stats().Dropped[faultproxy.Up] == 4 })
	if got := string(tg.got()); got != "ping" {
		t.Fatalf("target received %q, want only %q", got, "ping")
	}

	// A connection made during the black hole is accepted but never answered.
	c2 := dial(t, p)
	if _, err := c2.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c2, 100*time.Millisecond)

	// Healing restores new connections.
	p.Heal()
	c3 := dial(t, p)
	if _, err := c3.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := string(readFull(t, c3, 4)); got != "back" {
		t.Fatalf("after Heal got %q", got)
	}
}

func TestBlackHoleOneDirection(t *testing.T) {
	tg := newTarget(t, true)
	p := start(t, tg)
	c := dial(t, p)
	p.SetDirMode(faultproxy.Down, faultproxy.BlackHole)
	if _, err := c.Write([]byte("up-only")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the target to receive the upstream bytes", func() bool { return string(tg.got()) == "up-only" })
	expectSilence(t, c, 100*time.Millisecond)
	eventually(t, "the echo to be dropped", func() bool { return p.Stats().Dropped[faultproxy.Down] == 7 })
}

func TestStallBlocksWriterThenDeliversEverything(t *testing.T) {
	tg := newTarget(t, false)
	p := start(t, tg)
	c := dial(t, p)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first byte", func() bool { return len(tg.got()) == 1 })

	p.SetDirMode(faultproxy.Up, faultproxy.Stall)
	// Write until the kernel buffers are full and a write blocks past its deadline.
	chunk := bytes.Repeat([]byte{'y'}, 64<<10)
	sent := 0
	for {
		_ = c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("write into a stalled link: %v, want a timeout", err)
			}
			break
		}
		if sent > 64<<20 {
			t.Fatal("64 MiB written into a stalled link without blocking")
		}
	}
	// At most one chunk read before the stall took effect may have reached the target.
	if got := len(tg.got()); got > 1+32<<10 {
		t.Fatalf("target received %d bytes during the stall", got)
	}
	p.SetMode(faultproxy.PassThrough)
	eventually(t, "every stalled byte to arrive", func() bool { return len(tg.got()) == 1+sent })
}

func TestThrottle(t *testing.T) {
	tg := newTarget(t, false)
	p := start(t, tg)
	const rate = 20000
	p.ThrottleDir(faultproxy.Up, rate)
	c := dial(t, p)
	msg := bytes.Repeat([]byte{'z'}, rate/2)
	begin := time.Now()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the throttled bytes", func() bool { return len(tg.got()) == len(msg) })
	// A lower bound only: the throttle must have spread the bytes over about half a second.
	if el := time.Since(begin); el < 400*time.Millisecond {
		t.Fatalf("%d bytes at %d B/s arrived after %v", len(msg), rate, el)
	}
}

func TestHalfCloseDown(t *testing.T) {
	tg := newTarget(t, true)
	p := start(t, tg)
	c := dial(t, p)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	readFull(t, c, 1)
	p.HalfClose(faultproxy.Down)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after HalfClose(Down) = %d, %v; want EOF", n, err)
	}
	// The client → target half still works.
	if _, err := c.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the upstream byte after the half-close", func() bool { return string(tg.got()) == "ab" })
	eventually(t, "the echo of b to be dropped", func() bool { return p.Stats().Dropped[faultproxy.Down] == 1 })
}

func TestHalfCloseUp(t *testing.T) {
	tg := newTarget(t, false)
	p := start(t, tg)
	c := dial(t, p)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first byte", func() bool { return len(tg.got()) == 1 })
	p.HalfClose(faultproxy.Up)
	eventually(t, "the target to see EOF", func() bool { return tg.eofCount() == 1 })
}

func TestCutAndReset(t *testing.T) {
	tg := newTarget(t, true)
	p := start(t, tg)
	c1, c2 := dial(t, p), dial(t, p)
	for _, c := range []net.Conn{c1, c2} {
		if _, err := c.Write([]byte("k")); err != nil {
			t.Fatal(err)
		}
		readFull(t, c, 1)
	}
	if n := p.Cut(); n != 2 {
		t.Fatalf("Cut closed %d connections, want 2", n)
	}
	for _, c := range []net.Conn{c1, c2} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("read after Cut: %v, want EOF", err)
		}
	}
	eventually(t, "no active connection", func() bool { return p.Stats().Active == 0 })

	c3 := dial(t, p)
	if _, err := c3.Write([]byte("r")); err != nil {
		t.Fatal(err)
	}
	readFull(t, c3, 1)
	if n := p.Reset(); n != 1 {
		t.Fatalf("Reset aborted %d connections, want 1", n)
	}
	_ = c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after Reset: %v, want ECONNRESET", err)
	}
}

func TestRefuse(t *testing.T) {
	tg := newTarget(t, true)
	p := start(t, tg)
	p.Refuse(true)
	if err := dialAndRead(p); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a refused connection: %v, want ECONNRESET", err)
	}
	if s := p.Stats(); s.Refused != 1 {
		t.Fatalf("stats = %+v, want one refused", s)
	}
	select {
	case <-tg.accepted:
		t.Fatal("a refused connection reached the target")
	default:
	}
	p.Refuse(false)
	c2 := dial(t, p)
	if _, err := c2.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if got := string(readFull(t, c2, 2)); got != "ok" {
		t.Fatalf("got %q", got)
	}
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	p, err := faultproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := dialAndRead(p); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection through a proxy whose target is down: %v, want it closed", err)
	}
}

func TestNewRejectsBadTarget(t *testing.T) {
	if _, err := faultproxy.New("no-port"); err == nil {
		t.Fatal("New accepted a target without a port")
	}
}

func TestCloseEndsEverything(t *testing.T) {
	tg := newTarget(t, true)
	p := start(t, tg)
	c := dial(t, p)
	p.SetMode(faultproxy.Stall)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a stalled connection open")
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("the proxy still accepts after Close")
	}
}
