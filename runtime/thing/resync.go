package thing

import (
	"context"
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

// resyncOnce fetches pending control (get_status type control), applies it through the
// control worker like a live control, and clears it. Delivery is at least once: if the
// connection drops between applying and clearing, the next connect applies it again. A control that fails validation is
// cleared too (it can never be applied) and logged; one whose handler failed is kept so the
// next connect retries it.
func (t *Thing) resyncOnce(ctx context.Context) {
	st, err := t.GetStatus(ctx, StatusControl, false)
	if err != nil {
		if ctx.Err() == nil {
			t.log.Warn("pending control re-sync: get_status failed", "error", err)
		}
		return
	}
	if isEmptyObject(st.Control) {
		return
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
	case t.controlQ <- work:
	case <-ctx.Done():
		return
	}
	var o outcome
	select {
	case o = <-res:
	case <-ctx.Done():
		return
	}
	switch {
	case o.code == CodeOK:
		t.log.Info("pending control applied")
	case o.code == CodeUnknownID || o.code == CodeInvalidValue || o.code == CodeMalformed:
		t.log.Error("pending control rejected by the template check; clearing it", "code", o.code, "status", o.status)
	default:
		t.log.Error("pending control handler failed; kept for the next connect", "code", o.code, "status", o.status)
		return
	}
	if err := t.ClearControl(ctx); err != nil && ctx.Err() == nil {
		t.log.Warn("pending control re-sync: clear_control failed", "error", err)
	}
}
