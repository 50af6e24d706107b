package explorertest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// A platform listening on wildcard addresses (tplgen emulate shared on a LAN) hands each
// device download URLs on the address its own connection reached — here 127.0.0.2, which
// stands for a LAN address — and the firmware downloads from there.
func TestDeviceURLsOnWildcardListeners(t *testing.T) {
	s, err := NewServer(WithMQTTAddr("0.0.0.0:0"), WithHTTPAddr("0.0.0.0:0"), WithFirmwareAddr("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const pid = "URLPROD001"
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.BrokerURL(), "tcp://"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(dn, host string) *explorer.Conn {
		t.Helper()
		if _, err := s.AddDevice(pid, dn); err != nil {
			t.Fatal(err)
		}
		cfg := s.DeviceConfig(pid, dn)
		cfg.Broker = "tcp://" + net.JoinHostPort(host, port)
		c, err := explorer.Dial(ctx, cfg, explorer.WithPlainTCP())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// The platform pushes firmware to devices that reported their version.
		if err := c.Publish(ctx, "$ota/report/"+pid+"/"+dn, 1, []byte(`{"type":"report_version","report":{"version":"1.0.0"}}`)); err != nil {
			t.Fatal(err)
		}
		for ctx.Err() == nil {
			if v, ok := s.FirmwareVersion(pid, dn); ok && v == "1.0.0" && s.Online(pid, dn) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return c
	}
	dial("far", "127.0.0.2")
	dial("near", "127.0.0.1")
	if _, err := s.UploadFirmware(pid, "2.0.0", strings.NewReader("image-bytes")); err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]string{"far": "127.0.0.2", "near": "127.0.0.1"} {
		if err := s.PushUpdate(pid, dn, "2.0.0", WithPlainHTTPURL()); err != nil {
			t.Fatal(err)
		}
		job, _ := s.OTAJob(pid, dn)
		u, err := url.Parse(job.LastURL)
		if err != nil || u.Hostname() != want {
			t.Fatalf("%s: firmware URL %q, want host %s", dn, job.LastURL, want)
		}
		resp, err := http.Get(job.LastURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "image-bytes" {
			t.Fatalf("%s: download %d %q", dn, resp.StatusCode, body)
		}
		if base := s.res.urlBase(DeviceID{pid, dn}); !strings.HasPrefix(base, "http://"+want+":") {
			t.Errorf("%s: resource URL base %q, want host %s", dn, base, want)
		}
	}
}
