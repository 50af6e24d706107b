package explorer_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

func TestConfigValidate(t *testing.T) {
	cert := &tls.Certificate{Certificate: [][]byte{{1}}, PrivateKey: struct{}{}}
	ok := explorer.Config{ProductID: testPID, DeviceName: testDN, DeviceSecret: testSecret}
	tests := []struct {
		name    string
		mutate  func(*explorer.Config)
		wantErr string // substring; "" = valid
	}{
		{"ok", func(*explorer.Config) {}, ""},
		{"ok-cert", func(c *explorer.Config) { c.DeviceSecret, c.Certificate = "", cert }, ""},
		{"ok-regions", func(c *explorer.Config) { c.Region = "ap-bangkok" }, ""},
		{"no-pid", func(c *explorer.Config) { c.ProductID = "" }, "ProductID is empty"},
		{"no-dn", func(c *explorer.Config) { c.DeviceName = "" }, "DeviceName is empty"},
		{"slash-dn", func(c *explorer.Config) { c.DeviceName = "a/b" }, `DeviceName "a/b" contains '/'`},
		{"both", func(c *explorer.Config) { c.Certificate = cert }, "both DeviceSecret and Certificate"},
		{"neither", func(c *explorer.Config) { c.DeviceSecret = "" }, "neither DeviceSecret nor Certificate"},
		{"bad-base64", func(c *explorer.Config) { c.DeviceSecret = "%%%" }, "DeviceSecret of ABCDEFGHIJ/dev1: not valid base64"},
		{"empty-cert", func(c *explorer.Config) { c.DeviceSecret, c.Certificate = "", &tls.Certificate{} }, "no certificate chain"},
		{"region", func(c *explorer.Config) { c.Region = "mars" }, `unknown Region "mars"`},
		{"broker-scheme", func(c *explorer.Config) { c.Broker = "http://x:1" }, `scheme "http"`},
		{"broker-nohost", func(c *explorer.Config) { c.Broker = "tls://" }, "not a URL"},
		{"broker-path", func(c *explorer.Config) { c.Broker = "tls://h:1/mqtt" }, "has a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, explorer.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrInvalidConfig containing %q", err, tt.wantErr)
			}
			if c.DeviceSecret != "" && strings.Contains(err.Error(), c.DeviceSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestConfigString(t *testing.T) {
	c := explorer.Config{ProductID: testPID, DeviceName: testDN, DeviceSecret: testSecret}
	if s := c.String(); strings.Contains(s, testSecret) || s != "ABCDEFGHIJ/dev1 (key device)" {
		t.Fatalf("String() = %q", s)
	}
	if c.ClientID() != "ABCDEFGHIJdev1" {
		t.Fatalf("ClientID() = %q", c.ClientID())
	}
}

// TestDialRejectsBadOptions: option errors come back before any network use.
func TestDialRejectsBadOptions(t *testing.T) {
	cfg := explorer.Config{ProductID: testPID, DeviceName: testDN, DeviceSecret: testSecret, Broker: "tcp://127.0.0.1:1"}
	tests := []struct {
		name string
		opt  explorer.Option
		want string
	}{
		{"keepalive-high", explorer.WithKeepAlive(901 * time.Second), "keep-alive 15m1s out of range"},
		{"keepalive-neg", explorer.WithKeepAlive(-time.Second), "out of range"},
		{"keepalive-frac", explorer.WithKeepAlive(1500 * time.Millisecond), "whole seconds"},
		{"backoff", explorer.WithReconnectBackoff(2*time.Second, time.Second), "want 0 < min <= max"},
		{"ack", explorer.WithAckTimeout(0), "ack timeout"},
		{"connect", explorer.WithConnectTimeout(-1), "connect timeout"},
		{"logger", explorer.WithLogger(nil), "nil logger"},
		{"queue", explorer.WithQueueSize(-1), "queue size"},
		{"conc", explorer.WithHandlerConcurrency(0), "handler concurrency"},
		{"backlog", explorer.WithHandlerBacklog(0), "handler backlog"},
		{"htimeout", explorer.WithHandlerTimeout(0), "handler timeout"},
		{"sign", explorer.WithSignMethod(5), "unknown sign method"},
		{"appid", explorer.WithSDKAppID("12a"), "not decimal digits"},
		{"expiry", explorer.WithSignatureExpiry(time.Millisecond), "signature expiry"},
		{"roots", explorer.WithRootCAs(nil), "nil root CA pool"},
		{"onconnect", explorer.WithOnConnect(nil), "nil OnConnect"},
		{"onlost", explorer.WithOnConnectionLost(nil), "nil OnConnectionLost"},
		{"nil", nil, "nil Option"},
		{"plain-tcp", explorer.WithKeepAlive(time.Second), "not encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := explorer.Dial(context.Background(), cfg, tt.opt)
			if !errors.Is(err, explorer.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig containing %q", err, tt.want)
			}
		})
	}
}
