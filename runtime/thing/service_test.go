package thing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// bindPlatform answers the service topic's requests the way the platform does
// (runtime/explorertest's binding feature), with the reply code chosen by the token; it is a
// Transport wrapping the recorder, which also shows that a Thing runs on any Transport.
type bindPlatform struct {
	*recorder
}

func (p bindPlatform) Publish(ctx context.Context, topic string, qos byte, payload []byte) error {
	_ = p.recorder.Publish(ctx, topic, qos, payload)
	var req struct {
		Method      string `json:"method"`
		ClientToken string `json:"clientToken"`
		Params      struct {
			Token string `json:"token"`
		} `json:"params"`
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return err
	}
	down := "$thing/down/service/" + p.pid + "/" + p.dn
	reply := func(method string, code int) {
		msg, _ := json.Marshal(map[string]any{"method": method, "clientToken": req.ClientToken, "code": code, "status": "x"})
		go p.deliver(down, msg)
	}
	switch req.Method {
	case "app_bind_token":
		reply("app_bind_token_reply", map[string]int{"good": 0, "gone": 404, "old": 410, "used": 409, "other": 403}[req.Params.Token])
	case "unbind_device_request":
		reply("unbind_device_reply", 0)
		go p.deliver(down, []byte(`{"method":"unbind_device","clientToken":"u-1","timestamp":1700000000123}`))
	}
	return nil
}

func TestServiceTopicBinding(t *testing.T) {
	plat := bindPlatform{newRecorder(false)}
	notices := make(chan BindingNotice, 4)
	other := make(chan string, 4)
	th, err := New(plat, loadLight(t), WithResyncOnConnect(false),
		WithBindingHandler(func(_ context.Context, n BindingNotice) { notices <- n }),
		WithServiceHandler(func(_ context.Context, method string, _ []byte) { other <- method }))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := th.BindAppToken(ctx, "good"); err != nil {
		t.Fatalf("BindAppToken: %v", err)
	}
	sent := plat.published[len(plat.published)-1]
	if sent.Topic != "$thing/up/service/ABCDEFGHIJ/dev1" || sent.QoS != 1 ||
		!strings.Contains(string(sent.Payload), `"method":"app_bind_token"`) || !strings.Contains(string(sent.Payload), `"params":{"token":"good"}`) {
		t.Errorf("app_bind_token sent as %s QoS %d: %s", sent.Topic, sent.QoS, sent.Payload)
	}
	for token, want := range map[string]error{"gone": ErrBindUnknownToken, "old": ErrBindTokenExpired, "used": ErrBindTokenUsed, "other": ErrBindOtherDevice} {
		err := th.BindAppToken(ctx, token)
		var re *ReplyError
		if !errors.Is(err, want) || !errors.As(err, &re) || re.Method != "app_bind_token_reply" {
			t.Errorf("BindAppToken(%q) = %v, want %v as a *ReplyError", token, err, want)
		}
	}

	if err := th.RequestUnbind(ctx); err != nil {
		t.Fatalf("RequestUnbind: %v", err)
	}
	var unbind published
	for _, p := range plat.published {
		if strings.Contains(string(p.Payload), "unbind_device_request") {
			unbind = p
		}
	}
	if !strings.Contains(string(unbind.Payload), `"deviceName":"dev1","productId":"ABCDEFGHIJ"`) || unbind.QoS != 1 {
		t.Errorf("unbind_device_request: QoS %d %s", unbind.QoS, unbind.Payload)
	}
	select {
	case n := <-notices:
		if n.Bound || n.Method != "unbind_device" || n.ClientToken != "u-1" || n.Time.UnixMilli() != 1700000000123 {
			t.Errorf("notice %+v", n)
		}
	case <-ctx.Done():
		t.Fatal("no unbind_device notice")
	}

	// Anything else unsolicited on the service topic reaches the untyped handler; a reply
	// nobody waits for reaches no handler.
	plat.deliver("$thing/down/service/ABCDEFGHIJ/dev1", []byte(`{"method":"kugou_query_song","clientToken":"k"}`))
	plat.deliver("$thing/down/service/ABCDEFGHIJ/dev1", []byte(`{"method":"app_bind_token_reply","clientToken":"ABCDEFGHIJ-999","code":0}`))
	select {
	case m := <-other:
		if m != "kugou_query_song" {
			t.Errorf("service handler got %q", m)
		}
	case <-ctx.Done():
		t.Fatal("value-added service message not delivered")
	}
	select {
	case m := <-other:
		t.Errorf("service handler got an unmatched reply %q", m)
	case <-time.After(50 * time.Millisecond):
	}
}
