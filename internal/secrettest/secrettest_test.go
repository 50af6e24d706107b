package secrettest

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type leaky struct{ Secret string }

type hidden struct{ Secret string }

func (h hidden) String() string       { return "hidden{<redacted>}" }
func (h hidden) GoString() string     { return h.String() }
func (h hidden) LogValue() slog.Value { return slog.StringValue("<redacted>") }

type halfHidden struct{ Secret string }

func (h halfHidden) String() string { return "halfHidden{<redacted>}" } // no GoString, no LogValue

type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}

func TestCheckCatchesEveryLeak(t *testing.T) {
	const secret = "s3cr3t-value"
	var r recorder
	Check(&r, leaky{secret}, secret)
	for _, want := range []string{"fmt %v", "fmt %#v", "slog text", "slog json"} {
		if !strings.Contains(strings.Join(r.errs, "\n"), want+" shows") {
			t.Errorf("leak through %s not reported; got:\n%s", want, strings.Join(r.errs, "\n"))
		}
	}

	r = recorder{}
	Check(&r, halfHidden{secret}, secret)
	got := strings.Join(r.errs, "\n")
	if strings.Contains(got, "fmt %v shows") || !strings.Contains(got, "fmt %#v shows") || !strings.Contains(got, "slog json shows") {
		t.Errorf("String alone must pass %%v and fail %%#v and JSON; got:\n%s", got)
	}

	r = recorder{}
	Check(&r, hidden{secret}, secret)
	if len(r.errs) != 0 {
		t.Errorf("a fully redacting type failed:\n%s", strings.Join(r.errs, "\n"))
	}
}
