package cluster

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/state"
)

// resumeTiming leaves the restart gap (detach, then a new engine) well
// inside the deadtime on a loaded machine under -race.
func resumeTiming() Timing {
	return Timing{Keepalive: 50 * time.Millisecond, WarnTime: 500 * time.Millisecond, DeadTime: 1500 * time.Millisecond,
		InitDead: 3 * time.Second, MaxRexmitDelay: 50 * time.Millisecond, DeadPing: 1500 * time.Millisecond}
}

func resumePair(t *testing.T) (*memNet, *testNode, *testNode, Config) {
	mn := newMemNet()
	ca := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cb := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	ca.Timing, cb.Timing = resumeTiming(), resumeTiming()
	a := startMem(t, mn, ca, newRecorder("a"), nil)
	b := startMem(t, mn, cb, newRecorder("b"), nil)
	waitFor(t, long, "settled", settled(a, b))
	return mn, a, b, cb
}

// TestDetachAndResume: a node that detaches and is resumed by a new engine
// within the deadtime is, for its peer, a node that paused: no restart, no
// death, no resource moved; and the resumed node's messages are accepted
// (a standby it asks for goes through).
func TestDetachAndResume(t *testing.T) {
	mn, a, b, cb := resumePair(t)
	before := b.e.State()
	aCalls := a.res.callLog()

	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	r, err := b.e.Detach(ctx)
	if err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if err := <-b.errc; err != nil {
		t.Errorf("Run after Detach: %v, want nil", err)
	}
	b.errc <- nil
	if r.Generation != before.Generation || r.UUID != before.UUID || r.NextSeq < 2 || !slices.Equal(r.Held, []string{gB}) ||
		r.PeerStatus != StatusActive || r.PeerHolding != "local" || r.PeerGeneration != before.Peer.Generation || r.PeerLastSeq == 0 {
		t.Fatalf("Resume = %+v (engine was %+v)", r, before)
	}
	if !b.res.holds(gB) || strings.Contains(b.res.callLog(), "release") {
		t.Errorf("Detach released something: %s", b.res.callLog())
	}
	// Through JSON, as the daemon keeps it across an exec.
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var r2 Resume
	if err := json.Unmarshal(js, &r2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a restart's gap, well inside deadtime

	cb.Resume = &r2
	b2 := startMem(t, mn, cb, newRecorder("b2"), nil)
	waitFor(t, long, "the resumed node to adopt its group", func() bool { return b2.res.holds(gB) && b2.e.State().Stable })
	if got := b2.res.callLog(); got != "acquire "+gB {
		t.Errorf("resumed node's resource calls: %q, want only the adoption of %s", got, gB)
	}
	s := b2.e.State()
	if s.Generation != before.Generation || s.Status != StatusActive || s.Holding != "local" || s.Peer.Status != StatusActive {
		t.Errorf("resumed snapshot: %+v", s)
	}
	// Several deadtimes: the peer must not have noticed anything.
	time.Sleep(2 * resumeTiming().DeadTime)
	for _, bad := range []string{"Heartbeat restart on node nodeb", "node nodeb: is dead", "Link nodeb:eth0 dead", "restarted"} {
		if a.log.has(bad) {
			t.Errorf("the peer logged %q", bad)
		}
	}
	if got := a.res.callLog(); got != aCalls {
		t.Errorf("the peer moved resources: %q, was %q", got, aCalls)
	}
	if g := a.e.State().Peer.Generation; g != before.Generation {
		t.Errorf("the peer sees generation %d, want %d", g, before.Generation)
	}
	if b2.log.has("Link nodea:eth0 up") {
		t.Error("the resumed node logged a link coming up that never went down")
	}

	// The resumed node's sequenced messages are delivered: its standby
	// moves its group to the peer.
	retry(t, func() error { return b2.e.Standby(ctx, Local) })
	waitFor(t, long, "the peer to take nodeb's group on standby", func() bool { return a.res.holds(gB) && !b2.res.holds(gB) })
}

// TestResumeRefusedAfterNewGeneration: a Resume whose generation is no
// longer the one on disk (the node started afresh since) is ignored; the
// node starts as a restart, which the peer sees.
func TestResumeRefusedAfterNewGeneration(t *testing.T) {
	mn, a, b, cb := resumePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	r, err := b.e.Detach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.NextGeneration(filepath.Join(cb.StateDir, state.GenerationFile), time.Now); err != nil {
		t.Fatal(err)
	}
	cb.Resume = &r
	b2 := startMem(t, mn, cb, newRecorder("b2"), nil)
	waitFor(t, long, "the peer to see the restart", func() bool { return a.log.has("Heartbeat restart on node nodeb") })
	if !b2.log.has("not resuming the previous engine") {
		t.Error("no log of the refused resume")
	}
	if b2.e.State().Generation != r.Generation+2 {
		t.Errorf("generation %d, want %d", b2.e.State().Generation, r.Generation+2)
	}
}

// TestDetachRefusedWhileStarting: before the start-up exchange there is no
// settled state to hand over.
func TestDetachRefusedWhileStarting(t *testing.T) {
	mn := newMemNet()
	cfg := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfg.Timing = resumeTiming()
	a := startMem(t, mn, cfg, newRecorder("a"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	waitFor(t, long, "engine running", func() bool { return a.e.State().Status != "" })
	if _, err := a.e.Detach(ctx); err == nil || !strings.Contains(err.Error(), "starting up") {
		t.Errorf("Detach during initdead: %v", err)
	}
}

// TestResumeHoldingADeadPeersGroup: a node that took its dead peer's group
// detaches and is resumed; it keeps both groups, and when the peer comes
// back auto_failback still gives its group back.
func TestResumeHoldingADeadPeersGroup(t *testing.T) {
	mn, a, b, cb := resumePair(t)
	ca := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, a.dir)
	ca.Timing = resumeTiming()
	b.kill()
	waitFor(t, long, "nodea to take nodeb's group", func() bool { return a.res.holds(gB) && a.e.State().Stable })
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	r, err := a.e.Detach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.PeerStatus != StatusDead || !r.NeedsFailback || !slices.Equal(r.Held, []string{gA, gB}) {
		t.Fatalf("Resume = %+v", r)
	}
	ca.Resume = &r
	a2 := startMem(t, mn, ca, newRecorder("a2"), nil)
	waitFor(t, long, "the resumed node to adopt both groups", func() bool { return a2.res.holds(gA) && a2.res.holds(gB) && a2.e.State().Stable })
	time.Sleep(resumeTiming().DeadTime)
	if a2.log.has("wants to go standby") {
		t.Error("the resumed node tried to fail back to a dead peer")
	}
	b2 := startMem(t, mn, cb, newRecorder("b2"), nil)
	waitFor(t, long, "failback to the returning owner", func() bool { return b2.res.holds(gB) && !a2.res.holds(gB) && a2.res.holds(gA) })
}
