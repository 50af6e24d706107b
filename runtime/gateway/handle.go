package gateway

import (
	"context"
	"sort"
	"strconv"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/explorer"
)

// handle dispatches everything the platform sends on the gateway's result topic. Malformed
// messages are logged with the topic and the offending field and dropped: they can't be
// matched to a request, and the waiting caller ends with its ctx.
func (g *Gateway) handle(ctx context.Context, m explorer.Message) {
	var msg downlink
	if err := jsonguard.Unmarshal(m.Payload, &msg); err != nil {
		g.log.Warn("gateway: malformed message", "topic", m.Topic, "err", err)
		return
	}
	switch msg.Type {
	case opBind, opUnbind, opOnline, opOffline:
		g.results(m.Topic, msg)
	case opDescribe:
		devs, err := decodeDevices(msg.Payload.Devices)
		if err != nil {
			g.log.Warn("gateway: malformed field", "topic", m.Topic, "field", "payload.devices", "err", err)
			return
		}
		if !g.describeResult(devs) {
			g.describePushed(ctx)
		}
	case opChange:
		g.change(ctx, m.Topic, msg)
	case opUnbindAll:
		g.unbindAll(ctx)
	case opSearch:
		g.search(ctx, m.Topic, msg)
	case "":
		g.log.Warn("gateway: message without type", "topic", m.Topic, "field", "type")
	default:
		g.log.Warn("gateway: unknown message type", "topic", m.Topic, "type", msg.Type)
	}
}

func decodeDevices(raw json.RawMessage) ([]wireDevice, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var devs []wireDevice
	if err := json.Unmarshal(raw, &devs); err != nil {
		return nil, err
	}
	return devs, nil
}

func (g *Gateway) results(topic string, msg downlink) {
	devs, err := decodeDevices(msg.Payload.Devices)
	if err != nil {
		g.log.Warn("gateway: malformed field", "topic", topic, "type", msg.Type, "field", "payload.devices", "err", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, d := range devs {
		if d.Result == nil {
			g.log.Warn("gateway: result without code", "topic", topic, "type", msg.Type,
				"field", "payload.devices["+strconv.Itoa(i)+"].result")
			continue
		}
		dev := Device{d.ProductID, d.DeviceName}
		if *d.Result == 0 {
			switch msg.Type {
			case opBind:
				g.boundSet[dev] = true
			case opOnline:
				g.online[dev] = true
				g.boundSet[dev] = true // only a bound sub-device can come online
			case opOffline:
				delete(g.online, dev)
			case opUnbind:
				delete(g.online, dev)
				delete(g.boundSet, dev)
			}
		}
		k := waitKey{msg.Type, dev}
		list := g.waiters[k]
		if len(list) == 0 {
			g.log.Debug("gateway: result nobody waits for", "type", msg.Type, "device", dev.String())
			continue
		}
		list[0] <- *d.Result
		if len(list) == 1 {
			delete(g.waiters, k)
		} else {
			g.waiters[k] = list[1:]
		}
	}
}

// describeResult hands a describe_sub_devices answer to the oldest waiting Describe; it
// reports false when nobody waits (the message was pushed by the cloud).
func (g *Gateway) describeResult(devs []wireDevice) bool {
	out := make([]Device, len(devs))
	for i, d := range devs {
		out[i] = Device{d.ProductID, d.DeviceName}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.describes) == 0 {
		return false
	}
	g.describes[0] <- out
	g.describes = g.describes[1:]
	return true
}

// describePushed answers a describe_sub_devices the cloud sent without being asked the way
// the C SDK does (docs/PROTOCOL.md §5.2, _gateway_ack_topo_describe): a "change" message on the
// operation topic listing the sub-devices bound as far as this gateway knows (binds and
// onlines it saw succeed, cloud change notices), sorted.
func (g *Gateway) describePushed(ctx context.Context) {
	g.mu.Lock()
	devs := make([]Device, 0, len(g.boundSet))
	for d := range g.boundSet {
		devs = append(devs, d)
	}
	g.mu.Unlock()
	sort.Slice(devs, func(i, j int) bool { return devs[i].String() < devs[j].String() })
	a := ack{Type: opChange, Payload: ackPayload{Devices: make([]wireDevice, 0, len(devs))}}
	for _, d := range devs {
		a.Payload.Devices = append(a.Payload.Devices, wireDevice{ProductID: d.ProductID, DeviceName: d.DeviceName})
	}
	g.log.Info("gateway: answering describe_sub_devices pushed by the platform", "devices", len(devs))
	g.ack(ctx, a)
}

func (g *Gateway) change(ctx context.Context, topic string, msg downlink) {
	devs, err := decodeDevices(msg.Payload.Devices)
	if err != nil || msg.Payload.Status == nil {
		g.log.Warn("gateway: malformed change", "topic", topic, "field", "payload.status/payload.devices", "err", err)
		return
	}
	c := Change{Bound: *msg.Payload.Status == 1}
	for _, d := range devs {
		c.Devices = append(c.Devices, Device{d.ProductID, d.DeviceName})
	}
	g.mu.Lock()
	for _, d := range c.Devices {
		if c.Bound {
			g.boundSet[d] = true
		} else {
			delete(g.online, d)
			delete(g.boundSet, d)
		}
	}
	if !c.Bound {
		g.stopSyncs(c.Devices)
	}
	g.mu.Unlock()
	result := 0
	if g.onChange != nil {
		if err := g.onChange(ctx, c); err != nil {
			g.log.Warn("gateway: change handler failed", "err", err)
			result = -2
		}
	}
	// Acknowledged the way the C SDK does (per device, echoing status); the doc's flat
	// {"type":"change","result":0} carries no device list.
	a := ack{Type: opChange, Payload: ackPayload{Status: msg.Payload.Status}}
	for _, d := range c.Devices {
		a.Payload.Devices = append(a.Payload.Devices, wireDevice{ProductID: d.ProductID, DeviceName: d.DeviceName, Result: intPtr(result)})
	}
	g.ack(ctx, a)
}

func (g *Gateway) unbindAll(ctx context.Context) {
	g.mu.Lock()
	for _, r := range g.syncs {
		r.cancel()
	}
	g.online = map[Device]bool{}
	g.boundSet = map[Device]bool{}
	g.mu.Unlock()
	result := 0
	if g.onUnbindAll != nil {
		if err := g.onUnbindAll(ctx); err != nil {
			g.log.Warn("gateway: unbind_all handler failed", "err", err)
			result = -2
		}
	}
	g.ack(ctx, ack{Type: opUnbindAll, Payload: ackPayload{Result: intPtr(result)}})
}

func (g *Gateway) search(ctx context.Context, topic string, msg downlink) {
	if msg.Payload.Status == nil {
		g.log.Warn("gateway: malformed search_devices", "topic", topic, "field", "payload.status")
		return
	}
	result := 0
	if g.onSearch != nil {
		if err := g.onSearch(ctx, *msg.Payload.Status); err != nil {
			g.log.Warn("gateway: search_devices handler failed", "err", err)
			result = -2
		}
	}
	g.ack(ctx, ack{Type: opSearch, Payload: ackPayload{Status: msg.Payload.Status, Result: intPtr(result)}})
}

func (g *Gateway) ack(ctx context.Context, a ack) {
	if err := g.publish(ctx, a); err != nil {
		g.log.Warn("gateway: acknowledge failed", "type", a.Type, "err", err)
	}
}
