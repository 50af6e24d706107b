package explorer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/faultproxy"
	"github.com/tplgen/tplgen/runtime/explorer"
)

// The link jams or dies while a packet is being handed to paho. paho's hand-over cannot be
// cancelled: it waits until its output goroutine takes the packet, up to its write timeout
// (the connect timeout, 30 s here), and that goroutine takes nothing more while the socket
// does not drain, or ever again once the connection is lost. The chaos soak met the second
// case: the connection died between paho's "connected?" check and its hand-over, and a
// PostEvent with a 3 s ctx returned after 10 s. The caller must not be the one waiting there.
//
// The hand-over hook holds the victim's packet at the door of paho until the test has jammed
// the link for real (a stalled faultproxy, filled until writes block), then lets it in.

// victimTopic is the publish the hook holds at the hand-over.
const victimTopic = "test/victim"

// jamAtHandoff dials through a proxy, starts a publish of qos to victimTopic with ctx, and
// returns once that packet is inside paho's hand-over on a link whose writes block. done
// receives the publish's result.
func jamAtHandoff(t *testing.T, ctx context.Context, qos byte) (c *explorer.Conn, p *faultproxy.Proxy, b *testBroker, done <-chan error) {
	t.Helper()
	b = newTestBroker(t)
	// No keep-alive (a ping would end the jam) and a paho write timeout far longer than any
	// ctx below: a caller stuck in paho's hand-over shows up as a wrong result, not a time.
	c, p = proxied(t, b, explorer.WithKeepAlive(0), explorer.WithConnectTimeout(30*time.Second))
	atDoor := make(chan struct{})
	jammed := make(chan struct{})
	var once sync.Once
	explorer.SetHandoffHook(func(topic string) {
		if topic != victimTopic {
			return
		}
		once.Do(func() { close(atDoor) })
		<-jammed
	})
	t.Cleanup(func() { explorer.SetHandoffHook(nil) })

	res := make(chan error, 1)
	go func() { res <- c.Publish(ctx, victimTopic, qos, []byte("victim")) }()
	<-atDoor
	p.SetMode(faultproxy.Stall)
	jamHandoff(t, c)
	close(jammed)
	// Give the victim's hand-over goroutine a moment to get into paho's wait; nothing is
	// asserted on this pause (were it too short the packet would be withdrawn instead, which
	// passes too, for a weaker reason).
	time.Sleep(100 * time.Millisecond)
	return c, p, b, res
}

// jamHandoff publishes into a stalled link until paho no longer takes packets: its writer is
// blocked on a full socket (fillStalledLink), its output goroutine holds one more packet, and
// a third waits in paho's hand-over, where the next one will wait too.
func jamHandoff(t *testing.T, c *explorer.Conn) {
	t.Helper()
	fillStalledLink(t, c)
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		if err := c.Publish(ctx, "test/plug", 0, []byte("plug")); err == nil {
			t.Fatal("a publish into the jammed link was written")
		}
		cancel()
	}
}

// A caller whose ctx ends while its packet is stuck in paho's hand-over returns at once: while
// the link is still jammed, not when paho's write timeout finally breaks the connection.
func TestHandoffJammedLinkCtxEnds(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		ctx, cancel := context.WithCancel(context.Background())
		c, _, _, done := jamAtHandoff(t, ctx, qos)
		cancel()
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Minute):
			t.Fatalf("QoS %d Publish still running a minute after its ctx was cancelled", qos)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("QoS %d Publish cancelled at the hand-over: got %v, want context.Canceled", qos, err)
		}
		// paho's write timeout (30 s) has not fired: had Publish waited for it, the
		// connection would be gone by now.
		if st := c.State(); st != explorer.StateConnected {
			t.Errorf("QoS %d Publish returned only after the jammed connection broke (state %v): it waited for paho, not for its ctx", qos, st)
		}
		c.Close()
	}
}

// The connection dies while the packet is stuck in paho's hand-over (the soak's case): the
// caller learns it at once, the message goes out on the next connection, and Publish returns
// nil well within its ctx (20 s, shorter than paho's 30 s write timeout).
func TestHandoffConnectionDiesUnderPacket(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		c, p, b, done := jamAtHandoff(t, testCtx(t), qos)
		// Kill the jammed connection (RST) and let the reconnect through a healthy link.
		p.Refuse(true)
		p.Reset()
		p.SetMode(faultproxy.PassThrough)
		p.Refuse(false)
		if err := <-done; err != nil {
			t.Fatalf("QoS %d Publish whose connection died in paho's hand-over: %v", qos, err)
		}
		if m := b.nextMessage(t, victimTopic); string(m.Payload) != "victim" {
			t.Fatalf("QoS %d: broker got %q", qos, m.Payload)
		}
		c.Close()
	}
}
