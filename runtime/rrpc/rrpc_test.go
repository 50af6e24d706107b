package rrpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/rrpc"
)

const pid = "RRPCPROD01"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func platform(t *testing.T, devices ...string) (*explorertest.Server, map[string]*explorer.Conn) {
	t.Helper()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	conns := map[string]*explorer.Conn{}
	for _, dn := range devices {
		if _, err := srv.AddDevice(pid, dn); err != nil {
			t.Fatal(err)
		}
		c, err := explorer.Dial(testCtx(t), srv.DeviceConfig(pid, dn), srv.DialOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		for i := 0; !srv.Online(pid, dn); i++ { // the CONNACK may reach the device first
			if i > 500 {
				t.Fatalf("%s never online on the platform", dn)
			}
			time.Sleep(10 * time.Millisecond)
		}
		conns[dn] = c
	}
	return srv, conns
}

func TestRRPCRoundTrip(t *testing.T) {
	srv, conns := platform(t, "dev1")
	ctx := testCtx(t)
	err := rrpc.OnRRPC(ctx, conns["dev1"], func(ctx context.Context, payload []byte) ([]byte, error) {
		return append([]byte("echo:"), payload...), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		in := []byte(fmt.Sprintf(`{"n":%d}`, i))
		id, out, err := srv.CallRRPC(ctx, pid, "dev1", in, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := "echo:" + string(in); string(out) != want {
			t.Fatalf("call %d (process %s): got %q, want %q", i, id, out, want)
		}
	}
	// Binary payloads pass unchanged both ways.
	bin := []byte{0, 1, 2, 0xff, 0xfe}
	_, out, err := srv.CallRRPC(ctx, pid, "dev1", bin, 5*time.Second)
	if err != nil || !bytes.Equal(out, append([]byte("echo:"), bin...)) {
		t.Fatalf("binary: %q %v", out, err)
	}
}

func TestRRPCConcurrentCallsMatchTheirReplies(t *testing.T) {
	srv, conns := platform(t, "dev1")
	ctx := testCtx(t)
	if err := rrpc.OnRRPC(ctx, conns["dev1"], func(ctx context.Context, p []byte) ([]byte, error) { return p, nil }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := fmt.Sprintf("req-%d", i)
			_, out, err := srv.CallRRPC(ctx, pid, "dev1", []byte(in), 10*time.Second)
			if err == nil && string(out) != in {
				err = fmt.Errorf("got %q for %q", out, in)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRRPCHandlerErrorTimesOutAndOffline(t *testing.T) {
	srv, conns := platform(t, "dev1")
	ctx := testCtx(t)
	if err := rrpc.OnRRPC(ctx, conns["dev1"], func(ctx context.Context, p []byte) ([]byte, error) {
		if string(p) == "panic" {
			panic("boom")
		}
		return nil, errors.New("refused")
	}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"x", "panic"} {
		_, _, err := srv.CallRRPC(ctx, pid, "dev1", []byte(in), 300*time.Millisecond)
		if !errors.Is(err, explorertest.ErrRRPCTimeout) {
			t.Fatalf("%s: %v, want ErrRRPCTimeout", in, err)
		}
	}
	conns["dev1"].Close()
	waitOffline(t, srv, "dev1")
	if _, _, err := srv.CallRRPC(ctx, pid, "dev1", []byte("x"), time.Second); !errors.Is(err, explorertest.ErrDeviceOffline) {
		t.Fatalf("offline: %v", err)
	}
	if _, _, err := srv.CallRRPC(ctx, pid, "nobody", []byte("x"), time.Second); !errors.Is(err, explorertest.ErrUnknownDevice) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestRRPCDeviceDropsDuringCall(t *testing.T) {
	srv, conns := platform(t, "dev1")
	ctx := testCtx(t)
	started := make(chan struct{})
	if err := rrpc.OnRRPC(ctx, conns["dev1"], func(ctx context.Context, p []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		<-started
		srv.DropConnections()
	}()
	_, _, err := srv.CallRRPC(ctx, pid, "dev1", []byte("x"), 20*time.Second)
	if !errors.Is(err, explorertest.ErrDeviceOffline) {
		t.Fatalf("got %v, want ErrDeviceOffline", err)
	}
}

func waitOffline(t *testing.T, srv *explorertest.Server, dn string) {
	t.Helper()
	for i := 0; srv.Online(pid, dn); i++ {
		if i > 500 {
			t.Fatalf("%s still online", dn)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBroadcastReachesEveryOnlineDevice(t *testing.T) {
	srv, conns := platform(t, "a", "b", "c")
	ctx := testCtx(t)
	got := make(chan string, 10)
	for _, dn := range []string{"a", "b"} {
		if err := rrpc.OnBroadcast(ctx, conns[dn], func(ctx context.Context, p []byte) { got <- dn + ":" + string(p) }); err != nil {
			t.Fatal(err)
		}
	}
	conns["c"].Close()
	waitOffline(t, srv, "c")
	names, err := srv.Broadcast(pid, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("delivered to %v, want a,b", names)
	}
	seen := map[string]bool{}
	for range 2 {
		select {
		case m := <-got:
			seen[m] = true
		case <-ctx.Done():
			t.Fatal("broadcast not received")
		}
	}
	if !seen["a:hello"] || !seen["b:hello"] {
		t.Fatalf("received %v", seen)
	}
	if _, err := srv.Broadcast(pid, make([]byte, rrpc.MaxBroadcast+1)); !errors.Is(err, explorertest.ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := srv.Broadcast("NOPRODUCT1", []byte("x")); !errors.Is(err, explorertest.ErrNoDevices) {
		t.Fatalf("unknown product: %v", err)
	}
}

// The JSON API over real HTTP: status codes and payload encodings.
func TestRRPCAndBroadcastJSONAPI(t *testing.T) {
	srv, conns := platform(t, "dev1", "dev2")
	ctx := testCtx(t)
	if err := rrpc.OnRRPC(ctx, conns["dev1"], func(ctx context.Context, p []byte) ([]byte, error) {
		if string(p) == "slow" {
			return nil, errors.New("no answer")
		}
		return []byte(strings.ToUpper(string(p))), nil
	}); err != nil {
		t.Fatal(err)
	}
	conns["dev2"].Close()
	waitOffline(t, srv, "dev2")
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.HTTPURL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: answer %q is not JSON", path, raw)
		}
		return resp.StatusCode, m
	}
	code, m := post("/api/devices/"+pid+"/dev1/rrpc", `{"payload":"ping"}`)
	if code != 200 || m["payload"] != "PING" || m["payload_base64"] != "UElORw==" {
		t.Fatalf("rrpc: %d %v", code, m)
	}
	code, m = post("/api/devices/"+pid+"/dev1/rrpc", `{"payload_base64":"cG9uZw=="}`)
	if code != 200 || m["payload"] != "PONG" {
		t.Fatalf("rrpc base64: %d %v", code, m)
	}
	for _, c := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/api/devices/" + pid + "/dev1/rrpc?timeout=200ms", `{"payload":"slow"}`, 504, "no RRPC reply"},
		{"/api/devices/" + pid + "/dev2/rrpc", `{"payload":"x"}`, 409, "offline"},
		{"/api/devices/" + pid + "/nobody/rrpc", `{"payload":"x"}`, 404, "not registered"},
		{"/api/devices/" + pid + "/dev1/rrpc", `{"payload":"x","payload_base64":"eA=="}`, 400, "not both"},
		{"/api/devices/" + pid + "/dev1/rrpc", `{"payload_base64":"***"}`, 400, "base64"},
		{"/api/devices/" + pid + "/dev1/rrpc", `{}`, 400, "payload"},
		{"/api/devices/" + pid + "/dev1/rrpc", `{"payload":`, 400, "JSON"},
		{"/api/devices/" + pid + "/dev1/rrpc?timeout=forever", `{"payload":"x"}`, 400, "timeout"},
		{"/api/devices/" + pid + "/dev1/rrpc", `{"payload":"` + strings.Repeat("x", explorertest.MaxPayload+1) + `"}`, 413, "payload too large"},
		{"/api/products/" + pid + "/broadcast", `{"payload":"` + strings.Repeat("x", rrpc.MaxBroadcast+1) + `"}`, 413, "payload too large"},
		{"/api/products/NOPRODUCT1/broadcast", `{"payload":"x"}`, 404, "no device"},
	} {
		code, m := post(c.path, c.body)
		if code != c.code || !strings.Contains(fmt.Sprint(m["error"]), c.msg) {
			t.Errorf("%s %s: %d %v, want %d with %q", c.path, clip(c.body), code, m, c.code, c.msg)
		}
	}
	code, m = post("/api/products/"+pid+"/broadcast", `{"payload":"all"}`)
	if code != 200 || m["delivered"] != float64(1) {
		t.Fatalf("broadcast: %d %v", code, m)
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func TestParseTopic(t *testing.T) {
	dir, p, d, id, err := rrpc.ParseTopic("$rrpc/rxd/P/d/42")
	if err != nil || dir != "rxd" || p != "P" || d != "d" || id != "42" {
		t.Fatalf("%s %s %s %s %v", dir, p, d, id, err)
	}
	for _, bad := range []string{"", "$rrpc/rxd/P/d", "$rrpc/zzz/P/d/1", "$rrp/rxd/P/d/1", "$rrpc/rxd/P/d/+", "$rrpc/rxd//d/1", "$rrpc/rxd/P/d/1/2"} {
		if _, _, _, _, err := rrpc.ParseTopic(bad); !errors.Is(err, rrpc.ErrBadTopic) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseTopic(f *testing.F) {
	f.Add("$rrpc/rxd/P/d/42")
	f.Add("$rrpc/txd/P/d/")
	f.Add("////")
	f.Fuzz(func(t *testing.T, topic string) {
		dir, p, d, id, err := rrpc.ParseTopic(topic)
		if err != nil {
			return
		}
		if got := "$rrpc/" + dir + "/" + p + "/" + d + "/" + id; got != topic {
			t.Fatalf("parsed %q back to %q", topic, got)
		}
	})
}
