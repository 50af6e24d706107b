package rrpc_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/rrpc"
)

// A device answers the cloud's synchronous calls and receives the product's broadcasts.
func ExampleOnRRPC() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	platform, _ := explorertest.NewServer()
	defer platform.Close()
	platform.AddDevice("EXAMPLEPID", "dev1")
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("EXAMPLEPID", "dev1"), platform.DialOptions()...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	rrpc.OnRRPC(ctx, conn, func(ctx context.Context, payload []byte) ([]byte, error) {
		return []byte(strings.ToUpper(string(payload))), nil
	})
	got := make(chan string, 1)
	rrpc.OnBroadcast(ctx, conn, func(ctx context.Context, payload []byte) { got <- string(payload) })

	// The cloud side: POST /api/devices/EXAMPLEPID/dev1/rrpc does the same over HTTP.
	_, reply, err := platform.CallRRPC(ctx, "EXAMPLEPID", "dev1", []byte("open the door"), 4*time.Second)
	fmt.Printf("reply %q, err %v\n", reply, err)
	platform.Broadcast("EXAMPLEPID", []byte("firmware 1.2 is out"))
	fmt.Println("broadcast:", <-got)
	// Output:
	// reply "OPEN THE DOOR", err <nil>
	// broadcast: firmware 1.2 is out
}
