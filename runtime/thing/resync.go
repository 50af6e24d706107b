package thing

import (
	"context"
)

// requestResync starts a pending-control re-sync in the background, or, when one is already
// running, makes it run once more afterwards (a reconnect during a re-sync must not be
// missed, and two re-syncs must not apply the same control twice).
func (t *Thing) requestResync() {
	t.resyncMu.Lock()
	if t.resyncing {
		t.resyncMore = true
		t.resyncMu.Unlock()
		return
	}
	t.resyncing = true
	t.resyncMu.Unlock()
	started := t.goTracked(func() {
		for {
			t.resyncOnce()
			t.resyncMu.Lock()
			if !t.resyncMore || t.isClosed() {
				t.resyncing, t.resyncMore = false, false
				t.resyncMu.Unlock()
				return
			}
			t.resyncMore = false
			t.resyncMu.Unlock()
		}
	})
	if !started {
		t.resyncMu.Lock()
		t.resyncing = false
		t.resyncMu.Unlock()
	}
}

// resyncOnce fetches pending control (get_status type control), applies it through the
// control worker like a live control, and clears it. A control that fails validation is
// cleared too (it can never be applied) and logged; one whose handler failed is kept so the
// next connect retries it.
func (t *Thing) resyncOnce() {
	ctx, cancel := context.WithTimeout(t.ctx, resyncTimeout)
	defer cancel()
	st, err := t.GetStatus(ctx, StatusControl, false)
	if err != nil {
		if t.ctx.Err() == nil {
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
	if err := t.ClearControl(ctx); err != nil && t.ctx.Err() == nil {
		t.log.Warn("pending control re-sync: clear_control failed", "error", err)
	}
}
