package firmware

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveHost starts a Host on addr for s and closes it with the test.
func serveHost(t *testing.T, s *Store, addr string) *Host {
	t.Helper()
	h, err := s.Serve(addr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// pythonSDKHost is the host the official Python SDK derives from an update_firmware URL
// (hub/services/ota/ota.py, __ota_info_get): everything between the scheme and the LAST "/".
// The SDK sends it verbatim as the Host header.
func pythonSDKHost(u string) string {
	last := strings.LastIndex(u, "/")
	if strings.HasPrefix(u, "https://") {
		return u[len("https://"):last]
	}
	return u[len("http://"):last]
}

// pythonSDKGet performs the SDK's download request (ota.py, http_init) byte for byte as
// urllib sends it: the parsed host verbatim in the Host header (Go's client would cut it at
// "/"), Range "bytes=OFFSET-FILESIZE" (an end past the last byte), gzip/deflate accepted.
func pythonSDKGet(t *testing.T, rawURL string, offset, size int) (int, []byte) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(u.Hostname(), port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Python-urllib/3.11\r\n"+
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"+
		"Accept-Encoding: gzip, deflate\r\nRange: bytes=%d-%d\r\nConnection: close\r\n\r\n",
		u.RequestURI(), pythonSDKHost(rawURL), offset, size)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestURLParsedLikePythonSDK(t *testing.T) {
	s := newTestStore(t)
	h := serveHost(t, s, "127.0.0.1:0")
	data := payload(50_000)
	img, _ := s.Put("PRODUCT001", "1.0.1", bytes.NewReader(data))
	u := s.URL(h.URL(), img.ID, time.Now().Add(time.Hour))

	if got, want := pythonSDKHost(u), h.Addr(); got != want {
		t.Fatalf("the SDK would send Host %q, want the listener %q (URL %s)", got, want, u)
	}
	for _, offset := range []int{0, 12_345} {
		status, body := pythonSDKGet(t, u, offset, len(data))
		if status != http.StatusPartialContent || !bytes.Equal(body, data[offset:]) {
			t.Errorf("offset %d: status %d, %d bytes; want 206 and the image from the offset", offset, status, len(body))
		}
	}

	// The defect this shape fixes: with a multi-segment path the SDK sends
	// "127.0.0.1:port/ota/firmware" as the Host header and the server refuses it.
	old := newTestStore(t, WithPrefix("/ota/firmware/"))
	oh := serveHost(t, old, "127.0.0.1:0")
	img, _ = old.Put("PRODUCT001", "1.0.1", bytes.NewReader(data))
	oldURL := old.URL(oh.URL(), img.ID, time.Now().Add(time.Hour))
	if status, _ := pythonSDKGet(t, oldURL, 0, len(data)); status != http.StatusBadRequest {
		t.Errorf("multi-segment URL answered %d to the SDK's request; the test no longer reproduces the SDK", status)
	}
}

// listenDefaultPort binds a Host to port 80 of a random loopback address (127.x.y.z, all
// local on Linux), so parallel runs on one machine do not collide.
func listenDefaultPort(t *testing.T, s *Store) *Host {
	t.Helper()
	for range 20 {
		addr := fmt.Sprintf("127.%d.%d.%d:80", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
		h, err := s.Serve(addr, nil, nil)
		if err == nil {
			t.Cleanup(func() { h.Close() })
			return h
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			t.Fatalf("binding port 80 needs root or CAP_NET_BIND_SERVICE (CI runs as root): %v", err)
		}
	}
	t.Fatal("no free loopback address with port 80 after 20 tries")
	return nil
}

// cSDKGet downloads as the official C SDK does (sdk_src/utils/utils_httpc.c,
// utils_url_download.c): the host name is the text between "://" and the first "/"
// (":port" included), the connection always goes to port 80, the request line carries the
// rest of the URL, and the response must carry a Content-Length header (matched
// case-sensitively).
func cSDKGet(t *testing.T, rawURL string, offset, size int) (int, []byte) {
	t.Helper()
	rest := rawURL[strings.Index(rawURL, "://")+3:]
	slash := strings.IndexByte(rest, '/')
	host, path := rest[:slash], rest[slash:]
	if net.ParseIP(host) == nil {
		t.Fatalf("the C SDK would resolve %q as a host name and connect to port 80 (URL %s)", host, rawURL)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, "80"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%d-%d\r\n\r\n", path, host, offset, size)
	r := bufio.NewReader(conn)
	tp := textproto.NewReader(r)
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	code, _ := strconv.Atoi(strings.Fields(status)[1])
	var length = -1
	for {
		line, err := tp.ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			length, _ = strconv.Atoi(v)
		}
	}
	if length < 0 {
		t.Fatalf("response without a Content-Length header: the C SDK refuses it")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return code, body
}

func TestURLParsedLikeCSDKOnDefaultPort(t *testing.T) {
	s := newTestStore(t)
	h := listenDefaultPort(t, s)
	data := payload(30_000)
	img, _ := s.Put("PRODUCT001", "2.0.0", bytes.NewReader(data))
	u := s.URL(h.URL(), img.ID, time.Now().Add(time.Hour))
	pu, err := url.Parse(u)
	if err != nil || pu.Port() != "" {
		t.Fatalf("URL on the default port names it: %s (%v)", u, err)
	}
	for _, offset := range []int{0, 20_000} {
		code, body := cSDKGet(t, u, offset, len(data))
		if code != http.StatusPartialContent || !bytes.Equal(body, data[offset:]) {
			t.Errorf("offset %d: status %d, %d bytes", offset, code, len(body))
		}
	}
	// The Python SDK too: host without a port, Host header equal to it.
	if status, body := pythonSDKGet(t, u, 0, len(data)); status != http.StatusPartialContent || !bytes.Equal(body, data) {
		t.Errorf("Python SDK on port 80: status %d, %d bytes", status, len(body))
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct{ scheme, addr, want string }{
		{"http", "127.0.0.1:80", "http://127.0.0.1"},
		{"https", "127.0.0.1:443", "https://127.0.0.1"},
		{"http", "127.0.0.1:443", "http://127.0.0.1:443"},
		{"https", "127.0.0.1:80", "https://127.0.0.1:80"},
		{"http", "127.0.0.1:8081", "http://127.0.0.1:8081"},
		{"http", "0.0.0.0:80", "http://127.0.0.1"},
		{"http", ":8081", "http://127.0.0.1:8081"},
		{"http", "[::1]:80", "http://[::1]"},
		{"http", "[::1]:8080", "http://[::1]:8080"},
		{"http", "localhost:80", "http://localhost"},
	} {
		if got := BaseURL(tc.scheme, tc.addr); got != tc.want {
			t.Errorf("BaseURL(%q, %q) = %q, want %q", tc.scheme, tc.addr, got, tc.want)
		}
	}
}

func TestObjectNameIsOneSegment(t *testing.T) {
	s := newTestStore(t)
	h := serveHost(t, s, "127.0.0.1:0")
	data := payload(100)
	img, _ := s.Put("PRODUCT001", "v1/beta 2", bytes.NewReader(data))
	name := s.ObjectName(img.ID)
	if strings.Contains(name, "/") || !strings.HasPrefix(name, "PRODUCT001_") || !strings.HasSuffix(name, "_"+img.ID) {
		t.Fatalf("object name %q", name)
	}
	u := s.URL(h.URL(), img.ID, time.Now().Add(time.Hour))
	if got := pythonSDKHost(u); got != h.Addr() {
		t.Fatalf("a version with \"/\" adds a segment: SDK host %q (URL %s)", got, u)
	}
	if status, body := pythonSDKGet(t, u, 0, len(data)); status != http.StatusPartialContent || !bytes.Equal(body, data) {
		t.Errorf("status %d, %d bytes", status, len(body))
	}
}
