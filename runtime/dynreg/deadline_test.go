package dynreg

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/internal/deadlinetest"
	"github.com/tplgen/tplgen/internal/faultproxy"
)

// TestRegisterHonoursDeadlineWhateverTheNetwork: Register ends with its ctx (plus
// deadlinetest.Slack) when a real TCP proxy between it and the platform black-holes the
// TLS handshake, stops reading, or dribbles the answer.
func TestRegisterHonoursDeadlineWhateverTheNetwork(t *testing.T) {
	srv := httptest.NewUnstartedServer(&cannedPlatform{t: t})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the faults break on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p, err := faultproxy.New(strings.TrimPrefix(srv.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	endpoint := "https://" + p.Addr()
	// Sanity: through a healthy proxy registration works.
	if _, err := Register(ctx10s(t), docRequest(endpoint, V2), WithRootCAs(tlsPool(srv))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		fault func()
	}{
		{"black hole (handshake never answered)", func() { p.SetMode(faultproxy.BlackHole) }},
		{"answer black-holed (request delivered)", func() { p.SetDirMode(faultproxy.Down, faultproxy.BlackHole) }},
		{"platform's answer not read (stall)", func() { p.SetDirMode(faultproxy.Down, faultproxy.Stall) }},
		{"request not read (stall up)", func() { p.SetDirMode(faultproxy.Up, faultproxy.Stall) }},
		{"answer dribbled at 20 B/s", func() { p.ThrottleDir(faultproxy.Down, 20) }},
	} {
		for _, api := range []APIVersion{V2, Legacy} {
			name := tc.name + " " + api.String()
			prepare := func() { p.Cut(); p.Heal(); tc.fault() }
			deadlinetest.Check(t, name, 400*time.Millisecond, prepare, func(ctx context.Context) error {
				_, err := Register(ctx, docRequest(endpoint, api), WithRootCAs(tlsPool(srv)))
				return err
			})
		}
	}
	p.Heal()
}
