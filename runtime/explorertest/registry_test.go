package explorertest

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestAddDeviceValidation(t *testing.T) {
	s := coreServer(t)
	secret, err := s.AddDevice("PID0000001", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	if key, err := base64.StdEncoding.DecodeString(secret); err != nil || len(key) != 16 {
		t.Fatalf("generated secret %q: %d bytes, %v", secret, len(key), err)
	}
	if got, err := s.AddDevice("PID0000001", "dev2", WithSecret("ZmFrZS1wc2stMDEyMzQ1Ng==")); err != nil || got != "ZmFrZS1wc2stMDEyMzQ1Ng==" {
		t.Fatalf("WithSecret: %q, %v", got, err)
	}
	for _, c := range []struct {
		pid, dn string
		opts    []DeviceOption
		want    string
	}{
		{"PID0000001", "dev1", nil, "already exists"},
		{"PID000000", "1dev1", nil, "same client id"},
		{"", "x", nil, "product id is empty"},
		{"P", "", nil, "device name is empty"},
		{"P/1", "x", nil, "contains '/'"},
		{"P", "a;b", nil, "contains ';'"},
		{"P", "x", []DeviceOption{WithSecret("not base64!")}, "not non-empty standard base64"},
		{"P", "x", []DeviceOption{WithSecret("")}, "not non-empty standard base64"},
		{"P", "x", []DeviceOption{WithSecret("ZmFrZQ=="), WithCertificate()}, "exclusive"},
	} {
		_, err := s.AddDevice(c.pid, c.dn, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddDevice(%q, %q): %v, want %q", c.pid, c.dn, err, c.want)
		}
	}
	if err := func() error { _, err := s.AddDevice("P", "x", WithSecret("not base64!")); return err }(); strings.Contains(err.Error(), "not base64!") {
		t.Errorf("error leaks the secret: %v", err)
	}
}

func TestDevicesAndInfo(t *testing.T) {
	s := coreServer(t)
	for _, id := range []DeviceID{{"PB", "z"}, {"PA", "b"}, {"PA", "a"}} {
		if _, err := s.AddDevice(id.ProductID, id.DeviceName); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddDevice("PC", "cert", WithCertificate()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range s.Devices() {
		got = append(got, d.ID.String())
	}
	if strings.Join(got, ",") != "PA/a,PA/b,PB/z,PC/cert" {
		t.Fatalf("Devices order: %v", got)
	}
	inf, ok := s.Device("PC", "cert")
	if !ok || !inf.Certificate || inf.Online || !inf.ConnectedAt.IsZero() {
		t.Fatalf("Device: %+v %v", inf, ok)
	}
	if _, ok := s.Device("PC", "nope"); ok {
		t.Fatal("unknown device found")
	}
	if s.Online("PC", "nope") {
		t.Fatal("unknown device online")
	}
	if cfg := s.DeviceConfig("PC", "nope"); cfg.DeviceSecret != "" || cfg.Certificate != nil || cfg.Broker != s.TLSBrokerURL() {
		t.Fatalf("DeviceConfig unknown: %+v", cfg)
	}
	if secret, ok := s.deviceSecret(DeviceID{"PA", "a"}); !ok || secret == "" {
		t.Fatal("deviceSecret of a key device")
	}
	if _, ok := s.deviceSecret(DeviceID{"PC", "cert"}); ok {
		t.Fatal("deviceSecret of a certificate device")
	}
}
