package explorertest_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// A device dials the in-process platform exactly as it would dial IoT Explorer, only with the
// server's config and options.
func ExampleNewServer() {
	s, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddDevice("ABCDEFGHIJ", "lamp1"); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, s.DeviceConfig("ABCDEFGHIJ", "lamp1"), s.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("online:", s.Online("ABCDEFGHIJ", "lamp1"))

	now, err := conn.ServerTime(ctx) // answered by the platform's $sys/operation time service
	fmt.Println("server time:", err == nil && !now.IsZero())
	// Output:
	// online: true
	// server time: true
}

// Certificate devices get a certificate from the server's test CA and log in by mutual TLS.
func ExampleWithCertificate() {
	s, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddDevice("ABCDEFGHIJ", "meter1", explorertest.WithCertificate()); err != nil {
		log.Fatal(err)
	}
	cfg := s.DeviceConfig("ABCDEFGHIJ", "meter1")
	fmt.Println("has certificate:", cfg.Certificate != nil)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, cfg, s.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("online:", s.Online("ABCDEFGHIJ", "meter1"))
	// Output:
	// has certificate: true
	// online: true
}

// Fault injection: every connection is cut; the explorer client reconnects by itself.
func ExampleServer_DropConnections() {
	s, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddDevice("ABCDEFGHIJ", "lamp1"); err != nil {
		log.Fatal(err)
	}
	reconnected := make(chan struct{}, 1)
	var connects atomic.Int32 // hooks of successive connections may run on different goroutines
	opts := append(s.DialOptions(), explorer.WithOnConnect(func(context.Context) {
		if connects.Add(1) == 2 {
			reconnected <- struct{}{}
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, s.DeviceConfig("ABCDEFGHIJ", "lamp1"), opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	s.DropConnections()
	select {
	case <-reconnected:
		fmt.Println("reconnected:", conn.IsConnected())
	case <-ctx.Done():
		fmt.Println("no reconnect")
	}
	// Output:
	// reconnected: true
}
