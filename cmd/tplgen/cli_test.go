package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	code, out, errOut := tplgen(t, "--version")
	_, want, _ := tplgen(t, "version")
	if code != exitOK || out != want || errOut != "" {
		t.Errorf("--version: exit %d, stdout %q (want %q), stderr %q", code, out, want, errOut)
	}
	if code, _, _ := tplgen(t, "version", "extra"); code != exitUsage {
		t.Errorf("version extra: exit %d, want %d", code, exitUsage)
	}
}

func TestUsageErrorsPrintedOnce(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"help", "frob"}, "No help topic for 'frob'"},
		{[]string{"--frob"}, "flag provided but not defined: -frob"},
		{[]string{"generate", "--frob", "x.json"}, "flag provided but not defined: -frob"},
		{[]string{"generate"}, "expected exactly one TEMPLATE.json argument, got 0"},
		{[]string{}, "no command given"},
		{[]string{"completion", "fish"}, `unknown shell "fish"`},
	} {
		code, out, errOut := tplgen(t, tc.args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", tc.args, code, exitUsage)
		}
		if n := strings.Count(errOut, tc.want); n != 1 {
			t.Errorf("%q: %q appears %d times in stderr:\n%s", tc.args, tc.want, n, errOut)
		}
		if strings.Contains(out+errOut, "Incorrect Usage") {
			t.Errorf("%q: urfave's own usage message leaked:\n%s%s", tc.args, out, errOut)
		}
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.go")
	if code, _, errOut := tplgen(t, "generate", "../../schemas/light.json", "--out", out, "-p", "lamp"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	src, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(src), "\npackage lamp\n") {
		t.Fatalf("output not written with the flags given after the template: %v\n%.200s", err, src)
	}
	// --flag=value, and a validate list with a flag-looking file name after "--".
	if code, _, errOut := tplgen(t, "generate", "../../schemas/light.json", "--package=lamp2", "--out="+out); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut := tplgen(t, "validate", "../../schemas/light.json", "--", "-missing.json")
	if code != exitFail || !strings.Contains(errOut, "-missing.json") {
		t.Errorf("validate -- -missing.json: exit %d, stderr %q", code, errOut)
	}
}

func TestIntersperse(t *testing.T) {
	app := newApp(nil, nil)
	for _, tc := range []struct{ in, want []string }{
		{[]string{"t", "generate", "a.json", "--out", "x.go"}, []string{"t", "generate", "--out", "x.go", "a.json"}},
		{[]string{"t", "generate", "a.json", "-o=x.go", "-p", "p"}, []string{"t", "generate", "-o=x.go", "-p", "p", "a.json"}},
		{[]string{"t", "validate", "a", "--", "-b"}, []string{"t", "validate", "--", "a", "-b"}},
		{[]string{"t", "validate", "a", "--", "b"}, []string{"t", "validate", "a", "b"}},
		{[]string{"t", "validate", "-", "a"}, []string{"t", "validate", "-", "a"}},
		{[]string{"t", "--version"}, []string{"t", "--version"}},
		{[]string{"t", "generate", "--generate-bash-completion"}, []string{"t", "generate", "--generate-bash-completion"}},
		{[]string{"t", "generate", "a.json", "--help"}, []string{"t", "generate", "--help", "a.json"}},
	} {
		if got := intersperse(app, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("intersperse(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// builtTplgen builds the command once per test binary (for tests that need a real process).
func builtTplgen(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tplgen-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tplgen")
		binOut, binErr = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binOut)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestBashCompletion loads the printed script into a real bash and completes as a user would.
func TestBashCompletion(t *testing.T) {
	bin := builtTplgen(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	complete := func(words ...string) []string {
		t.Helper()
		script := `source <(tplgen completion bash)
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
_tplgen_complete
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, append([]string{"-c", script, "bash"}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash: %v", err)
		}
		return strings.Fields(string(out))
	}
	if got := complete("tplgen", "ge"); !reflect.DeepEqual(got, []string{"generate"}) {
		t.Errorf("tplgen ge<TAB> = %q, want [generate]", got)
	}
	if got := complete("tplgen", ""); len(got) < 6 || !contains(got, "emulate") || !contains(got, "completion") {
		t.Errorf("tplgen <TAB> = %q, want every command", got)
	}
	if got := complete("tplgen", "generate", "--o"); !contains(got, "--out") {
		t.Errorf("tplgen generate --o<TAB> = %q, want --out", got)
	}
}

// TestZshCompletion loads the printed script into a real zsh and completes, with compadd
// and _files replaced by functions that print what they are given (compadd keeping, as zsh
// does, the candidates that match the word being completed).
func TestZshCompletion(t *testing.T) {
	bin := builtTplgen(t)
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh not installed")
	}
	complete := func(words ...string) []string {
		t.Helper()
		script := `source <(tplgen completion zsh)
compadd() {
    [[ $1 == -- ]] && shift
    local m r=1
    for m in "$@"; do
        if [[ $m == ${words[CURRENT]}* ]]; then print -r -- $m; r=0; fi
    done
    return r
}
_files() { print -r -- FILES }
words=("$@"); CURRENT=$#
_tplgen`
		cmd := exec.Command(zsh, append([]string{"-f", "-c", script, "zsh"}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("zsh: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	if got := complete("tplgen", "ge"); !reflect.DeepEqual(got, []string{"generate"}) {
		t.Errorf("tplgen ge<TAB> = %q, want [generate]", got)
	}
	if got := complete("tplgen", "ctl", "ot"); !reflect.DeepEqual(got, []string{"ota"}) {
		t.Errorf("tplgen ctl ot<TAB> = %q, want [ota]", got)
	}
	if got := complete("tplgen", "generate", "--o"); !contains(got, "--out") {
		t.Errorf("tplgen generate --o<TAB> = %q, want --out", got)
	}
	if got := complete("tplgen", "validate", "sch"); !reflect.DeepEqual(got, []string{"FILES"}) {
		t.Errorf("tplgen validate sch<TAB> = %q, want file completion", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
