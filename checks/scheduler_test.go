package checks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seqChecker returns its verdicts in order, then repeats the last, and says
// which call produced a result.
type seqChecker struct {
	mu    sync.Mutex
	verds []bool
	calls int
}

func (c *seqChecker) Check(context.Context) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.verds[min(c.calls, len(c.verds)-1)]
	c.calls++
	return Result{Up: v, Message: fmt.Sprint(c.calls)}
}

func (c *seqChecker) String() string { return "scripted" }

func (c *seqChecker) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// transitions collects a scheduler's transitions.
type transitions struct {
	mu  sync.Mutex
	all []Transition
	ch  chan Transition
}

func newTransitions() *transitions { return &transitions{ch: make(chan Transition, 100000)} }

func (tr *transitions) add(t Transition) {
	tr.mu.Lock()
	tr.all = append(tr.all, t)
	tr.mu.Unlock()
	tr.ch <- t
}

func (tr *transitions) of(id string) []Transition {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []Transition
	for _, t := range tr.all {
		if t.ID == id {
			out = append(out, t)
		}
	}
	return out
}

// run starts s until the test ends, failing if Run returns early or late.
func run(t *testing.T, s *Scheduler) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return cancel
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSchedulerFailureCount(t *testing.T) {
	noLeaks(t)
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add, Jitter: -1})
	// Calls: 1 up, 2-3 fail (soft), 4 up, 5-7 fail: down at 7, 8 up.
	c := &seqChecker{verds: []bool{true, false, false, true, false, false, false, true}}
	if err := s.Update([]Job{{ID: "rs", Checker: c, Interval: 5 * time.Millisecond, FailureCount: 3}}); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, 5*time.Second, "three transitions", func() bool { return len(tr.of("rs")) >= 3 })
	got := tr.of("rs")
	want := []struct {
		from, to State
		call     string
	}{{Unknown, Up, "1"}, {Up, Down, "7"}, {Down, Up, "8"}}
	for i, w := range want {
		if got[i].From != w.from || got[i].To != w.to || got[i].Result.Message != w.call {
			t.Errorf("transition %d: %v→%v at call %s; want %v→%v at call %s", i, got[i].From, got[i].To, got[i].Result.Message, w.from, w.to, w.call)
		}
	}
}

func TestSchedulerFirstFailureIsDown(t *testing.T) {
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add})
	s.Update([]Job{{ID: "rs", Checker: &seqChecker{verds: []bool{false}}, Interval: 5 * time.Millisecond, FailureCount: 5}})
	run(t, s)
	first := <-tr.ch
	if first.From != Unknown || first.To != Down || first.Result.Message != "1" {
		t.Errorf("first transition %+v; a server never up goes down on its first failure", first)
	}
}

func TestSchedulerSharesProbes(t *testing.T) {
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add})
	shared := &seqChecker{verds: []bool{true}}
	other := &seqChecker{verds: []bool{true}}
	own := &seqChecker{verds: []bool{true}}
	s.Update([]Job{
		{ID: "vip1/rs", Key: "k", Checker: shared, Interval: 10 * time.Millisecond},
		{ID: "vip2/rs", Key: "k", Checker: other, Interval: 10 * time.Millisecond},
		{ID: "vip3/rs", Key: "k2", Checker: own, Interval: 10 * time.Millisecond},
	})
	run(t, s)
	waitFor(t, 5*time.Second, "all up", func() bool {
		return len(tr.of("vip1/rs")) == 1 && len(tr.of("vip2/rs")) == 1 && len(tr.of("vip3/rs")) == 1
	})
	time.Sleep(100 * time.Millisecond)
	if other.n() != 0 {
		t.Errorf("the second job of a shared probe ran its own checker %d times", other.n())
	}
	if shared.n() < 3 {
		t.Errorf("shared probe ran %d times in 100ms at a 10ms interval", shared.n())
	}
	// One probe per pass, not one per job.
	if a, b := shared.n(), own.n(); a > 2*b+2 {
		t.Errorf("shared probe ran %d times, a single-job probe %d", a, b)
	}
}

// blockingChecker hangs until its context ends, like a server that accepts
// and never answers.
type blockingChecker struct{ started atomic.Int32 }

func (c *blockingChecker) Check(ctx context.Context) Result {
	c.started.Add(1)
	<-ctx.Done()
	return Result{Err: ctx.Err()}
}

func (c *blockingChecker) String() string { return "hangs" }

func TestSchedulerHungCheckDoesNotStallOthers(t *testing.T) {
	noLeaks(t)
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add, Concurrency: 2})
	hung := &blockingChecker{}
	jobs := []Job{{ID: "hung", Checker: hung, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}}
	for i := 0; i < 20; i++ {
		jobs = append(jobs, Job{ID: fmt.Sprint("ok", i), Checker: &seqChecker{verds: []bool{true}}, Interval: 10 * time.Millisecond})
	}
	s.Update(jobs)
	run(t, s)
	waitFor(t, 5*time.Second, "the hung check to start", func() bool { return hung.started.Load() > 0 })
	waitFor(t, 5*time.Second, "the healthy jobs up", func() bool {
		for i := 0; i < 20; i++ {
			if len(tr.of(fmt.Sprint("ok", i))) == 0 {
				return false
			}
		}
		return true
	})
	if n := len(tr.of("hung")); n != 0 {
		t.Fatalf("the hung check ended before the healthy jobs were up; the test proves nothing")
	}
	// The hung check itself ends at its deadline and takes its job down.
	waitFor(t, 5*time.Second, "the hung job down", func() bool { return len(tr.of("hung")) == 1 })
	if got := tr.of("hung")[0]; got.To != Down || got.Result.Err == nil || got.Result.Latency < 2*time.Second {
		t.Errorf("hung job: %+v", got)
	}
}

// slowChecker takes a while and records how many run at once.
type slowChecker struct {
	d              time.Duration
	inflight, peak *atomic.Int32
}

func (c slowChecker) Check(ctx context.Context) Result {
	n := c.inflight.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer c.inflight.Add(-1)
	select {
	case <-time.After(c.d):
	case <-ctx.Done():
	}
	return Result{Up: true}
}

func (c slowChecker) String() string { return "slow" }

func TestSchedulerConcurrencyBound(t *testing.T) {
	var inflight, peak atomic.Int32
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add, Concurrency: 5, Jitter: -1})
	var jobs []Job
	for i := 0; i < 60; i++ {
		jobs = append(jobs, Job{ID: fmt.Sprint(i), Checker: slowChecker{10 * time.Millisecond, &inflight, &peak}, Interval: time.Hour})
	}
	s.Update(jobs)
	run(t, s)
	waitFor(t, 5*time.Second, "all up", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.all) == 60
	})
	if p := peak.Load(); p > 5 || p < 2 {
		t.Errorf("peak concurrency %d; want 2..5", p)
	}
}

func TestSchedulerUpdate(t *testing.T) {
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add})
	a := &seqChecker{verds: []bool{true}}
	b := &seqChecker{verds: []bool{true}}
	if err := s.Update([]Job{{ID: "a", Key: "ka", Checker: a, Interval: 5 * time.Millisecond}, {ID: "b", Key: "kb", Checker: b, Interval: 5 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, 5*time.Second, "both up", func() bool { return len(tr.of("a")) == 1 && len(tr.of("b")) == 1 })
	// Reload: a unchanged keeps its state (no new transition); b dropped;
	// c new.
	c := &seqChecker{verds: []bool{false}}
	s.Update([]Job{{ID: "a", Key: "ka", Checker: &seqChecker{verds: []bool{true}}, Interval: 5 * time.Millisecond}, {ID: "c", Key: "kc", Checker: c, Interval: 5 * time.Millisecond}})
	waitFor(t, 5*time.Second, "c down", func() bool { return len(tr.of("c")) == 1 })
	nb := b.n()
	time.Sleep(50 * time.Millisecond)
	if len(tr.of("a")) != 1 {
		t.Errorf("unchanged job a transitioned again: %+v", tr.of("a"))
	}
	if b.n() > nb+1 {
		t.Errorf("dropped job b still checked: %d → %d", nb, b.n())
	}
	st := map[string]State{}
	for _, js := range s.Status() {
		st[js.ID] = js.State
	}
	if len(st) != 2 || st["a"] != Up || st["c"] != Down {
		t.Errorf("status %v", st)
	}
	if err := s.Update([]Job{{ID: "x", Checker: a}, {ID: "x", Checker: a}}); err == nil {
		t.Error("duplicate IDs accepted")
	}
	if err := s.Update([]Job{{ID: "x"}}); err == nil {
		t.Error("job without checker accepted")
	}
}

func TestSchedulerStopsCleanly(t *testing.T) {
	noLeaks(t)
	s := NewScheduler(SchedulerConfig{Concurrency: 8})
	var jobs []Job
	for i := 0; i < 50; i++ {
		var c Checker = &seqChecker{verds: []bool{i%2 == 0}}
		if i%10 == 0 {
			c = &blockingChecker{}
		}
		jobs = append(jobs, Job{ID: fmt.Sprint(i), Checker: c, Interval: time.Millisecond})
	}
	s.Update(jobs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := s.Run(ctx); err != context.Canceled {
		t.Errorf("second Run on a cancelled context returned %v", err)
	}
}

func TestSchedulerThousandsOfHTTPChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	noLeaks(t)
	addr, srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			http.Error(w, "no", 500)
			return
		}
		io.WriteString(w, "alive")
	}))
	defer srv.Close()
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add, Concurrency: 64})
	const n = 2000
	var jobs []Job
	for i := 0; i < n; i++ {
		req := fmt.Sprintf("/rs%d", i)
		if i%100 == 0 {
			req = "/bad"
		}
		cfg := Config{Service: "http", Addr: addr, Request: req, Receive: "alive"}
		jobs = append(jobs, Job{ID: fmt.Sprint(i), Key: cfg.Key(), Checker: mustNew(t, cfg), Interval: time.Second})
	}
	if err := s.Update(jobs); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cancel := run(t, s)
	ups, downs := 0, 0
	for ups+downs < n {
		select {
		case tt := <-tr.ch:
			if tt.To == Up {
				ups++
			} else {
				downs++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after 10s: %d up, %d down of %d", ups, downs, n)
		}
	}
	if ups != n-n/100 || downs != n/100 {
		t.Errorf("%d up, %d down; want %d, %d", ups, downs, n-n/100, n/100)
	}
	t.Logf("%d HTTP checks settled in %v", n, time.Since(start))
	cancel()
}

func TestSchedulerRestartAndCheckerSwap(t *testing.T) {
	noLeaks(t)
	tr := newTransitions()
	s := NewScheduler(SchedulerConfig{OnTransition: tr.add})
	hung := &blockingChecker{}
	s.Update([]Job{
		{ID: "hung", Checker: hung, Interval: 5 * time.Millisecond},
		{ID: "flip", Checker: &seqChecker{verds: []bool{true}}, Interval: 5 * time.Millisecond},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 5*time.Second, "flip up and the hung check started", func() bool { return len(tr.of("flip")) == 1 && hung.started.Load() == 1 })
	cancel()
	<-done
	// A job without a Key takes its new checker at once.
	s.Update([]Job{
		{ID: "hung", Checker: hung, Interval: 5 * time.Millisecond, Timeout: 50 * time.Millisecond},
		{ID: "flip", Checker: &seqChecker{verds: []bool{false}}, Interval: 5 * time.Millisecond},
	})
	run(t, s)
	waitFor(t, 5*time.Second, "flip down with its new checker", func() bool { return len(tr.of("flip")) == 2 })
	// The check cut short by the first Run's end runs again in the second.
	waitFor(t, 5*time.Second, "the hung check to run again", func() bool { return hung.started.Load() >= 2 })
	waitFor(t, 5*time.Second, "the hung job down", func() bool { return len(tr.of("hung")) == 1 })
}

// TestSchedulerOnResult: every result reaches OnResult once per job sharing
// the probe, with the job's state and failure count after it, soft failures
// included (monitorfile logs each check, not only transitions).
func TestSchedulerOnResult(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]JobResult{}
	s := NewScheduler(SchedulerConfig{Jitter: -1, OnResult: func(r JobResult) {
		mu.Lock()
		got[r.ID] = append(got[r.ID], r)
		mu.Unlock()
	}})
	c := &seqChecker{verds: []bool{true, false, false, true}}
	err := s.Update([]Job{
		{ID: "a", Key: "k", Checker: c, Interval: 5 * time.Millisecond, FailureCount: 3},
		{ID: "b", Key: "k", Checker: c, Interval: 5 * time.Millisecond, FailureCount: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel := run(t, s)
	waitFor(t, 5*time.Second, "four results for each job", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["a"]) >= 4 && len(got["b"]) >= 4
	})
	cancel()
	mu.Lock()
	defer mu.Unlock()
	type st struct {
		state    State
		failures int
		msg      string
	}
	want := map[string][]st{
		"a": {{Up, 0, "1"}, {Up, 1, "2"}, {Up, 2, "3"}, {Up, 0, "4"}},
		"b": {{Up, 0, "1"}, {Down, 1, "2"}, {Down, 2, "3"}, {Up, 0, "4"}},
	}
	for id, w := range want {
		for i, x := range w {
			r := got[id][i]
			if r.State != x.state || r.Failures != x.failures || r.Result.Message != x.msg || r.Time.IsZero() {
				t.Errorf("%s result %d: %v, %d failures, call %s (time %v); want %v, %d, call %s", id, i, r.State, r.Failures, r.Result.Message, r.Time, x.state, x.failures, x.msg)
			}
		}
	}
}
