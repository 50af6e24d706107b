// Command rawclient is the baseline of the report round-trip benchmark (docs/BENCHMARKS.md,
// "Typed report round trip against raw paho"): a bare paho.mqtt.golang client doing by hand
// what the generated Device.Report does — marshal the report with the four property values
// of examples/light, publish it on $thing/up/property, match the report_reply by clientToken
// and check its code — with no validation against the template.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/bench/reportrt/internal/measure"
)

type params struct {
	PowerSwitch int    `json:"power_switch"`
	Color       int    `json:"color"`
	Brightness  int    `json:"brightness"`
	Name        string `json:"name"`
}

type report struct {
	Method      string `json:"method"`
	ClientToken string `json:"clientToken"`
	Timestamp   int64  `json:"timestamp"`
	Params      params `json:"params"`
}

type reply struct {
	Method      string `json:"method"`
	ClientToken string `json:"clientToken"`
	Code        int    `json:"code"`
	Status      string `json:"status"`
}

func main() {
	f := measure.Parse()
	up := "$thing/up/property/" + measure.ProductID + "/" + f.Device
	down := "$thing/down/property/" + measure.ProductID + "/" + f.Device
	var (
		mu      sync.Mutex
		waiters = map[string]chan int{}
		seq     atomic.Uint64
	)
	opts := mqtt.NewClientOptions().AddBroker(f.Broker).SetClientID(measure.ProductID + f.Device).SetOrderMatters(false)
	c := mqtt.NewClient(opts)
	if t := c.Connect(); t.Wait() && t.Error() != nil {
		fmt.Fprintln(os.Stderr, "rawclient:", t.Error())
		os.Exit(1)
	}
	sub := c.Subscribe(down, 0, func(_ mqtt.Client, m mqtt.Message) {
		var r reply
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		mu.Lock()
		ch := waiters[r.ClientToken]
		delete(waiters, r.ClientToken)
		mu.Unlock()
		if ch != nil {
			ch <- r.Code
		}
	})
	if sub.Wait() && sub.Error() != nil {
		fmt.Fprintln(os.Stderr, "rawclient:", sub.Error())
		os.Exit(1)
	}
	measure.Run("raw-paho", f, func() error {
		token := measure.ProductID + "-" + strconv.FormatUint(seq.Add(1), 10)
		payload, err := json.Marshal(report{Method: "report", ClientToken: token, Timestamp: time.Now().UnixMilli(),
			Params: params{PowerSwitch: 1, Color: 2, Brightness: 80, Name: "hall"}})
		if err != nil {
			return err
		}
		ch := make(chan int, 1)
		mu.Lock()
		waiters[token] = ch
		mu.Unlock()
		if t := c.Publish(up, 0, false, payload); t.Wait() && t.Error() != nil {
			return t.Error()
		}
		select {
		case code := <-ch:
			if code != 0 {
				return errors.New("report_reply code " + strconv.Itoa(code))
			}
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("no report_reply for " + token)
		}
	})
	c.Disconnect(0)
}
