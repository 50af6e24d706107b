package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmulateAPITokenBeyondLoopback: an HTTP API bound beyond loopback without --api-token gets
// a generated token, printed once; /api/ refuses requests without it, the console page stays
// reachable, and the token works through tplgen ctl.
func TestEmulateAPITokenBeyondLoopback(t *testing.T) {
	p := startEmulator(t, "--mqtt", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--http", "0.0.0.0:0", "--https", "127.0.0.1:0",
		"--template", "../../schemas/light.json", "--device", lightPIDPersist+"/lamp")
	token := p.field("api-token")
	if len(token) != 32 || strings.Count(strings.Join(p.out, "\n"), token) != 1 {
		t.Fatalf("generated token %q not printed exactly once: %q", token, p.out)
	}
	base := p.field("http")
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.Contains(strings.Join(p.out, "\n"), "(listening on all interfaces)") {
		t.Fatalf("a wildcard listener is not shown with a usable address: %q", p.out)
	}
	body := api(t, "GET", base+"/api/devices", "", "", 401, nil)
	if !strings.Contains(body, "Authorization: Bearer") {
		t.Errorf("401 does not say what to send: %s", body)
	}
	api(t, "GET", base+"/api/devices", "wrong-token-123", "", 401, nil)
	api(t, "GET", base+"/api/devices", token, "", 200, nil)
	api(t, "GET", base+"/api/stream?access_token=nope", "", "", 401, nil)
	if page := api(t, "GET", base+"/", "", "", 200, nil); !strings.Contains(page, "<html") {
		t.Errorf("console page: %.200s", page)
	}
	p.logs.wait(t, "warning about the exposed API", func(l string) bool {
		return strings.Contains(l, "beyond loopback") && strings.Contains(l, "--http 0.0.0.0:0") && !strings.Contains(l, token)
	})
	if code, out, errOut := tplgen(t, "ctl", "devices", "--api", base, "--token", token); code != 0 || !strings.Contains(out, "lamp") {
		t.Errorf("ctl with the printed token: exit %d %q %q", code, out, errOut)
	}
	if code, _, errOut := tplgen(t, "ctl", "devices", "--api", base, "--token", ""); code != 1 || !strings.Contains(errOut, "401") && !strings.Contains(errOut, "token") {
		t.Errorf("ctl without the token: exit %d %q", code, errOut)
	}
	p.stop()
}

// TestEmulateAPITokenLoopback: on loopback the API is open unless --api-token is given; a given
// token is required and never printed.
func TestEmulateAPITokenLoopback(t *testing.T) {
	p := startEmulator(t, freeAddrs...)
	if got := p.field("api-token"); !strings.HasPrefix(got, "none") {
		t.Errorf("api-token line on loopback: %q", got)
	}
	api(t, "GET", p.field("http")+"/api/devices", "", "", 200, nil)
	p.stop()

	const token = "given-token-0123"
	p = startEmulator(t, append(append([]string(nil), freeAddrs...), "--api-token", token)...)
	if strings.Contains(strings.Join(p.out, "\n"), token) {
		t.Errorf("a given token was printed: %q", p.out)
	}
	base := p.field("http")
	api(t, "GET", base+"/api/devices", "", "", 401, nil)
	api(t, "GET", base+"/api/devices", token, "", 200, nil)
	p.stop()
}

// TestEmulateBusyPorts: every port that cannot be bound is named in one message, before
// anything starts (nothing printed on stdout), exit 1.
func TestEmulateBusyPorts(t *testing.T) {
	var held []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		held = append(held, ln.Addr().String())
	}
	code, stdout, stderr := runEmulatorToExit(t, "--mqtt", held[0], "--tls", "127.0.0.1:0", "--http", held[1], "--https", "127.0.0.1:0",
		"--device", lightPIDPersist+"/lamp")
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing printed", code, stdout)
	}
	for _, want := range []string{
		"cannot listen on 2 address(es); nothing was started",
		"--mqtt " + held[0] + ": port already in use",
		"--http " + held[1] + ": port already in use",
		"127.0.0.1:0 for any free port",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if n := strings.Count(stderr, "tplgen:"); n != 1 {
		t.Errorf("%d error messages, want one:\n%s", n, stderr)
	}
	// A malformed flag is reported (exit 2) even when ports are busy too: flags come first.
	code, _, stderr = runEmulatorToExit(t, "--mqtt", held[0], "--http", held[1], "--device", "P/d=!!")
	if code != 2 || !strings.Contains(stderr, "--device P/d=SECRET") || strings.Contains(stderr, "in use") {
		t.Errorf("bad flag with busy ports: exit %d %q", code, stderr)
	}
}

// TestEmulateLogsExplainRefusals captures the emulator's JSON log while devices get refused and
// checks each refusal is a record with device, topic, code and reason; debug adds bodies and
// no secret ever appears.
func TestEmulateLogsExplainRefusals(t *testing.T) {
	p := startEmulator(t, append(append([]string(nil), freeAddrs...), "--log-format", "json", "--log-level", "debug",
		"--template", "../../schemas/light.json", "--device", lightPIDPersist+"/lamp="+lampSecret, "--device", lightPIDPersist+"/other")...)
	broker, base := p.field("mqtt"), p.field("http")
	otherSecret := ""
	for i, l := range p.out {
		if l == "device "+lightPIDPersist+"/other" {
			otherSecret = field(t, p.out[i:i+5], "device_secret")
		}
	}
	lamp := lightPIDPersist + "/lamp"

	// Authentication failure: wrong secret.
	if _, err := dialDevice(t, broker, lightPIDPersist, "lamp", "d3Jvbmctc2VjcmV0"); err == nil {
		t.Fatal("a wrong secret connected")
	}
	p.logs.jsonRecord(t, "CONNECT refused", map[string]any{"device": lamp, "code": 4, "reason": "password signature does not match"})

	// A report the data template refuses: answered and logged with its code.
	d := connectDevice(t, broker, lightPIDPersist, "lamp", lampSecret)
	r := d.report("bad1", `{"brightness":1000}`)
	p.logs.jsonRecord(t, "rejected uplink", map[string]any{"device": lamp, "topic": "$thing/up/property/" + lamp,
		"code": r["code"], "reason": "brightness"})
	// Debug level shows the body of what the device sent and what the platform answered.
	p.logs.jsonRecord(t, "uplink", map[string]any{"level": "DEBUG", "device": lamp, "payload": `"brightness":1000`})
	p.logs.jsonRecord(t, "downlink", map[string]any{"level": "DEBUG", "device": lamp, "payload": `"clientToken":"bad1"`})

	// A control the device refuses: the reply code is logged.
	go func() {
		m := d.await(map[string]any{"method": "control"})
		d.publish("$thing/up/property/", fmt.Sprintf(`{"method":"control_reply","clientToken":%q,"code":5,"status":"busy"}`, m["clientToken"]))
	}()
	api(t, "POST", base+"/api/devices/"+lamp+"/control", "", `{"params":{"brightness":10}}`, 200, nil)
	p.logs.jsonRecord(t, "control_reply", map[string]any{"device": lamp, "code": 5, "status": "busy"})

	// Subscribing to another device's topic: SUBACK failure, logged.
	if tok := d.c.Subscribe("$thing/down/property/"+lightPIDPersist+"/other", 0, nil); !tok.WaitTimeout(emuWait) {
		t.Fatal("no SUBACK")
	}
	p.logs.jsonRecord(t, "SUBSCRIBE refused", map[string]any{"device": lamp, "topic": lightPIDPersist + "/other", "code": 128, "reason": "belongs to device"})

	// Publishing on another device's topic (ACL): the connection is closed, and the log says why.
	d = connectDevice(t, broker, lightPIDPersist, "lamp", lampSecret)
	if tok := d.c.Publish("$thing/up/property/"+lightPIDPersist+"/other", 0, false, `{}`); !tok.WaitTimeout(emuWait) {
		t.Fatal("publish did not complete")
	}
	d.waitLost()
	p.logs.jsonRecord(t, "PUBLISH refused", map[string]any{"device": lamp, "topic": "$thing/up/property/" + lightPIDPersist + "/other", "code": "disconnect", "reason": "belongs to device"})

	// An oversize payload.
	d = connectDevice(t, broker, lightPIDPersist, "lamp", lampSecret)
	big := `{"method":"report","clientToken":"big","params":{"name":"` + strings.Repeat("x", 17000) + `"}}`
	if tok := d.c.Publish("$thing/up/property/"+lamp, 0, false, big); !tok.WaitTimeout(emuWait) {
		t.Fatal("publish did not complete")
	}
	d.waitLost()
	p.logs.jsonRecord(t, "PUBLISH refused", map[string]any{"device": lamp, "topic": "$thing/up/property/" + lamp, "code": "disconnect", "reason": "exceeds the 16384-byte limit"})

	// A packet too large to read at all (beyond the payload limit plus the largest header).
	d = connectDevice(t, broker, lightPIDPersist, "lamp", lampSecret)
	p.logs.skip()
	if tok := d.c.Publish("$thing/up/property/"+lamp, 0, false, strings.Repeat("y", 40000)); !tok.WaitTimeout(emuWait) {
		t.Fatal("publish did not complete")
	}
	d.waitLost()
	p.logs.jsonRecord(t, "PUBLISH refused", map[string]any{"device": lamp, "code": "disconnect", "reason": "over the platform's 16384-byte limit"})

	// No secret of any device appears anywhere in the log.
	p.stop()
	log := p.logs.text()
	for _, secret := range []string{lampSecret, otherSecret, "d3Jvbmctc2VjcmV0"} {
		if secret != "" && strings.Contains(log, secret) {
			t.Errorf("a device secret appears in the log")
		}
	}
}

// TestEmulateAPITokenKeptWithData: with --data the generated token is written to
// DIR/api-token (mode 0600) and the next run on DIR uses it again; a file this tool did not
// write is refused naming it.
func TestEmulateAPITokenKeptWithData(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--mqtt", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--http", "0.0.0.0:0", "--https", "127.0.0.1:0", "--data", dir}
	p := startEmulator(t, args...)
	first := p.field("api-token")
	p.stop()
	path := filepath.Join(dir, "api-token")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	p = startEmulator(t, args...)
	if second := p.field("api-token"); second != first || !strings.Contains(strings.Join(p.out, "\n"), "earlier run") {
		t.Fatalf("second run's token %q, first %q: %q", second, first, p.out)
	}
	api(t, "GET", p.field("http")+"/api/devices", first, "", 200, nil)
	p.stop()

	if err := os.WriteFile(path, []byte("guessable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := tplgen(t, append([]string{"emulate"}, args...)...); code != 1 || !strings.Contains(errOut, path) || out != "" {
		t.Fatalf("foreign token file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
