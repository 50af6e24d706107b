package explorer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// TestHandlerContext: a handler's ctx has the handler deadline, ends at it (Done, Err, and a
// derived child follow), ends when the handler returns, and ends at Close.
func TestHandlerContext(t *testing.T) {
	b := newTestBroker(t)
	c := dial(t, b, explorer.WithHandlerTimeout(150*time.Millisecond))
	ctx := testCtx(t)

	type result struct {
		deadlineOK       bool
		errAtStart       error
		childErr, errEnd error
		cause            error
	}
	results := make(chan result, 1)
	retained := make(chan context.Context, 1)
	if err := c.Subscribe(ctx, "test/hctx", 0, func(hctx context.Context, m explorer.Message) {
		var r result
		d, ok := hctx.Deadline()
		r.deadlineOK = ok && time.Until(d) > 0 && time.Until(d) <= 150*time.Millisecond
		r.errAtStart = hctx.Err()
		child, cancel := context.WithTimeout(hctx, time.Hour)
		defer cancel()
		select {
		case <-child.Done():
			r.childErr = child.Err()
		case <-time.After(5 * time.Second):
		}
		r.errEnd = hctx.Err()
		r.cause = context.Cause(hctx)
		results <- r
		retained <- hctx
	}); err != nil {
		t.Fatal(err)
	}
	b.publish("test/hctx", "x", 0)
	r := waitChan(t, results, "handler result")
	if !r.deadlineOK || r.errAtStart != nil {
		t.Fatalf("at start: deadline ok %v, err %v", r.deadlineOK, r.errAtStart)
	}
	if !errors.Is(r.childErr, context.DeadlineExceeded) || !errors.Is(r.errEnd, context.DeadlineExceeded) || !errors.Is(r.cause, context.DeadlineExceeded) {
		t.Fatalf("after the deadline: child %v, ctx %v, cause %v; want DeadlineExceeded", r.childErr, r.errEnd, r.cause)
	}
	waitFor(t, func() bool { return c.Stats().HandlerOverruns == 1 }, "the overrun to be counted")

	// A ctx kept after the handler returned has ended; a quick handler's ctx ends with
	// Canceled when it returns.
	quick := make(chan context.Context, 1)
	if err := c.Subscribe(ctx, "test/hquick", 0, func(hctx context.Context, m explorer.Message) { quick <- hctx }); err != nil {
		t.Fatal(err)
	}
	b.publish("test/hquick", "x", 0)
	q := waitChan(t, quick, "quick handler")
	select {
	case <-q.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a returned handler's ctx did not end")
	}
	if !errors.Is(q.Err(), context.Canceled) {
		t.Fatalf("returned handler's ctx err %v", q.Err())
	}

	// Close ends a running handler's ctx.
	c2 := dial(t, b, explorer.WithHandlerTimeout(time.Hour))
	got := make(chan error, 1)
	started2 := make(chan struct{})
	if err := c2.Subscribe(ctx, "test/hclose2", 0, func(hctx context.Context, m explorer.Message) {
		close(started2)
		<-hctx.Done()
		got <- hctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	b.publish("test/hclose2", "x", 0)
	waitChan(t, started2, "long handler start")
	go c2.Close()
	if err := waitChan(t, got, "handler ctx at Close"); !errors.Is(err, context.Canceled) {
		t.Fatalf("handler ctx at Close: %v", err)
	}
}
