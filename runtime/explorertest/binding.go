package explorertest

// Device binding (docs/PROTOCOL.md §2.4.8, §7.10): which app user a device belongs to.
//
// The consumer flow: the app asks the cloud for a token (IssueAppToken, or POST
// /api/devices/{pid}/{dn}/app-token), hands it to the device during Wi-Fi provisioning, and the
// device sends it in app_bind_token on $thing/up/service/{pid}/{dn}; the platform answers
// app_bind_token_reply on $thing/down/service/{pid}/{dn} and, on success, the device is bound to
// the token's user. A factory reset sends unbind_device_request: the platform answers
// unbind_device_reply, unbinds the device and pushes an unbind_device notice. The cloud side can
// bind and unbind too (BindDevice, UnbindDevice), pushing bind_device / unbind_device.
//
// Tokens are single-use, belong to one device and expire (DefaultAppTokenTTL). At most
// maxAppTokens live tokens are kept; issuing one more drops the oldest (counted in
// AppTokenStats). With --data, tokens (expiry and use included) and bindings survive a restart
// (persist.go).

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	json "github.com/goccy/go-json"
)

// Reply codes of app_bind_token_reply and unbind_device_reply. The protocol documents none
// besides 0, so these are this emulator's choice (docs/PROTOCOL.md §2.4.8 points here), in the
// HTTP style of the data-template codes.
const (
	BindCodeSuccess      = 0   // bound (or unbound)
	BindCodeMalformed    = 400 // params.token missing or not a string, or unreadable JSON
	BindCodeOtherDevice  = 403 // the token was issued for another device; or, in unbind_device_request, productId/deviceName name another device
	BindCodeUnknownToken = 404 // no such token was ever issued (or it was dropped)
	BindCodeTokenUsed    = 409 // the token already bound a device
	BindCodeTokenExpired = 410 // the token's validity ended
)

// DefaultAppTokenTTL is how long an app token stays valid unless IssueAppToken is given a ttl.
const DefaultAppTokenTTL = 10 * time.Minute

const (
	maxAppTokens   = 1024 // live tokens kept (oldest dropped beyond)
	maxTokenLen    = 256  // longest token accepted in app_bind_token
	defaultAppUser = "app-user"
)

// AppToken is a token the app hands to a device to bind it to User.
type AppToken struct {
	Token      string    `json:"token"`
	ProductID  string    `json:"product_id"`
	DeviceName string    `json:"device_name"`
	User       string    `json:"user"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Binding is the app user a device is bound to.
type Binding struct {
	User    string    `json:"user"`
	BoundAt time.Time `json:"bound_at"`
	// Via is how it was bound: "app_bind_token" (the device sent a token) or "cloud" (BindDevice).
	Via string `json:"via"`
}

type appToken struct {
	AppToken
	seq  uint64 // issue order (clock ticks can tie)
	used bool
}

// bindCloud is the binding feature's state (Server field bind).
type bindCloud struct {
	s *Server

	mu      sync.Mutex
	tokens  map[string]*appToken
	bound   map[DeviceID]Binding
	dropped int    // tokens dropped because maxAppTokens was reached
	seq     uint64 // last token's issue order
}

// initBinding is the binding feature's init (features.go).
func (s *Server) initBinding() error {
	b := &bindCloud{s: s, tokens: map[string]*appToken{}, bound: map[DeviceID]Binding{}}
	s.bind = b
	s.persistSection(changeBinding, persistFuncs{save: s.saveBinding, restore: s.restoreBinding}) // --data (persist.go)
	s.persistSection(changeAppTokens, persistFuncs{save: s.saveAppTokens, restore: s.restoreAppTokens, loaded: s.boundAppTokens})
	s.handleUplink("$thing/up/service/", b.handle)
	s.addDeviceDetail("binding", func(id DeviceID) any { return s.bindingJSON(id) })
	s.onDeviceRemoved(func(id DeviceID) {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.bound, id)
		for k, t := range b.tokens {
			if t.ProductID == id.ProductID && t.DeviceName == id.DeviceName {
				delete(b.tokens, k)
			}
		}
	})
	s.mountBindingAPI()
	return nil
}

// IssueAppToken creates a single-use token binding device pid/dn to user when the device sends
// it in app_bind_token. ttl <= 0 means DefaultAppTokenTTL; an empty user means "app-user".
func (s *Server) IssueAppToken(pid, dn, user string, ttl time.Duration) (AppToken, error) {
	if s.isFinished() {
		return AppToken{}, ErrClosed
	}
	id := DeviceID{pid, dn}
	if _, ok := s.lookupDevice(id); !ok {
		return AppToken{}, fmt.Errorf("explorertest: IssueAppToken %s: %w", id, ErrUnknownDevice)
	}
	if ttl <= 0 {
		ttl = DefaultAppTokenTTL
	}
	if user == "" {
		user = defaultAppUser
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	now := s.clock()
	t := &appToken{AppToken: AppToken{Token: hex.EncodeToString(raw[:]), ProductID: pid, DeviceName: dn, User: user, ExpiresAt: now.Add(ttl)}}
	b := s.bind
	b.mu.Lock()
	affected := b.pruneLocked(now, 1)
	b.seq++
	t.seq = b.seq
	b.tokens[t.Token] = t
	b.mu.Unlock()
	for _, d := range append(affected, id) {
		s.changed(changeAppTokens, d, nil) // --data (persist.go)
	}
	return t.AppToken, nil
}

// pruneLocked forgets expired and used tokens past their expiry, then the oldest tokens while
// more than maxAppTokens-room remain, and returns the devices that lost tokens. Call with b.mu
// held.
func (b *bindCloud) pruneLocked(now time.Time, room int) []DeviceID {
	lost := map[DeviceID]bool{}
	for k, t := range b.tokens {
		if now.After(t.ExpiresAt.Add(time.Hour)) { // kept an hour past expiry to answer "expired", not "unknown"
			delete(b.tokens, k)
			lost[DeviceID{t.ProductID, t.DeviceName}] = true
		}
	}
	if n := len(b.tokens) - (maxAppTokens - room); n > 0 {
		all := make([]*appToken, 0, len(b.tokens))
		for _, t := range b.tokens {
			all = append(all, t)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
		for _, t := range all[:n] {
			delete(b.tokens, t.Token)
			lost[DeviceID{t.ProductID, t.DeviceName}] = true
			b.dropped++
		}
	}
	out := make([]DeviceID, 0, len(lost))
	for id := range lost {
		out = append(out, id)
	}
	return out
}

// AppTokenStats reports how many tokens are kept and how many were dropped to stay within the
// platform's bound.
func (s *Server) AppTokenStats() (kept, dropped int) {
	s.bind.mu.Lock()
	defer s.bind.mu.Unlock()
	return len(s.bind.tokens), s.bind.dropped
}

// Binding returns the user device pid/dn is bound to.
func (s *Server) Binding(pid, dn string) (Binding, bool) {
	s.bind.mu.Lock()
	defer s.bind.mu.Unlock()
	bd, ok := s.bind.bound[DeviceID{pid, dn}]
	return bd, ok
}

// BindDevice binds device pid/dn to user from the cloud side (as the app does after a share or
// a BLE bind) and pushes a bind_device notice to it (no reply expected; an offline device misses
// it, as on the platform).
func (s *Server) BindDevice(pid, dn, user string) error {
	id := DeviceID{pid, dn}
	if _, ok := s.lookupDevice(id); !ok {
		return fmt.Errorf("explorertest: BindDevice %s: %w", id, ErrUnknownDevice)
	}
	if user == "" {
		return fmt.Errorf("explorertest: BindDevice %s: empty user: %w", id, errBadBindRequest)
	}
	s.bind.mu.Lock()
	s.bind.bound[id] = Binding{User: user, BoundAt: s.clock(), Via: "cloud"}
	s.bind.mu.Unlock()
	s.changed(changeBinding, id, nil)
	s.log.Info("binding: device bound from the cloud", "device", id.String(), "user", user)
	return s.bind.notify(id, "bind_device")
}

// UnbindDevice removes device pid/dn's binding from the cloud side (the user deleted it in the
// app) and pushes an unbind_device notice. Unbinding an unbound device only sends the notice.
func (s *Server) UnbindDevice(pid, dn string) error {
	id := DeviceID{pid, dn}
	if _, ok := s.lookupDevice(id); !ok {
		return fmt.Errorf("explorertest: UnbindDevice %s: %w", id, ErrUnknownDevice)
	}
	s.bind.mu.Lock()
	_, was := s.bind.bound[id]
	delete(s.bind.bound, id)
	s.bind.mu.Unlock()
	s.changed(changeBinding, id, nil)
	s.log.Info("binding: device unbound from the cloud", "device", id.String(), "was_bound", was)
	return s.bind.notify(id, "unbind_device")
}

// notify pushes bind_device or unbind_device: {"method","clientToken","timestamp"} with the
// timestamp in Unix seconds, as in the platform's documented example.
func (b *bindCloud) notify(id DeviceID, method string) error {
	msg, err := marshalJSON(map[string]any{"method": method, "clientToken": newToken(), "timestamp": b.s.clock().Unix()})
	if err != nil {
		return err
	}
	if err := b.s.Publish(downTopic("service", id), msg, 1); err != nil {
		return fmt.Errorf("explorertest: %s to %s: %w", method, id, err)
	}
	b.s.log.Info("binding: notice sent", "device", id.String(), "method", method)
	return nil
}

// serviceUp is the part of a $thing/up/service message this feature reads.
type serviceUp struct {
	Method      json.RawMessage `json:"method"`
	ClientToken json.RawMessage `json:"clientToken"`
	Params      json.RawMessage `json:"params"`
	ProductID   json.RawMessage `json:"productId"`
	DeviceName  json.RawMessage `json:"deviceName"`
}

// handle serves app_bind_token and unbind_device_request. Other service methods belong to
// other features (or none) and are left alone.
func (b *bindCloud) handle(u uplink) {
	id := u.Device
	var m serviceUp
	if err := unmarshalUntrusted(u.Payload, &m); err != nil {
		b.s.log.Info("binding: unreadable service message", "topic", u.Topic, "err", err)
		return
	}
	method, _ := rawString(m.Method, "method")
	token, cerr := rawString(m.ClientToken, "clientToken")
	switch method {
	case "app_bind_token":
		if cerr == nil {
			cerr = b.appBindToken(id, &m)
		}
		b.reply(id, "app_bind_token_reply", token, cerr, u.Topic)
	case "unbind_device_request":
		if cerr == nil {
			cerr = b.unbindRequest(id, &m)
		}
		b.reply(id, "unbind_device_reply", token, cerr, u.Topic)
		if cerr == nil {
			if err := b.notify(id, "unbind_device"); err != nil {
				b.s.log.Warn("binding: unbind_device notice", "device", id.String(), "err", err)
			}
		}
	}
}

func (b *bindCloud) appBindToken(id DeviceID, m *serviceUp) *codeError {
	if cerr := parseObject(m.Params, "params"); cerr != nil {
		return rejectf(BindCodeMalformed, "%s", cerr.msg)
	}
	var p struct {
		Token json.RawMessage `json:"token"`
	}
	if err := unmarshalUntrusted(m.Params, &p); err != nil {
		return rejectf(BindCodeMalformed, "params: %v", err)
	}
	tok, cerr := rawString(p.Token, "params.token")
	switch {
	case cerr != nil:
		return rejectf(BindCodeMalformed, "%s", cerr.msg)
	case tok == "":
		return rejectf(BindCodeMalformed, "params.token: missing")
	case len(tok) > maxTokenLen:
		return rejectf(BindCodeMalformed, "params.token: %d bytes, longer than %d", len(tok), maxTokenLen)
	}
	now := b.s.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tokens[tok]
	switch {
	case t == nil:
		return rejectf(BindCodeUnknownToken, "params.token: unknown token (never issued, or dropped)")
	case t.ProductID != id.ProductID || t.DeviceName != id.DeviceName:
		return rejectf(BindCodeOtherDevice, "params.token: issued for another device")
	case t.used:
		return rejectf(BindCodeTokenUsed, "params.token: already used")
	case now.After(t.ExpiresAt):
		return rejectf(BindCodeTokenExpired, "params.token: expired at %s", t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	t.used = true
	b.bound[id] = Binding{User: t.User, BoundAt: now, Via: "app_bind_token"}
	b.s.changed(changeBinding, id, nil)
	b.s.changed(changeAppTokens, id, nil)
	b.s.log.Info("binding: device bound", "device", id.String(), "user", t.User)
	return nil
}

func (b *bindCloud) unbindRequest(id DeviceID, m *serviceUp) *codeError {
	for _, f := range []struct {
		raw        json.RawMessage
		field, own string
	}{{m.ProductID, "productId", id.ProductID}, {m.DeviceName, "deviceName", id.DeviceName}} {
		v, cerr := rawString(f.raw, f.field)
		if cerr != nil {
			return rejectf(BindCodeMalformed, "%s", cerr.msg)
		}
		if v != "" && v != f.own {
			return rejectf(BindCodeOtherDevice, "%s: %q is not the device of the topic (%s)", f.field, v, id)
		}
	}
	b.mu.Lock()
	_, was := b.bound[id]
	delete(b.bound, id)
	b.mu.Unlock()
	b.s.changed(changeBinding, id, nil)
	b.s.log.Info("binding: device unbound at its request", "device", id.String(), "was_bound", was)
	return nil
}

// reply sends method (app_bind_token_reply, unbind_device_reply) with cerr's code, or success.
func (b *bindCloud) reply(id DeviceID, method, token string, cerr *codeError, topic string) {
	r := reply{Method: method, ClientToken: token, Code: BindCodeSuccess, Status: "success"}
	if cerr != nil {
		r.Code, r.Status = cerr.code, cerr.msg
		b.s.log.Info("binding: refused", "topic", topic, "method", method, "code", cerr.code, "reason", cerr.msg)
	}
	msg, err := marshalJSON(r)
	if err == nil {
		err = b.s.Publish(downTopic("service", id), msg, 1)
	}
	if err != nil {
		b.s.log.Warn("binding: reply", "device", id.String(), "method", method, "err", err)
	}
}

// errBadBindRequest marks a JSON API request the binding feature refuses (400).
var errBadBindRequest = errors.New("bad binding request")
