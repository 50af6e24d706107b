package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// TestScenario runs the example against the in-process platform and checks what it printed.
func TestScenario(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r)
		out <- b.String()
	}()
	runErr := emulated(context.Background())
	os.Stdout = stdout
	w.Close()
	got := <-out
	if runErr != nil {
		t.Fatalf("scenario failed: %v\n%s", runErr, got)
	}
	for _, want := range []string{
		"bind    XP0E0OAIGZ/lamp-kitchen      ok",
		"online  AI81EB84AY/aircon-bedroom    ok",
		"AI81EB84AY/aircon-bedroom: report accepted",
		"lamp-hall: control received: brightness -> 80",
		"cloud: control_reply from XP0E0OAIGZ/lamp-hall: code 0",
		"describe: 3 sub-devices bound",
		"unbind  XP0E0OAIGZ/lamp-hall         ok",
		"done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
