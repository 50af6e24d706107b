package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/generator"
	"github.com/tplgen/tplgen/runtime/template"
)

// TestScenario runs the example against the in-process platform and checks what it printed.
func TestScenario(t *testing.T) {
	var out bytes.Buffer
	if err := emulated(context.Background(), &out, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("scenario failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"device: report_info fw_ver=1.0.0 accepted",
		`device: report power_switch=false color=Red brightness=50 name="living room" accepted`,
		"device: report brightness=150 refused locally: thing: Report: params.brightness",
		"device: control applied: power_switch=true color=Blue brightness=80",
		`cloud: control_reply code 0 "success"`,
		"device: action light_on: is_on=false",
		`cloud: action_reply code 0 response {"err_code":0}`,
		`cloud: rrpc "state?" answered power_switch=false color=Blue brightness=80 name="living room"`,
		`cloud: event status_report type info params {"status":0,"message":"all good"}`,
		`device: get_status reported power_switch=false color=Blue brightness=80 name="living room"`,
		`cloud: device log INF control applied set="power_switch=true color=Blue brightness=80"`,
		"cloud: device log INF action light_on is_on=false",
		"done",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestGeneratedUpToDate: light/light_gen.go is what `go generate` produces from
// schemas/light.json with the current generator.
func TestGeneratedUpToDate(t *testing.T) {
	tpl, err := template.ParseFile("../../schemas/light.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := generator.Generate(tpl, generator.Options{Package: "light", Source: "../../schemas/light.json", Version: "devel"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("light/light_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("light/light_gen.go is stale: run `go generate ./examples/light`")
	}
}
