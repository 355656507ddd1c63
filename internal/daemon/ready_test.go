package daemon

import (
	"testing"
	"time"

	"github.com/directord/directord/lnoded"
)

func TestCheckedSince(t *testing.T) {
	since := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	after, before := since.Add(time.Second), since.Add(-time.Second)
	rs := func(h lnoded.Health, last time.Time, lat time.Duration) lnoded.RealState {
		return lnoded.RealState{Health: h, LastCheck: last, Latency: lat}
	}
	for _, c := range []struct {
		name   string
		states []lnoded.RealState
		want   bool
	}{
		{"no real servers", nil, true},
		{"all checked after", []lnoded.RealState{rs(lnoded.Up, after, 0), rs(lnoded.Down, after, 0)}, true},
		{"one checked before", []lnoded.RealState{rs(lnoded.Up, after, 0), rs(lnoded.Down, before, 0)}, false},
		{"never checked", []lnoded.RealState{rs(lnoded.Unknown, time.Time{}, 0)}, false},
		// A check that ended after since but started before it ran while
		// the node was cut off: its verdict does not count.
		{"started before, ended after", []lnoded.RealState{rs(lnoded.Down, after, 2*time.Second)}, false},
		{"maintenance needs no check", []lnoded.RealState{rs(lnoded.Maintenance, before, 0), rs(lnoded.Up, after, 0)}, true},
	} {
		if got := checkedSince(c.states, since); got != c.want {
			t.Errorf("%s: checkedSince = %v, want %v", c.name, got, c.want)
		}
	}
}
