package gateway

import (
	"context"
	"errors"
	"sync"

	"github.com/tplgen/tplgen/runtime/thing"
)

// Applying pending control runs in the background after a sub-device comes online (so that
// Online stays one round trip), and it publishes on the sub-device's topics: get_status,
// then clear_control after the control handler ran. The platform answers a publish for a
// sub-device that is no longer online by disconnecting the gateway, which loses every result
// in flight on that connection. So a sub-device's background sync must be over before the
// gateway asks to take it offline or unbind it: Offline and Unbind first stop the running
// syncs of their devices and wait for them (whatever a sync published is then ahead of the
// request on the connection, which keeps publish order), and no new sync starts for those
// devices until the request is done.

// syncRun is the background pending-control sync of one sub-device.
type syncRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// syncPending starts a pending-control sync for each of devs that is online, has tracked
// things and is not being taken offline; a sync still running for a device is replaced.
func (g *Gateway) syncPending(devs []Device) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	for _, d := range devs {
		ts := g.things[d]
		if len(ts) == 0 || !g.online[d] || g.quiet[d] > 0 {
			continue
		}
		var prev *syncRun
		if old := g.syncs[d]; old != nil {
			old.cancel()
			prev = old
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		run := &syncRun{cancel: cancel, done: make(chan struct{})}
		g.syncs[d] = run
		go g.runSync(ctx, d, run, prev, append([]*thing.Thing(nil), ts...))
	}
}

func (g *Gateway) runSync(ctx context.Context, d Device, run, prev *syncRun, ts []*thing.Thing) {
	defer func() {
		run.cancel()
		g.mu.Lock()
		if g.syncs[d] == run {
			delete(g.syncs, d)
		}
		g.mu.Unlock()
		close(run.done)
	}()
	if prev != nil {
		<-prev.done // one sync per device publishes at a time
	}
	for _, t := range ts {
		if ctx.Err() != nil {
			return
		}
		_, err := t.SyncPendingControl(ctx)
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			g.log.Debug("gateway: pending-control sync stopped", "device", d.String())
		default:
			g.log.Warn("gateway: applying pending control failed", "device", d.String(), "err", err)
		}
	}
}

// quiesce stops the background syncs of devs, waits (bounded by ctx) until they have
// returned, and keeps new ones from starting until release is called.
func (g *Gateway) quiesce(ctx context.Context, devs []Device) (release func(), err error) {
	g.mu.Lock()
	var runs []*syncRun
	for _, d := range devs {
		g.quiet[d]++
		if r := g.syncs[d]; r != nil {
			r.cancel()
			runs = append(runs, r)
		}
	}
	g.mu.Unlock()
	release = sync.OnceFunc(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, d := range devs {
			if g.quiet[d]--; g.quiet[d] <= 0 {
				delete(g.quiet, d)
			}
		}
	})
	for _, r := range runs {
		select {
		case <-r.done:
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// stopSyncs cancels the background syncs of devs without waiting (the platform has already
// dropped them: cloud-initiated unbind). Caller holds g.mu.
func (g *Gateway) stopSyncs(devs []Device) {
	for _, d := range devs {
		if r := g.syncs[d]; r != nil {
			r.cancel()
		}
	}
}
