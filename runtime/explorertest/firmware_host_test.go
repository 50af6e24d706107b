package explorertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
)

// The firmware download host can run on the default HTTP port (C SDK devices always download
// from port 80), and its URLs then do not name the port.
func TestFirmwareHostOnDefaultPort(t *testing.T) {
	var s *Server
	for range 20 {
		ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
		var err error
		s, err = NewServer(WithFirmwareAddr(ip + ":80"))
		if err == nil {
			t.Cleanup(func() { s.Close() })
			if got := s.FirmwareURL(); got != "http://"+ip {
				t.Fatalf("FirmwareURL = %q, want http://%s", got, ip)
			}
			break
		}
		if errors.Is(err, syscall.EACCES) {
			t.Fatalf("port 80 needs root (CI runs as root): %v", err)
		}
	}
	if s == nil {
		t.Fatal("no free loopback address with port 80")
	}
	if !strings.HasPrefix(s.FirmwareTLSURL(), "https://127.0.0.1:") {
		t.Errorf("FirmwareTLSURL = %q", s.FirmwareTLSURL())
	}
	if _, err := NewServer(WithFirmwareAddr("")); err == nil || !strings.Contains(err.Error(), "WithFirmwareAddr") {
		t.Errorf("empty address: %v", err)
	}
}
