package explorertest

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// wsClient connects a plain paho client (as the official Python SDK uses paho) over a
// WebSocket URL with the platform's credentials.
func wsClient(t *testing.T, s *Server, url, pid, dn string, cert *tls.Certificate) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(pid + dn).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	user := explorer.Username(pid, dn, "12010126", "abcde", time.Now().Add(time.Hour).Unix())
	o.SetUsername(user)
	tc := &tls.Config{RootCAs: s.RootCAs()}
	secret := s.DeviceConfig(pid, dn).DeviceSecret
	if cert != nil || secret == "" {
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		o.SetPassword("any")
	} else {
		pw, err := explorer.Password(secret, user, explorer.HMACSHA256)
		if err != nil {
			t.Fatal(err)
		}
		o.SetPassword(pw)
	}
	o.SetTLSConfig(tc)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func TestWebSocketListeners(t *testing.T) {
	s, err := NewServer(WithWebSocketAddr("127.0.0.1:0"), WithWebSocketTLSAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.WebSocketURL() == "" || !strings.HasPrefix(s.WebSocketTLSURL(), "wss://127.0.0.1:") {
		t.Fatalf("urls %q %q", s.WebSocketURL(), s.WebSocketTLSURL())
	}
	s.AddDevice("WSPROD0001", "key1")
	s.AddDevice("WSPROD0001", "cert1", WithCertificate())
	certCfg := s.DeviceConfig("WSPROD0001", "cert1")

	for _, c := range []struct {
		name, url, dn string
		cert          *tls.Certificate
	}{
		{"ws key device", s.WebSocketURL(), "key1", nil},
		{"wss key device", s.WebSocketTLSURL(), "key1", nil},
		{"wss certificate device", s.WebSocketTLSURL(), "cert1", certCfg.Certificate},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := wsClient(t, s, c.url, "WSPROD0001", c.dn, c.cert)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Online("WSPROD0001", c.dn) {
				t.Fatal("not online")
			}
			// A round trip through the platform: the NTP request on $sys/operation.
			got := make(chan []byte, 1)
			cl.Subscribe("$sys/operation/result/WSPROD0001/"+c.dn, 0, func(_ paho.Client, m paho.Message) { got <- m.Payload() })
			time.Sleep(50 * time.Millisecond)
			cl.Publish("$sys/operation/WSPROD0001/"+c.dn, 0, false, `{"type":"get","resource":["time"]}`).Wait()
			select {
			case p := <-got:
				if !strings.Contains(string(p), `"ntptime1"`) {
					t.Fatalf("answer %s", p)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no $sys answer over the WebSocket")
			}
			cl.Disconnect(100)
			for i := 0; s.Online("WSPROD0001", c.dn); i++ {
				if i > 500 {
					t.Fatal("still online after disconnect")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	// A certificate device over plain ws has no certificate to show: refused.
	if _, err := wsClient(t, s, s.WebSocketURL(), "WSPROD0001", "cert1", nil); err == nil {
		t.Fatal("certificate device accepted over plain ws")
	}
	// A wrong password is refused like on TCP.
	o := paho.NewClientOptions().AddBroker(s.WebSocketURL()).SetClientID("WSPROD0001key1").SetUsername(explorer.Username("WSPROD0001", "key1", "12010126", "abcde", time.Now().Add(time.Hour).Unix())).SetPassword("00;hmacsha256").SetAutoReconnect(false)
	if tok := paho.NewClient(o).Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		t.Fatal("bad password accepted")
	}
	// DropConnections and Restart reach WebSocket clients too.
	cl, err := wsClient(t, s, s.WebSocketURL(), "WSPROD0001", "key1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.DropConnections()
	for i := 0; cl.IsConnectionOpen(); i++ {
		if i > 500 {
			t.Fatal("WebSocket client survived DropConnections")
		}
		time.Sleep(10 * time.Millisecond)
	}
	url := s.WebSocketURL()
	if err := s.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.WebSocketURL() != url {
		t.Fatalf("restart moved the listener: %s -> %s", url, s.WebSocketURL())
	}
	if _, err := wsClient(t, s, s.WebSocketURL(), "WSPROD0001", "key1", nil); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestWebSocketListenersOffByDefault(t *testing.T) {
	s := fieldServer(t)
	if s.WebSocketURL() != "" || s.WebSocketTLSURL() != "" {
		t.Fatalf("urls %q %q", s.WebSocketURL(), s.WebSocketTLSURL())
	}
}
