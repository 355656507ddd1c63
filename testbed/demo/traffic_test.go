package demo

import (
	"context"
	"testing"
	"time"
)

// TestStreamSummaryGaps: a gap that overlaps a disruption is the window's,
// any other the quiet one; a loss counts outside only when it was in flight
// during no disruption. (Logic only: no traffic, no kernel.)
func TestStreamSummaryGaps(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var s stream
	answer := func(ms int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.lastOK.IsZero() {
			g := at(ms).Sub(s.lastOK)
			s.gaps = append(s.gaps, gap{at(ms), g})
			s.longest = max(s.longest, g)
		}
		s.lastOK = at(ms)
		s.sent++
	}
	answer(0)
	answer(70)   // quiet: 70 ms, before the window
	answer(100)  // quiet
	answer(1040) // 940 ms, ends inside the window
	answer(1080)
	answer(2200) // 1120 ms: starts inside the window, ends after it
	answer(2290) // quiet: 90 ms after the window
	s.failures = []failure{
		{at(1500), at(1600), "in the window"},
		{at(2400), at(2500), "after it"},
	}
	s.sent += 2

	got := s.summary(t0, []span{{at(1000), at(2000)}})
	if got.WindowGapMS != 1120 {
		t.Errorf("window gap %v ms, want 1120", got.WindowGapMS)
	}
	if got.QuietGapMS != 90 {
		t.Errorf("quiet gap %v ms, want 90 (the 70 and 90 ms gaps touch no window)", got.QuietGapMS)
	}
	if got.LongestGapMS != 1120 {
		t.Errorf("longest gap %v ms, want 1120", got.LongestGapMS)
	}
	if got.Lost != 2 || got.LostOutsideWindow != 1 {
		t.Errorf("lost %d, outside the window %d; want 2 and 1", got.Lost, got.LostOutsideWindow)
	}
	if len(got.LongGaps) != 4 {
		t.Errorf("%d gaps over 50 ms listed, want 4: %+v", len(got.LongGaps), got.LongGaps)
	}

	none := s.summary(t0, nil)
	if none.WindowGapMS != 0 || none.QuietGapMS != 1120 {
		t.Errorf("without a disruption: window gap %v, quiet gap %v; want 0 and 1120", none.WindowGapMS, none.QuietGapMS)
	}
}

// TestWaitVIP: waitVIP wakes on the watcher's changes and reports when the
// condition began (the earliest of the spells it holds for), not when it
// was looked at; it gives up after its limit. (Logic only: the changes are
// fed by hand, no kernel.)
func TestWaitVIP(t *testing.T) {
	ctx := context.Background()
	r := &run{}
	t0 := time.Now()
	r.heldNow(t0, [2]bool{true, false})

	go func() {
		time.Sleep(20 * time.Millisecond)
		r.heldNow(t0.Add(10*time.Millisecond), [2]bool{false, false}) // node1 released
		r.heldNow(t0.Add(15*time.Millisecond), [2]bool{false, true})  // node2 took it
	}()
	d, ok := r.waitVIP(ctx, t0, 5*time.Second, func(_, n2 bool) bool { return n2 })
	if !ok || d != 15*time.Millisecond {
		t.Errorf("node2 holds after %v, %v; want 15ms, true", d, ok)
	}
	// !node1 began with the spell with nobody, before node2's.
	if d, ok := r.waitVIP(ctx, t0, 5*time.Second, func(n1, _ bool) bool { return !n1 }); !ok || d != 10*time.Millisecond {
		t.Errorf("node1 gone after %v, %v; want 10ms, true", d, ok)
	}
	if d, ok := r.waitVIP(ctx, time.Now(), 50*time.Millisecond, func(n1, _ bool) bool { return n1 }); ok || d < 50*time.Millisecond {
		t.Errorf("node1 holds after %v, %v; want a timeout after 50ms", d, ok)
	}
	if got := len(r.timeline); got != 3 {
		t.Errorf("timeline has %d spells, want 3: %v", got, r.timeline)
	}
}
