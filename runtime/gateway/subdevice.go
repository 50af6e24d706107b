package gateway

import (
	"fmt"

	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

// SubDevice returns a data-template engine for an online sub-device on the gateway's
// connection (the seed's gatewaySubdevSubscribe). A generated package's New takes the
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
	return thing.New(g.conn, tpl, opts...)
}
