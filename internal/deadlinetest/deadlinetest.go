// Package deadlinetest checks that a call taking a ctx returns soon after the ctx's deadline,
// whatever the network does (the network is made to misbehave by the caller, typically with
// internal/faultproxy).
//
// The bound is the deadline plus Slack. The machine that runs the tests is shared and noisy,
// so one overrun below NoiseLimit is measured again before it counts; a call that really
// ignores its ctx (waiting for a library's own write timeout, or a retry loop that does not
// look at ctx) overruns by seconds and fails either way.
package deadlinetest

import (
	"context"
	"errors"
	"time"
)

// Slack is how long after its deadline a call may return.
const Slack = 100 * time.Millisecond

// NoiseLimit is the largest overrun that is measured a second time before it counts.
const NoiseLimit = time.Second

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// Result is one measured call.
type Result struct {
	Err     error
	Elapsed time.Duration // from the call to its return
	Overrun time.Duration // from the deadline to the return (negative: returned before it)
}

// Measure calls fn with a ctx whose deadline is d from now and reports when it returned.
func Measure(d time.Duration, fn func(ctx context.Context) error) Result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	start := time.Now()
	err := fn(ctx)
	end := time.Now()
	return Result{Err: err, Elapsed: end.Sub(start), Overrun: end.Sub(deadline)}
}

// Check calls fn with a ctx that ends after d and fails t unless fn returns an error that
// wraps context.DeadlineExceeded within d+Slack. prepare, if not nil, runs before every
// attempt (to set up the fault again).
func Check(t TB, name string, d time.Duration, prepare func(), fn func(ctx context.Context) error) Result {
	t.Helper()
	var r Result
	for attempt := 1; attempt <= 2; attempt++ {
		if prepare != nil {
			prepare()
		}
		r = Measure(d, fn)
		if !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("%s: returned after %v with %v; want an error wrapping context.DeadlineExceeded", name, r.Elapsed.Round(time.Millisecond), r.Err)
			return r
		}
		if r.Overrun <= Slack {
			return r
		}
		if r.Overrun > NoiseLimit || attempt == 2 {
			break
		}
		t.Logf("%s: overran its deadline by %v; measuring again (shared machine)", name, r.Overrun.Round(time.Millisecond))
	}
	t.Errorf("%s: returned %v after its deadline (allowed %v): %v", name, r.Overrun.Round(time.Millisecond), Slack, r.Err)
	return r
}
