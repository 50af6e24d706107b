package faultproxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/tplgen/tplgen/internal/faultproxy"
)

// A black hole keeps the connection open but answers nothing, so only the caller's own
// deadline ends the wait.
func Example() {
	// An echo server stands in for the real target.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()

	p, err := faultproxy.New(ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer p.Close()

	c, _ := net.Dial("tcp", p.Addr())
	defer c.Close()
	buf := make([]byte, 5)
	_, _ = c.Write([]byte("hello"))
	_, _ = io.ReadFull(c, buf)
	fmt.Println("pass-through:", string(buf))

	p.SetMode(faultproxy.BlackHole)
	_, _ = c.Write([]byte("again"))
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = c.Read(buf)
	var ne net.Error
	fmt.Println("black hole, read timed out:", errors.As(err, &ne) && ne.Timeout())

	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(buf)
	fmt.Println("after Cut:", err)
	// Output:
	// pass-through: hello
	// black hole, read timed out: true
	// after Cut: EOF
}
