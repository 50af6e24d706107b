package explorertest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// The app gets a token for the device, the device sends it in app_bind_token, and the platform
// binds the device to the token's user. Using the token again is refused with its own code.
func ExampleServer_IssueAppToken() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, tpl := lightPlatform()
	defer srv.Close()
	pid := tpl.ProductID

	tok, err := srv.IssueAppToken(pid, "lamp", "alice", 10*time.Minute)
	if err != nil {
		log.Fatal(err)
	}

	// The device side, by hand (runtime/thing wraps this exchange).
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(pid, "lamp"), srv.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	replies := make(chan []byte, 4)
	err = conn.Subscribe(ctx, "$thing/down/service/"+pid+"/lamp", 1, func(_ context.Context, m explorer.Message) {
		replies <- m.Payload
	})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 2 {
		msg, _ := json.Marshal(map[string]any{"method": "app_bind_token", "clientToken": fmt.Sprintf("lamp-%d", i), "params": map[string]string{"token": tok.Token}})
		if err := conn.Publish(ctx, "$thing/up/service/"+pid+"/lamp", 1, msg); err != nil {
			log.Fatal(err)
		}
		var rep struct {
			Method string `json:"method"`
			Code   int    `json:"code"`
		}
		select {
		case b := <-replies:
			_ = json.Unmarshal(b, &rep)
		case <-ctx.Done():
			log.Fatal("no reply")
		}
		fmt.Println(rep.Method, rep.Code)
	}
	b, _ := srv.Binding(pid, "lamp")
	fmt.Println("bound to", b.User)
	// Output:
	// app_bind_token_reply 0
	// app_bind_token_reply 409
	// bound to alice
}
