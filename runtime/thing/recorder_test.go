package thing

import (
	"context"
	"log/slog"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// recorder is an in-memory transport for the tests that look at message bytes only
// (conformance with the official SDK's transcript and FuzzDownlink); everything about the
// network is tested end to end against explorertest. With autoReply set it answers every
// request with a success reply, as the platform would.
type recorder struct {
	pid, dn   string
	autoReply bool

	mu        sync.Mutex
	published []published
	handlers  map[string]explorer.Handler
	cond      *sync.Cond
}

type published struct {
	Topic   string
	QoS     byte
	Payload []byte
}

func newRecorder(autoReply bool) *recorder {
	r := &recorder{pid: "ABCDEFGHIJ", dn: "dev1", autoReply: autoReply, handlers: map[string]explorer.Handler{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) Publish(_ context.Context, topic string, qos byte, payload []byte) error {
	r.mu.Lock()
	r.published = append(r.published, published{topic, qos, append([]byte(nil), payload...)})
	r.cond.Broadcast()
	r.mu.Unlock()
	if !r.autoReply {
		return nil
	}
	var req struct {
		Method      string `json:"method"`
		ClientToken string `json:"clientToken"`
	}
	if json.Unmarshal(payload, &req) != nil || req.ClientToken == "" {
		return nil
	}
	reply := map[string]string{
		methodReport: "report_reply", methodReportInfo: "report_info_reply", methodGetStatus: "get_status_reply",
		methodClearControl: "clear_control_reply", methodEventPost: "event_reply", methodEventsPost: "events_reply",
	}[req.Method]
	if reply == "" {
		return nil
	}
	down := "$thing/down/property/" + r.pid + "/" + r.dn
	if reply == "event_reply" || reply == "events_reply" {
		down = "$thing/down/event/" + r.pid + "/" + r.dn
	}
	msg, _ := json.Marshal(map[string]any{"method": reply, "clientToken": req.ClientToken, "code": 0, "status": "success", "data": map[string]any{}})
	go r.deliver(down, msg)
	return nil
}

// Now is the transport's clock.
func (r *recorder) Now() time.Time { return time.Now() }

func (r *recorder) deliver(topic string, payload []byte) {
	r.mu.Lock()
	h := r.handlers[topic]
	r.mu.Unlock()
	if h != nil {
		h(context.Background(), explorer.Message{Topic: topic, Payload: payload})
	}
}

func (r *recorder) Subscribe(_ context.Context, topic string, _ byte, h explorer.Handler) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers[topic] = h
	return nil
}

func (r *recorder) Unsubscribe(_ context.Context, topics ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range topics {
		delete(r.handlers, t)
	}
	return nil
}

func (r *recorder) OnConnect(func(context.Context)) func() { return func() {} }
func (r *recorder) ProductID() string                      { return r.pid }
func (r *recorder) DeviceName() string                     { return r.dn }
func (r *recorder) Logger() *slog.Logger                   { return slog.New(slog.DiscardHandler) }

// waitPublished waits until at least n messages were published and returns the n-th (1-based).
func (r *recorder) waitPublished(ctx context.Context, n int) (published, error) {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.published) < n {
		if err := ctx.Err(); err != nil {
			return published{}, err
		}
		r.cond.Wait()
	}
	return r.published[n-1], nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.published)
}
