package explorertest

import (
	"crypto/tls"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/tplgen/tplgen/runtime/explorer"
)

func TestCheckPasswordVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/core_mqtt_password_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		MQTTPassword []struct {
			Source       string `json:"source"`
			DeviceSecret string `json:"device_secret"`
			Username     string `json:"username"`
			Password     string `json:"password"`
		} `json:"mqtt_password"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.MQTTPassword) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range v.MQTTPassword {
		if err := checkPassword(c.DeviceSecret, c.Username, c.Password); err != nil {
			t.Errorf("%s %s: %v", c.Source, c.Username, err)
		}
		// Upper-case hex is the same signature.
		i := strings.IndexByte(c.Password, ';')
		if err := checkPassword(c.DeviceSecret, c.Username, strings.ToUpper(c.Password[:i])+c.Password[i:]); err != nil {
			t.Errorf("upper-case hex: %v", err)
		}
		if err := checkPassword(c.DeviceSecret, c.Username+"x", c.Password); err == nil {
			t.Errorf("%s: signature accepted for another username", c.Username)
		}
	}
}

func TestCheckPasswordErrors(t *testing.T) {
	const secret = "ZmFrZS1wc2stMDEyMzQ1Ng=="
	for _, c := range []struct{ pass, want string }{
		{"", "missing"},
		{"abcdef", "is not {hex signature}"},
		{"abcdef;hmacmd5", `"hmacmd5" is not hmacsha256 or hmacsha1`},
		{"zz;hmacsha1", "not hexadecimal"},
		{"00;hmacsha256", "does not match"},
	} {
		err := checkPassword(secret, "u", c.pass)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("password %q: %v, want %q", c.pass, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error contains the secret: %v", err)
		}
	}
}

func TestAuthAccepts(t *testing.T) {
	s := coreServer(t)
	secret, err := s.AddDevice("PRODUCT001", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{RootCAs: s.RootCAs()}
	for _, c := range []struct {
		name     string
		appID    string
		expiry   int64
		method   explorer.SignMethod
		protocol uint
		tls      bool
	}{
		{"hmacsha256 12010126 seconds", sdkAppIDDoc, coreFuture(), explorer.HMACSHA256, 4, false},
		{"hmacsha1 21010406 seconds", sdkAppIDC, coreFuture(), explorer.HMACSHA1, 4, false},
		{"python: ms expiry, MQTT 3.1", sdkAppIDC, time.Now().UnixMilli(), explorer.HMACSHA1, 3, false},
		{"ms expiry an hour ago", sdkAppIDC, time.Now().Add(-time.Hour).UnixMilli(), explorer.HMACSHA1, 4, false},
		{"ms expiry in the future", sdkAppIDDoc, time.Now().Add(time.Hour).UnixMilli(), explorer.HMACSHA256, 4, false},
		{"C: LONG_MAX expiry", sdkAppIDC, math.MaxInt64, explorer.HMACSHA1, 4, false},
		{"java: 2147483647 over TLS", sdkAppIDDoc, 2147483647, explorer.HMACSHA256, 4, true},
		{"MQTT 3.1 over TLS", sdkAppIDDoc, coreFuture(), explorer.HMACSHA256, 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := coreSign(t, s, "PRODUCT001", "dev1", secret, c.appID, c.expiry, c.method)
			l.protocol = c.protocol
			if c.tls {
				l.broker, l.tls = s.TLSBrokerURL(), tlsCfg
			}
			cl := l.mustConnect(t)
			if !s.Online("PRODUCT001", "dev1") {
				t.Fatal("device not online after CONNACK")
			}
			cl.Disconnect(0)
		})
	}
	if inf, _ := s.Device("PRODUCT001", "dev1"); inf.Connects != 8 {
		t.Errorf("Connects = %d, want 8", inf.Connects)
	}
}

func TestAuthRefusals(t *testing.T) {
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := coreServer(t, WithClock(func() time.Time { return clock }))
	secret, err := s.AddDevice("PRODUCT001", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice("PRODUCT001", "dev2"); err != nil {
		t.Fatal(err)
	}
	future := clock.Add(time.Hour).Unix()
	good := func() coreLogin {
		return coreSign(t, s, "PRODUCT001", "dev1", secret, sdkAppIDDoc, future, explorer.HMACSHA256)
	}
	resign := func(l coreLogin) coreLogin {
		l.pass, _ = explorer.Password(secret, l.user, explorer.HMACSHA256)
		return l
	}
	otherSecret := "AAAAAAAAAAAAAAAAAAAAAA=="
	cases := []struct {
		name string
		mod  func(l coreLogin) coreLogin
		want error
	}{
		{"bad password", func(l coreLogin) coreLogin {
			l.pass, _ = explorer.Password(otherSecret, l.user, explorer.HMACSHA256)
			return l
		}, packets.ErrorRefusedBadUsernameOrPassword},
		{"no password", func(l coreLogin) coreLogin { l.pass = ""; return l }, packets.ErrorRefusedBadUsernameOrPassword},
		{"expired seconds", func(l coreLogin) coreLogin {
			l.user = explorer.Username("PRODUCT001", "dev1", sdkAppIDDoc, "abcde", clock.Add(-time.Second).Unix())
			return resign(l)
		}, packets.ErrorRefusedBadUsernameOrPassword},
		{"expired milliseconds", func(l coreLogin) coreLogin {
			l.user = explorer.Username("PRODUCT001", "dev1", sdkAppIDDoc, "abcde", clock.Add(-msExpiryGrace-time.Second).UnixMilli())
			return resign(l)
		}, packets.ErrorRefusedBadUsernameOrPassword},
		{"unknown device", func(l coreLogin) coreLogin {
			l.clientID = "PRODUCT001nobody"
			l.user = explorer.Username("PRODUCT001", "nobody", sdkAppIDDoc, "abcde", future)
			return resign(l)
		}, packets.ErrorRefusedBadUsernameOrPassword},
		{"client id of another device", func(l coreLogin) coreLogin { l.clientID = "PRODUCT001dev2"; return l }, packets.ErrorRefusedBadUsernameOrPassword},
		{"bad sdkappid", func(l coreLogin) coreLogin {
			l.user = explorer.Username("PRODUCT001", "dev1", "12345678", "abcde", future)
			return resign(l)
		}, packets.ErrorRefusedBadUsernameOrPassword},
		{"username with 3 fields", func(l coreLogin) coreLogin {
			l.user = "PRODUCT001dev1;12010126;abcde"
			return resign(l)
		}, packets.ErrorRefusedBadUsernameOrPassword},
		{"non-numeric expiry", func(l coreLogin) coreLogin {
			l.user = "PRODUCT001dev1;12010126;abcde;soon"
			return resign(l)
		}, packets.ErrorRefusedBadUsernameOrPassword},
		{"will message", func(l coreLogin) coreLogin { l.will = true; return l }, packets.ErrorRefusedNotAuthorised},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, proto := range []uint{3, 4} {
				l := c.mod(good())
				l.protocol = proto
				_, err := l.connect(t)
				if !errors.Is(err, c.want) {
					t.Fatalf("MQTT level %d: connect error %v, want %v", proto, err, c.want)
				}
			}
		})
	}
	if s.Online("PRODUCT001", "dev1") {
		t.Fatal("device online after refused logins")
	}
	// The good login still works.
	good().mustConnect(t)
}

func TestAuthCertificateDevice(t *testing.T) {
	s := coreServer(t)
	secret, err := s.AddDevice("PRODUCT002", "cert1", WithCertificate())
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		t.Fatalf("certificate device got a secret")
	}
	cfg := s.DeviceConfig("PRODUCT002", "cert1")
	if cfg.Certificate == nil || cfg.DeviceSecret != "" {
		t.Fatalf("DeviceConfig of a certificate device: %+v", cfg)
	}
	login := func(cert *tls.Certificate) coreLogin {
		return coreLogin{
			broker:   s.TLSBrokerURL(),
			clientID: "PRODUCT002cert1",
			user:     explorer.Username("PRODUCT002", "cert1", sdkAppIDDoc, "abcde", coreFuture()),
			pass:     "anything",
			protocol: 4,
			tls:      &tls.Config{RootCAs: s.RootCAs(), Certificates: []tls.Certificate{*cert}},
		}
	}
	c := login(cfg.Certificate).mustConnect(t)
	c.Disconnect(0)

	t.Run("no password needed", func(t *testing.T) {
		l := login(cfg.Certificate)
		l.pass = ""
		l.mustConnect(t).Disconnect(0)
	})
	t.Run("plain TCP refused", func(t *testing.T) {
		l := login(cfg.Certificate)
		l.broker, l.tls = s.BrokerURL(), nil
		if _, err := l.connect(t); !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
			t.Fatalf("connect: %v", err)
		}
	})
	t.Run("TLS without client certificate refused", func(t *testing.T) {
		l := login(cfg.Certificate)
		l.tls = &tls.Config{RootCAs: s.RootCAs()}
		if _, err := l.connect(t); !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
			t.Fatalf("connect: %v", err)
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		other := coreServer(t)
		if _, err := other.AddDevice("PRODUCT002", "cert1", WithCertificate()); err != nil {
			t.Fatal(err)
		}
		foreign := other.DeviceConfig("PRODUCT002", "cert1").Certificate
		if _, err := login(foreign).connect(t); err == nil {
			t.Fatal("certificate from a foreign CA accepted")
		}
	})
	t.Run("another device's certificate", func(t *testing.T) {
		if _, err := s.AddDevice("PRODUCT002", "cert2", WithCertificate()); err != nil {
			t.Fatal(err)
		}
		if _, err := login(s.DeviceConfig("PRODUCT002", "cert2").Certificate).connect(t); !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
			t.Fatalf("connect: %v", err)
		}
	})
	t.Run("reissued certificate replaces the old one", func(t *testing.T) {
		certPEM, keyPEM, err := s.IssueCertificate("PRODUCT002", "cert1")
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := login(cfg.Certificate).connect(t); !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
			t.Fatalf("old certificate: %v", err)
		}
		login(&fresh).mustConnect(t).Disconnect(0)
		if got := s.DeviceConfig("PRODUCT002", "cert1").Certificate; got == nil || string(got.Certificate[0]) != string(fresh.Certificate[0]) {
			t.Fatal("DeviceConfig does not hand out the reissued certificate")
		}
	})
	if _, _, err := s.IssueCertificate("PRODUCT002", "nobody"); err == nil || !strings.Contains(err.Error(), "no device") {
		t.Fatalf("IssueCertificate unknown: %v", err)
	}
	if _, err := s.AddDevice("PRODUCT002", "psk"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IssueCertificate("PRODUCT002", "psk"); err == nil || !strings.Contains(err.Error(), "not a certificate device") {
		t.Fatalf("IssueCertificate on key device: %v", err)
	}
}
