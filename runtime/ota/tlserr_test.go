package ota

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorertest"
)

// countingTLSServer serves data over HTTPS and counts TLS handshakes attempted by clients.
func countingTLSServer(t *testing.T, data []byte, cert *tls.Certificate) (*httptest.Server, *atomic.Int32) {
	var hellos atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "fw.bin", time.Time{}, bytes.NewReader(data))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		hellos.Add(1)
		return nil, nil
	}}
	if cert != nil {
		srv.TLS.Certificates = []tls.Certificate{*cert}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &hellos
}

func TestDownloadTLSFailuresAreFinalAndNamed(t *testing.T) {
	data := randomBytes(5000, 40)
	fwFor := func(url string) Firmware { return imageAt(url+"/fw.bin?sign=secret-sig", data) }
	untrusted, untrustedHellos := countingTLSServer(t, data, nil)
	// The httptest certificate is valid for 127.0.0.1 and example.com, not "localhost".
	pool := x509.NewCertPool()
	pool.AddCert(untrusted.Certificate())
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)

	for _, tc := range []struct {
		name   string
		url    string
		opts   []DownloadOption
		hellos *atomic.Int32
		want   []string // in the message
	}{
		{"unknown authority", untrusted.URL, nil, untrustedHellos, []string{"authority the device does not trust", "WithRootCAs"}},
		{"wrong host name", strings.Replace(untrusted.URL, "127.0.0.1", "localhost", 1), []DownloadOption{WithRootCAs(pool)}, nil,
			[]string{`not valid for "localhost"`, "host name"}},
		{"not a TLS server", strings.Replace(plain.URL, "http:", "https:", 1), nil, nil, []string{"does not speak TLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.hellos != nil {
				tc.hellos.Store(0)
			}
			dest := filepath.Join(t.TempDir(), "fw.bin")
			opts := append([]DownloadOption{fastRetry, WithRetries(5)}, tc.opts...)
			err := Download(testCtx(t), fwFor(tc.url), dest, opts...)
			if !errors.Is(err, ErrTLS) || errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want ErrTLS and not ErrTimeout", err)
			}
			if Code(err) != FailAuth {
				t.Errorf("Code = %d, want %d", Code(err), FailAuth)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret-sig") {
				t.Errorf("message leaks the URL signature: %v", err)
			}
			if tc.hellos != nil && tc.hellos.Load() != 1 {
				t.Errorf("%d TLS handshakes, want 1 (a trust failure must not be retried)", tc.hellos.Load())
			}
			assertNoState(t, dest)
		})
	}
}

// An expired server certificate is reported as such, pointing at the device's clock too.
func TestDownloadExpiredCertificateNamesTheClock(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.leaf(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	data := randomBytes(100, 41)
	srv, _ := countingTLSServer(t, data, &cert)
	fw := imageAt(srv.URL+"/fw.bin", data)
	err := Download(testCtx(t), fw, filepath.Join(t.TempDir(), "fw.bin"), WithRootCAs(ca.pool), fastRetry)
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("err = %v", err)
	}
}

// Through the Client, the platform sees −3 with the cause in result_msg, not "time_out".
func TestClientReportsTLSFailureWithCause(t *testing.T) {
	srv, conn := platform(t)
	srv.UploadFirmware(testPID, "2.0.0", bytes.NewReader(randomBytes(1000, 42)))
	srv.PushUpdate(testPID, testDN, "2.0.0")
	c, err := New(conn, WithDownloadOptions(fastRetry)) // no WithRootCAs: the test CA is not trusted
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	errc := make(chan error, 1)
	dir := t.TempDir()
	c.OnUpdate(func(ctx context.Context, fw Firmware) { errc <- c.Download(ctx, fw, filepath.Join(dir, "fw.bin")) })
	if err := c.ReportVersion(testCtx(t), "1.0.0"); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-errc:
	case <-testCtx(t).Done():
		t.Fatal("download never finished")
	}
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("err = %v", err)
	}
	st := waitJob(t, srv, func(s explorertest.OTAJobState) bool { return s.State == explorertest.OTAFail })
	if st.ResultCode != int(FailAuth) || !strings.Contains(st.ResultMsg, "does not trust") {
		t.Errorf("job = %+v", st)
	}
}

// imageAt describes data served at url as version 2.0.0.
func imageAt(url string, data []byte) Firmware {
	sum := md5.Sum(data)
	return Firmware{Version: "2.0.0", URL: url, MD5: hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ota test CA"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for 127.0.0.1 valid from notBefore to notAfter.
func (ca *testCA) leaf(t *testing.T, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: notBefore, NotAfter: notAfter, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
