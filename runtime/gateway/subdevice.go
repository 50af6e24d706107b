package gateway

import (
	"fmt"

	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

// SubDevice returns a data-template engine for an online sub-device on the gateway's
// connection (the Python SDK's gatewaySubdevSubscribe). A generated package's New takes the
// same options, so pass thing.WithDevice(pid, dn) there instead when using typed code.
//
// The platform keeps a sub-device online across gateway reconnects (it is shown online
// whenever its gateway is connected, until it goes offline), so the thing's subscriptions,
// restored by the connection, stay valid.
func (g *Gateway) SubDevice(d Device, tpl *template.Template, opts ...thing.Option) (*thing.Thing, error) {
	if err := checkDevice(d); err != nil {
		return nil, err
	}
	if !g.IsOnline(d) {
		return nil, fmt.Errorf("gateway: sub-device %s is not online: call Online first", d)
	}
	opts = append(append([]thing.Option(nil), opts...), thing.WithDevice(d.ProductID, d.DeviceName))
	t, err := thing.New(g.conn, tpl, opts...)
	if err != nil {
		return nil, err
	}
	g.Track(t)
	return t, nil
}

// Track makes the gateway apply control the platform holds for t's sub-device (sent while
// it was offline) each time the gateway brings it online: now if it is online, after Online,
// and after the re-online that follows a reconnect. SubDevice tracks the things it returns;
// call Track for a generated sub-device (dev.Thing()). A sub-device's thing cannot do this
// by itself, because asking for an offline sub-device's state gets the gateway disconnected.
func (g *Gateway) Track(t *thing.Thing) {
	d := Device{t.ProductID(), t.DeviceName()}
	g.mu.Lock()
	g.things[d] = append(g.things[d], t)
	online := g.online[d]
	g.mu.Unlock()
	if online {
		g.syncPending([]Device{d})
	}
}
