package explorertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/dynreg"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// drLogs collects server and client logs to check that no secret reaches them.
type drLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *drLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *drLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *drLogs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type drFixture struct {
	s    *explorertest.Server
	logs *drLogs
}

func drServer(t *testing.T, opts ...explorertest.Option) *drFixture {
	t.Helper()
	f := &drFixture{logs: &drLogs{}}
	s, err := explorertest.NewServer(append([]explorertest.Option{explorertest.WithLogger(f.logs.logger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// noSecrets fails if any of secrets appears in the collected logs or in extra texts.
func (f *drFixture) noSecrets(t *testing.T, secrets []string, extra ...string) {
	t.Helper()
	text := f.logs.String() + strings.Join(extra, "\n")
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("secret %q leaked into logs or errors", s)
		}
	}
}

func drCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// register runs the device-side client against the server's HTTPS (or HTTP) endpoint.
func (f *drFixture) register(t *testing.T, pid, secret, dn string, api dynreg.APIVersion, plain bool) (*dynreg.Credentials, error) {
	t.Helper()
	req := dynreg.Request{ProductID: pid, ProductSecret: secret, DeviceName: dn, Endpoint: f.s.HTTPSURL(), API: api}
	opts := []dynreg.Option{dynreg.WithRootCAs(f.s.RootCAs()), dynreg.WithLogger(f.logs.logger())}
	if plain {
		req.Endpoint = f.s.HTTPURL()
		opts = []dynreg.Option{dynreg.WithInsecureHTTP(), dynreg.WithLogger(f.logs.logger())}
	}
	return dynreg.Register(drCtx(t), req, opts...)
}

// dial connects with registered credentials, going through the credentials file like a device.
func (f *drFixture) dial(t *testing.T, c *dynreg.Credentials) (*explorer.Conn, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.json")
	if err := dynreg.SaveCredentials(path, c); err != nil {
		t.Fatal(err)
	}
	loaded, err := dynreg.LoadCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loaded.Config("", f.s.TLSBrokerURL())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := explorer.Dial(drCtx(t), cfg, append(f.s.DialOptions(), explorer.WithLogger(f.logs.logger()))...)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

func wantPlatformError(t *testing.T, err error, api dynreg.APIVersion, v2Code string, legacyCode int) {
	t.Helper()
	var pe *dynreg.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *dynreg.Error", err)
	}
	want := v2Code
	if api == dynreg.Legacy {
		want = strconv.Itoa(legacyCode)
	}
	if pe.Code != want || pe.API != api {
		t.Fatalf("error %+v, want code %s", *pe, want)
	}
}

var drAPIs = []dynreg.APIVersion{dynreg.V2, dynreg.Legacy}

func TestDynregEndToEnd(t *testing.T) {
	for _, api := range drAPIs {
		for _, cert := range []bool{false, true} {
			name := api.String() + "/psk"
			if cert {
				name = api.String() + "/cert"
			}
			t.Run(name, func(t *testing.T) {
				f := drServer(t)
				const pid = "DYNPROD001"
				secret, err := f.s.EnableDynamicRegistration(pid, explorertest.DynregConfig{AutoCreate: true, Certificate: cert})
				if err != nil {
					t.Fatal(err)
				}
				c, err := f.register(t, pid, secret, "sensor-1", api, false)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]string{false: "psk", true: "cert"}[cert]; c.Kind() != want {
					t.Fatalf("kind %s, want %s", c.Kind(), want)
				}
				inf, ok := f.s.Device(pid, "sensor-1")
				if !ok || inf.Certificate != cert || inf.Connects != 0 {
					t.Fatalf("registry after registration: %+v %v", inf, ok)
				}
				conn, err := f.dial(t, c)
				if err != nil {
					t.Fatal(err)
				}
				if !f.s.Online(pid, "sensor-1") {
					t.Fatal("device not online after Dial")
				}
				conn.Close()
				// Once it has connected, the device is activated: no second registration.
				_, err = f.register(t, pid, secret, "sensor-1", api, false)
				wantPlatformError(t, err, api, "UnauthorizedOperation.DeviceHasActivated", 1006)
				// Deleting it in the "console" allows registering again.
				if err := f.s.RemoveDevice(pid, "sensor-1"); err != nil {
					t.Fatal(err)
				}
				if _, err := f.register(t, pid, secret, "sensor-1", api, false); err != nil {
					t.Fatal(err)
				}
				f.noSecrets(t, []string{secret, c.DeviceSecret, string(c.KeyPEM)}, fmt.Sprint(c), fmt.Sprintf("%#v", c))
			})
		}
	}
}

func TestDynregPreCreatedDevices(t *testing.T) {
	for _, api := range drAPIs {
		t.Run(api.String(), func(t *testing.T) {
			f := drServer(t)
			pskSecret, err := f.s.EnableDynamicRegistration("PSKPROD001", explorertest.DynregConfig{ProductSecret: "ThisIsTheProductSecret42"})
			if err != nil || pskSecret != "ThisIsTheProductSecret42" {
				t.Fatalf("secret %q, %v", pskSecret, err)
			}
			devSecret, err := f.s.AddDevice("PSKPROD001", "known")
			if err != nil {
				t.Fatal(err)
			}
			// Without auto-create, only pre-created devices register, and get their own secret.
			_, err = f.register(t, "PSKPROD001", pskSecret, "unknown", api, false)
			wantPlatformError(t, err, api, "ResourceNotFound.DeviceNotExist", 1004)
			c, err := f.register(t, "PSKPROD001", pskSecret, "known", api, true) // over plain HTTP too
			if err != nil {
				t.Fatal(err)
			}
			if c.DeviceSecret != devSecret {
				t.Fatal("registration returned a different secret than AddDevice")
			}
			// Registration can be repeated while the device has never connected.
			if c2, err := f.register(t, "PSKPROD001", pskSecret, "known", api, false); err != nil || c2.DeviceSecret != devSecret {
				t.Fatalf("repeat registration: %v", err)
			}

			// A certificate re-issued by registration replaces the previous one.
			certSecret, err := f.s.EnableDynamicRegistration("CERTPROD01", explorertest.DynregConfig{Certificate: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.s.AddDevice("CERTPROD01", "meter", explorertest.WithCertificate()); err != nil {
				t.Fatal(err)
			}
			first, err := f.register(t, "CERTPROD01", certSecret, "meter", api, false)
			if err != nil {
				t.Fatal(err)
			}
			second, err := f.register(t, "CERTPROD01", certSecret, "meter", api, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.dial(t, first); err == nil {
				t.Fatal("superseded certificate still connects")
			}
			if _, err := f.dial(t, second); err != nil {
				t.Fatal(err)
			}
			f.noSecrets(t, []string{pskSecret, certSecret, devSecret, string(first.KeyPEM), string(second.KeyPEM)})
		})
	}
}

func TestDynregRejections(t *testing.T) {
	for _, api := range drAPIs {
		t.Run(api.String(), func(t *testing.T) {
			past := time.Now().Add(-time.Hour)
			f := drServer(t)
			secret, err := f.s.EnableDynamicRegistration("PROD000001", explorertest.DynregConfig{AutoCreate: true})
			if err != nil {
				t.Fatal(err)
			}
			var errs []string
			_, err = f.register(t, "NOPRODUCT1", secret, "d", api, false)
			wantPlatformError(t, err, api, "ResourceNotFound.ProductNotExist", 1003)
			errs = append(errs, err.Error())

			_, err = f.register(t, "PROD000001", "WrongSecretWrongSecret", "d", api, false)
			wantPlatformError(t, err, api, "AuthFailure.SignatureFailure", 1001)
			errs = append(errs, err.Error())

			// A device clock an hour behind is outside the ±300 s window.
			_, err = dynreg.Register(drCtx(t), dynreg.Request{ProductID: "PROD000001", ProductSecret: secret, DeviceName: "d", Endpoint: f.s.HTTPSURL(), API: api},
				dynreg.WithRootCAs(f.s.RootCAs()), dynreg.WithClock(func() time.Time { return past }))
			wantPlatformError(t, err, api, "AuthFailure.SignatureExpire", 1002)
			errs = append(errs, err.Error())

			if err := f.s.DisableDynamicRegistration("PROD000001"); err != nil {
				t.Fatal(err)
			}
			_, err = f.register(t, "PROD000001", secret, "d", api, false)
			wantPlatformError(t, err, api, "UnauthorizedOperation.DynamicRegisterDisabled", 1005)
			errs = append(errs, err.Error())

			// A PSK device of a product switched to certificates cannot be served.
			if _, err := f.s.EnableDynamicRegistration("PROD000001", explorertest.DynregConfig{ProductSecret: secret, Certificate: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.s.AddDevice("PROD000001", "pskdev"); err != nil {
				t.Fatal(err)
			}
			_, err = f.register(t, "PROD000001", secret, "pskdev", api, false)
			wantPlatformError(t, err, api, "InternalError", 1500)
			errs = append(errs, err.Error())

			f.noSecrets(t, []string{secret}, errs...)
			if _, ok := f.s.Device("PROD000001", "d"); ok {
				t.Fatal("rejected registrations created a device")
			}
		})
	}
}

// The platform's clock (WithClock) is the reference for the timestamp window.
func TestDynregPlatformClock(t *testing.T) {
	f := drServer(t, explorertest.WithClock(func() time.Time { return time.Unix(1700000000, 0) }))
	secret, err := f.s.EnableDynamicRegistration("PROD000001", explorertest.DynregConfig{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.register(t, "PROD000001", secret, "d", dynreg.V2, false)
	wantPlatformError(t, err, dynreg.V2, "AuthFailure.SignatureExpire", 0)
	_, err = dynreg.Register(drCtx(t), dynreg.Request{ProductID: "PROD000001", ProductSecret: secret, DeviceName: "d", Endpoint: f.s.HTTPSURL()},
		dynreg.WithRootCAs(f.s.RootCAs()), dynreg.WithClock(func() time.Time { return time.Unix(1700000100, 0) }))
	if err != nil {
		t.Fatal(err)
	}
}

func TestDynregConfigErrors(t *testing.T) {
	f := drServer(t)
	if _, err := f.s.EnableDynamicRegistration("BAD/PID", explorertest.DynregConfig{}); err == nil {
		t.Fatal("bad product id accepted")
	}
	if _, err := f.s.EnableDynamicRegistration("PROD000001", explorertest.DynregConfig{ProductSecret: "short"}); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("short secret: %v", err)
	}
	if err := f.s.DisableDynamicRegistration("NOPE000001"); err == nil {
		t.Fatal("disabling an unknown product succeeded")
	}
	s, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.EnableDynamicRegistration("PROD000001", explorertest.DynregConfig{}); !errors.Is(err, explorertest.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// A device that knows only its product's secret registers, stores its credentials and connects.
func ExampleServer_EnableDynamicRegistration() {
	s, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	productSecret, err := s.EnableDynamicRegistration("ABCDEFGHIJ", explorertest.DynregConfig{AutoCreate: true})
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := dynreg.Register(ctx, dynreg.Request{
		ProductID: "ABCDEFGHIJ", ProductSecret: productSecret, DeviceName: "lamp7",
		Endpoint: s.HTTPSURL(), // omit to use the real platform (Region)
	}, dynreg.WithRootCAs(s.RootCAs()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("issued:", creds.Kind())

	dir, err := os.MkdirTemp("", "dynreg-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "lamp7.json")
	if err := dynreg.SaveCredentials(path, creds); err != nil {
		log.Fatal(err)
	}
	loaded, err := dynreg.LoadCredentials(path)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := loaded.Config("", s.TLSBrokerURL())
	if err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, cfg, s.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("online:", s.Online("ABCDEFGHIJ", "lamp7"))
	// Output:
	// issued: psk
	// online: true
}
