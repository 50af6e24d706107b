package explorer_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// bootClock is a device clock that started at the Unix epoch when the test began, like a
// board without a real-time clock.
func bootClock() func() time.Time {
	boot := time.Now()
	return func() time.Time { return time.Unix(0, 0).Add(time.Since(boot)) }
}

// TestDeviceClockAt1970: a device whose clock says 1970 logs in (the default expiry does not
// depend on the clock) and its Conn.Now is the platform's time once Dial returns, again after
// a reconnect.
func TestDeviceClockAt1970(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.AddDevice(testPID, testDN); err != nil {
		t.Fatal(err)
	}
	clock := bootClock()
	var connects atomic.Int32
	opts := append(p.DialOptions(), explorer.WithClock(clock),
		explorer.WithReconnectBackoff(20*time.Millisecond, 100*time.Millisecond),
		explorer.WithOnConnect(func(context.Context) { connects.Add(1) }))
	c, err := explorer.Dial(testCtx(t), p.DeviceConfig(testPID, testDN), opts...)
	if err != nil {
		t.Fatalf("a device with a 1970 clock cannot log in: %v", err)
	}
	defer c.Close()
	if y := clock().Year(); y != 1970 {
		t.Fatalf("device clock says %d", y)
	}
	checkNow := func(when string) {
		t.Helper()
		off, known := c.ClockOffset()
		if !known {
			t.Fatalf("%s: clock offset not learnt", when)
		}
		if d := time.Until(c.Now()).Abs(); d > 5*time.Second {
			t.Fatalf("%s: Conn.Now() = %v, %v from the real time (offset %v)", when, c.Now(), d, off)
		}
	}
	checkNow("after Dial")

	p.DropConnections()
	waitFor(t, func() bool { return connects.Load() >= 2 && c.IsConnected() }, "the reconnect")
	checkNow("after the reconnect")
}

// TestDefaultExpiryIgnoresClock: the username carries SignatureExpiryNever unless
// WithSignatureExpiry asks for a clock-based one.
func TestDefaultExpiryIgnoresClock(t *testing.T) {
	b := newTestBroker(t)
	dial(t, b, explorer.WithClock(bootClock()))
	users := b.usernames()
	if len(users) == 0 || !strings.HasSuffix(users[0], ";"+strconv.FormatInt(explorer.SignatureExpiryNever, 10)) {
		t.Fatalf("usernames %q, want expiry %d", users, explorer.SignatureExpiryNever)
	}
	dial(t, b, explorer.WithSignatureExpiry(time.Hour))
	users = b.usernames()
	f := strings.Split(users[len(users)-1], ";")
	exp, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
	if d := time.Until(time.Unix(exp, 0)); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("WithSignatureExpiry(1h): expiry %d is %v away", exp, d)
	}
}
