package explorertest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// Helpers shared by the thing, API and transcript tests: a platform with the light template and
// a raw paho device that speaks the wire protocol by hand (no runtime/thing in between).

const (
	thLightPID = "ZPHBLEB4J5" // profile.ProductId of schemas/light.json
	thWait     = 20 * time.Second
)

// thLoadTemplate parses schemas/{name}, the repository's one copy of each product template.
func thLoadTemplate(t testing.TB, name string) *template.Template {
	t.Helper()
	tpl, err := template.ParseFile("../../schemas/" + name)
	if err != nil {
		t.Fatalf("parse schemas/%s: %v", name, err)
	}
	return tpl
}

func newThingServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.AddProduct(thLoadTemplate(t, "light.json")); err != nil {
		t.Fatalf("AddProduct: %v", err)
	}
	return s
}

func thCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), thWait)
	t.Cleanup(cancel)
	return ctx
}

// thMsg is a cloud→device message as the raw device saw it.
type thMsg struct {
	Topic string
	Raw   []byte
	Body  map[string]any
}

func (m thMsg) str(key string) string { s, _ := m.Body[key].(string); return s }

func (m thMsg) code(t testing.TB) int {
	t.Helper()
	n, ok := m.Body["code"].(json.Number)
	if !ok {
		t.Fatalf("%s: code missing or not a number: %s", m.Topic, m.Raw)
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		t.Fatalf("%s: code %s: %v", m.Topic, n, err)
	}
	return i
}

// keys returns the sorted top-level keys, to compare reply shapes.
func (m thMsg) keys() string {
	ks := make([]string, 0, len(m.Body))
	for k := range m.Body {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func thDecode(raw []byte) (map[string]any, error) {
	var body map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	err := dec.Decode(&body)
	return body, err
}

// thDevice is a device built directly on paho, subscribed to its $thing/down topics.
type thDevice struct {
	t    testing.TB
	id   DeviceID
	c    paho.Client
	msgs chan thMsg
}

// thSign computes the platform's username/password (HMAC-SHA256 variant) independently of
// runtime/explorer.
func thSign(t testing.TB, pid, dn, secret string, expiry int64) (user, pass string) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		t.Fatalf("secret: %v", err)
	}
	user = fmt.Sprintf("%s%s;12010126;ab3dE;%d", pid, dn, expiry)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(user))
	return user, hex.EncodeToString(mac.Sum(nil)) + ";hmacsha256"
}

func thConnect(t testing.TB, s *Server, pid, dn, secret string) *thDevice {
	t.Helper()
	user, pass := thSign(t, pid, dn, secret, time.Now().Add(time.Hour).Unix())
	return thConnectAs(t, s, pid, dn, user, pass, 4, []string{"property", "event", "action"})
}

func thConnectAs(t testing.TB, s *Server, pid, dn, user, pass string, protocol uint, kinds []string) *thDevice {
	t.Helper()
	d := &thDevice{t: t, id: DeviceID{pid, dn}, msgs: make(chan thMsg, 256)}
	opts := paho.NewClientOptions().
		AddBroker(s.BrokerURL()).
		SetClientID(pid + dn).
		SetUsername(user).
		SetPassword(pass).
		SetProtocolVersion(protocol).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(thWait)
	d.c = paho.NewClient(opts)
	if tok := d.c.Connect(); !tok.WaitTimeout(thWait) || tok.Error() != nil {
		t.Fatalf("connect %s/%s: %v", pid, dn, tok.Error())
	}
	t.Cleanup(d.close)
	for _, k := range kinds {
		d.subscribe("$thing/down/" + k + "/" + pid + "/" + dn)
	}
	return d
}

func (d *thDevice) subscribe(topic string) {
	d.t.Helper()
	tok := d.c.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		body, _ := thDecode(m.Payload())
		d.msgs <- thMsg{Topic: m.Topic(), Raw: append([]byte(nil), m.Payload()...), Body: body}
	})
	if !tok.WaitTimeout(thWait) || tok.Error() != nil {
		d.t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
}

func (d *thDevice) close() {
	if d.c.IsConnected() {
		d.c.Disconnect(100)
	}
}

func (d *thDevice) topic(dir, kind string) string {
	return "$thing/" + dir + "/" + kind + "/" + d.id.ProductID + "/" + d.id.DeviceName
}

func (d *thDevice) publish(topic string, payload string) {
	d.t.Helper()
	tok := d.c.Publish(topic, 0, false, payload)
	if !tok.WaitTimeout(thWait) || tok.Error() != nil {
		d.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// next returns the next cloud→device message.
func (d *thDevice) next() thMsg {
	d.t.Helper()
	select {
	case m := <-d.msgs:
		return m
	case <-time.After(thWait):
		d.t.Fatalf("%s: no cloud→device message within %v", d.id, thWait)
		return thMsg{}
	}
}

// call publishes payload on $thing/up/{kind} and returns the cloud's answer on $thing/down/{kind}.
func (d *thDevice) call(kind, payload string) thMsg {
	d.t.Helper()
	d.publish(d.topic("up", kind), payload)
	m := d.next()
	if m.Topic != d.topic("down", kind) {
		d.t.Fatalf("reply to %s came on %s: %s", payload, m.Topic, m.Raw)
	}
	return m
}

// serve answers every cloud→device message with handle's (topic, payload) until the test ends
// (empty topic: no answer). It runs on its own goroutine like a device's handler.
func (d *thDevice) serve(handle func(m thMsg) (topic, payload string)) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	d.t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case m := <-d.msgs:
				topic, payload := handle(m)
				if topic != "" {
					d.c.Publish(topic, 0, false, payload).WaitTimeout(thWait)
				}
			case <-done:
				return
			}
		}
	}()
}

func thNowMS() int64 { return time.Now().UnixMilli() }
