package explorertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// Benchmarks of the data-template feature. The baseline is the time service ($sys/operation),
// the cheapest request/reply the platform has: same broker, same uplink router, same Publish,
// almost no feature work. Results: docs/BENCHMARKS.md (data template: platform side).

func benchDevice(b *testing.B) (*Server, *thDevice) {
	s := newThingServer(b)
	d := thConnect(b, s, thLightPID, "lamp", addLight(b, s, "lamp"))
	d.subscribe("$sys/operation/result/" + thLightPID + "/lamp")
	return s, d
}

// BenchmarkRoundTripSysTime is the baseline: $sys/operation get time -> result.
func BenchmarkRoundTripSysTime(b *testing.B) {
	_, d := benchDevice(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.publish("$sys/operation/"+thLightPID+"/lamp", `{"type":"get","resource":["time"]}`)
		if m := d.next(); m.str("type") != "get" {
			b.Fatalf("unexpected %s", m.Raw)
		}
	}
}

// BenchmarkRoundTripReport: report (4 properties, validated, merged) -> report_reply.
func BenchmarkRoundTripReport(b *testing.B) {
	_, d := benchDevice(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.publish(d.topic("up", "property"), fmt.Sprintf(`{"method":"report","clientToken":"b-%d","params":{"power_switch":1,"color":2,"brightness":%d,"name":"desk"}}`, i, i%100))
		if m := d.next(); m.str("method") != "report_reply" {
			b.Fatalf("unexpected %s", m.Raw)
		}
	}
}

// BenchmarkRoundTripSendControl: SendControl -> control -> device's control_reply.
func BenchmarkRoundTripSendControl(b *testing.B) {
	s, d := benchDevice(b)
	d.serve(func(m thMsg) (string, string) {
		return d.topic("up", "property"), `{"method":"control_reply","clientToken":"` + m.str("clientToken") + `","code":0}`
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // bounded, never hit in practice
	defer cancel()
	params := json.RawMessage(`{"brightness":50}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.SendControl(ctx, thLightPID, "lamp", params); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleReport is the feature's own work for one report, without the network.
func BenchmarkHandleReport(b *testing.B) {
	tc := newThingCloud()
	tc.publish = func(string, []byte, byte) error { return nil }
	tc.products[thLightPID] = thLoadTemplate(b, "light.json")
	u := uplink{Device: DeviceID{thLightPID, "lamp"}, Topic: "$thing/up/property/" + thLightPID + "/lamp",
		Payload: []byte(`{"method":"report","clientToken":"b-1","params":{"power_switch":1,"color":2,"brightness":42,"name":"desk"}}`)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc.handleProperty(u)
	}
}
