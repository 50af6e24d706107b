package explorertest

// The data-template feature's Server methods (the exported cloud-side API).

import (
	"context"
	"errors"
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// AddProduct registers a product's data template under tpl.ProductID; the platform then validates
// that product's reports, events, control and actions against it.
func (s *Server) AddProduct(tpl *template.Template) error {
	if tpl == nil {
		return errors.New("explorertest: AddProduct: nil template")
	}
	if tpl.ProductID == "" {
		return errors.New("explorertest: AddProduct: template has no profile.ProductId; use AddProductAs")
	}
	return s.AddProductAs(tpl.ProductID, tpl)
}

// AddProductAs registers tpl as the data template of product pid (replacing any earlier one).
func (s *Server) AddProductAs(pid string, tpl *template.Template) error {
	if pid == "" {
		return errors.New("explorertest: AddProductAs: empty product id")
	}
	if tpl == nil {
		return fmt.Errorf("explorertest: AddProductAs %s: nil template", pid)
	}
	tc := s.thing
	tc.mu.Lock()
	tc.products[pid] = tpl
	tc.mu.Unlock()
	s.changedKey(changeProduct, pid)
	return nil
}

// Product returns the data template registered for pid.
func (s *Server) Product(pid string) (*template.Template, bool) {
	tpl := s.thing.template(pid)
	return tpl, tpl != nil
}

// SendControl sends control (params: a JSON object as text — []byte, json.RawMessage or string —
// or any value that marshals to one) to a device and waits for its control_reply. Only writable
// (rw) properties of the template are accepted; an invalid value is refused before anything is
// sent (the error wraps template.ErrUnknownID or template.ErrInvalidValue).
//
// The outcomes, decided when the call starts and kept to the end:
//   - device online, reply received: the reply (its Code says whether the device applied it);
//   - device offline when called: the control is stored as pending — served through
//     get_status until the device sends clear_control — and the error wraps ErrControlPending
//     (and ErrDeviceOffline);
//   - device online, but it goes offline before replying: the error wraps ErrNoReply (and
//     ErrDeviceOffline). The control was sent and may or may not have been applied; it is not
//     stored as pending, so the caller must retry it when the device is back;
//   - ctx ends first: ctx's error; as with ErrNoReply the outcome is unknown and nothing is
//     stored. A control_reply that arrives later is logged and dropped.
func (s *Server) SendControl(ctx context.Context, pid, dn string, params any) (*ControlReply, error) {
	return s.thing.sendControl(ctx, DeviceID{ProductID: pid, DeviceName: dn}, params)
}

// InvokeAction sends action actionID with its input params to an online device and waits for
// the action_reply. An offline device gets an error wrapping ErrDeviceOffline (actions are never
// stored); one that goes offline before replying an error wrapping ErrNoReply (outcome unknown). Input is checked against the template first. When the device answers code 0
// with a response that does not match the action's outputs, the reply is returned together with
// an error wrapping the template check error.
func (s *Server) InvokeAction(ctx context.Context, pid, dn, actionID string, params any) (*ActionReply, error) {
	return s.thing.invokeAction(ctx, DeviceID{ProductID: pid, DeviceName: dn}, actionID, params)
}

// Reported returns a copy of the device's reported properties (merged over all reports).
func (s *Server) Reported(pid, dn string) map[string]json.RawMessage {
	tc := s.thing
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return copyValues(tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn}).reported)
}

// SetReported seeds the device's reported state as if the device had reported params (a JSON
// object, validated against the template) — handy to give get_status something to return.
func (s *Server) SetReported(pid, dn string, params any) error {
	id := DeviceID{ProductID: pid, DeviceName: dn}
	tc := s.thing
	tpl := tc.template(pid)
	if tpl == nil {
		return fmt.Errorf("explorertest: SetReported %s: %w", id, ErrNoTemplate)
	}
	raw, err := toObject(params)
	if err == nil {
		err = tpl.CheckProperties(raw, false)
	}
	if err != nil {
		return fmt.Errorf("explorertest: SetReported %s: %w", id, err)
	}
	values, err := splitObject(raw)
	if err != nil {
		return fmt.Errorf("explorertest: SetReported %s: params: %w", id, err)
	}
	now := tc.now().UnixMilli()
	tc.mu.Lock()
	d := tc.deviceLocked(id)
	for k, v := range values {
		d.reported[k] = v
		d.reportedAt[k] = now
	}
	tc.notifyLocked()
	tc.mu.Unlock()
	tc.onChange(changeReported, id, reportedChange{Params: raw, Timestamp: now})
	return nil
}

// PendingControl returns the control stored for an offline device that it has not cleared yet
// (nil when none).
func (s *Server) PendingControl(pid, dn string) map[string]json.RawMessage {
	tc := s.thing
	tc.mu.Lock()
	defer tc.mu.Unlock()
	d := tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn})
	if len(d.pending) == 0 {
		return nil
	}
	return copyValues(d.pending)
}

// Events returns the events the device posted, oldest first: the newest 10 000 (and at most
// 8 MiB of params); older ones are dropped and counted (ThingState.EventsDropped).
func (s *Server) Events(pid, dn string) []EventRecord {
	tc := s.thing
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return append([]EventRecord(nil), tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn}).events...)
}

// ReportedInfo returns what the device last sent with report_info.
func (s *Server) ReportedInfo(pid, dn string) (InfoReport, bool) {
	tc := s.thing
	tc.mu.Lock()
	defer tc.mu.Unlock()
	info := tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn}).info
	if info == nil {
		return InfoReport{}, false
	}
	return *info, true
}

// WaitReported waits until the device has reported property key and returns its value.
func (s *Server) WaitReported(ctx context.Context, pid, dn, key string) (json.RawMessage, error) {
	var v json.RawMessage
	err := s.WaitThing(ctx, pid, dn, func(st ThingState) bool {
		var ok bool
		v, ok = st.Reported[key]
		return ok
	})
	if err != nil {
		return nil, fmt.Errorf("explorertest: waiting for %s/%s to report %q: %w", pid, dn, key, err)
	}
	return v, nil
}

// WaitEvents waits until the device has posted at least n events and returns them all.
func (s *Server) WaitEvents(ctx context.Context, pid, dn string, n int) ([]EventRecord, error) {
	var evs []EventRecord
	err := s.WaitThing(ctx, pid, dn, func(st ThingState) bool {
		evs = st.Events
		return len(evs) >= n
	})
	if err != nil {
		return nil, fmt.Errorf("explorertest: waiting for %d events from %s/%s: %w", n, pid, dn, err)
	}
	return append([]EventRecord(nil), evs...), nil
}

// WaitThing waits until cond holds for the device's data-template state. cond is evaluated
// under the data-template lock after every data-template state change (reports, events, pending
// control, info, a device going offline): keep it short, and do not call the Server's
// data-template methods from it (Reported, Events, ...: same lock). Registry queries such as
// Online are fine.
func (s *Server) WaitThing(ctx context.Context, pid, dn string, cond func(ThingState) bool) error {
	tc := s.thing
	id := DeviceID{ProductID: pid, DeviceName: dn}
	return tc.waitFor(ctx, func() bool {
		d := tc.peekLocked(id)
		return cond(ThingState{Reported: d.reported, Pending: d.pending, Events: d.events, EventsDropped: d.dropped, Info: d.info})
	})
}

// eventsDropped is how many of the device's events were dropped to keep its history bounded.
func (s *Server) eventsDropped(id DeviceID) int {
	s.thing.mu.Lock()
	defer s.thing.mu.Unlock()
	return s.thing.peekLocked(id).dropped
}
