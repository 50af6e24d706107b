package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary play the device process, as the example binary does.
func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "device" {
		os.Exit(runDevice())
	}
	os.Exit(m.Run())
}

// TestExample runs the whole example: update, real process restart, new version reported.
func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns device processes")
	}
	if err := runPlatform(); err != nil {
		t.Fatal(err)
	}
}
