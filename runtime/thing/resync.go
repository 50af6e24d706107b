package thing

import (
	"context"
	"errors"
	"fmt"
)

// requestResync starts a pending-control re-sync in the background for the connection
// whose lifetime connCtx is. A re-sync still running for an earlier connection is
// cancelled (its get_status reply is lost with that connection) and the new one waits for it
// to finish, so two re-syncs never run at once.
func (t *Thing) requestResync(connCtx context.Context) {
	ctx, cancel := context.WithTimeout(t.ctx, resyncTimeout)
	stop := context.AfterFunc(connCtx, cancel)
	done := make(chan struct{})
	t.resyncMu.Lock()
	if t.resyncCancel != nil {
		t.resyncCancel()
	}
	prev := t.resyncDone
	t.resyncCancel, t.resyncDone = cancel, done
	t.resyncMu.Unlock()
	started := t.goTracked(func() {
		defer close(done)
		defer stop()
		defer cancel()
		if prev != nil {
			select {
			case <-prev:
			case <-ctx.Done():
				return
			}
		}
		t.resyncOnce(ctx)
	})
	if !started {
		stop()
		cancel()
		close(done)
	}
}

// SyncPendingControl does one pending-control re-sync now and waits for it: it asks for
// control sent while the device was offline (get_status type control), applies it through
// the control handler like a live control, and clears it (clear_control). It returns
// whether a pending control was found and applied; a pending control that fails the
// template check is cleared and reported as an error, one whose handler failed is kept
// (for the next sync) and reported as an error.
//
// The Thing does this by itself after New and every reconnect for the connection's own
// device; a gateway calls it for a sub-device once the sub-device is online again.
func (t *Thing) SyncPendingControl(ctx context.Context) (applied bool, err error) {
	if t.isClosed() {
		return false, fmt.Errorf("thing: SyncPendingControl: %w", ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel) // Close ends it too
	defer stop()
	return t.syncPending(ctx)
}

// resyncOnce fetches pending control (get_status type control), applies it through the
// control worker like a live control, and clears it. Delivery is at least once: if the
// connection drops between applying and clearing, the next connect applies it again. A control that fails validation is
// cleared too (it can never be applied) and logged; one whose handler failed is kept so the
// next connect retries it.
func (t *Thing) resyncOnce(ctx context.Context) {
	applied, err := t.syncPending(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		t.log.Error("pending control re-sync failed", "error", err)
	case applied:
		t.log.Info("pending control applied")
	}
}

// syncPending is one re-sync; see SyncPendingControl.
func (t *Thing) syncPending(ctx context.Context) (bool, error) {
	st, err := t.GetStatus(ctx, StatusControl, false)
	if err != nil {
		return false, err
	}
	if isEmptyObject(st.Control) {
		return false, nil
	}
	type outcome struct {
		code   int
		status string
	}
	res := make(chan outcome, 1)
	work := func() {
		code, status := t.applyControl(t.topics.downProperty+" (pending control)", st.Control)
		res <- outcome{code, status}
	}
	select {
	case t.controlQueue() <- work:
		t.kick()
	case <-ctx.Done():
		return false, fmt.Errorf("thing: pending control: %w", ctx.Err())
	}
	var o outcome
	select {
	case o = <-res:
	case <-ctx.Done():
		return false, fmt.Errorf("thing: pending control: %w", ctx.Err())
	}
	var failure error
	switch o.code {
	case CodeOK:
	case CodeUnknownID, CodeInvalidValue, CodeMalformed:
		// It can never be applied: clear it rather than fetch it on every connect.
		failure = &ReplyError{Code: o.code, Status: o.status, Method: "pending control (cleared)"}
	default:
		return false, &ReplyError{Code: o.code, Status: o.status, Method: "pending control (kept for the next sync)"}
	}
	if err := t.ClearControl(ctx); err != nil {
		if failure != nil {
			return false, errors.Join(failure, err)
		}
		return true, err
	}
	return failure == nil, failure
}
