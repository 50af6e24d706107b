package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestScenario runs the example against the in-process platform and checks what it printed.
func TestScenario(t *testing.T) {
	var out bytes.Buffer
	if err := emulated(context.Background(), &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("scenario failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"device: registered DYNPSK0001/sensor-1 over HTTPS (v2 API): psk credentials issued",
		"device: credentials saved to sensor-1.json (mode -rw-------)",
		"device: connected over MQTT/TLS with the loaded psk credentials",
		"platform: DYNPSK0001/sensor-1 online: true",
		"device: second registration refused: UnauthorizedOperation.DeviceHasActivated",
		"device: registered DYNCERT001/meter-1 over HTTPS (legacy API): cert credentials issued",
		"device: connected over MQTT/TLS with the loaded cert credentials",
		"device: second registration refused: 1006",
		"done",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
