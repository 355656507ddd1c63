package demo

import (
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
