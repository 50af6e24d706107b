package gateway_test

import (
	"testing"

	"github.com/goccy/go-json"
)

// A describe_sub_devices the cloud pushes (nobody asked) is answered as the C SDK answers it
// (docs/PROTOCOL.md §5.2): a "change" message listing the sub-devices bound to this gateway.
func TestPushedDescribeIsAnsweredWithTheBindList(t *testing.T) {
	f := setup(t)
	ctx := testCtx(t)
	rs, err := f.gw.Bind(ctx, f.subs[0], f.subs[2])
	mustOK(t, "bind", rs, err)
	push := `{"type":"describe_sub_devices","payload":{"devices":[]}}`
	if err := f.srv.Publish("$gateway/operation/result/"+gwPID+"/gw1", []byte(push), 1); err != nil {
		t.Fatal(err)
	}
	raw, _, err := f.srv.WaitGatewayAck(ctx, gwPID, "gw1", "change", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ack struct {
		Type    string `json:"type"`
		Payload struct {
			Status  *int `json:"status"`
			Devices []struct {
				ProductID  string `json:"product_id"`
				DeviceName string `json:"device_name"`
			} `json:"devices"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(raw, &ack); err != nil {
		t.Fatal(err)
	}
	want := []string{f.subs[0].Device.String(), f.subs[2].Device.String()}
	if ack.Type != "change" || ack.Payload.Status != nil || len(ack.Payload.Devices) != len(want) {
		t.Fatalf("answer %s, want a change listing %v", raw, want)
	}
	for i, d := range ack.Payload.Devices {
		if got := d.ProductID + "/" + d.DeviceName; got != want[i] {
			t.Errorf("device %d = %s, want %s (answer %s)", i, got, want[i], raw)
		}
	}
	// A Describe the gateway asked for still gets the platform's answer.
	devs, err := f.gw.Describe(ctx)
	if err != nil || len(devs) != 2 {
		t.Fatalf("Describe = %v, %v", devs, err)
	}
}
