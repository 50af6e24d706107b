package httppub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/httppub"
	"github.com/tplgen/tplgen/runtime/template"
)

const pid = "HTTPPUB001"

const tplJSON = `{"version":"1.0","profile":{"ProductId":"HTTPPUB001","CategoryId":"1"},
"properties":[{"id":"power_switch","name":"power","desc":"","required":true,"mode":"rw",
"define":{"type":"bool","mapping":{"0":"off","1":"on"}}}],"events":[],"actions":[]}`

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func platform(t *testing.T) *explorertest.Server {
	t.Helper()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tpl, err := template.Parse("tpl.json", []byte(tplJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddProduct(tpl); err != nil {
		t.Fatal(err)
	}
	return srv
}

func client(t *testing.T, srv *explorertest.Server, cfg explorer.Config, opts ...httppub.Option) *httppub.Client {
	t.Helper()
	opts = append([]httppub.Option{httppub.WithEndpoint(srv.HTTPSURL()), httppub.WithRootCAs(srv.RootCAs())}, opts...)
	c, err := httppub.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func apiCode(err error) string {
	var ae *httppub.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// A report published over HTTPS updates the reported state like one over MQTT, for key and
// certificate devices.
func TestReportOverHTTPUpdatesReportedState(t *testing.T) {
	srv := platform(t)
	ctx := testCtx(t)
	srv.AddDevice(pid, "key1")
	srv.AddDevice(pid, "cert1", explorertest.WithCertificate())
	for _, dn := range []string{"key1", "cert1"} {
		c := client(t, srv, srv.DeviceConfig(pid, dn))
		id, err := c.Publish(ctx, "$thing/up/property/"+pid+"/"+dn, 1, []byte(`{"method":"report","clientToken":"h-1","params":{"power_switch":1}}`))
		if err != nil {
			t.Fatalf("%s: %v", dn, err)
		}
		if id == "" {
			t.Fatalf("%s: empty RequestId", dn)
		}
		v, err := srv.WaitReported(ctx, pid, dn, "power_switch")
		if err != nil || string(v) != "1" {
			t.Fatalf("%s: reported %s, %v", dn, v, err)
		}
	}
}

// A binary payload on a custom topic reaches the device's own MQTT subscription unchanged.
func TestBinaryPayloadReachesMQTTSubscriber(t *testing.T) {
	srv := platform(t)
	ctx := testCtx(t)
	srv.AddDevice(pid, "dev1")
	conn, err := explorer.Dial(ctx, srv.DeviceConfig(pid, "dev1"), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan []byte, 1)
	topic := pid + "/dev1/data"
	if err := conn.Subscribe(ctx, topic, 0, func(_ context.Context, m explorer.Message) { got <- m.Payload }); err != nil {
		t.Fatal(err)
	}
	bin := []byte{0x00, 0xff, 0x10, 0x80}
	if _, err := client(t, srv, srv.DeviceConfig(pid, "dev1")).Publish(ctx, topic, 0, bin); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if string(p) != string(bin) {
			t.Fatalf("got %x, want %x", p, bin)
		}
	case <-ctx.Done():
		t.Fatal("not received")
	}
}

func TestRefusalsHaveClearCodes(t *testing.T) {
	srv := platform(t)
	ctx := testCtx(t)
	srv.AddDevice(pid, "dev1")
	srv.AddDevice(pid, "dev2")
	good := srv.DeviceConfig(pid, "dev1")

	bad := good
	bad.DeviceSecret = "d3JvbmdzZWNyZXR3cm9uZw=="
	_, err := client(t, srv, bad).Publish(ctx, "$thing/up/property/"+pid+"/dev1", 0, []byte(`{}`))
	if apiCode(err) != explorertest.GWSignature {
		t.Errorf("bad secret: %v", err)
	}
	late := client(t, srv, good, httppub.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	if _, err := late.Publish(ctx, "$thing/up/property/"+pid+"/dev1", 0, []byte(`{}`)); apiCode(err) != explorertest.GWExpired {
		t.Errorf("clock an hour late: %v", err)
	}
	c := client(t, srv, good)
	if _, err := c.Publish(ctx, "$thing/up/property/"+pid+"/dev2", 0, []byte(`{}`)); apiCode(err) != explorertest.GWTopicNotAllowed || !strings.Contains(err.Error(), "dev2") {
		t.Errorf("another device's topic: %v", err)
	}
	if _, err := c.Publish(ctx, "$thing/down/property/"+pid+"/dev1", 0, []byte(`{}`)); apiCode(err) != explorertest.GWTopicNotAllowed {
		t.Errorf("down topic: %v", err)
	}
	ghost := good
	ghost.DeviceName = "ghost"
	if _, err := client(t, srv, ghost).Publish(ctx, pid+"/ghost/x", 0, []byte(`{}`)); apiCode(err) != explorertest.GWDeviceNotExist {
		t.Errorf("unknown device: %v", err)
	}
	if _, err := c.Publish(ctx, pid+"/dev1/x", 0, make([]byte, explorer.MaxPayloadSize+1)); !errors.Is(err, httppub.ErrInvalid) {
		t.Errorf("oversize caught locally: %v", err)
	}
	if _, err := c.Publish(ctx, pid+"/dev1/+", 0, nil); !errors.Is(err, httppub.ErrInvalid) {
		t.Errorf("wildcard: %v", err)
	}
	if _, err := httppub.New(good, httppub.WithEndpoint(srv.HTTPURL())); !errors.Is(err, httppub.ErrInvalid) {
		t.Errorf("plain http without WithInsecureHTTP: %v", err)
	}
	plain, err := httppub.New(good, httppub.WithEndpoint(srv.HTTPURL()), httppub.WithInsecureHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Publish(ctx, pid+"/dev1/x", 0, []byte("ok")); err != nil {
		t.Errorf("plain http allowed: %v", err)
	}
}
