package explorertest

// Cloud-initiated data-template operations: control and actions, waiting for the device reply.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// newToken returns a UUID-like (version 4 layout) clientToken, like the platform's.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// toObject turns params (JSON text as []byte, json.RawMessage or string; or any value that
// marshals to a JSON object) into compact raw JSON.
func toObject(params any) (json.RawMessage, error) {
	var raw []byte
	switch p := params.(type) {
	case nil:
		return nil, errors.New("params: missing")
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	case string:
		raw = []byte(p)
	default:
		b, err := marshalJSON(p)
		if err != nil {
			return nil, fmt.Errorf("params: %w", err)
		}
		raw = b
	}
	var b bytes.Buffer
	if err := compactUntrusted(&b, raw); err != nil {
		return nil, fmt.Errorf("params: not valid JSON: %w", err)
	}
	if b.Len() == 0 || b.Bytes()[0] != '{' {
		return nil, fmt.Errorf("params: must be a JSON object, got %s", clip(b.Bytes()))
	}
	return b.Bytes(), nil
}

// lookup returns the template for a device the cloud API addresses.
func (tc *thingCloud) lookup(id DeviceID) (*template.Template, error) {
	if tc.exists != nil && !tc.exists(id) {
		return nil, fmt.Errorf("explorertest: %s: %w", id, ErrUnknownDevice)
	}
	tpl := tc.template(id.ProductID)
	if tpl == nil {
		return nil, fmt.Errorf("explorertest: %s: %w (call AddProduct)", id, ErrNoTemplate)
	}
	return tpl, nil
}

func (tc *thingCloud) sendControl(ctx context.Context, id DeviceID, params any) (*ControlReply, error) {
	tpl, err := tc.lookup(id)
	if err != nil {
		return nil, err
	}
	raw, err := toObject(params)
	if err != nil {
		return nil, fmt.Errorf("explorertest: control %s: %w", id, err)
	}
	if err := tpl.CheckProperties(raw, true); err != nil {
		return nil, fmt.Errorf("explorertest: control %s: %w", id, err)
	}
	token := newToken()
	key := replyKey{id, token}
	ch := make(chan result[ControlReply], 1)
	// Register before the online check so that a disconnect racing with us closes ch.
	tc.mu.Lock()
	tc.controls[key] = ch
	tc.mu.Unlock()
	if !tc.online(id) {
		values, err := splitObject(raw)
		if err != nil {
			return nil, fmt.Errorf("explorertest: control %s: params: %w", id, err)
		}
		tc.mu.Lock()
		delete(tc.controls, key)
		d := tc.deviceLocked(id)
		if d.pending == nil {
			d.pending = map[string]json.RawMessage{}
		}
		for k, v := range values {
			d.pending[k] = v
		}
		tc.notifyLocked()
		tc.mu.Unlock()
		tc.onChange(changePending, id, nil)
		tc.log.Info("thing: control stored as pending (device offline)", "device", id.String(), "params", string(raw))
		return nil, fmt.Errorf("explorertest: control %s: %w", id, ErrControlPending)
	}
	msg, _ := marshalJSON(struct {
		Method      string          `json:"method"`
		ClientToken string          `json:"clientToken"`
		Params      json.RawMessage `json:"params"`
	}{"control", token, raw})
	if err := tc.publish(downTopic("property", id), msg, 0); err != nil {
		forgetKey(tc, tc.controls, key)
		return nil, fmt.Errorf("explorertest: control %s: publish: %w", id, err)
	}
	tc.log.Info("thing: control sent", "device", id.String(), "clientToken", token, "params", string(raw))
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("explorertest: control %s (clientToken %s): %w", id, token, ErrNoReply)
		}
		if res.err != nil {
			return nil, fmt.Errorf("explorertest: control %s (clientToken %s): %w", id, token, res.err)
		}
		tc.log.Info("thing: control_reply", "device", id.String(), "clientToken", token, "code", res.rep.Code, "status", res.rep.Status)
		tc.onChange(changeControl, id, controlChange{Params: raw, Code: res.rep.Code, Status: res.rep.Status})
		return &res.rep, nil
	case <-ctx.Done():
		forgetKey(tc, tc.controls, key)
		return nil, fmt.Errorf("explorertest: control %s (clientToken %s): no control_reply: %w", id, token, ctx.Err())
	}
}

func forgetKey[T any](tc *thingCloud, m map[replyKey]chan T, key replyKey) {
	tc.mu.Lock()
	delete(m, key)
	tc.mu.Unlock()
}

func (tc *thingCloud) invokeAction(ctx context.Context, id DeviceID, actionID string, params any) (*ActionReply, error) {
	tpl, err := tc.lookup(id)
	if err != nil {
		return nil, err
	}
	if params == nil {
		params = json.RawMessage(`{}`)
	}
	raw, err := toObject(params)
	if err != nil {
		return nil, fmt.Errorf("explorertest: action %s on %s: %w", actionID, id, err)
	}
	if err := tpl.CheckActionInput(actionID, raw); err != nil {
		return nil, fmt.Errorf("explorertest: action %s on %s: %w", actionID, id, err)
	}
	token := newToken()
	key := replyKey{id, token}
	ch := make(chan result[ActionReply], 1)
	tc.mu.Lock()
	tc.actions[key] = ch
	tc.mu.Unlock()
	if !tc.online(id) {
		forgetKey(tc, tc.actions, key)
		return nil, fmt.Errorf("explorertest: action %s on %s: %w", actionID, id, ErrDeviceOffline)
	}
	msg, _ := marshalJSON(struct {
		Method      string          `json:"method"`
		ClientToken string          `json:"clientToken"`
		ActionID    string          `json:"actionId"`
		Timestamp   int64           `json:"timestamp"`
		Params      json.RawMessage `json:"params"`
	}{"action", token, actionID, tc.now().UnixMilli(), raw})
	if err := tc.publish(downTopic("action", id), msg, 0); err != nil {
		forgetKey(tc, tc.actions, key)
		return nil, fmt.Errorf("explorertest: action %s on %s: publish: %w", actionID, id, err)
	}
	tc.log.Info("thing: action sent", "device", id.String(), "actionId", actionID, "clientToken", token, "params", string(raw))
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("explorertest: action %s on %s (clientToken %s): %w", actionID, id, token, ErrNoReply)
		}
		if res.err != nil {
			return nil, fmt.Errorf("explorertest: action %s on %s (clientToken %s): %w", actionID, id, token, res.err)
		}
		r := res.rep
		tc.log.Info("thing: action_reply", "device", id.String(), "actionId", actionID, "clientToken", token, "code", r.Code, "status", r.Status)
		tc.onChange(changeAction, id, actionChange{Action: actionID, Params: raw, Code: r.Code, Status: r.Status, Response: r.Response})
		if r.Code == CodeSuccess {
			out := r.Response
			if isNull(out) {
				out = json.RawMessage(`{}`)
			}
			if err := tpl.CheckActionOutput(actionID, out); err != nil {
				return &r, fmt.Errorf("explorertest: action_reply %s from %s: response: %w", actionID, id, err)
			}
		}
		return &r, nil
	case <-ctx.Done():
		forgetKey(tc, tc.actions, key)
		return nil, fmt.Errorf("explorertest: action %s on %s (clientToken %s): no action_reply: %w", actionID, id, token, ctx.Err())
	}
}

// waitFor blocks until cond (called with tc.mu held) is true or ctx ends.
func (tc *thingCloud) waitFor(ctx context.Context, cond func() bool) error {
	for {
		tc.mu.Lock()
		ok := cond()
		ch := tc.changed
		tc.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func copyValues(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = append(json.RawMessage(nil), v...)
	}
	return out
}
