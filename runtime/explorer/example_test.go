package explorer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// The examples connect to explorertest, the in-process platform. Against the real platform
// leave Broker empty (Region picks the host) and omit the test options.

func ExampleDial() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.AddDevice("ABCDEFGHIJ", "light1"); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Real device: explorer.Config{ProductID: "...", DeviceName: "...", DeviceSecret: "..."}
	cfg := platform.DeviceConfig("ABCDEFGHIJ", "light1")
	conn, err := explorer.Dial(ctx, cfg, platform.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println(conn.ProductID(), conn.DeviceName(), conn.State())
	// Output: ABCDEFGHIJ light1 connected
}

func ExampleConn_Subscribe() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.AddDevice("ABCDEFGHIJ", "light1"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("ABCDEFGHIJ", "light1"), platform.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	got := make(chan explorer.Message, 1)
	err = conn.Subscribe(ctx, "ABCDEFGHIJ/light1/control", 1, func(ctx context.Context, m explorer.Message) {
		got <- m // handlers run off the network goroutine, one at a time per subscription
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := platform.Publish("ABCDEFGHIJ/light1/control", []byte(`{"on":true}`), 1); err != nil {
		log.Fatal(err)
	}
	m := <-got
	fmt.Printf("%s %s\n", m.Topic, m.Payload)
	// Output: ABCDEFGHIJ/light1/control {"on":true}
}

func ExampleConn_Publish() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.AddDevice("ABCDEFGHIJ", "light1"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("ABCDEFGHIJ", "light1"), platform.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	// QoS 1 returns once the platform's PUBACK arrives.
	err = conn.Publish(ctx, "ABCDEFGHIJ/light1/data", 1, []byte(`{"temperature":21.5}`))
	fmt.Println("published:", err)

	// Limits are checked before anything is sent.
	err = conn.Publish(ctx, "ABCDEFGHIJ/light1/+", 0, nil)
	fmt.Println(err)
	// Output:
	// published: <nil>
	// explorer: publish "ABCDEFGHIJ/light1/+": invalid topic: wildcard '+' is not allowed in a publish topic
}

func ExampleConn_OnConnect() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.AddDevice("ABCDEFGHIJ", "light1"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("ABCDEFGHIJ", "light1"), platform.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	// Re-sync after every reconnect; subscriptions are already restored when it runs.
	resynced := make(chan struct{}, 1)
	remove := conn.OnConnect(func(ctx context.Context) { resynced <- struct{}{} })
	defer remove()

	platform.DropConnections() // a network failure
	<-resynced
	fmt.Println("resynced, reconnects:", conn.Stats().Reconnects)
	// Output: resynced, reconnects: 1
}

func ExampleConn_ServerTime() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.AddDevice("ABCDEFGHIJ", "light1"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("ABCDEFGHIJ", "light1"), platform.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	now, err := conn.ServerTime(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("clock offset under a minute:", time.Since(now).Abs() < time.Minute)
	// Output: clock offset under a minute: true
}

// The username and password a device sends (docs/PROTOCOL.md §1.3-1.4), here for a
// conformance vector.
func ExamplePassword() {
	user := explorer.Username("Q51820J3QD", "light_001", explorer.SDKAppIDDoc, "aB3dE", 2147483647)
	pw, err := explorer.Password("lDZ6Uqt+I9E0wW7rvDUs7Q==", user, explorer.HMACSHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(user)
	fmt.Println(pw)
	// Output:
	// Q51820J3QDlight_001;12010126;aB3dE;2147483647
	// 3a494efadb8040ab7724e2a9b53cfd57d1276df71d29e6f965cdee7cb3e43f16;hmacsha256
}

// A device without a real-time clock (its clock says 1970) still logs in, and Conn.Now gives
// the platform's time once Dial returns.
func ExampleWithClock() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.AddDevice("ABCDEFGHIJ", "light1"); err != nil {
		log.Fatal(err)
	}
	boot := time.Now()
	deviceClock := func() time.Time { return time.Unix(0, 0).Add(time.Since(boot)) }

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := append(platform.DialOptions(), explorer.WithClock(deviceClock), explorer.WithConnectRetry())
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("ABCDEFGHIJ", "light1"), opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("device clock year:", deviceClock().Year())
	fmt.Println("corrected within a minute:", time.Until(conn.Now()).Abs() < time.Minute)
	// Output:
	// device clock year: 1970
	// corrected within a minute: true
}

// Enqueue hands a message over without waiting for the connection; Publish waits (bounded
// by its ctx) and withdraws the message if ctx ends first.
func ExampleConn_Enqueue() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.AddDevice("ABCDEFGHIJ", "light1"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("ABCDEFGHIJ", "light1"), platform.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	// Fire and forget: kept in the offline queue until the broker has it.
	if err := conn.Enqueue("ABCDEFGHIJ/light1/data", 1, []byte(`{"n":1}`)); err != nil {
		log.Fatal(err)
	}
	// Bounded: nil once the broker has it; ErrNotSent means it never left the device.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	err = conn.Publish(pctx, "ABCDEFGHIJ/light1/data", 1, []byte(`{"n":2}`))
	fmt.Println("published:", err == nil, "not sent:", errors.Is(err, explorer.ErrNotSent))
	// Output: published: true not sent: false
}

func ExampleWebSocketBroker() {
	cfg := explorer.Config{
		ProductID:    "ABCDEFGHIJ",
		DeviceName:   "light1",
		DeviceSecret: "ZmFrZS1wc2stMDEyMzQ1Ng==",
		Broker:       explorer.WebSocketBroker("ABCDEFGHIJ", true),
	}
	fmt.Println(cfg.Broker, cfg.Validate() == nil)
	// Output: wss://ABCDEFGHIJ.ap-guangzhou.iothub.tencentdevices.com:443/mqtt true
}
