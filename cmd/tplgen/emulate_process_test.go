package main

// Helpers for tests that run `tplgen emulate` as a real process (built once by builtTplgen) and
// talk to it over real TCP: MQTT devices (paho) and the HTTP API.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// emuProcess is a running `tplgen emulate` process.
type emuProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  []string // stdout up to and including the "serving" line
	logs *logTail // stderr, line by line
	// exited is closed when the process has ended; err is then its Wait result.
	exited chan struct{}
	err    error
}

// logTail collects a process's stderr lines and lets tests wait for one.
type logTail struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every line
	ended   bool
	base    int // wait looks at lines from here on (skip)
}

// skip makes later waits ignore the lines logged so far.
func (l *logTail) skip() {
	l.mu.Lock()
	l.base = len(l.lines)
	l.mu.Unlock()
}

func newLogTail() *logTail { return &logTail{changed: make(chan struct{})} }

func (l *logTail) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *logTail) end() {
	l.mu.Lock()
	l.ended = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *logTail) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// wait returns the first line (since the last skip) for which match holds, failing the test when
// none comes before the deadline or the stream ends.
func (l *logTail) wait(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(emuWait)
	l.mu.Lock()
	seen := l.base
	l.mu.Unlock()
	for {
		l.mu.Lock()
		lines, ch, ended := l.lines, l.changed, l.ended
		l.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen]
			}
		}
		if ended {
			t.Fatalf("no log line %s; log:\n%s", what, strings.Join(lines, "\n"))
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no log line %s within %v; log:\n%s", what, emuWait, strings.Join(lines, "\n"))
		}
	}
}

// jsonRecord waits for a JSON log record whose msg contains msg and whose attributes include
// every key/value of want (values compared as their fmt %v text, substrings for strings).
func (l *logTail) jsonRecord(t *testing.T, msg string, want map[string]any) map[string]any {
	t.Helper()
	var rec map[string]any
	l.wait(t, fmt.Sprintf("%q with %v", msg, want), func(line string) bool {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil {
			return false
		}
		if m, _ := r["msg"].(string); !strings.Contains(m, msg) {
			return false
		}
		for k, v := range want {
			got, ok := r[k]
			if !ok {
				return false
			}
			if s, isStr := v.(string); isStr {
				if !strings.Contains(fmt.Sprint(got), s) {
					return false
				}
			} else if fmt.Sprint(got) != fmt.Sprint(v) {
				return false
			}
		}
		rec = r
		return true
	})
	return rec
}

// emulatorEnv is the environment of the emulator processes: TPLGEN_API_TOKEN would change
// what they do, so it is left out unless a test sets it on purpose.
func emulatorEnv(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TPLGEN_API_TOKEN=") {
			env = append(env, e)
		}
	}
	return append(env, extra...)
}

// startEmulator starts `tplgen emulate args...` and waits for its "serving" line.
func startEmulator(t *testing.T, args ...string) *emuProcess {
	t.Helper()
	cmd := exec.Command(builtTplgen(t), append([]string{"emulate"}, args...)...)
	cmd.Env = emulatorEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &emuProcess{t: t, cmd: cmd, logs: newLogTail(), exited: make(chan struct{})}
	lines := make(chan string, 100)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.logs.add(sc.Text())
		}
		p.logs.end()
	}()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.After(emuWait)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				<-p.exited
				t.Fatalf("emulate ended before serving (%v): stdout %q\nstderr:\n%s", p.err, p.out, p.logs.text())
			}
			p.out = append(p.out, l)
			if strings.HasPrefix(l, "serving") {
				go func() { // keep draining stdout (shutdown message)
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			t.Fatalf("emulate printed no serving line within %v: %q\nstderr:\n%s", emuWait, p.out, p.logs.text())
		}
	}
}

// field is a value printed after "name:" (see field in emulate_test.go).
func (p *emuProcess) field(name string) string { return field(p.t, p.out, name) }

// kill sends SIGKILL: the process gets no chance to flush or close anything.
func (p *emuProcess) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.exited
}

// stop sends SIGTERM and expects a clean exit.
func (p *emuProcess) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Fatalf("emulate exited with %v after SIGTERM; stderr:\n%s", p.err, p.logs.text())
		}
	case <-time.After(emuWait):
		p.t.Fatal("emulate did not stop on SIGTERM")
	}
}

// runEmulatorToExit runs `tplgen emulate args...` expecting it to exit on its own (a refused
// command line or data directory) and returns its exit code and output.
func runEmulatorToExit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), emuWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, builtTplgen(t), append([]string{"emulate"}, args...)...)
	cmd.Env = emulatorEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("emulate %q did not exit within %v (it should refuse to start): stdout %q", args, emuWait, stdout.String())
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatal(err)
	}
	return -1, "", ""
}

// api calls the JSON API (token "" sends no Authorization) and decodes a JSON answer into out
// (when non-nil), failing unless the status is want.
func api(t *testing.T, method, url, token, body string, want int, out any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), emuWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return string(b)
}

// waitPersisted waits until the emulator has written every change reported so far (GET
// /api/platform: change feed empty and idle) and that no write failed.
func waitPersisted(t *testing.T, base, token string) {
	t.Helper()
	deadline := time.Now().Add(emuWait)
	for {
		var st struct {
			Changes struct {
				Queued  int  `json:"queued"`
				Busy    bool `json:"busy"`
				Dropped int  `json:"dropped"`
			} `json:"changes"`
			Data struct {
				Writes   int    `json:"writes"`
				Failures int    `json:"failures"`
				LastErr  string `json:"last_error"`
			} `json:"data"`
		}
		api(t, "GET", base+"/api/platform", token, "", 200, &st)
		if st.Data.Failures > 0 || st.Changes.Dropped > 0 {
			t.Fatalf("persistence: %+v", st)
		}
		if st.Changes.Queued == 0 && !st.Changes.Busy && st.Data.Writes > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes still queued after %v: %+v", emuWait, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mqttDevice is a device connected to the emulator like the official SDKs (MQTT 3.1.1,
// HMAC-SHA256 password), recording every message the platform sends it.
type mqttDevice struct {
	t        *testing.T
	pid, dn  string
	c        paho.Client
	msgs     chan paho.Message
	lost     chan error
	pending  []paho.Message
	pendingM sync.Mutex
}

// signPassword returns the username and password of a key device.
func signPassword(pid, dn, secret string) (string, string) {
	key, _ := base64.StdEncoding.DecodeString(secret)
	user := fmt.Sprintf("%s%s;12010126;abcde;%d", pid, dn, time.Now().Add(time.Hour).Unix())
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(user))
	return user, hex.EncodeToString(mac.Sum(nil)) + ";hmacsha256"
}

// dialDevice connects; the error is the broker's refusal, if any.
func dialDevice(t *testing.T, broker, pid, dn, secret string) (*mqttDevice, error) {
	t.Helper()
	d := &mqttDevice{t: t, pid: pid, dn: dn, msgs: make(chan paho.Message, 256), lost: make(chan error, 1)}
	user, pass := signPassword(pid, dn, secret)
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(pid + dn).
		SetUsername(user).SetPassword(pass).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(emuWait).
		SetConnectionLostHandler(func(_ paho.Client, err error) { d.lost <- err })
	d.c = paho.NewClient(opts)
	tok := d.c.Connect()
	if !tok.WaitTimeout(emuWait) {
		t.Fatalf("connect %s/%s: no CONNACK within %v", pid, dn, emuWait)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { d.c.Disconnect(0) })
	for _, kind := range []string{"$thing/down/property/", "$thing/down/event/", "$thing/down/action/", "$thing/down/service/", "$ota/update/"} {
		topic := kind + pid + "/" + dn
		if tok := d.c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { d.msgs <- m }); !tok.WaitTimeout(emuWait) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	return d, nil
}

func connectDevice(t *testing.T, broker, pid, dn, secret string) *mqttDevice {
	t.Helper()
	d, err := dialDevice(t, broker, pid, dn, secret)
	if err != nil {
		t.Fatalf("connect %s/%s: %v", pid, dn, err)
	}
	return d
}

func (d *mqttDevice) publish(kind, payload string) {
	d.t.Helper()
	topic := kind + d.pid + "/" + d.dn
	if tok := d.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(emuWait) || tok.Error() != nil {
		d.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// await returns the first message (received so far or later) whose JSON has all of want's
// members (values compared as fmt %v text).
func (d *mqttDevice) await(want map[string]any) map[string]any {
	d.t.Helper()
	match := func(m paho.Message) map[string]any {
		var v map[string]any
		if json.Unmarshal(m.Payload(), &v) != nil {
			return nil
		}
		for k, w := range want {
			if fmt.Sprint(v[k]) != fmt.Sprint(w) {
				return nil
			}
		}
		return v
	}
	d.pendingM.Lock()
	for i, m := range d.pending {
		if v := match(m); v != nil {
			d.pending = append(d.pending[:i], d.pending[i+1:]...)
			d.pendingM.Unlock()
			return v
		}
	}
	d.pendingM.Unlock()
	deadline := time.After(emuWait)
	for {
		select {
		case m := <-d.msgs:
			if v := match(m); v != nil {
				return v
			}
			d.pendingM.Lock()
			d.pending = append(d.pending, m)
			d.pendingM.Unlock()
		case <-deadline:
			d.t.Fatalf("%s/%s: no message with %v within %v (others: %d)", d.pid, d.dn, want, emuWait, len(d.pending))
		}
	}
}

// report sends a property report and returns the platform's report_reply.
func (d *mqttDevice) report(token, params string) map[string]any {
	d.t.Helper()
	d.publish("$thing/up/property/", fmt.Sprintf(`{"method":"report","clientToken":%q,"params":%s}`, token, params))
	return d.await(map[string]any{"method": "report_reply", "clientToken": token})
}

// waitLost waits until the platform closed the connection.
func (d *mqttDevice) waitLost() {
	d.t.Helper()
	select {
	case <-d.lost:
	case <-time.After(emuWait):
		d.t.Fatalf("%s/%s: the platform did not close the connection", d.pid, d.dn)
	}
}
