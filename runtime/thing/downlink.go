package thing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// onMessage is the explorer.Handler of the four downlink subscriptions.
func (t *Thing) onMessage(_ context.Context, m explorer.Message) {
	t.dispatch(m.Topic, m.Payload)
}

// dispatch routes one downlink message. It never blocks for long (handlers run on the
// worker or their own goroutine) and never panics: a malformed message is logged with its
// topic and the offending field, and answered when the sender waits for an answer.
func (t *Thing) dispatch(topic string, payload []byte) {
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("bug: panic while dispatching a downlink message", "topic", topic, "panic", fmt.Sprint(r))
		}
	}()
	if t.isClosed() {
		t.log.Debug("downlink after Close ignored", "topic", topic)
		return
	}
	kind, ok := splitDownTopic(topic)
	if !ok {
		t.log.Warn("message on an unexpected topic ignored", "topic", topic)
		return
	}
	var m downMsg // on the stack: a reply is copied to its waiter
	obj, err := parseDownInto(payload, &m)
	if obj && strings.HasSuffix(m.Method, replySuffix) {
		t.deliverReply(topic, &m, err)
		return
	}
	// File management shares the service topic (NewFiles); its messages are parsed there.
	if obj && kind == topicKindService && t.routeFiles(topic, m.Method, payload) {
		return
	}
	if err != nil {
		t.log.Warn("malformed downlink message", "topic", topic, "error", err)
		if obj {
			t.rejectMalformed(topic, kind, m.Method, m.ClientToken, err)
		}
		return
	}
	msg := new(downMsg) // handled on another goroutine
	*msg = m
	switch {
	case kind == topicKindProperty && msg.Method == methodControl:
		t.enqueue(topic, msg, func() { t.handleControl(topic, msg) })
	case kind == topicKindAction && msg.Method == methodAction:
		t.startAction(topic, msg)
	case kind == topicKindService:
		t.enqueue(topic, msg, func() { t.handleService(topic, msg) })
	default:
		t.log.Warn("unknown downlink method ignored", "topic", topic, "method", msg.Method)
	}
}

// rejectMalformed answers a control or action whose message could not be parsed, when its
// method and clientToken were readable (otherwise there is nobody to answer).
func (t *Thing) rejectMalformed(topic, kind, method, token string, err error) {
	if token == "" {
		return
	}
	switch {
	case kind == topicKindProperty && method == methodControl:
		t.sendControlReply(token, CodeMalformed, err.Error())
	case kind == topicKindAction && method == methodAction:
		t.sendActionReply(token, CodeMalformed, err.Error(), nil)
	}
}

// enqueue hands work to the control worker; when its queue is full the message is
// answered with CodeInternal instead of blocking the connection's delivery goroutine.
func (t *Thing) enqueue(topic string, msg *downMsg, work func()) {
	select {
	case t.controlQueue() <- work:
		t.kick()
	default:
		t.log.Error("control queue full; message rejected", "topic", topic, "method", msg.Method,
			"clientToken", msg.ClientToken)
		if msg.Method == methodControl && msg.ClientToken != "" {
			t.sendControlReply(msg.ClientToken, CodeInternal, "device busy")
		}
	}
}

// controlQueue returns the control worker's queue, made on first use: most of a gateway's up to
// 1500 sub-device Things never receive control, and a queue of controlQueueLen slots is about
// 600 bytes each.
func (t *Thing) controlQueue() chan func() {
	if q := t.controlQ.Load(); q != nil {
		return *q
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if q := t.controlQ.Load(); q != nil {
		return *q
	}
	q := make(chan func(), t.opts.controlQueueLen)
	t.controlQ.Store(&q)
	return q
}

// kick starts the control worker unless it is running. The worker exists only while there
// is queued work, so an idle Thing holds no goroutine (a gateway keeps one Thing per
// sub-device, up to 1500). Call it after every send on controlQ.
func (t *Thing) kick() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.working {
		return
	}
	t.working = true
	t.wg.Add(1)
	go t.controlWorker()
}

// controlWorker runs queued work in order and ends when the queue is empty (or at Close).
// It decides to end under t.mu, which kick also holds, so work queued meanwhile is never
// stranded: either this worker sees it, or kick sees working == false and starts another.
func (t *Thing) controlWorker() {
	defer t.wg.Done()
	q := t.controlQueue() // made before the kick that started this worker
	for {
		select {
		case work := <-q:
			work()
			continue
		case <-t.done:
			return
		default:
		}
		t.mu.Lock()
		if len(q) == 0 {
			t.working = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// handleControl validates a control, runs the handler and answers control_reply.
func (t *Thing) handleControl(topic string, msg *downMsg) {
	code, status := t.applyControl(topic, msg.Params)
	if msg.ClientToken == "" {
		t.log.Warn("control without clientToken: applied, but no reply can be sent", "topic", topic,
			"code", code)
		return
	}
	t.sendControlReply(msg.ClientToken, code, status)
}

// applyControl checks params against the template (writable properties only) and runs the
// control handler; it returns the reply code and status.
func (t *Thing) applyControl(topic string, params json.RawMessage) (int, string) {
	if params == nil {
		t.log.Warn("control without params", "topic", topic, "field", "params")
		return CodeMalformed, "field params: missing"
	}
	if err := t.tpl.CheckProperties(params, true); err != nil {
		t.log.Warn("control rejected", "topic", topic, "error", err)
		return codeFor(err), err.Error()
	}
	if t.opts.control == nil {
		t.log.Warn("control received but no control handler is set", "topic", topic)
		return CodeFailed, "no control handler"
	}
	err := t.callHandler(func(ctx context.Context) error { return t.opts.control(ctx, params) })
	if err != nil {
		t.log.Warn("control handler failed", "topic", topic, "error", err)
		return failureCode(err), failureStatus(err)
	}
	return CodeOK, controlSuccessStatus
}

// failureCode is the reply code for a handler error: its *ReplyError code, else CodeFailed
// (never 0, which would claim success).
func failureCode(err error) int {
	if c := ReplyCode(err); c != CodeOK {
		return c
	}
	return CodeFailed
}

// failureStatus is the reply status for a handler error: the Status of a *ReplyError made
// with Errorf (not its Error text, which adds the code), else the error text.
func failureStatus(err error) string {
	if re, ok := err.(*ReplyError); ok && re.Status != "" {
		return re.Status
	}
	return err.Error()
}

// callHandler runs fn with a bounded ctx, turning a panic into an error.
func (t *Thing) callHandler(fn func(ctx context.Context) error) (err error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.opts.handlerTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return fn(ctx)
}

func (t *Thing) sendControlReply(token string, code int, status string) {
	payload, err := json.Marshal(controlReplyMsg{
		Method: methodControlReply, ClientToken: token, Code: code, Status: truncateStatus(status),
	})
	if err == nil {
		err = t.publishReply(t.topics.upProperty, payload)
	}
	if err != nil {
		t.log.Error("control_reply not sent", "topic", t.topics.upProperty, "clientToken", token, "error", err)
	}
}

// startAction checks an action's shape and input synchronously (cheap) and runs its handler
// on its own goroutine, bounded by WithMaxConcurrentActions.
func (t *Thing) startAction(topic string, msg *downMsg) {
	if msg.ClientToken == "" {
		t.log.Warn("action without clientToken ignored: no reply could be sent", "topic", topic,
			"field", "clientToken", "actionId", msg.ActionID)
		return
	}
	if msg.ActionID == "" {
		t.log.Warn("action without actionId", "topic", topic, "field", "actionId")
		t.sendActionReply(msg.ClientToken, CodeMalformed, "field actionId: missing", nil)
		return
	}
	if t.tpl.Action(msg.ActionID) == nil {
		t.log.Warn("unknown action", "topic", topic, "actionId", msg.ActionID)
		t.sendActionReply(msg.ClientToken, CodeUnknownID, fmt.Sprintf("unknown action %q", msg.ActionID), nil)
		return
	}
	input := msg.Params
	if input == nil {
		input = json.RawMessage("{}") // an action without inputs may omit params
	}
	if err := t.tpl.CheckActionInput(msg.ActionID, input); err != nil {
		t.log.Warn("action input rejected", "topic", topic, "actionId", msg.ActionID, "error", err)
		t.sendActionReply(msg.ClientToken, codeFor(err), err.Error(), nil)
		return
	}
	if t.opts.action == nil && t.opts.actionEncoded == nil {
		t.log.Warn("action received but no action handler is set", "topic", topic, "actionId", msg.ActionID)
		t.sendActionReply(msg.ClientToken, CodeFailed, "no action handler", nil)
		return
	}
	select {
	case t.actionSem <- struct{}{}:
	default:
		t.log.Error("too many concurrent actions; action rejected", "topic", topic, "actionId", msg.ActionID)
		t.sendActionReply(msg.ClientToken, CodeInternal, "device busy", nil)
		return
	}
	started := t.goTracked(func() {
		code, status, response := t.runAction(topic, msg.ActionID, input)
		// Free the slot before answering: once the cloud has the reply it may send the
		// next action, which must find the slot free.
		<-t.actionSem
		t.sendActionReply(msg.ClientToken, code, status, response)
	})
	if !started {
		<-t.actionSem
	}
}

// runAction runs the handler and checks its output; it returns the action_reply's code,
// status and response.
func (t *Thing) runAction(topic, actionID string, input json.RawMessage) (int, string, json.RawMessage) {
	if t.opts.actionEncoded != nil {
		// Typed (generated) actions: the output was checked by its Validate method and
		// encoded by its AppendJSON.
		var raw []byte
		err := t.callHandler(func(ctx context.Context) error {
			var err error
			raw, err = t.opts.actionEncoded(ctx, actionID, input)
			return err
		})
		var oe *outputError
		switch {
		case errors.As(err, &oe):
			t.log.Error("action handler returned invalid output", "topic", topic, "actionId", actionID, "error", err)
			return CodeFailed, err.Error(), nil
		case err != nil:
			t.log.Warn("action handler failed", "topic", topic, "actionId", actionID, "error", err)
			return failureCode(err), failureStatus(err), nil
		}
		return CodeOK, actionSuccessStatus, raw
	}
	var out any
	err := t.callHandler(func(ctx context.Context) error {
		var err error
		out, err = t.opts.action(ctx, actionID, input)
		return err
	})
	if err != nil {
		t.log.Warn("action handler failed", "topic", topic, "actionId", actionID, "error", err)
		return failureCode(err), failureStatus(err), nil
	}
	if out == nil {
		out = json.RawMessage("{}")
	}
	raw, err := marshalObject("action output", out)
	if err == nil {
		err = t.tpl.CheckActionOutput(actionID, raw)
	}
	if err != nil {
		// The handler's output does not match the template: answer a failure rather than
		// send values the platform would reject.
		t.log.Error("action handler returned invalid output", "topic", topic, "actionId", actionID, "error", err)
		return CodeFailed, "invalid action output: " + err.Error(), nil
	}
	return CodeOK, actionSuccessStatus, raw
}

func (t *Thing) sendActionReply(token string, code int, status string, response json.RawMessage) {
	if response == nil {
		response = json.RawMessage("{}")
	}
	payload, err := json.Marshal(actionReplyMsg{
		Method: methodActionReply, ClientToken: token, Code: code, Status: truncateStatus(status), Response: response,
	})
	if err == nil {
		err = t.publishReply(t.topics.upAction, payload)
	}
	if err != nil {
		t.log.Error("action_reply not sent", "topic", t.topics.upAction, "clientToken", token, "error", err)
	}
}

// publishReply sends a control_reply or action_reply at QoS 1, as the C SDK does: on a
// flaky link a reply lost at QoS 0 makes the app see a timeout for a control or action that
// ran (docs/PROTOCOL.md §2.1).
func (t *Thing) publishReply(topic string, payload []byte) error {
	ctx, cancel := context.WithTimeout(t.ctx, t.opts.handlerTimeout)
	defer cancel()
	return t.conn.Publish(ctx, topic, 1, payload)
}
