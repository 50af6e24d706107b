package explorertest

// Gateway topology (docs/PROTOCOL.md §5): bind/unbind with signature checks, online/offline,
// describe_sub_devices, and cloud-initiated change/unbind_all/search_devices. A bound and
// online sub-device's topics are usable through its gateway's connection (the ACL asks
// proxyAllowed), and the sub-device counts as online while its gateway is connected: the
// platform keeps sub-devices online across gateway reconnects until they go offline.

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
)

// Gateway result codes (docs/PROTOCOL.md §5.4).
const (
	gwOK             = 0
	gwNotBound       = -1
	gwBadParams      = 801
	gwNoDevice       = 802
	gwBadSignature   = 803
	gwBadSignMethod  = 804
	gwExpired        = 805
	gwBoundElsewhere = 806
	gwNotOrdinary    = 807
	gwDuplicate      = 809
)

// bindSignatureWindow is how far a bind request's timestamp may be from the platform's clock.
// The C and Java SDKs send the current time, so a window (not an expiry instant) is what works.
const bindSignatureWindow = 10 * time.Minute

// SubDeviceInfo describes a sub-device bound to a gateway.
type SubDeviceInfo struct {
	ID DeviceID
	// Online is true when the sub-device went online and its gateway is connected.
	Online bool
}

type gatewayCloud struct {
	s      *Server
	mu     sync.Mutex
	bound  map[DeviceID]DeviceID // sub-device -> gateway; change only through link/unlink
	subs   map[DeviceID]int      // gateway -> number of its bound sub-devices (O(1) gateway test)
	online map[DeviceID]bool     // sub-devices that went online (until offline/unbind)
	acks   map[DeviceID]*ackLog  // the newest maxGatewayAcks acknowledgements of each gateway
	ackCh  chan struct{}         // closed and replaced on every ack
	// listening: devices that subscribed to their own $gateway/operation/result topic since the
	// platform started. The emulator has no product node types, so this (or having sub-devices)
	// is what marks a device as a gateway for the console. Not persisted: a gateway
	// subscribes again after every connect.
	listening map[DeviceID]bool
}

func (s *Server) initGateway() error {
	g := &gatewayCloud{
		s:         s,
		bound:     map[DeviceID]DeviceID{},
		subs:      map[DeviceID]int{},
		online:    map[DeviceID]bool{},
		acks:      map[DeviceID]*ackLog{},
		ackCh:     make(chan struct{}),
		listening: map[DeviceID]bool{},
	}
	s.gw = g
	s.handleUplink("$gateway/operation/", g.handle)
	s.proxyAllowed = g.proxyAllowed
	s.proxiedOnline = g.proxiedOnline
	s.onDeviceRemoved(g.deviceRemoved)
	s.onSubscribed(g.subscribed)
	s.addDeviceDetail("gateway_role", g.role)
	s.mountGatewayAPI()
	return nil
}

// deviceRemoved forgets a deleted device as a sub-device and as a gateway (its sub-devices are
// unbound, as deleting a gateway on the platform does).
func (g *gatewayCloud) deviceRemoved(id DeviceID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unlink(id)
	delete(g.online, id)
	delete(g.acks, id)
	delete(g.listening, id)
	if g.subs[id] > 0 {
		for sub, gw := range g.bound {
			if gw == id {
				g.unlink(sub)
				delete(g.online, sub)
			}
		}
	}
}

// subscribed marks a device that subscribes to its own gateway reply topic as a gateway.
func (g *gatewayCloud) subscribed(id DeviceID, filter string) {
	if filter != "$gateway/operation/result/"+id.String() {
		return
	}
	g.mu.Lock()
	// A SUBSCRIBE still in flight when its device was deleted must not leave an entry behind
	// (RemoveDevice leaves the registry before deviceRemoved takes g.mu).
	_, registered := g.s.Device(id.ProductID, id.DeviceName)
	seen := g.listening[id]
	if registered {
		g.listening[id] = true
	}
	g.mu.Unlock()
	if registered && !seen {
		g.s.changed(changeGateway, id, nil) // the console shows the gateway's tools
	}
}

// role is the "gateway_role" section of GET /api/devices/{pid}/{dn}: present for a device
// acting as a gateway (it subscribed to its gateway reply topic, or has sub-devices bound),
// absent otherwise.
func (g *gatewayCloud) role(id DeviceID) any {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.listening[id] && g.subs[id] == 0 {
		return nil
	}
	return map[string]any{"subscribed": g.listening[id], "sub_devices": g.subs[id]}
}

// link records sub as bound to gw (replacing an earlier binding). Caller holds g.mu.
func (g *gatewayCloud) link(sub, gw DeviceID) {
	g.unlink(sub)
	g.bound[sub] = gw
	g.subs[gw]++
}

// unlink forgets sub's binding, if any. Caller holds g.mu.
func (g *gatewayCloud) unlink(sub DeviceID) {
	gw, ok := g.bound[sub]
	if !ok {
		return
	}
	delete(g.bound, sub)
	if g.subs[gw]--; g.subs[gw] <= 0 {
		delete(g.subs, gw)
	}
}

func (g *gatewayCloud) proxyAllowed(gw, sub DeviceID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bound[sub] == gw && g.online[sub]
}

func (g *gatewayCloud) proxiedOnline(id DeviceID) bool {
	g.mu.Lock()
	gw, bound := g.bound[id]
	on := bound && g.online[id]
	g.mu.Unlock()
	if !on {
		return false
	}
	inf, ok := g.s.Device(gw.ProductID, gw.DeviceName)
	return ok && inf.Online
}

type gwDevice struct {
	ProductID  string `json:"product_id"`
	DeviceName string `json:"device_name"`
	Signature  string `json:"signature,omitempty"`
	Random     *int64 `json:"random,omitempty"`
	Timestamp  *int64 `json:"timestamp,omitempty"`
	SignMethod string `json:"signmethod,omitempty"`
	AuthType   string `json:"authtype,omitempty"`
	Result     *int   `json:"result,omitempty"`
}

type gwMessage struct {
	Type    string `json:"type"`
	Payload *struct {
		Status  *int       `json:"status,omitempty"`
		Result  *int       `json:"result,omitempty"`
		Devices []gwDevice `json:"devices"`
	} `json:"payload,omitempty"`
}

func (g *gatewayCloud) handle(u uplink) {
	if u.Topic != "$gateway/operation/"+u.Client.ProductID+"/"+u.Client.DeviceName {
		return // result topic or another device's: the ACL already refused anything else
	}
	gw := u.Client
	var m gwMessage
	if err := unmarshalUntrusted(u.Payload, &m); err != nil {
		g.s.log.Warn("explorertest: gateway: bad JSON", "topic", u.Topic, "err", err)
		return
	}
	switch m.Type {
	case "bind", "unbind", "online", "offline":
		if m.Payload == nil {
			g.s.log.Warn("explorertest: gateway: request without payload", "topic", u.Topic, "type", m.Type)
			return
		}
		out := make([]gwDevice, len(m.Payload.Devices))
		for i, d := range m.Payload.Devices {
			code := g.apply(gw, m.Type, d)
			out[i] = gwDevice{ProductID: d.ProductID, DeviceName: d.DeviceName, Result: &code}
		}
		g.reply(gw, map[string]any{"type": m.Type, "payload": map[string]any{"devices": out}})
	case "describe_sub_devices":
		subs := g.s.SubDevices(gw.ProductID, gw.DeviceName)
		out := make([]gwDevice, len(subs))
		for i, sd := range subs {
			out[i] = gwDevice{ProductID: sd.ID.ProductID, DeviceName: sd.ID.DeviceName}
		}
		g.reply(gw, map[string]any{"type": m.Type, "payload": map[string]any{"devices": out}})
	case "change", "unbind_all", "search_devices":
		g.mu.Lock()
		log := g.acks[gw]
		if log == nil {
			log = &ackLog{}
			g.acks[gw] = log
		}
		if dropped := log.add(append(json.RawMessage(nil), u.Payload...)); dropped {
			g.s.log.Warn("explorertest: gateway: acknowledgement log full, oldest dropped", "gateway", gw.String(), "dropped", log.base)
		}
		close(g.ackCh)
		g.ackCh = make(chan struct{})
		g.mu.Unlock()
	default:
		g.s.log.Warn("explorertest: gateway: unknown type", "topic", u.Topic, "type", m.Type)
	}
}

func (g *gatewayCloud) reply(gw DeviceID, v any) {
	b, err := marshalJSON(v)
	if err == nil {
		err = g.s.Publish("$gateway/operation/result/"+gw.ProductID+"/"+gw.DeviceName, b, 1)
	}
	if err != nil {
		g.s.log.Warn("explorertest: gateway: reply failed", "gateway", gw.String(), "err", err)
	}
}

// apply performs one device's operation and returns its result code.
func (g *gatewayCloud) apply(gw DeviceID, op string, d gwDevice) int {
	sub := DeviceID{d.ProductID, d.DeviceName}
	if d.ProductID == "" || d.DeviceName == "" {
		return gwBadParams
	}
	dev, ok := g.s.lookupDevice(sub)
	if !ok {
		return gwNoDevice
	}
	if op == "bind" {
		if code := g.checkBindSignature(dev, d); code != gwOK {
			return code
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	owner, isBound := g.bound[sub]
	switch op {
	case "bind":
		switch {
		case sub == gw || g.isGatewayLocked(sub):
			return gwNotOrdinary
		case isBound && owner == gw:
			return gwDuplicate
		case isBound:
			return gwBoundElsewhere
		}
		g.link(sub, gw)
	case "unbind":
		if !isBound || owner != gw {
			return gwNotBound
		}
		g.unlink(sub)
		delete(g.online, sub)
	case "online", "offline":
		if !isBound || owner != gw {
			return gwNotBound
		}
		if op == "online" {
			g.online[sub] = true
		} else {
			delete(g.online, sub)
		}
	}
	g.s.changed(changeGateway, sub, gw)
	return gwOK
}

func (g *gatewayCloud) isGatewayLocked(id DeviceID) bool { return g.subs[id] > 0 }

func (g *gatewayCloud) checkBindSignature(dev device, d gwDevice) int {
	if d.Signature == "" || d.Random == nil || d.Timestamp == nil {
		return gwBadParams
	}
	var h func() hash.Hash
	switch d.SignMethod {
	case "hmacsha1":
		h = sha1.New
	case "hmacsha256":
		h = sha256.New
	default:
		return gwBadSignMethod
	}
	var key string
	switch d.AuthType {
	case "psk", "":
		key = dev.secret
	case "certificate":
		sum := md5.Sum(dev.certPEM)
		key = hex.EncodeToString(sum[:])
	default:
		return gwBadParams
	}
	if key == "" {
		return gwBadSignature
	}
	mac := hmac.New(h, []byte(key))
	mac.Write([]byte(d.ProductID + d.DeviceName + ";" + strconv.FormatInt(*d.Random, 10) + ";" + strconv.FormatInt(*d.Timestamp, 10)))
	got, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return gwBadSignature
	}
	if age := g.s.clock().Sub(time.Unix(*d.Timestamp, 0)); age > bindSignatureWindow || age < -bindSignatureWindow {
		return gwExpired
	}
	return gwOK
}

// SubDevices lists the sub-devices bound to a gateway, sorted.
func (s *Server) SubDevices(gwPID, gwDN string) []SubDeviceInfo {
	gw := DeviceID{gwPID, gwDN}
	s.gw.mu.Lock()
	var out []SubDeviceInfo
	for sub, owner := range s.gw.bound {
		if owner == gw {
			out = append(out, SubDeviceInfo{ID: sub, Online: s.gw.online[sub]})
		}
	}
	s.gw.mu.Unlock()
	connected := s.deviceConnected(gw)
	for i := range out {
		out[i].Online = out[i].Online && connected
	}
	slices.SortFunc(out, func(a, b SubDeviceInfo) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out
}

func (s *Server) deviceConnected(id DeviceID) bool {
	inf, ok := s.Device(id.ProductID, id.DeviceName)
	return ok && inf.Online
}

// BindSubDevices binds sub-devices to a gateway from the cloud side (as the app does) and
// notifies the gateway with a change message (status 1).
func (s *Server) BindSubDevices(gwPID, gwDN string, subs ...DeviceID) error {
	return s.pushChange(DeviceID{gwPID, gwDN}, true, subs)
}

// UnbindSubDevices unbinds sub-devices from the cloud side and notifies the gateway with a
// change message (status 0).
func (s *Server) UnbindSubDevices(gwPID, gwDN string, subs ...DeviceID) error {
	return s.pushChange(DeviceID{gwPID, gwDN}, false, subs)
}

func (s *Server) pushChange(gw DeviceID, bind bool, subs []DeviceID) error {
	if _, ok := s.lookupDevice(gw); !ok {
		return fmt.Errorf("explorertest: gateway %s: %w", gw, ErrUnknownDevice)
	}
	for _, sub := range subs {
		if _, ok := s.lookupDevice(sub); !ok {
			return fmt.Errorf("explorertest: sub-device %s: %w", sub, ErrUnknownDevice)
		}
	}
	devs := make([]gwDevice, len(subs))
	s.gw.mu.Lock()
	// All checked before any is changed: a refused request changes nothing.
	for _, sub := range subs {
		if owner, ok := s.gw.bound[sub]; ok && owner != gw {
			s.gw.mu.Unlock()
			return fmt.Errorf("explorertest: %s is bound to gateway %s: %w", sub, owner, ErrBoundElsewhere)
		}
	}
	for i, sub := range subs {
		if bind {
			s.gw.link(sub, gw)
		} else {
			s.gw.unlink(sub)
			delete(s.gw.online, sub)
		}
		devs[i] = gwDevice{ProductID: sub.ProductID, DeviceName: sub.DeviceName}
		s.changed(changeGateway, sub, gw)
	}
	s.gw.mu.Unlock()
	status := 0
	if bind {
		status = 1
	}
	return s.publishJSON(gw, map[string]any{"type": "change", "payload": map[string]any{"status": status, "devices": devs}})
}

// UnbindAllSubDevices removes every sub-device of a gateway and sends it unbind_all.
func (s *Server) UnbindAllSubDevices(gwPID, gwDN string) error {
	gw := DeviceID{gwPID, gwDN}
	if _, ok := s.lookupDevice(gw); !ok {
		return fmt.Errorf("explorertest: gateway %s: %w", gw, ErrUnknownDevice)
	}
	s.gw.mu.Lock()
	for sub, owner := range s.gw.bound {
		if owner == gw {
			s.gw.unlink(sub)
			delete(s.gw.online, sub)
			s.changed(changeGateway, sub, gw)
		}
	}
	s.gw.mu.Unlock()
	return s.publishJSON(gw, map[string]any{"type": "unbind_all"})
}

// SearchSubDevices asks a gateway to start (status 1) or stop (0) searching for new sub-devices.
func (s *Server) SearchSubDevices(gwPID, gwDN string, status int) error {
	gw := DeviceID{gwPID, gwDN}
	if _, ok := s.lookupDevice(gw); !ok {
		return fmt.Errorf("explorertest: gateway %s: %w", gw, ErrUnknownDevice)
	}
	return s.publishJSON(gw, map[string]any{"type": "search_devices", "payload": map[string]any{"status": status}})
}

// DescribeSubDevices pushes describe_sub_devices to a gateway, listing the sub-devices the
// platform has bound to it (docs/PROTOCOL.md §5.2). The C SDK answers a cloud-sent describe with
// a change message listing its local bind list (acknowledgement type "change" in
// WaitGatewayAck), which lets a test compare the two topologies.
func (s *Server) DescribeSubDevices(gwPID, gwDN string) error {
	gw := DeviceID{gwPID, gwDN}
	if _, ok := s.lookupDevice(gw); !ok {
		return fmt.Errorf("explorertest: gateway %s: %w", gw, ErrUnknownDevice)
	}
	subs := s.SubDevices(gwPID, gwDN)
	devs := make([]gwDevice, len(subs))
	for i, sd := range subs {
		devs[i] = gwDevice{ProductID: sd.ID.ProductID, DeviceName: sd.ID.DeviceName}
	}
	return s.publishJSON(gw, map[string]any{"type": "describe_sub_devices", "payload": map[string]any{"devices": devs}})
}

// ErrBoundElsewhere: the sub-device is bound to another gateway.
var ErrBoundElsewhere = errors.New("sub-device bound to another gateway")

// maxGatewayAcks bounds the acknowledgements kept per gateway (a gateway may send any number).
const maxGatewayAcks = 256

// ackLog is a gateway's recent acknowledgements. Sequence numbers are absolute: msgs[0] is
// number base (the count of dropped ones), so a WaitGatewayAck index stays valid after drops.
type ackLog struct {
	base int
	msgs []json.RawMessage
}

// add appends m, dropping the oldest beyond maxGatewayAcks; it reports whether one was dropped.
func (l *ackLog) add(m json.RawMessage) bool {
	dropped := false
	if len(l.msgs) >= maxGatewayAcks {
		n := copy(l.msgs, l.msgs[1:])
		l.msgs[n] = nil
		l.msgs = l.msgs[:n]
		l.base++
		dropped = true
	}
	l.msgs = append(l.msgs, m)
	return dropped
}

// next returns the total count (base + len).
func (l *ackLog) next() int {
	if l == nil {
		return 0
	}
	return l.base + len(l.msgs)
}

// gatewayAcks returns the sequence number the gateway's next acknowledgement will get (the
// since to pass to WaitGatewayAck to wait for an answer to something sent now).
func (s *Server) gatewayAcks(gw DeviceID) int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.acks[gw].next()
}

func (s *Server) publishJSON(gw DeviceID, v any) error {
	b, err := marshalJSON(v)
	if err != nil {
		return err
	}
	return s.Publish("$gateway/operation/result/"+gw.ProductID+"/"+gw.DeviceName, b, 1)
}

// WaitGatewayAck waits for the gateway's next acknowledgement of the given type (change,
// unbind_all, search_devices; a cloud-sent describe_sub_devices is answered with change) whose
// sequence number is since or later, and returns it with the sequence number to pass next
// time. Start with since = 0. The platform keeps each gateway's newest 256 acknowledgements;
// older ones are dropped (and logged) and can no longer be waited for.
func (s *Server) WaitGatewayAck(ctx context.Context, gwPID, gwDN, typ string, since int) (json.RawMessage, int, error) {
	gw := DeviceID{gwPID, gwDN}
	for {
		s.gw.mu.Lock()
		var acks []json.RawMessage
		base := 0
		if l := s.gw.acks[gw]; l != nil {
			acks, base = append([]json.RawMessage(nil), l.msgs...), l.base // add shifts l.msgs in place
		}
		ch := s.gw.ackCh
		s.gw.mu.Unlock()
		since = max(since, base)
		for i := since - base; i < len(acks); i++ {
			var m gwMessage
			if unmarshalUntrusted(acks[i], &m) == nil && m.Type == typ {
				return acks[i], base + i + 1, nil
			}
		}
		since = base + len(acks)
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, since, fmt.Errorf("explorertest: no %s acknowledgement from %s: %w", typ, gw, ctx.Err())
		}
	}
}
