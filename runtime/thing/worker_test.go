package thing

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// An idle Thing holds no goroutine: the control worker starts with work and ends when the
// queue is empty (a gateway keeps one Thing per sub-device).
func TestControlWorkerOnlyWhileThereIsWork(t *testing.T) {
	base := runtime.NumGoroutine()
	th, rec := newFuzzThing(t)
	defer th.Close(testCtx(t))
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("a new idle Thing added %d goroutines", n-base)
	}
	th.dispatch(th.topics.downProperty, []byte(`{"method":"control","clientToken":"c1","params":{"power_switch":1}}`))
	if _, err := rec.waitPublished(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after the control was handled", runtime.NumGoroutine()-base)
		}
		time.Sleep(time.Millisecond)
	}
}

// Work queued from many goroutines while workers come and go is all run, one at a time, in
// the order each producer queued it.
func TestControlWorkerRestartsWithoutLosingWork(t *testing.T) {
	th, _ := newFuzzThing(t)
	defer th.Close(testCtx(t))
	const producers, each = 8, 500
	var mu sync.Mutex
	running, maxRunning := 0, 0
	last := make([]int, producers)
	var wg sync.WaitGroup
	var done sync.WaitGroup
	done.Add(producers * each)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				th.controlQueue() <- func() {
					mu.Lock()
					running++
					maxRunning = max(maxRunning, running)
					if last[p] != i {
						t.Errorf("producer %d: work %d ran after %d", p, i, last[p]-1)
					}
					last[p] = i + 1
					running--
					mu.Unlock()
					done.Done()
				}
				th.kick()
				if i%50 == 0 {
					time.Sleep(time.Millisecond) // let the worker drain and end
				}
			}
		}()
	}
	wg.Wait()
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatal("queued work was never run")
	}
	if maxRunning != 1 {
		t.Errorf("%d workers ran at once, want 1", maxRunning)
	}
}
