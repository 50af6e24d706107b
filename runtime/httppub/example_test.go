package httppub_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/httppub"
)

// A device without MQTT publishes a message over signed HTTPS.
func ExampleClient_Publish() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	platform, _ := explorertest.NewServer()
	defer platform.Close()
	platform.AddDevice("EXAMPLEPID", "meter1")

	c, err := httppub.New(platform.DeviceConfig("EXAMPLEPID", "meter1"),
		httppub.WithEndpoint(platform.HTTPSURL()), // default: the platform's gateway
		httppub.WithRootCAs(platform.RootCAs()))   // default: the Tencent root CA
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.Publish(ctx, "EXAMPLEPID/meter1/readings", 1, []byte(`{"kwh":12.5}`))
	fmt.Println("published:", err == nil)

	// Another device's topic is refused with the gateway's error code.
	_, err = c.Publish(ctx, "EXAMPLEPID/meter2/readings", 1, []byte(`{}`))
	fmt.Println(err != nil)
	// Output:
	// published: true
	// true
}
