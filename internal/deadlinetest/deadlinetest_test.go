package deadlinetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type recorder struct{ errs, logs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}
func (r *recorder) Logf(format string, a ...any) { r.logs = append(r.logs, fmt.Sprintf(format, a...)) }

func TestCheck(t *testing.T) {
	var r recorder
	Check(&r, "honours ctx", 20*time.Millisecond, nil, func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("wrapped: %w", ctx.Err())
	})
	if len(r.errs) != 0 {
		t.Errorf("a call that honours its ctx failed: %v", r.errs)
	}

	r = recorder{}
	Check(&r, "ignores ctx", 10*time.Millisecond, nil, func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(300 * time.Millisecond)
		return ctx.Err()
	})
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "after its deadline") || len(r.logs) != 1 {
		t.Errorf("an overrun was not reported after a second measurement: errs %v logs %v", r.errs, r.logs)
	}

	r = recorder{}
	Check(&r, "fails early", time.Second, nil, func(ctx context.Context) error { return errors.New("refused") })
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "DeadlineExceeded") {
		t.Errorf("a call that did not wait for its deadline passed: %v", r.errs)
	}
}
