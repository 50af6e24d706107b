package thing

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
)

// The device of the transcript and testdata/light.json.
const (
	testPID = "ABCDEFGHIJ"
	testDN  = "dev1"
)

// testCtx is the generous deadline of one end-to-end test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// variant returns testdata/light.json after edit ran on its decoded form: the platform can
// be given a looser or stricter template than the device, to make it send what the device
// must refuse, or refuse what the device accepts.
func variant(t testing.TB, edit func(m map[string]any)) *template.Template {
	t.Helper()
	raw, err := os.ReadFile("testdata/light.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.Parse("variant.json", out)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// property returns the property object with id in a decoded template.
func property(m map[string]any, id string) map[string]any {
	for _, p := range m["properties"].([]any) {
		if p := p.(map[string]any); p["id"] == id {
			return p
		}
	}
	panic("no property " + id)
}

// env is an in-process platform with the light product and device registered.
type env struct {
	srv *explorertest.Server
	tpl *template.Template // the device's template
}

// newEnv starts a platform whose template is platformTpl (nil: the device's own).
func newEnv(t testing.TB, platformTpl *template.Template) *env {
	t.Helper()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tpl := loadLight(t)
	if platformTpl == nil {
		platformTpl = tpl
	}
	if err := srv.AddProductAs(testPID, platformTpl); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, tpl: tpl}
}

// dial connects the device over TLS to the platform.
func (e *env) dial(t testing.TB, opts ...explorer.Option) *explorer.Conn {
	t.Helper()
	conn, err := explorer.Dial(testCtx(t), e.srv.DeviceConfig(testPID, testDN), append(e.srv.DialOptions(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// thing starts the engine on conn; resync is off unless the options turn it on, so tests
// that do not look at it see no background get_status.
func (e *env) thing(t testing.TB, conn *explorer.Conn, opts ...Option) *Thing {
	t.Helper()
	th, err := New(conn, e.tpl, append([]Option{WithResyncOnConnect(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { th.Close(context.Background()) })
	return th
}

// calls records what a handler received.
type calls struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func newCalls() *calls { return &calls{ch: make(chan string, 100)} }

func (c *calls) add(s string) {
	c.mu.Lock()
	c.got = append(c.got, s)
	c.mu.Unlock()
	c.ch <- s
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *calls) next(t testing.TB, ctx context.Context) string {
	t.Helper()
	select {
	case s := <-c.ch:
		return s
	case <-ctx.Done():
		t.Fatalf("handler not called: %v", ctx.Err())
		return ""
	}
}
