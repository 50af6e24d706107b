package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// emuTemplate is a trimmed copy of the official Python SDK sample's light template
// (tencentyun/iot-device-python explorer/sample/template/template_config.json).
const emuTemplate = `{"version":"1.0","profile":{"ProductId":"ZPHBLEB4J5","CategoryId":"3"},
"properties":[
 {"id":"power_switch","name":"switch","mode":"rw","define":{"type":"bool","mapping":{"0":"off","1":"on"}}},
 {"id":"brightness","name":"brightness","mode":"rw","define":{"type":"int","min":"0","max":"100","start":"1","step":"1","unit":"%"}}],
"events":[],
"actions":[{"id":"light_on","name":"on","input":[{"id":"is_on","name":"on","define":{"type":"bool","mapping":{"0":"off","1":"on"}}}],
 "output":[{"id":"err_code","name":"ret","define":{"type":"bool","mapping":{"0":"ok","1":"err"}}}]}]}`

const emuWait = 20 * time.Second

// emulateRun starts `tplgen emulate` in-process and returns its output lines as they come and
// the command's result.
func emulateRun(t *testing.T, args ...string) (<-chan string, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	done := make(chan error, 1)
	go func() {
		err := newApp(pw, &stderr).RunContext(context.Background(), append([]string{"tplgen", "emulate"}, args...))
		pw.Close()
		done <- err
	}()
	return lines, done
}

// readUntil collects output lines until one starts with prefix.
func readUntil(t *testing.T, lines <-chan string, done <-chan error, prefix string) []string {
	t.Helper()
	var got []string
	timeout := time.After(emuWait)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before %q: %q (result %v)", prefix, got, <-done)
			}
			got = append(got, l)
			if strings.HasPrefix(l, prefix) {
				return got
			}
		case <-timeout:
			t.Fatalf("no %q line within %v; got %q", prefix, emuWait, got)
		}
	}
}

// field returns the value printed after "name:" in the output.
func field(t *testing.T, out []string, name string) string {
	t.Helper()
	for _, l := range out {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == name {
			v = strings.TrimSpace(v)
			if i := strings.Index(v, " ("); i >= 0 {
				v = v[:i]
			}
			return v
		}
	}
	t.Fatalf("no %q in output %q", name, out)
	return ""
}

func TestEmulateServesUntilSIGTERM(t *testing.T) {
	t.Setenv("TPLGEN_API_TOKEN", "") // a token in the environment would guard the API
	dir := t.TempDir()
	tplFile := filepath.Join(dir, "light.json")
	if err := os.WriteFile(tplFile, []byte(emuTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	lines, done := emulateRun(t,
		"--mqtt", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0",
		"--template", tplFile, "--device", "ZPHBLEB4J5/lamp", "--device", "ZPHBLEB4J5/fixed=ZmFrZS1wc2stMDEyMzQ1Ng==",
		"--log-level", "warn")
	out := readUntil(t, lines, done, "serving")

	broker, httpURL, caFile := field(t, out, "mqtt"), field(t, out, "http"), field(t, out, "ca-file")
	for _, want := range []string{"mqtt-tls", "https", "device_secret", "client_id", "broker-tls"} {
		field(t, out, want)
	}
	if !strings.HasPrefix(broker, "tcp://127.0.0.1:") || strings.HasSuffix(broker, ":0") || !strings.HasPrefix(httpURL, "http://127.0.0.1:") {
		t.Fatalf("addresses not resolved: %q %q", broker, httpURL)
	}
	if pem, err := os.ReadFile(caFile); err != nil || !bytes.Contains(pem, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("CA file %s: %v", caFile, err)
	}
	joined := strings.Join(out, "\n")
	if !strings.Contains(joined, "device_secret: ZmFrZS1wc2stMDEyMzQ1Ng==") {
		t.Fatalf("given secret not printed:\n%s", joined)
	}
	var secret string
	for i, l := range out {
		if l == "device ZPHBLEB4J5/lamp" {
			secret = field(t, out[i:i+5], "device_secret")
		}
	}

	// A device configured like the official Python SDK (HMAC-SHA1, MQTT 3.1) with the printed
	// credentials connects and answers control sent through the JSON API.
	c := connectLikePythonSDK(t, broker, "ZPHBLEB4J5", "lamp", secret)
	ctl := make(chan paho.Message, 1)
	if tok := c.Subscribe("$thing/down/property/ZPHBLEB4J5/lamp", 0, func(_ paho.Client, m paho.Message) { ctl <- m }); !tok.WaitTimeout(emuWait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	go func() {
		m := <-ctl
		var tokenStart = strings.Index(string(m.Payload()), `"clientToken":"`) + len(`"clientToken":"`)
		token := string(m.Payload())[tokenStart:]
		token = token[:strings.IndexByte(token, '"')]
		c.Publish("$thing/up/property/ZPHBLEB4J5/lamp", 0, false, fmt.Sprintf(`{"code":0,"clientToken":%q,"status":"success"}`, token))
	}()
	body := httpDo(t, "POST", httpURL+"/api/devices/ZPHBLEB4J5/lamp/control", `{"params":{"brightness":40}}`, 200)
	if !strings.Contains(body, `"code":0`) || !strings.Contains(body, `"status":"success"`) {
		t.Fatalf("control via API: %s", body)
	}
	body = httpDo(t, "GET", httpURL+"/api/devices", "", 200)
	if !regexp.MustCompile(`^\[\{"product_id":"ZPHBLEB4J5","device_name":"fixed","online":false,"last_seen":0\},\{"product_id":"ZPHBLEB4J5","device_name":"lamp","online":true,"last_seen":[1-9][0-9]*\}\]\n$`).MatchString(body) {
		t.Fatalf("GET /api/devices = %s", body)
	}
	c.Disconnect(100)

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("emulate returned %v after SIGTERM", err)
		}
	case <-time.After(emuWait):
		t.Fatal("emulate did not stop on SIGTERM")
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if !strings.Contains(strings.Join(rest, "\n"), "shutting down") {
		t.Fatalf("no shutdown message: %q", rest)
	}
	if _, err := os.Stat(caFile); !os.IsNotExist(err) {
		t.Fatalf("temporary CA file left behind: %v", err)
	}
}

func connectLikePythonSDK(t *testing.T, broker, pid, dn, secret string) paho.Client {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		t.Fatalf("printed secret %q: %v", secret, err)
	}
	user := fmt.Sprintf("%s%s;21010406;G6j0u;%d", pid, dn, time.Now().Add(time.Hour).Unix())
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(user))
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(pid + dn).
		SetUsername(user).SetPassword(hex.EncodeToString(mac.Sum(nil)) + ";hmacsha1").
		SetProtocolVersion(3).SetAutoReconnect(false).SetConnectTimeout(emuWait)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(emuWait) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func httpDo(t *testing.T, method, url, body string, want int) string {
	t.Helper()
	return api(t, method, url, "", body, want, nil)
}

// TestEmulateBadUsage: every bad flag is refused before anything listens or is printed, with
// a message naming the flag and the fix; malformed values exit 2, unusable files exit 1.
func TestEmulateBadUsage(t *testing.T) {
	dir := t.TempDir()
	noPID := filepath.Join(dir, "nopid.json")
	if err := os.WriteFile(noPID, []byte(strings.Replace(emuTemplate, `"ProductId":"ZPHBLEB4J5",`, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "light.json")
	if err := os.WriteFile(good, []byte(emuTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(dir, "file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Every case also passes valid free addresses, so a failure cannot come from a busy port.
	free := []string{"--mqtt", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"}
	for _, c := range []struct {
		args     []string
		code     int
		mentions []string
	}{
		{[]string{"--device", "nodevice"}, 2, []string{"--device", "PID/DN"}},
		{[]string{"--device", "P/a/b"}, 2, []string{"--device", "PID/DN"}},
		{[]string{"--device", "P/a b"}, 2, []string{"--device P/a b", "device name"}},
		{[]string{"--device", "P1/d=not base64!"}, 2, []string{"--device P1/d=SECRET: SECRET must be base64, e.g. printf mysecret | base64"}},
		{[]string{"--device", "P1/d", "--device", "P1/d=bGFtcA=="}, 2, []string{"--device P1/d is given twice"}},
		{[]string{"--template", filepath.Join(dir, "missing.json")}, 1, []string{"--template", "missing.json"}},
		{[]string{"--template", noPID}, 1, []string{"--template", "ProductId", "PID=FILE"}},
		{[]string{"--template", good, "--template", "ZPHBLEB4J5=" + good}, 2, []string{"--template", "already defined"}},
		{[]string{"--dynreg", "=x"}, 2, []string{"--dynreg", "PID"}},
		{[]string{"--log-level", "loud"}, 2, []string{"--log-level", "debug, info, warn or error"}},
		{[]string{"--log-format", "xml"}, 2, []string{"--log-format", "text or json"}},
		{[]string{"--mqtt", "1883"}, 2, []string{"--mqtt", "HOST:PORT"}},
		{[]string{"--http", "127.0.0.1:http"}, 2, []string{"--http", "0 to 65535"}},
		{[]string{"--http", ""}, 2, []string{"--http", "empty address"}},
		{[]string{"--mqtt", "127.0.0.1:18830", "--http", "0.0.0.0:18830"}, 2, []string{"--mqtt 127.0.0.1:18830 and --http 0.0.0.0:18830 both want port 18830"}},
		{[]string{"--api-token", "short"}, 2, []string{"--api-token", "8 characters"}},
		{[]string{"--api-token", "has space in it"}, 2, []string{"--api-token", "printable ASCII"}},
		{[]string{"--data", ""}, 2, []string{"--data", "DIR"}},
		{[]string{"--data", aFile}, 1, []string{"--data " + aFile, "not a directory"}},
		{[]string{"--ca-file", filepath.Join(dir, "nodir", "ca.pem")}, 1, []string{"--ca-file", "does not exist"}},
		{[]string{"extra"}, 2, []string{"no arguments"}},
		{[]string{"--bogus"}, 2, []string{"bogus"}},
	} {
		var stdout, stderr bytes.Buffer
		args := append(append([]string{"tplgen", "emulate"}, free...), c.args...)
		code := run(args, &stdout, &stderr)
		ok := code == c.code && stdout.Len() == 0
		for _, m := range c.mentions {
			ok = ok && strings.Contains(stderr.String(), m)
		}
		if !ok {
			t.Errorf("emulate %q: exit %d, stdout %q, stderr %q; want exit %d, nothing on stdout, stderr mentioning %q", c.args, code, stdout.String(), stderr.String(), c.code, c.mentions)
		}
	}
	// PID=FILE names a product whose template has no ProductId.
	pid, tpl, err := loadTemplateSpec("OTHERPID01=" + noPID)
	if err != nil || pid != "OTHERPID01" || tpl == nil {
		t.Fatalf("loadTemplateSpec PID=FILE = %q, %v", pid, err)
	}
}

// TestEmulateDynreg registers a device with `tplgen register` against `tplgen emulate --dynreg`.
func TestEmulateDynreg(t *testing.T) {
	t.Setenv("TPLGEN_API_TOKEN", "")
	lines, done := emulateRun(t,
		"--mqtt", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0",
		"--dynreg", "DYNPROD001=emulatorProductSecret1", "--log-level", "warn")
	out := readUntil(t, lines, done, "serving")
	httpURL := field(t, out, "http")
	if got := field(t, out, "product_secret"); got != "emulatorProductSecret1" {
		t.Fatalf("product_secret = %q", got)
	}
	creds := filepath.Join(t.TempDir(), "creds.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"tplgen", "register", "--product", "DYNPROD001", "--product-secret", "emulatorProductSecret1",
		"--device", "newdev", "--endpoint", httpURL, "--insecure-http", "--out", creds}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("register exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	if fi, err := os.Stat(creds); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	body := httpDo(t, "GET", httpURL+"/api/devices", "", 200)
	if !strings.Contains(body, `"device_name":"newdev"`) {
		t.Fatalf("auto-created device not listed: %s", body)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("emulate returned %v", err)
		}
	case <-time.After(emuWait):
		t.Fatal("emulate did not stop on SIGTERM")
	}
	for range lines {
	}
}
