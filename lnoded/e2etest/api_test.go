package e2etest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded"
	"github.com/directord/directord/lnoded/config"
)

// TestModuleAPI drives the library API in process (New, Run, Reload,
// State, WithOnApply) on the director's IPVS, with checks that need no
// network (checktype on and off) so that they run from this process's
// namespace.
func TestModuleAPI(t *testing.T) {
	b := newBed(t)
	maint := filepath.Join(b.dir, "maint")
	if err := os.Mkdir(maint, 0o755); err != nil {
		t.Fatal(err)
	}
	src := func(weight string) string {
		return `checkinterval=1
quiescent=yes
maintenancedir=` + maint + `
virtual=192.0.2.100:80
	real=192.0.2.11:80 gate ` + weight + `
	real=192.0.2.12:80 gate
	checktype=on
	scheduler=rr
virtual=192.0.2.100:443
	real=192.0.2.11:443 gate
	checktype=off
	scheduler=rr
`
	}
	parse := func(s string) *config.Config {
		cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var (
		mu      sync.Mutex
		applied [][]ipvs.Op
	)
	m, err := lnoded.New(parse(src("1")), b.h, nil, lnoded.WithOnApply(func(ops []ipvs.Op, err error) {
		if err != nil {
			t.Errorf("apply: %v", err)
		}
		mu.Lock()
		applied = append(applied, ops)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if tab := b.table(); tab != "" {
			t.Errorf("cleanstop left\n%s", tab)
		}
	}()

	b.waitFor("-t 192.0.2.100:80", "-t 192.0.2.100:80 rr | 192.0.2.11:80 w1, 192.0.2.12:80 w1", 5*time.Second)
	b.waitFor("-t 192.0.2.100:443", "-t 192.0.2.100:443 rr | 192.0.2.11:443 w0", 5*time.Second)
	waitState := func(want map[string]string) {
		t.Helper()
		var got map[string]string
		for range 100 {
			got = map[string]string{}
			for _, s := range m.State() {
				got[s.Virtual+" -> "+s.Key.Dest.Addr.String()] = s.Health.String()
			}
			if equal(got, want) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("State = %v, want %v", got, want)
	}
	waitState(map[string]string{
		"tcp:192.0.2.100:80 -> 192.0.2.11": "up", "tcp:192.0.2.100:80 -> 192.0.2.12": "up",
		"tcp:192.0.2.100:443 -> 192.0.2.11": "down",
	})
	for _, s := range m.State() {
		if s.Health == lnoded.Down && s.Reason == "" {
			t.Errorf("%s: no reason", s)
		}
		if s.Since.IsZero() || s.Check == "" {
			t.Errorf("%s: no since or check (%q)", s, s.Check)
		}
		t.Log(s)
	}

	// Maintenance shows in State and drains the server.
	os.WriteFile(filepath.Join(maint, "192.0.2.12"), nil, 0o644)
	b.waitFor("-t 192.0.2.100:80", "-t 192.0.2.100:80 rr | 192.0.2.11:80 w1, 192.0.2.12:80 w0", 3*time.Second)
	waitState(map[string]string{
		"tcp:192.0.2.100:80 -> 192.0.2.11": "up", "tcp:192.0.2.100:80 -> 192.0.2.12": "maintenance",
		"tcp:192.0.2.100:443 -> 192.0.2.11": "down",
	})
	os.Remove(filepath.Join(maint, "192.0.2.12"))
	b.waitFor("-t 192.0.2.100:80", "-t 192.0.2.100:80 rr | 192.0.2.11:80 w1, 192.0.2.12:80 w1", 3*time.Second)

	// Reload with one weight changed: one op.
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	applied = nil
	mu.Unlock()
	if err := m.Reload(parse(src("4"))); err != nil {
		t.Fatal(err)
	}
	b.waitFor("-t 192.0.2.100:80", "-t 192.0.2.100:80 rr | 192.0.2.11:80 w4, 192.0.2.12:80 w1", 3*time.Second)
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	if len(applied) != 1 || len(applied[0]) != 1 || applied[0][0].String() != "-e -t 192.0.2.100:80 -r 192.0.2.11:80 -g -w 4 -x 0 -y 0" {
		t.Errorf("Reload applied %v, want one -e", applied)
	}
	mu.Unlock()

	// A configuration that cannot be programmed is refused whole.
	bad := parse(src("1"))
	bad.Virtuals[0].SchedFlags = "nonsense"
	if err := m.Reload(bad); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("Reload of a bad config: %v", err)
	}
	if err := m.Run(ctx); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("a second Run: %v", err)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// syncBuffer is a log destination safe for the module's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKernelRefusal: a service the kernel refuses (a scheduler it does not
// have) is logged and retried, and does not keep the file's other services
// from being programmed.
func TestKernelRefusal(t *testing.T) {
	b := newBed(t)
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(`checkinterval=1
virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	checktype=on
	scheduler=nosuchscheduler
virtual=192.0.2.100:81
	real=192.0.2.11:81 gate
	checktype=on
	scheduler=rr
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	m, err := lnoded.New(cfg, b.h, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	b.waitFor("-t 192.0.2.100:81", "-t 192.0.2.100:81 rr | 192.0.2.11:81 w1", 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "IPVS update failed, retrying in 2s") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "IPVS update failed, retrying in 1s") || !strings.Contains(logs.String(), "retrying in 2s") || !strings.Contains(logs.String(), "nosuchscheduler") {
		t.Errorf("refusal not logged and retried with back-off:\n%s", logs.String())
	}
	if service(b.table(), "-t 192.0.2.100:80") != "" {
		t.Errorf("the refused service exists:\n%s", b.table())
	}
}

// TestModuleHistoryAndDetach: a real server's last failure (reason, time),
// consecutive failures and check latency are in State and the failure stays
// after it recovers; Detach ends Run without cleanstop, leaving the table
// for a successor, where cancelling would have purged it.
func TestModuleHistoryAndDetach(t *testing.T) {
	b := newBed(t)
	flag := filepath.Join(b.dir, "healthy")
	check := filepath.Join(b.dir, "check.sh")
	if err := os.WriteFile(check, []byte("#!/bin/sh\n[ -e "+flag+" ]\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(`checkinterval=1
quiescent=no
virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	checktype=external
	checkcommand=`+check+`
	scheduler=rr
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lnoded.New(cfg, b.h, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	state := func() lnoded.RealState { return m.State()[0] }
	waitCond := func(what string, cond func(lnoded.RealState) bool) lnoded.RealState {
		t.Helper()
		for start := time.Now(); time.Since(start) < 15*time.Second; time.Sleep(50 * time.Millisecond) {
			if s := state(); cond(s) {
				return s
			}
		}
		t.Fatalf("%s: state %+v", what, state())
		return lnoded.RealState{}
	}
	down := waitCond("two failed checks in a row", func(s lnoded.RealState) bool { return s.Health == lnoded.Down && s.Failures >= 2 })
	if down.LastFailure != "exit status 1" || down.LastFailureAt.IsZero() || down.Latency <= 0 {
		t.Errorf("down: last failure %q at %v, latency %v", down.LastFailure, down.LastFailureAt, down.Latency)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	up := waitCond("recovered", func(s lnoded.RealState) bool { return s.Health == lnoded.Up })
	if up.Failures != 0 || up.Reason != "" || up.LastFailure != "exit status 1" || up.LastFailureAt.Before(down.LastFailureAt) || up.Latency <= 0 {
		t.Errorf("after recovery: %+v; want the failure kept, no current reason, 0 failures", up)
	}
	b.waitFor("-t 192.0.2.100:80", "-t 192.0.2.100:80 rr | 192.0.2.11:80 w1", 5*time.Second)

	table := b.table()
	m.Detach()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Detach: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Detach")
	}
	if got := b.table(); got != table {
		t.Errorf("Detach changed the table (cleanstop?):\nbefore %s\nafter  %s", table, got)
	}
	// A detached module does not run again (and so cannot purge either).
	cancel()
	if err := m.Run(context.Background()); err != nil {
		t.Errorf("Run after Detach: %v", err)
	}
	if got := b.table(); got != table {
		t.Errorf("a second Run after Detach changed the table:\n%s", got)
	}
	b.h.Flush(context.Background())
}
