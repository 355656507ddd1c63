package checks

import (
	"container/heap"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// State is what the scheduler believes of one job's real server.
type State int

// The states of a job. A job starts Unknown; its first result makes it Up
// or Down.
const (
	Unknown State = iota
	Up
	Down
)

// String is "up", "down" or "unknown".
func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Job is one real server of one virtual service to keep checked.
type Job struct {
	// ID names the job in transitions, e.g. "tcp 10.0.0.1:80 -> 10.0.0.2:80".
	// IDs are unique within a Scheduler.
	ID string
	// Key identifies the probe; jobs with equal Keys share one probe per
	// pass, as ldirectord checks a real server once for all the virtual
	// services that check it the same way. Use Config.Key. Empty means the
	// job shares with nobody.
	Key string
	// Checker runs the probe. Of jobs sharing a Key, the first one's
	// Checker is used, and it stays in use across Updates that keep the
	// Key (so a checktype=N checker keeps its count); a job without a Key
	// switches to the Checker of each Update. A Checker must return when
	// the context it is given ends.
	Checker Checker
	// Interval is the time between the starts of two checks
	// (checkinterval; default 10 s). Jobs sharing a probe use the shortest.
	Interval time.Duration
	// FailureCount is how many failures in a row take an up server down
	// (failurecount; default 1). A single success brings it up.
	FailureCount int
	// Timeout bounds one check on top of the checker's own timeout
	// (default SchedulerConfig.MaxCheckTime). Jobs sharing a probe use the
	// longest.
	Timeout time.Duration
}

// Transition reports that a job's server went up or down.
type Transition struct {
	ID   string
	From State
	To   State
	// Result is the check result that caused the transition.
	Result Result
	// Time is when that check finished.
	Time time.Time
}

// JobStatus is a snapshot of one job.
type JobStatus struct {
	ID    string
	State State
	// Failures is the number of failed checks in a row.
	Failures int
	// Last is the last check's result and LastTime when it finished (zero
	// before the first check).
	Last     Result
	LastTime time.Time
	// Since is when the job entered its state.
	Since time.Time
}

// SchedulerConfig tunes a Scheduler; the zero value is usable.
type SchedulerConfig struct {
	// Concurrency bounds the checks in flight (default 256).
	Concurrency int
	// Jitter spreads checks: a new probe first runs within Jitter×Interval
	// (at most a second, so that a new configuration is judged quickly, as
	// ldirectord checks everything at start), and each later run is Interval ± Jitter×Interval/2 after the previous
	// start (default 0.1; negative means none).
	Jitter float64
	// MaxCheckTime is the deadline of a check whose job sets no Timeout
	// (default 60 s). Checkers also apply their own, usually shorter,
	// timeouts.
	MaxCheckTime time.Duration
	// OnTransition receives every transition, one at a time, from the
	// scheduler's goroutine. It must not block for long; it may call
	// Update.
	OnTransition func(Transition)
	// OnResult receives every job's every check result (a probe shared by
	// several jobs reports once per job), one at a time, from the
	// scheduler's goroutine, after OnTransition for the same result. It is
	// for logs such as ldirectord's monitorfile and must not block for long.
	OnResult func(JobResult)
}

// JobResult is one check result as it applies to one job.
type JobResult struct {
	ID string
	// State is the job's state after the result, and Failures its failed
	// checks in a row.
	State    State
	Failures int
	Result   Result
	// Time is when the check finished.
	Time time.Time
}

// maxFirstDelay caps how long a new probe waits for its first run.
const maxFirstDelay = time.Second

// Default scheduler settings.
const (
	DefaultInterval     = 10 * time.Second
	DefaultConcurrency  = 256
	DefaultJitter       = 0.1
	DefaultMaxCheckTime = 60 * time.Second
)

// Scheduler runs jobs' checks until its Run's context ends.
type Scheduler struct {
	cfg SchedulerConfig

	mu      sync.Mutex
	pending []Job // set by Update, taken by the loop
	dirty   bool
	jobs    map[string]*jobState // by ID
	probes  map[string]*probe    // by key
	queue   probeQueue

	wake    chan struct{}
	running bool
}

type jobState struct {
	job      Job
	probe    *probe
	state    State
	failures int
	last     Result
	lastTime time.Time
	since    time.Time
}

type probe struct {
	key      string
	checker  Checker
	interval time.Duration
	timeout  time.Duration
	jobs     map[string]*jobState
	next     time.Time
	index    int // in queue; -1 when not queued (running or removed)
	running  bool
	removed  bool
}

type result struct {
	p     *probe
	r     Result
	start time.Time
	end   time.Time
}

// NewScheduler returns a scheduler with no jobs.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = DefaultJitter
	} else if cfg.Jitter < 0 {
		cfg.Jitter = 0
	}
	if cfg.MaxCheckTime <= 0 {
		cfg.MaxCheckTime = DefaultMaxCheckTime
	}
	return &Scheduler{
		cfg:    cfg,
		jobs:   map[string]*jobState{},
		probes: map[string]*probe{},
		wake:   make(chan struct{}, 1),
	}
}

// Update replaces the set of jobs. A job whose ID and Key are unchanged
// keeps its state and its place in the schedule; new jobs start Unknown and
// are checked soon; jobs absent from jobs are dropped without a transition.
// It returns an error, changing nothing, when two jobs share an ID or a job
// has no Checker.
func (s *Scheduler) Update(jobs []Job) error {
	seen := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		if seen[j.ID] {
			return errors.New("checks: duplicate job ID " + j.ID)
		}
		if j.Checker == nil {
			return errors.New("checks: job " + j.ID + " has no checker")
		}
		seen[j.ID] = true
	}
	s.mu.Lock()
	s.pending = append([]Job(nil), jobs...)
	s.dirty = true
	s.mu.Unlock()
	s.poke()
	return nil
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Status returns a snapshot of every job, in no particular order.
func (s *Scheduler) Status() []JobStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty {
		// Not applied yet: report the pending set as it will start.
		out := make([]JobStatus, 0, len(s.pending))
		for _, j := range s.pending {
			if js, ok := s.jobs[j.ID]; ok && js.job.Key == j.Key {
				out = append(out, js.status())
			} else {
				out = append(out, JobStatus{ID: j.ID})
			}
		}
		return out
	}
	out := make([]JobStatus, 0, len(s.jobs))
	for _, js := range s.jobs {
		out = append(out, js.status())
	}
	return out
}

func (js *jobState) status() JobStatus {
	return JobStatus{ID: js.job.ID, State: js.state, Failures: js.failures, Last: js.last, LastTime: js.lastTime, Since: js.since}
}

// Run checks the jobs until ctx ends, then waits for the checks in flight
// (which see ctx cancelled) and returns ctx's error. A Scheduler runs once
// at a time.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("checks: scheduler already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	results := make(chan result, s.cfg.Concurrency)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		// Checks cut short by the end of ctx reported nothing: requeue
		// their probes so that a later Run picks them up.
		s.mu.Lock()
		now := time.Now()
		for _, p := range s.probes {
			if p.running {
				p.running = false
				p.next = now
				heap.Push(&s.queue, p)
			}
		}
		s.mu.Unlock()
	}()
	inflight := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	for {
		s.mu.Lock()
		if s.dirty {
			s.apply(time.Now())
		}
		now := time.Now()
		for inflight < s.cfg.Concurrency && len(s.queue) > 0 && !s.queue[0].next.After(now) {
			p := heap.Pop(&s.queue).(*probe)
			p.running = true
			inflight++
			wg.Add(1)
			go s.runProbe(ctx, &wg, p, p.checker, p.timeout, results)
		}
		wait := time.Hour
		if inflight < s.cfg.Concurrency && len(s.queue) > 0 {
			wait = time.Until(s.queue[0].next)
		}
		s.mu.Unlock()
		timer.Reset(max(wait, 0))

		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		case <-timer.C:
		case res := <-results:
			inflight--
			s.record(res)
			// Drain what else is ready before scheduling again.
			for more := true; more; {
				select {
				case res := <-results:
					inflight--
					s.record(res)
				default:
					more = false
				}
			}
		}
	}
}

// runProbe runs one check; checker and timeout are passed in because apply
// may change the probe's while it runs.
func (s *Scheduler) runProbe(ctx context.Context, wg *sync.WaitGroup, p *probe, checker Checker, timeout time.Duration, out chan<- result) {
	defer wg.Done()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	r := checker.Check(cctx)
	cancel()
	end := time.Now()
	if r.Latency == 0 {
		r.Latency = end.Sub(start)
	}
	select {
	case out <- result{p: p, r: r, start: start, end: end}:
	case <-ctx.Done():
	}
}

// record applies a probe's result to its jobs and reschedules it.
func (s *Scheduler) record(res result) {
	var trans []Transition
	var results []JobResult
	s.mu.Lock()
	p := res.p
	p.running = false
	if !p.removed {
		for _, js := range p.jobs {
			if t, ok := js.apply(res.r, res.end); ok {
				trans = append(trans, t)
			}
			if s.cfg.OnResult != nil {
				results = append(results, JobResult{ID: js.job.ID, State: js.state, Failures: js.failures, Result: res.r, Time: res.end})
			}
		}
		p.next = res.start.Add(s.jittered(p.interval))
		if now := time.Now(); p.next.Before(now) {
			p.next = now
		}
		heap.Push(&s.queue, p)
	}
	s.mu.Unlock()
	if s.cfg.OnTransition != nil {
		for _, t := range trans {
			s.cfg.OnTransition(t)
		}
	}
	for _, r := range results {
		s.cfg.OnResult(r)
	}
}

// apply is ldirectord's _service_up/_service_down: a success brings the
// server up at once and clears the failure count; a failure takes an up
// server down only at the FailureCount-th failure in a row. A server that
// was never up goes down on its first failure.
func (js *jobState) apply(r Result, at time.Time) (Transition, bool) {
	js.last, js.lastTime = r, at
	from := js.state
	if r.Up {
		js.failures = 0
		if from == Up {
			return Transition{}, false
		}
		js.state, js.since = Up, at
		return Transition{ID: js.job.ID, From: from, To: Up, Result: r, Time: at}, true
	}
	js.failures++
	if from == Down || (from == Up && js.failures < max(js.job.FailureCount, 1)) {
		return Transition{}, false
	}
	js.state, js.since = Down, at
	return Transition{ID: js.job.ID, From: from, To: Down, Result: r, Time: at}, true
}

func (s *Scheduler) jittered(d time.Duration) time.Duration {
	if s.cfg.Jitter == 0 || d <= 0 {
		return d
	}
	span := time.Duration(float64(d) * s.cfg.Jitter)
	if span <= 0 {
		return d
	}
	return d - span/2 + rand.N(span)
}

func (s *Scheduler) firstDelay(d time.Duration) time.Duration {
	span := min(time.Duration(float64(d)*s.cfg.Jitter), maxFirstDelay)
	if span <= 0 {
		return 0
	}
	return rand.N(span)
}

// apply installs the pending job set; s.mu is held.
func (s *Scheduler) apply(now time.Time) {
	jobs := s.pending
	s.pending, s.dirty = nil, false
	oldJobs := s.jobs
	s.jobs = make(map[string]*jobState, len(jobs))
	newProbes := make(map[string]*probe, len(jobs))
	for _, j := range jobs {
		key := j.Key
		if key == "" {
			key = "\x00id:" + j.ID
		}
		interval := j.Interval
		if interval <= 0 {
			interval = DefaultInterval
		}
		timeout := j.Timeout
		if timeout <= 0 {
			timeout = s.cfg.MaxCheckTime
		}
		p := newProbes[key]
		if p == nil {
			if old := s.probes[key]; old != nil {
				p = old
				p.jobs = map[string]*jobState{}
				p.interval, p.timeout = interval, timeout
				if j.Key == "" {
					// Without a Key nothing says the checker is the
					// same: take the new one. With equal Keys the old
					// one stays, with any state it carries
					// (checktype=N).
					p.checker = j.Checker
				}
			} else {
				p = &probe{key: key, checker: j.Checker, interval: interval, timeout: timeout,
					jobs: map[string]*jobState{}, index: -1,
					next: now.Add(s.firstDelay(interval))}
			}
			newProbes[key] = p
		} else {
			p.interval = min(p.interval, interval)
			p.timeout = max(p.timeout, timeout)
		}
		js := oldJobs[j.ID]
		if js == nil || js.job.Key != j.Key {
			js = &jobState{state: Unknown, since: now}
		}
		js.job, js.probe = j, p
		p.jobs[j.ID] = js
		s.jobs[j.ID] = js
	}
	for key, p := range s.probes {
		if newProbes[key] == nil {
			p.removed = true
			if p.index >= 0 {
				heap.Remove(&s.queue, p.index)
			}
		}
	}
	for _, p := range newProbes {
		if p.index < 0 && !p.running {
			heap.Push(&s.queue, p)
		} else if p.index >= 0 && p.next.After(now.Add(p.interval)) {
			// A shorter interval takes effect now rather than after the
			// old one.
			p.next = now.Add(s.firstDelay(p.interval))
			heap.Fix(&s.queue, p.index)
		}
	}
	s.probes = newProbes
}

// probeQueue is a min-heap of probes by next run time.
type probeQueue []*probe

func (q probeQueue) Len() int           { return len(q) }
func (q probeQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q probeQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *probeQueue) Push(x any) {
	p := x.(*probe)
	p.index = len(*q)
	*q = append(*q, p)
}
func (q *probeQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.index = -1
	*q = old[:len(old)-1]
	return p
}
