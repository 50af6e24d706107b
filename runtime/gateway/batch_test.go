package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

func TestBatchesAreCutBySizeAndCount(t *testing.T) {
	bind := make([]wireDevice, 1500)
	online := make([]wireDevice, 1500)
	for i := range bind {
		dn := fmt.Sprintf("sub%04d", i)
		if i%7 == 0 {
			dn += "-with-a-much-longer-device-name" // entries of different sizes
		}
		bind[i] = wireDevice{ProductID: "SUBPROD001", DeviceName: dn, Signature: "Q2hlY2tUaGlzSXNOb3RBUmVhbFNpZ25hdHVyZTEyMzQ1Njc4OTA=",
			Random: 1234567890, Timestamp: 1765000000, SignMethod: "hmacsha256", AuthType: "psk"}
		online[i] = wireDevice{ProductID: "SUBPROD001", DeviceName: dn}
	}
	for _, tc := range []struct {
		op      string
		entries []wireDevice
		batch   int
	}{
		{opBind, bind, 500}, {opBind, bind, 50}, {opOnline, online, 500}, {opOnline, online, 1}, {opBind, bind[:1], 500},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.op, tc.batch), func(t *testing.T) {
			g := &Gateway{batch: tc.batch}
			reqs, err := g.batches(tc.op, tc.entries)
			if err != nil {
				t.Fatal(err)
			}
			var got []wireDevice
			for i, b := range reqs {
				if len(b) > maxRequestSize {
					t.Fatalf("request %d is %d bytes, limit %d", i, len(b), maxRequestSize)
				}
				var req struct {
					Type    string `json:"type"`
					Payload struct {
						Devices []wireDevice `json:"devices"`
					} `json:"payload"`
				}
				if err := json.Unmarshal(b, &req); err != nil {
					t.Fatalf("request %d is not JSON: %v\n%s", i, err, b)
				}
				if req.Type != tc.op || len(req.Payload.Devices) == 0 || len(req.Payload.Devices) > tc.batch {
					t.Fatalf("request %d: type %q with %d devices (cap %d)", i, req.Type, len(req.Payload.Devices), tc.batch)
				}
				// A request is cut only when it is full: by count, or because the next entry
				// would not fit.
				// The platform's answer repeats each device with its result.
				answer := append([]wireDevice(nil), req.Payload.Devices...)
				for j := range answer {
					answer[j] = wireDevice{ProductID: answer[j].ProductID, DeviceName: answer[j].DeviceName, Result: intPtr(-9999)}
				}
				ab, _ := json.Marshal(map[string]any{"type": tc.op, "payload": map[string]any{"devices": answer}})
				if len(ab) > maxReplySize {
					t.Fatalf("answer to request %d would be %d bytes, limit %d", i, len(ab), maxReplySize)
				}
				if i < len(reqs)-1 && len(req.Payload.Devices) < tc.batch {
					next := tc.entries[len(got)+len(req.Payload.Devices)]
					nb, _ := json.Marshal(next)
					if len(b)+1+len(nb) <= maxRequestSize && len(ab)+1+replyEntrySize(&next) <= maxReplySize {
						t.Errorf("request %d cut at %d bytes (answer %d) although the next entry fits", i, len(b), len(ab))
					}
				}
				got = append(got, req.Payload.Devices...)
			}
			if len(got) != len(tc.entries) {
				t.Fatalf("%d devices sent, want %d", len(got), len(tc.entries))
			}
			for i := range got {
				if got[i] != tc.entries[i] {
					t.Fatalf("device %d: got %+v, want %+v (order must be kept)", i, got[i], tc.entries[i])
				}
			}
			t.Logf("%d requests", len(reqs))
		})
	}
}

func TestBatchesRefuseAnEntryThatCannotFit(t *testing.T) {
	huge := make([]byte, maxRequestSize)
	for i := range huge {
		huge[i] = 'a'
	}
	g := &Gateway{batch: 50}
	_, err := g.batches(opOnline, []wireDevice{{ProductID: "P", DeviceName: string(huge)}})
	if err == nil || !strings.Contains(err.Error(), "does not fit a request of 16384 bytes") || len(err.Error()) > 300 {
		t.Fatalf("err = %.300v", err)
	}
}
