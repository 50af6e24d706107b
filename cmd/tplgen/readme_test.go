package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// readmeBlock is one fenced block of README.md preceded by <!-- readme-test: ACTION -->.
type readmeBlock struct {
	action string // "run", "emulate" or "file PATH"
	body   string
	line   int
}

var readmeMarker = regexp.MustCompile(`^<!-- readme-test: (.+) -->$`)

// readmeBlocks extracts the marked blocks in file order.
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("%s:%d: marker not followed by a fenced block", path, i+1)
		}
		var body []string
		j := i + 2
		for ; j < len(lines) && lines[j] != "```"; j++ {
			body = append(body, lines[j])
		}
		out = append(out, readmeBlock{action: m[1], body: strings.Join(body, "\n") + "\n", line: i + 1})
		i = j
	}
	return out
}

// TestReadmeWorkflow does what README.md's install, generate and emulate sections say, in a
// fresh module outside this repository whose go.mod replaces github.com/tplgen/tplgen with
// this checkout. Deviations, all mechanical: the emulator listens on free ports (the README's
// 127.0.0.1:1883 is rewritten to the one it got), the template is copied from schemas/, and
// `go get -tool` resolves the replaced, unpublished module without asking a proxy.
func TestReadmeWorkflow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a fresh module with the go tool")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	checkout, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, filepath.Join(checkout, "README.md"))
	if len(blocks) < 5 {
		t.Fatalf("README.md has %d readme-test blocks, want the install, generate and emulate steps", len(blocks))
	}
	mod := t.TempDir()
	if err := os.MkdirAll(filepath.Join(mod, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	tpl, err := os.ReadFile(filepath.Join(checkout, "schemas", "light.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "templates", "light.json"), string(tpl))

	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GO111MODULE=on")
	var emu *readmeEmulator
	defer func() {
		if emu != nil {
			emu.stop(t)
		}
	}()
	sh := func(b readmeBlock, line string) string {
		t.Helper()
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = mod
		cmd.Env = env
		if strings.Contains(line, "go get -tool") {
			// The replaced module is not published; the go command still asks whether a
			// module github.com/tplgen/tplgen/cmd/tplgen exists, which some proxies answer
			// 403 instead of 404. The dependencies are in the module cache already (this
			// package was built from them).
			cmd.Env = append(cmd.Env, "GOPROXY=off")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README.md:%d: %s: %v\n%s", b.line, line, err, out)
		}
		return string(out)
	}
	var lastOut string
	for _, b := range blocks {
		switch {
		case b.action == "run":
			for _, line := range commandLines(b.body) {
				lastOut = sh(b, line)
				if strings.HasPrefix(line, "go mod init ") {
					sh(b, fmt.Sprintf("%s mod edit -replace github.com/tplgen/tplgen=%s -require github.com/tplgen/tplgen@v0.0.0-00010101000000-000000000000", goBin, checkout))
				}
			}
		case strings.HasPrefix(b.action, "file "):
			body := b.body
			if emu != nil {
				body = strings.ReplaceAll(body, "127.0.0.1:1883", emu.mqtt)
			}
			path := filepath.Join(mod, strings.TrimPrefix(b.action, "file "))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, body)
		case b.action == "emulate":
			lines := commandLines(b.body)
			if len(lines) != 1 {
				t.Fatalf("README.md:%d: want one emulate command, got %q", b.line, lines)
			}
			emu = startReadmeEmulator(t, mod, env, lines[0])
		default:
			t.Fatalf("README.md:%d: unknown readme-test action %q", b.line, b.action)
		}
	}
	if emu == nil {
		t.Fatal("README.md has no emulate step")
	}
	if !strings.Contains(lastOut, "reported brightness 42") {
		t.Errorf("the program did not report:\n%s", lastOut)
	}
	// What the README says curl shows.
	resp, err := http.Get(emu.http + "/api/devices/ZPHBLEB4J5/lamp1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Reported map[string]json.RawMessage `json:"reported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if got := string(doc.Reported["brightness"]); got != "42" {
		t.Errorf("emulator's reported brightness = %q, want 42 (%v)", got, doc.Reported)
	}
}

// commandLines drops comments and blank lines of a shell block.
func commandLines(body string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

type readmeEmulator struct {
	cmd        *exec.Cmd
	mqtt, http string // host:port, http://host:port
	done       chan error
}

// startReadmeEmulator runs the README's emulate command on free ports, in its own process
// group (go tool runs the tool as a child), and waits for its "serving" line.
func startReadmeEmulator(t *testing.T, dir string, env []string, line string) *readmeEmulator {
	t.Helper()
	line += " --mqtt 127.0.0.1:0 --tls 127.0.0.1:0 --http 127.0.0.1:0 --https 127.0.0.1:0"
	cmd := exec.Command("sh", "-c", "exec "+line)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &readmeEmulator{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		e.done <- cmd.Wait()
	}()
	timeout := time.After(2 * time.Minute) // the first go tool run compiles the tool
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("emulator exited before serving: %s", stderr.String())
			}
			if v, ok := strings.CutPrefix(l, "  mqtt:     tcp://"); ok {
				e.mqtt = v
			}
			if v, ok := strings.CutPrefix(l, "  http:     "); ok {
				e.http = v
			}
			if strings.HasPrefix(l, "serving") {
				if e.mqtt == "" || e.http == "" {
					t.Fatalf("emulator did not print its addresses")
				}
				go func() {
					for range lines {
					}
				}()
				return e
			}
		case <-timeout:
			e.stop(t)
			t.Fatalf("emulator not serving after 2 minutes: %s", stderr.String())
		}
	}
}

func (e *readmeEmulator) stop(t *testing.T) {
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case <-e.done:
	case <-ctx.Done():
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		t.Errorf("emulator did not stop on SIGTERM")
	}
}
