package gateway

import (
	"testing"

	"github.com/goccy/go-json"
)

// FuzzDownlink feeds arbitrary payloads to the result-topic parser: it must never panic, and
// whatever it accepts as devices must carry the fields results are matched on.
func FuzzDownlink(f *testing.F) {
	for _, s := range []string{
		`{"type":"bind","payload":{"devices":[{"product_id":"SUBPROD001","device_name":"subdev1","result":0}]}}`,
		`{"type":"describe_sub_devices","payload":{"devices":[{"product_id":"P","device_name":"d"}]}}`,
		`{"type":"change","payload":{"status":1,"devices":[{"product_id":"P","device_name":"d"}]}}`,
		`{"type":"unbind_all"}`,
		`{"type":"search_devices","payload":{"status":0}}`,
		`{"type":"online","payload":{"devices":null}}`,
		`{"type":"online","payload":{"devices":{}}}`,
		`{"type":1}`,
		`{"":"010","cli\`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var msg downlink
		if err := json.Unmarshal(payload, &msg); err != nil {
			return
		}
		devs, err := decodeDevices(msg.Payload.Devices)
		if err != nil {
			return
		}
		for _, d := range devs {
			_ = Device{d.ProductID, d.DeviceName}.String()
		}
	})
}
