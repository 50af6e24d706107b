package gateway

import (
	"context"
	"sort"
)

// The platform publishes results at most once and the connection has a clean session, so a
// result still on its way when the connection drops is gone, and its caller would wait until
// its ctx ends. After a reconnect the gateway therefore asks again for what is still awaited,
// where asking twice is harmless: online and offline (the platform answers a repeat with the
// same result) and describe_sub_devices. A result of the first request that arrives anyway
// resolves the waiter, and the repeat's result then finds nobody waiting and is dropped.
// Bind and unbind are not repeated (a repeat would be answered 809 or -1, misreporting
// what happened): their callers still end with their ctx.

// resendOutstanding re-publishes the awaited online/offline/describe requests.
func (g *Gateway) resendOutstanding(ctx context.Context) {
	g.mu.Lock()
	byOp := map[string][]wireDevice{}
	for k := range g.waiters {
		if k.op == opOnline || k.op == opOffline {
			byOp[k.op] = append(byOp[k.op], wireDevice{ProductID: k.dev.ProductID, DeviceName: k.dev.DeviceName})
		}
	}
	describes := len(g.describes)
	g.mu.Unlock()

	for _, op := range []string{opOnline, opOffline} {
		entries := byOp[op]
		if len(entries) == 0 {
			continue
		}
		sort.Slice(entries, func(i, j int) bool {
			a, b := entries[i], entries[j]
			return a.ProductID < b.ProductID || (a.ProductID == b.ProductID && a.DeviceName < b.DeviceName)
		})
		g.log.Info("gateway: asking again for results lost with the connection", "type", op, "devices", len(entries))
		reqs, err := g.batches(op, entries)
		if err != nil {
			g.log.Warn("gateway: re-sending request failed", "type", op, "err", err)
			return
		}
		for _, b := range reqs {
			if err := g.publishRaw(ctx, b); err != nil {
				g.log.Warn("gateway: re-sending request failed", "type", op, "err", err)
				return
			}
		}
	}
	for range describes {
		if err := g.publish(ctx, request{Type: opDescribe}); err != nil {
			g.log.Warn("gateway: re-sending request failed", "type", opDescribe, "err", err)
			return
		}
	}
}
