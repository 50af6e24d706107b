package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/examples/light/light"
	"github.com/tplgen/tplgen/internal/faultproxy"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// Chaos soak (issue 16; how to run it: docs/BENCHMARKS.md "Chaos soak").
//
// The generated light device runs against the in-process platform through a real TCP proxy
// (internal/faultproxy). Concurrent posters send events and reports while the platform sends
// control; the link is cut every ~200 ms (the proxy closing the connections, or the platform
// resetting them) and the platform restarts once, halfway. The run ends with one summary
// line and fails on:
//
//   - loss: an event whose PostStatusReport returned nil but that the platform never recorded
//     (events carry a unique id, and the platform keeps every event, so they are counted
//     exactly; a report's nil means the platform's report_reply said it applied it);
//   - overrun: a call that returned more than soakCtxSlack after its ctx ended, beyond the
//     scheduling lag this process suffered during the run (measured, so a loaded CI machine
//     does not fail it while an internal wait that ignores the ctx, seconds long, does); the
//     failure shows every goroutine's stack taken while the slowest call was stuck;
//   - unread events: the platform's bounded event history dropped events before the soak
//     read them (the loss check would be blind for those);
//   - growth: goroutines or heap after Close beyond a small bound over the count before Dial;
//   - races: .ci/run runs it with -race as well.
//
// Duplicates (an event recorded twice: a QoS 1 publish resent after its PUBACK was lost with
// the link) and late deliveries (an event whose call failed but that arrived anyway) are
// counted and shown; the delivery contract allows both (docs/ARCHITECTURE.md "Delivery
// contract").
//
// Length: TPLGEN_SOAK=short runs 3 s, TPLGEN_SOAK=ci about a minute (.ci/run, with and
// without -race), TPLGEN_SOAK_MESSAGES=N until N messages were sent; unset, the test is
// skipped (it needs the machine for a while).

const (
	soakEnv         = "TPLGEN_SOAK"
	soakMessagesEnv = "TPLGEN_SOAK_MESSAGES"
	soakDevice      = "soak"
)

type soakConfig struct {
	duration      time.Duration // 0: until messages
	messages      int64         // 0: until duration
	eventPosters  int
	reportPosters int
	cutEvery      time.Duration
	callTimeout   time.Duration
}

func soakConfigFromEnv(t *testing.T) soakConfig {
	c := soakConfig{duration: 3 * time.Second, eventPosters: 8, reportPosters: 8,
		cutEvery: 200 * time.Millisecond, callTimeout: 3 * time.Second}
	if v := os.Getenv(soakMessagesEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive message count", soakMessagesEnv, v)
		}
		c.duration, c.messages = 0, n
		return c
	}
	switch v := os.Getenv(soakEnv); v {
	case "":
		t.Skipf("chaos soak: set %s=ci (about a minute, as .ci/run does), %s=short (3 s) or %s=N", soakEnv, soakEnv, soakMessagesEnv)
	case "short":
	case "ci":
		c.duration = 55 * time.Second
	default:
		t.Fatalf("%s=%q: want short or ci (or set %s)", soakEnv, v, soakMessagesEnv)
	}
	return c
}

// soakLamp answers control and actions; it counts what the cloud applied.
type soakLamp struct{ controls, actions atomic.Int64 }

func (l *soakLamp) Control(context.Context, light.ControlProperties) error {
	l.controls.Add(1)
	return nil
}

func (l *soakLamp) LightOn(context.Context, light.LightOnInput) (light.LightOnOutput, error) {
	l.actions.Add(1)
	return light.LightOnOutput{}, nil
}

// soakTally is what the device side saw.
type soakTally struct {
	mu         sync.Mutex
	acked      map[string]bool // event id -> its call returned nil
	failed     map[string]bool // event id -> its call returned an error
	errKinds   map[string]int
	slowest    map[string]slowCall
	reportsOK  int64
	reportsErr int64
	sent       atomic.Int64 // calls made (events + reports)
	dumps      atomic.Int32 // goroutine dumps taken (callWatch)
}

// callWatch times one call. If the call is still running soakDumpAfter after its ctx ended,
// it records every goroutine's stack, so a failure shows where the call was stuck.
type callWatch struct {
	start time.Time
	timer *time.Timer
	dump  atomic.Pointer[string]
}

// watch starts timing a call made with a ctx of timeout.
func (s *soakTally) watch(timeout time.Duration) *callWatch {
	w := &callWatch{start: time.Now()}
	w.timer = time.AfterFunc(timeout+soakDumpAfter, func() {
		if s.dumps.Add(1) > soakMaxDumps { // an overloaded machine: do not add to it
			return
		}
		buf := make([]byte, 1<<20)
		d := string(buf[:runtime.Stack(buf, true)])
		w.dump.Store(&d)
	})
	return w
}

// took ends w and remembers the slowest call of each kind (with its stacks, if taken): every
// call has a callTimeout ctx, so one much slower than that ignored its ctx.
func (s *soakTally) took(kind string, w *callWatch, err error) {
	d := time.Since(w.start)
	w.timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > s.slowest[kind].d {
		c := slowCall{d: d, err: err}
		if p := w.dump.Load(); p != nil {
			c.stacks = *p
		}
		s.slowest[kind] = c
	}
}

type slowCall struct {
	d      time.Duration
	err    error
	stacks string // every goroutine, soakDumpAfter after the call's ctx ended ("" if it had returned)
}

// lagMeter measures how late this process wakes a goroutine whose timer fired: on a shared
// machine (or under -race, or during a GC) a call can return late by that much without
// having ignored its ctx. The overrun check allows for the worst lag seen.
type lagMeter struct{ worst atomic.Int64 }

func (l *lagMeter) run(stop <-chan struct{}) {
	const tick = 20 * time.Millisecond
	t := time.NewTimer(tick)
	defer t.Stop()
	for {
		t0 := time.Now()
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if lag := int64(time.Since(t0) - tick); lag > l.worst.Load() {
			l.worst.Store(lag)
		}
		t.Reset(tick)
	}
}

func (l *lagMeter) max() time.Duration { return time.Duration(l.worst.Load()) }

func (s *soakTally) record(id string, isEvent bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil && isEvent:
		s.acked[id] = true
	case err == nil:
		s.reportsOK++
	default:
		if isEvent {
			s.failed[id] = true
		} else {
			s.reportsErr++
		}
		s.errKinds[errKind(err)]++
	}
}

// errKind names an error by the sentinel it wraps, so the summary stays one line.
func errKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{context.DeadlineExceeded, "deadline"},
		{explorer.ErrQueueFull, "queue-full"},
		{explorer.ErrNotConnected, "not-connected"},
		{explorer.ErrTimeout, "ack-timeout"},
		{explorer.ErrClosed, "closed"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	msg := err.Error()
	if len(msg) > 40 {
		msg = msg[:40]
	}
	return strings.ReplaceAll(msg, " ", "_")
}

// settle waits (bounded) for goroutines to end and returns the goroutine count and the live
// heap after a GC (HeapAlloc: HeapInuse would also count free space in partly used spans,
// which grows with the run's churn without anything being kept).
func settle(maxGoroutines int) (goroutines int, heap uint64) {
	// Goroutines handing packets to a connection that died may sit in paho until its write
	// timeout (10 s); anything alive after 20 s is kept by something.
	deadline := time.Now().Add(20 * time.Second)
	for {
		runtime.GC()
		goroutines = runtime.NumGoroutine()
		if goroutines <= maxGoroutines || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return goroutines, ms.HeapAlloc
}

func TestSoak(t *testing.T) {
	cfg := soakConfigFromEnv(t)
	goroutinesBefore, heapBefore := settle(runtime.NumGoroutine())
	r := runSoak(t, cfg)
	// Everything runSoak made is unreachable now: what the heap still holds was kept by the
	// runtime's packages (or leaked).
	// Wait for the count before Dial (a hand-over goroutine of a connection that died under
	// it ends only at paho's write timeout), then allow the slack.
	goroutinesAfter, heapAfter := settle(goroutinesBefore)
	summary := fmt.Sprintf("soak: %v sent=%d (events %d, reports %d) recorded=%d events + %d acknowledged reports "+
		"lost=%d duplicates=%d late=%d errors=%d [%s] control ok=%d failed=%d applied=%d cuts=%d restarts=%d "+
		"slowest event %v report %v (sched lag ≤ %v) goroutines %d->%d live heap %.2f->%.2f MiB",
		r.elapsed.Round(time.Millisecond), r.events+r.reports, r.events, r.reports,
		r.recorded, r.reportsOK, len(r.lost), r.duplicates, r.late, r.errors, r.errKinds,
		r.controlsOK, r.controlsErr, r.applied, r.cuts, r.restarts,
		r.slowestEvent.Round(time.Millisecond), r.slowestReport.Round(time.Millisecond), r.lag.Round(time.Millisecond),
		goroutinesBefore, goroutinesAfter, float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20))
	fmt.Println(summary)
	t.Log(summary)

	if len(r.lost) > 0 {
		t.Errorf("%d events acknowledged (nil error) but never recorded by the platform, e.g. %v", len(r.lost), first(r.lost, 5))
	}
	if r.unread > 0 {
		t.Errorf("the platform dropped %d events from its bounded history before the soak read them: loss cannot be checked", r.unread)
	}
	if len(r.dupAcked) > 0 {
		// Allowed: a QoS 1 publish whose PUBACK was lost with the link is sent again.
		t.Logf("%d acknowledged events recorded more than once (QoS 1 resend after a lost PUBACK), e.g. %v", len(r.dupAcked), first(r.dupAcked, 5))
	}
	if r.eventsOK == 0 || r.reportsOK == 0 || r.controlsOK == 0 {
		t.Errorf("nothing got through the chaos: the soak measured nothing")
	}
	if r.restarts != 1 {
		t.Errorf("platform restarted %d times, want 1", r.restarts)
	}
	if goroutinesAfter > goroutinesBefore+soakGoroutineSlack {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines grew from %d to %d after Close:\n%s", goroutinesBefore, goroutinesAfter, buf[:runtime.Stack(buf, true)])
	}
	if heapAfter > heapBefore+soakHeapSlack {
		t.Errorf("live heap grew from %d to %d bytes after Close (allowed +%d)", heapBefore, heapAfter, soakHeapSlack)
	}
}

// soakResult is what one run counted (small: the run's own state is dropped before the heap
// is measured).
type soakResult struct {
	elapsed                     time.Duration
	events, eventsOK, reports   int
	reportsOK                   int64
	recorded, duplicates, late  int
	unread                      int
	errors                      int
	errKinds                    string
	lost, dupAcked              []string
	controlsOK, controlsErr     int64
	applied, cuts, restarts     int64
	slowestEvent, slowestReport time.Duration
	lag                         time.Duration
}

// runSoak runs the device, the platform and the chaos, closes everything and counts.
func runSoak(t *testing.T, cfg soakConfig) soakResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	srv, err := explorertest.NewServer(explorertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	serverClosed := false
	defer func() {
		if !serverClosed {
			srv.Close()
		}
	}()
	if err := srv.AddProduct(light.Template()); err != nil {
		t.Fatal(err)
	}
	pid := light.Template().ProductID
	if _, err := srv.AddDevice(pid, soakDevice); err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.New(strings.TrimPrefix(srv.TLSBrokerURL(), "tls://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	devCfg := srv.DeviceConfig(pid, soakDevice)
	devCfg.Broker = "tls://" + proxy.Addr()
	dialCtx, dialCancel := context.WithTimeout(ctx, 20*time.Second)
	conn, err := explorer.Dial(dialCtx, devCfg, append(srv.DialOptions(), explorer.WithQueueSize(4096))...)
	dialCancel()
	if err != nil {
		t.Fatal(err)
	}
	lamp := &soakLamp{}
	dev, err := light.New(conn, lamp)
	if err != nil {
		t.Fatal(err)
	}

	tally := &soakTally{acked: map[string]bool{}, failed: map[string]bool{}, errKinds: map[string]int{}, slowest: map[string]slowCall{}}
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	// claim reserves one message of the budget (count-bounded runs).
	claim := func() bool {
		if stopped() {
			return false
		}
		if cfg.messages > 0 && tally.sent.Add(1) > cfg.messages {
			halt()
			return false
		}
		if cfg.messages == 0 {
			tally.sent.Add(1)
		}
		return true
	}

	lag := &lagMeter{}
	lagStop := make(chan struct{})
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		lag.run(lagStop)
	}()

	var posters sync.WaitGroup
	for p := range cfg.eventPosters {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for seq := 0; claim(); seq++ {
				id := fmt.Sprintf("e%d-%d", p, seq)
				cctx, ccancel := context.WithTimeout(ctx, cfg.callTimeout)
				w := tally.watch(cfg.callTimeout)
				err := dev.PostStatusReport(cctx, light.StatusReport{Message: id})
				tally.took("event", w, err)
				ccancel()
				tally.record(id, true, err)
			}
		}()
	}
	for p := range cfg.reportPosters {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for seq := 0; claim(); seq++ {
				cctx, ccancel := context.WithTimeout(ctx, cfg.callTimeout)
				w := tally.watch(cfg.callTimeout)
				err := dev.Report(cctx, light.Properties{
					Brightness: tplwire.Ptr(int64(seq % 101)),
					Name:       tplwire.Ptr(fmt.Sprintf("r%d-%d", p, seq)),
				})
				tally.took("report", w, err)
				ccancel()
				tally.record("", false, err)
			}
		}()
	}

	// The platform keeps the latest 10 000 events per device (older ones are dropped and
	// counted); a long run posts more, so the record is read every 100 ms, each time only what
	// was added since the last read (the history and its drop count read together, under the
	// platform's lock), so every copy of every event is counted once. Events dropped before
	// they were read are counted as unread: the run then cannot vouch for them.
	recorded := map[string]int{}
	var recordErr error
	consumed, unread := 0, 0 // events read (dropped + position in the history), events missed
	collect := func() {
		var fresh []explorertest.EventRecord
		err := srv.WaitThing(ctx, pid, soakDevice, func(st explorertest.ThingState) bool {
			from := consumed - st.EventsDropped
			if from < 0 {
				unread += -from
				from = 0
			}
			fresh = append(fresh, st.Events[min(from, len(st.Events)):]...)
			consumed = st.EventsDropped + len(st.Events)
			return true
		})
		if err != nil {
			recordErr = fmt.Errorf("reading the platform's events: %v", err)
		}
		for _, e := range fresh {
			if e.EventID != "status_report" {
				continue
			}
			var id string
			if err := jsonField(e.Params, "message", &id); err != nil {
				recordErr = fmt.Errorf("recorded event without its id: %s: %v", e.Params, err)
				continue
			}
			recorded[id]++
		}
	}
	var collector sync.WaitGroup
	collector.Add(1)
	go func() {
		defer collector.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				collect()
			}
		}
	}()

	// The platform sends control the whole time.
	var controlsOK, controlsErr atomic.Int64
	var background sync.WaitGroup
	background.Add(1)
	go func() {
		defer background.Done()
		for i := 0; !stopped(); i++ {
			cctx, ccancel := context.WithTimeout(ctx, cfg.callTimeout)
			_, err := srv.SendControl(cctx, pid, soakDevice, map[string]any{"brightness": i % 101})
			ccancel()
			if err != nil {
				controlsErr.Add(1)
				select {
				case <-stop:
				case <-time.After(20 * time.Millisecond): // offline: do not spin
				}
			} else {
				controlsOK.Add(1)
			}
		}
	}()

	// Chaos: cut the link every cutEvery, alternating a proxy close (FIN) and a platform-side
	// reset; restart the platform once, halfway.
	var cuts, restarts atomic.Int64
	var restartErr error
	var restartTook time.Duration
	start := time.Now()
	background.Add(1)
	go func() {
		defer background.Done()
		tick := time.NewTicker(cfg.cutEvery)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			half := cfg.duration > 0 && time.Since(start) >= cfg.duration/2 ||
				cfg.messages > 0 && tally.sent.Load() >= cfg.messages/2
			switch {
			case half && restarts.Load() == 0:
				rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
				rstart := time.Now()
				restartErr = srv.Restart(rctx)
				restartTook = time.Since(rstart)
				rcancel()
				restarts.Add(1)
			case n%2 == 0:
				proxy.Cut()
			default:
				srv.DropConnections()
			}
			cuts.Add(1)
		}
	}()

	if cfg.duration > 0 {
		select {
		case <-time.After(cfg.duration):
		case <-stop:
		}
	}
	if cfg.messages > 0 {
		<-stop
	}
	halt()
	haltAt := time.Now()
	posters.Wait()
	close(lagStop)
	<-lagDone
	background.Wait()
	elapsed := time.Since(start)
	t.Logf("restart took %v; stopping took %v", restartTook.Round(time.Millisecond), time.Since(haltAt).Round(time.Millisecond))
	// A gross check only (the exact bound is tested per call through a fault proxy in the
	// runtime packages): a call that ignored its ctx overruns by seconds (paho's write
	// timeout, the ack timeout). A call may also return late because this process could not
	// run it (a loaded machine, -race, GC): that lateness is measured (lag) and allowed for.
	allowed := cfg.callTimeout + soakCtxSlack + lag.max()
	for kind, c := range tally.slowest {
		if c.d > allowed {
			stacks := c.stacks
			if stacks == "" {
				stacks = "(not taken)"
			}
			t.Errorf("a %s call took %v with a %v ctx (allowed %v: %v slack + %v measured scheduling lag): %v\ngoroutines %v after its ctx ended:\n%s",
				kind, c.d, cfg.callTimeout, allowed, soakCtxSlack, lag.max(), c.err, soakDumpAfter, stacks)
		}
	}
	if restartErr != nil {
		t.Fatalf("platform restart: %v", restartErr)
	}

	// Everything acknowledged has been recorded by the time its reply came; what failed may
	// still arrive from the offline queue, so give the link a moment to drain it.
	proxy.Heal()
	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	for !conn.IsConnected() && waitCtx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	waitCancel()
	time.Sleep(200 * time.Millisecond)
	collector.Wait()
	collect()
	if recordErr != nil {
		t.Error(recordErr)
	}

	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := dev.Close(closeCtx); err != nil {
		t.Errorf("device Close: %v", err)
	}
	closeCancel()
	if err := conn.Close(); err != nil {
		t.Errorf("conn Close: %v", err)
	}
	proxy.Close()
	srv.Close()
	serverClosed = true
	cancel()

	var lost, dupAcked []string
	late := 0
	for id := range tally.acked {
		if recorded[id] == 0 {
			lost = append(lost, id)
		}
	}
	duplicates := 0
	for id, n := range recorded {
		if n > 1 {
			duplicates += n - 1
			if tally.acked[id] {
				dupAcked = append(dupAcked, id)
			}
		}
		if !tally.acked[id] {
			late++
		}
	}
	sort.Strings(lost)
	sort.Strings(dupAcked)
	errs := 0
	kinds := make([]string, 0, len(tally.errKinds))
	for k, n := range tally.errKinds {
		errs += n
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	return soakResult{
		elapsed: elapsed, events: len(tally.acked) + len(tally.failed), eventsOK: len(tally.acked),
		reports: int(tally.reportsOK + tally.reportsErr), reportsOK: tally.reportsOK,
		recorded: len(recorded), duplicates: duplicates, late: late, errors: errs, errKinds: strings.Join(kinds, " "),
		lost: lost, dupAcked: dupAcked, controlsOK: controlsOK.Load(), controlsErr: controlsErr.Load(),
		applied: lamp.controls.Load(), cuts: cuts.Load(), restarts: restarts.Load(),
		slowestEvent: tally.slowest["event"].d, slowestReport: tally.slowest["report"].d,
		lag: lag.max(), unread: unread,
	}
}

// Bounds on what may remain after everything is closed: runtime and test-framework
// goroutines come and go, and the heap keeps caches filled on first use (go-json's
// encoders and decoders per type, TLS and x509 state).
//
// soakCtxSlack is how much longer than its ctx a call may take, on top of the scheduling lag
// measured during the run; the shortest internal timer that could hold a call past its ctx
// is the 5 s ack timeout, 2 s beyond the 3 s ctx. A call still running soakDumpAfter after its
// ctx ended has every goroutine's stack recorded (at most soakMaxDumps times per run).
const (
	soakGoroutineSlack = 2
	soakHeapSlack      = 1 << 20
	soakCtxSlack       = time.Second
	soakDumpAfter      = time.Second
	soakMaxDumps       = 20
)

func first(ids []string, n int) []string { return ids[:min(n, len(ids))] }

// jsonField decodes one field of a JSON object.
func jsonField(obj []byte, name string, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return err
	}
	raw, ok := m[name]
	if !ok {
		return fmt.Errorf("no field %q", name)
	}
	return json.Unmarshal(raw, v)
}
