package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

func TestDiffFiles(t *testing.T) {
	// light.json -> c_sdk_example.json: the C SDK sample dropped the action and added others.
	code, out, errOut := tplgen(t, "diff", "../../schemas/light.json", "../../schemas/c_sdk_example.json")
	if code != exitFail || errOut != "" {
		t.Fatalf("exit %d (want 1 for breaking), stderr %q", code, errOut)
	}
	want := `../../schemas/light.json:151:5: breaking: action "light_on": removed`
	if !strings.Contains(out, want+"\n") || !strings.HasSuffix(out, "1 breaking, 4 compatible\n") {
		t.Errorf("output:\n%s\nwant a line %q and the summary", out, want)
	}
	// The other way round only adds: exit 0.
	code, out, _ = tplgen(t, "diff", "../../schemas/c_sdk_example.json", "../../schemas/light.json", "--format", "json")
	if code != exitFail {
		t.Fatalf("c_sdk -> light removes position and power: exit %d, want 1\n%s", code, out)
	}
	var changes []struct {
		Kind      string
		Breaking  bool
		Path      string
		File      string
		Line, Col int
	}
	if err := json.Unmarshal([]byte(out), &changes); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	var removed []string
	for _, c := range changes {
		if c.Kind == "removed" {
			removed = append(removed, c.Path)
			if !c.Breaking || c.File != "../../schemas/c_sdk_example.json" || c.Line < 1 || c.Col < 1 {
				t.Errorf("removal badly reported: %+v", c)
			}
		}
	}
	if strings.Join(removed, " ") != "properties.position properties.power actions.light_blink" {
		t.Errorf("removed %q", removed)
	}

	if code, out, _ := tplgen(t, "diff", "../../schemas/light.json", "../../schemas/light.json"); code != exitOK || out != "no changes\n" {
		t.Errorf("same file: exit %d, %q", code, out)
	}
	if code, out, _ := tplgen(t, "diff", "--format=json", "../../schemas/light.json", "../../schemas/light.json"); code != exitOK || out != "[]\n" {
		t.Errorf("same file, json: exit %d, %q", code, out)
	}
	// Compatible only: exit 0.
	dir := t.TempDir()
	light, _ := os.ReadFile("../../schemas/light.json")
	wider := filepath.Join(dir, "wider.json")
	writeFile(t, wider, strings.Replace(string(light), `"max": "100"`, `"max": "1000"`, 1))
	if code, out, _ := tplgen(t, "diff", "../../schemas/light.json", wider); code != exitOK || !strings.Contains(out, "compatible: property \"brightness\": max raised from 100 to 1000") {
		t.Errorf("widening: exit %d\n%s", code, out)
	}
}

func TestDiffErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"diff", "../../schemas/light.json"}, exitUsage, "want OLD.json NEW.json"},
		{[]string{"diff", "a", "b", "c"}, exitUsage, "got 3 arguments"},
		{[]string{"diff", "--format", "yaml", "a", "b"}, exitUsage, `--format "yaml"`},
		{[]string{"diff", "--against", "HEAD", "a", "b"}, exitUsage, "exactly one NEW.json"},
		{[]string{"diff", "--against", "--x", "../../schemas/light.json"}, exitUsage, "cannot start with '-'"},
		{[]string{"diff", "testdata/bad.json", "../../schemas/light.json"}, exitFail, "testdata/bad.json:"},
		{[]string{"diff", "../../schemas/light.json", "testdata/missing.json"}, exitFail, "testdata/missing.json"},
	} {
		code, out, errOut := tplgen(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.args, code, tc.code, out, errOut, tc.want)
		}
	}
}

// TestDiffAgainstGit commits a template in a real repository, edits it, and diffs against
// revisions, with and without an explicit path.
func TestDiffAgainstGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	light, err := os.ReadFile("../../schemas/light.json")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repo, "tpl", "light.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(light))
	git("add", ".")
	git("commit", "-qm", "v1")
	writeFile(t, path, strings.Replace(string(light), `"mode": "rw"`, `"mode": "r"`, 1))

	code, out, errOut := tplgen(t, "diff", "--against", "HEAD", path)
	if code != exitFail || !strings.Contains(out, "mode narrowed from rw to r") {
		t.Fatalf("--against HEAD: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, path+":") {
		t.Errorf("change not located in the new file:\n%s", out)
	}
	// REV:PATH relative to the repository root, from inside the repository.
	t.Chdir(repo)
	code, out, errOut = tplgen(t, "diff", "tpl/light.json", "--against", "HEAD:tpl/light.json")
	if code != exitFail || !strings.Contains(out, "mode narrowed") {
		t.Errorf("--against HEAD:tpl/light.json: exit %d\n%s%s", code, out, errOut)
	}
	// A removal is located in the old file, named REV:PATH.
	writeFile(t, path, `{"version": "1.0", "properties": []}`)
	_, out, _ = tplgen(t, "diff", "--against", "HEAD", "tpl/light.json")
	if !strings.Contains(out, "HEAD:tpl/light.json:") || !strings.Contains(out, "removed") {
		t.Errorf("removals not located in HEAD:tpl/light.json:\n%s", out)
	}
	code, _, errOut = tplgen(t, "diff", "--against", "nosuchrev", "tpl/light.json")
	if code != exitFail || !strings.Contains(errOut, "git show nosuchrev:./light.json") {
		t.Errorf("unknown revision: exit %d, stderr %q", code, errOut)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
