// Command responder is the platform side of the report round-trip benchmark
// (docs/BENCHMARKS.md, "Typed report round trip against raw paho"): connected to an MQTT
// broker with a plain paho client, it answers every data-template request on
// $thing/up/{kind}/{pid}/{dn} with its success reply on $thing/down/{kind}/{pid}/{dn}
// (clientToken echoed, code 0), as the platform does. It runs until killed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	json "github.com/goccy/go-json"
)

func main() {
	broker := flag.String("broker", "", "MQTT broker tcp://host:port")
	flag.Parse()
	opts := mqtt.NewClientOptions().AddBroker(*broker).SetClientID("bench-responder").SetOrderMatters(false)
	c := mqtt.NewClient(opts)
	if t := c.Connect(); t.Wait() && t.Error() != nil {
		fmt.Fprintln(os.Stderr, "responder:", t.Error())
		os.Exit(1)
	}
	tok := c.Subscribe("$thing/up/+/+/+", 0, func(c mqtt.Client, m mqtt.Message) {
		var req struct {
			Method      string `json:"method"`
			ClientToken string `json:"clientToken"`
		}
		if json.Unmarshal(m.Payload(), &req) != nil || req.ClientToken == "" {
			return
		}
		var b bytes.Buffer
		b.WriteString(`{"method":"`)
		b.WriteString(req.Method)
		b.WriteString(`_reply","clientToken":`)
		tokenJSON, _ := json.Marshal(req.ClientToken)
		b.Write(tokenJSON)
		b.WriteString(`,"code":0,"status":"success"`)
		if req.Method == "get_status" {
			b.WriteString(`,"data":{}`)
		}
		b.WriteString("}")
		down := strings.Replace(m.Topic(), "$thing/up/", "$thing/down/", 1)
		c.Publish(down, 0, false, b.Bytes())
	})
	if tok.Wait() && tok.Error() != nil {
		fmt.Fprintln(os.Stderr, "responder:", tok.Error())
		os.Exit(1)
	}
	fmt.Println("ready")
	select {}
}
