package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/proto"
	"github.com/directord/directord/heartbeat/wire"
)

// These tests run two engines over in-memory links (memNet stands in for
// UDP) with real time at millisecond timings; the netns tests repeat the
// important scenarios over real sockets and against Heartbeat itself.

const (
	gA = "192.0.2.10" // owned by nodea
	gB = "192.0.2.20" // owned by nodeb
)

const long = 5 * time.Second // generous bound for anything that should take ~100 ms

func pair(t *testing.T, nmedia int, fb hacf.AutoFailback) (*memNet, *testNode, *testNode) {
	mn := newMemNet()
	da, db := t.TempDir(), t.TempDir()
	a := startMem(t, mn, memConfig("nodea", "nodeb", nmedia, fb, da), newRecorder("a"), nil)
	b := startMem(t, mn, memConfig("nodeb", "nodea", nmedia, fb, db), newRecorder("b"), nil)
	return mn, a, b
}

func settled(a, b *testNode) func() bool {
	return func() bool {
		return a.res.holds(gA) && b.res.holds(gB) && a.e.State().Stable && b.e.State().Stable
	}
}

func TestColdStartGivesEachOwnerItsGroup(t *testing.T) {
	_, a, b := pair(t, 1, hacf.FailbackOn)
	waitFor(t, long, "each node to hold its own group", settled(a, b))
	if a.res.holds(gB) || b.res.holds(gA) {
		t.Fatalf("a group is held twice: a=%s b=%s", a.res.callLog(), b.res.callLog())
	}
	if !a.log.has("Link nodeb:eth0 up.") || !b.log.has("Link nodea:eth0 up.") {
		t.Error("no link-up log lines")
	}
	if !b.log.has("Acquired resource group 192.0.2.20") {
		t.Error("no acquisition log")
	}
	// b says what it holds after acquiring it: a learns it a moment later.
	waitFor(t, long, "a to learn what b holds", func() bool { return a.e.State().Peer.Holding == "local" })
	st := a.e.State()
	if st.Peer.Status != StatusActive || st.Holding != "local" || st.Peer.Holding != "local" || len(st.Peer.Links) != 1 || !st.Peer.Links[0].Up {
		t.Errorf("snapshot: %+v", st)
	}
	if st.Peer.DeadTime != fastTiming().DeadTime {
		t.Errorf("peer deadtime %v, want the advertised %v", st.Peer.DeadTime, fastTiming().DeadTime)
	}
	if !st.Peer.Directord {
		t.Error("a directord peer is not known as one (its status messages say so)")
	}
}

func TestSingleNodeTakesAllAfterInitdead(t *testing.T) {
	mn := newMemNet()
	a := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir()), newRecorder("a"), nil)
	waitFor(t, long, "nodea to take both groups", func() bool { return a.res.holds(gA) && a.res.holds(gB) })
	if !a.log.has("nothing heard within initdead") {
		t.Error("no initdead log")
	}
}

func killAndRestart(t *testing.T, fb hacf.AutoFailback) {
	mn, a, b := pair(t, 1, fb)
	waitFor(t, long, "settled", settled(a, b))
	a.kill()
	d := waitFor(t, long, "nodeb to take nodea's group", func() bool { return b.res.holds(gA) && b.res.holds(gB) })
	t.Logf("failover after kill: %v (deadtime %v)", d, fastTiming().DeadTime)
	if !b.log.has("node nodea: is dead") || !b.log.has("Link nodea:eth0 dead.") {
		t.Error("death not logged")
	}
	if h := b.res.handedOver(); h != "" {
		t.Errorf("a dead node's groups acquired as handed over: %s", h)
	}
	// nodea comes back with the same state directory: a new generation.
	a2 := startMem(t, mn, memConfig("nodea", "nodeb", 1, fb, a.dir), newRecorder("a2"), nil)
	waitFor(t, long, "both stable after restart", func() bool {
		return a2.e.State().Stable && b.e.State().Stable && a2.e.State().Peer.Status == StatusActive
	})
	if fb == hacf.FailbackOn {
		waitFor(t, long, "failback to nodea", func() bool { return a2.res.holds(gA) && !b.res.holds(gA) })
		if !b.log.has("Auto failback triggered") {
			t.Error("no failback log")
		}
	} else {
		time.Sleep(4 * fastTiming().DeadTime) // nothing may move
		if a2.res.holds(gA) || !b.res.holds(gA) || !b.res.holds(gB) {
			t.Fatalf("auto_failback off moved resources: a2=%s b=%s", a2.res.callLog(), b.res.callLog())
		}
	}
	if !b.log.has("Heartbeat restart on node nodea") && !b.log.has("Status update for node nodea") {
		t.Error("restart not noticed")
	}
}

func TestKillFailoverAndFailbackOn(t *testing.T)  { killAndRestart(t, hacf.FailbackOn) }
func TestKillFailoverAndFailbackOff(t *testing.T) { killAndRestart(t, hacf.FailbackOff) }

func TestStandbyAndTakeover(t *testing.T) {
	_, a, b := pair(t, 1, hacf.FailbackOff)
	waitFor(t, long, "settled", settled(a, b))
	ctx := context.Background()
	retry(t, func() error { return a.e.Standby(ctx, All) }) // refused while a transition settles
	waitFor(t, long, "nodeb to hold everything", func() bool {
		return b.res.holds(gA) && b.res.holds(gB) && !a.res.holds(gA) && a.e.State().Stable && b.e.State().Stable
	})
	if got := a.e.State().Holding; got != "none" {
		t.Errorf("nodea holding %q", got)
	}
	if err := a.e.Takeover(ctx, Local); err != nil {
		t.Fatal(err)
	}
	waitFor(t, long, "nodea to take its own group back", func() bool {
		return a.res.holds(gA) && !b.res.holds(gA) && b.res.holds(gB) && a.e.State().Stable && b.e.State().Stable
	})
	if a.res.holds(gB) {
		t.Error("takeover local took the foreign group too")
	}
	// Takeover all from nodea: everything moves to nodea.
	if err := a.e.Takeover(ctx, All); err != nil {
		t.Fatal(err)
	}
	waitFor(t, long, "nodea to hold everything", func() bool {
		return a.res.holds(gA) && a.res.holds(gB) && !b.res.holds(gB) && a.e.State().Stable && b.e.State().Stable
	})
	if err := a.e.Standby(ctx, "bogus"); err == nil {
		t.Error("bad kind accepted")
	}
}

func TestGracefulStopHandsOverAtOnce(t *testing.T) {
	mn := newMemNet()
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	// A long deadtime shows the handover does not wait for it.
	for _, c := range []*Config{&cfgA, &cfgB} {
		c.Timing.DeadTime, c.Timing.WarnTime = 3*time.Second, time.Second
	}
	a := startMem(t, mn, cfgA, newRecorder("a"), nil)
	b := startMem(t, mn, cfgB, newRecorder("b"), nil)
	waitFor(t, long, "settled", settled(a, b))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	if err := a.e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if a.res.holds(gA) {
		t.Fatal("nodea still holds its group after Stop")
	}
	d := waitFor(t, long, "nodeb to take nodea's group", func() bool { return b.res.holds(gA) })
	t.Logf("graceful handover %v after Stop began (deadtime 3s)", time.Since(start))
	if d > 2*time.Second {
		t.Errorf("handover took %v: it waited for deadtime", d)
	}
	if !b.log.has("Received shutdown notice from 'nodea'.") {
		t.Error("no shutdown notice logged")
	}
	if h := b.res.handedOver(); h != gA {
		t.Errorf("groups acquired as handed over by a shutdown: %q, want %s", h, gA)
	}
	select {
	case err := <-a.errc:
		if err != nil {
			t.Errorf("Run after Stop: %v", err)
		}
		a.errc <- err
	case <-time.After(long):
		t.Error("Run did not return after Stop")
	}
	if b.log.has("is dead") {
		t.Error("nodeb declared nodea dead after a graceful stop")
	}
}

func TestWrongKeyRejected(t *testing.T) {
	mn := newMemNet()
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	cfgB.Keyring = wire.NewKeyring(wire.Key{Num: 1, Method: wire.SHA1, Secret: []byte("other-key")})
	a := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir()), newRecorder("a"), nil)
	b := startMem(t, mn, cfgB, newRecorder("b"), nil)
	waitFor(t, long, "rejection logged", func() bool { return a.log.has("authentication failed") && b.log.has("authentication failed") })
	waitFor(t, long, "both to take everything (no peer)", func() bool { return a.res.holds(gB) && b.res.holds(gA) })
	if a.log.has("Link nodeb") {
		t.Error("a link came up with a wrong key")
	}
}

func TestLostPacketIsRetransmitted(t *testing.T) {
	mn := newMemNet()
	var dropped atomic.Int32
	drop := func(e *Engine) {
		e.dropOut = func(m *wire.Message) bool {
			// Lose the first "resource" nodeb sends: without it nodea
			// cannot learn nodeb's state except by asking again.
			if m.Type() == proto.TypeResource && dropped.Load() == 0 {
				dropped.Add(1)
				return true
			}
			return false
		}
	}
	a := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir()), newRecorder("a"), nil)
	b := startMem(t, mn, memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir()), newRecorder("b"), drop)
	waitFor(t, long, "settled", settled(a, b))
	waitFor(t, long, "the retransmission", func() bool { return a.log.has("Retransmitted message") })
	if dropped.Load() != 1 {
		t.Fatalf("dropped %d", dropped.Load())
	}
	if !a.log.has("Retransmitted message") {
		t.Error("nodea never received a retransmission")
	}
}

func TestOneLinkCutMovesNothing(t *testing.T) {
	mn, a, b := pair(t, 2, hacf.FailbackOn)
	waitFor(t, long, "settled", settled(a, b))
	waitFor(t, long, "both links up", func() bool { return b.log.has("Link nodea:eth1 up.") })
	mn.setCut(1, true)
	waitFor(t, long, "link dead logged", func() bool { return b.log.has("Link nodea:eth1 dead.") && a.log.has("Link nodeb:eth1 dead.") })
	time.Sleep(4 * fastTiming().DeadTime)
	if b.res.holds(gA) || a.res.holds(gB) || b.log.has("is dead") {
		t.Fatalf("cutting one of two links moved resources: a=%s b=%s", a.res.callLog(), b.res.callLog())
	}
	if s := b.e.State(); s.Peer.Links[1].Up || !s.Peer.Links[0].Up || s.Peer.Status != StatusActive {
		t.Errorf("link state %+v", s.Peer)
	}
	mn.setCut(1, false)
	waitFor(t, long, "link back", func() bool { return b.e.State().Peer.Links[1].Up })
	// All links cut: both take over and say so loudly.
	mn.setCut(0, true)
	mn.setCut(1, true)
	waitFor(t, long, "split brain", func() bool { return b.res.holds(gA) && a.res.holds(gB) })
	if !b.log.has("split brain") {
		t.Error("split brain not logged")
	}
	// Healed: each gives back the other's group and keeps its own.
	mn.setCut(0, false)
	mn.setCut(1, false)
	waitFor(t, long, "partition healed", func() bool { return settled(a, b)() && !a.res.holds(gB) && !b.res.holds(gA) })
	if !b.log.has("returning after partition") {
		t.Error("heal not logged")
	}
	time.Sleep(3 * fastTiming().DeadTime)
	if a.res.holds(gB) || b.res.holds(gA) {
		t.Fatalf("double ownership after heal: a=%s b=%s", a.res.callLog(), b.res.callLog())
	}
}

func TestSplitBrainFewerPingNodesStandsDown(t *testing.T) {
	mn := newMemNet()
	var aSees atomic.Bool
	aSees.Store(true)
	hook := func(sees func() bool) func(*Engine) {
		return func(e *Engine) {
			e.pingHost = func(ctx context.Context, host string, iv time.Duration, seen func()) {
				for {
					select {
					case <-ctx.Done():
						return
					case <-time.After(iv):
						if sees() {
							seen()
						}
					}
				}
			}
		}
	}
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	cfgA.PingNodes = []string{"198.51.100.254"}
	cfgB.PingNodes = []string{"198.51.100.254"}
	a := startMem(t, mn, cfgA, newRecorder("a"), hook(aSees.Load))
	b := startMem(t, mn, cfgB, newRecorder("b"), hook(func() bool { return true }))
	waitFor(t, long, "settled with counts known", func() bool {
		return settled(a, b)() && a.e.State().PeerPingCount == 1 && b.e.State().PeerPingCount == 1
	})
	// nodea loses everything at once: heartbeat links and its ping node.
	mn.setCut(0, true)
	aSees.Store(false)
	waitFor(t, long, "nodeb holds all, nodea nothing", func() bool {
		return b.res.holds(gA) && b.res.holds(gB) && !a.res.holds(gA) && !a.res.holds(gB)
	})
	if !a.log.has("we see fewer ping nodes") {
		t.Error("nodea did not say why it stood down")
	}
	time.Sleep(3 * fastTiming().DeadTime)
	if a.res.holds(gB) {
		t.Fatal("nodea took nodeb's group while seeing fewer ping nodes")
	}
}

func TestIpfailFewerPingNodesGivesUp(t *testing.T) {
	mn := newMemNet()
	var aSees atomic.Bool
	aSees.Store(true)
	pingHook := func(sees func() bool) func(*Engine) {
		return func(e *Engine) {
			e.pingHost = func(ctx context.Context, host string, iv time.Duration, seen func()) {
				for {
					select {
					case <-ctx.Done():
						return
					case <-time.After(iv):
						if sees() {
							seen()
						}
					}
				}
			}
		}
	}
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	cfgA.PingNodes = []string{"198.51.100.254"}
	cfgB.PingNodes = []string{"198.51.100.254"}
	a := startMem(t, mn, cfgA, newRecorder("a"), pingHook(aSees.Load))
	b := startMem(t, mn, cfgB, newRecorder("b"), pingHook(func() bool { return true }))
	waitFor(t, long, "settled", settled(a, b))
	waitFor(t, long, "counts exchanged", func() bool { return a.e.State().PeerPingCount == 1 && b.e.State().PingCount == 1 })
	// nodea's public side goes away: it sees no ping node, nodeb does.
	aSees.Store(false)
	waitFor(t, long, "nodea to give its group to nodeb", func() bool { return b.res.holds(gA) && !a.res.holds(gA) })
	if !a.log.has("Giving up because we") {
		t.Error("no ipfail giveup log on nodea")
	}
	if s := a.e.State(); s.PingCount != 0 || s.PeerPingCount != 1 {
		t.Errorf("ping counts %d/%d", s.PingCount, s.PeerPingCount)
	}
	// Back again: auto_failback on returns the group.
	aSees.Store(true)
	waitFor(t, long, "failback after ping node returns", func() bool { return a.res.holds(gA) && !b.res.holds(gA) })
}

func TestStonithFailureBlocksTakeover(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "allow")
	script := filepath.Join(dir, "stonith.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"reset $1\" >> "+dir+"/calls\ntest -e "+flag+" || { echo 'device unreachable' >&2; exit 1; }\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mn := newMemNet()
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	cfgB.StonithCmd = []string{script}
	a := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir()), newRecorder("a"), nil)
	b := startMem(t, mn, cfgB, newRecorder("b"), nil)
	waitFor(t, long, "settled", settled(a, b))
	a.kill()
	waitFor(t, long, "stonith failure logged", func() bool { return b.log.has("STONITH of nodea failed") })
	if !strings.Contains(b.log.String(), "device unreachable") {
		t.Error("the command's reason is not in the log")
	}
	time.Sleep(3 * fastTiming().DeadTime)
	if b.res.holds(gA) {
		t.Fatal("took over although STONITH failed")
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "takeover after STONITH succeeds", func() bool { return b.res.holds(gA) })
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if !strings.Contains(string(calls), "reset nodea") {
		t.Errorf("stonith calls: %q", calls)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	for name, mut := range map[string]func(*Config){
		"no node":      func(c *Config) { c.Node = "" },
		"self as peer": func(c *Config) { c.Peers = []string{"NodeA"} },
		"two peers":    func(c *Config) { c.Peers = []string{"nodeb", "nodec"} },
		"no keys":      func(c *Config) { c.Keyring = nil },
		"no media":     func(c *Config) { c.Media = nil },
		"bad owner":    func(c *Config) { c.Groups = []Group{{Name: "x", Owner: "nodec"}} },
		"dup group":    func(c *Config) { c.Groups = []Group{{Name: "x", Owner: "nodea"}, {Name: "x", Owner: "nodeb"}} },
		"deadtime":     func(c *Config) { c.Timing.DeadTime = c.Timing.Keepalive },
	} {
		c := good
		c.Groups = append([]Group(nil), good.Groups...)
		mut(&c)
		if _, err := New(c, newRecorder("x")); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(good, nil); err == nil {
		t.Error("nil Resources accepted")
	}
	if _, err := New(good, newRecorder("x")); err != nil {
		t.Error(err)
	}
}

func TestLegacyIPRequest(t *testing.T) {
	mn := newMemNet()
	a := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackLegacy, t.TempDir()), newRecorder("a"), nil)
	b := startMem(t, mn, memConfig("nodeb", "nodea", 1, hacf.FailbackLegacy, t.TempDir()), newRecorder("b"), nil)
	waitFor(t, long, "each owner holds its group", func() bool { return a.res.holds(gA) && b.res.holds(gB) })
	a.kill()
	waitFor(t, long, "nodeb takes everything", func() bool { return b.res.holds(gA) })
	// nodea returns and asks for its group: legacy always fails back.
	a2 := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackLegacy, a.dir), newRecorder("a2"), nil)
	waitFor(t, long, "ip-request hands the group back", func() bool { return a2.res.holds(gA) && !b.res.holds(gA) && b.res.holds(gB) })
	if !b.log.has("nodea asks for resource group 192.0.2.10") {
		t.Error("no ip-request log")
	}
	if err := a2.e.Standby(context.Background(), All); err == nil {
		t.Error("standby accepted with auto_failback legacy (Heartbeat refuses it)")
	}
}

func TestOnEvent(t *testing.T) {
	mn := newMemNet()
	var mu sync.Mutex
	var evs []Event
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgA.OnEvent = func(ev Event) {
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
	}
	a := startMem(t, mn, cfgA, newRecorder("a"), nil)
	b := startMem(t, mn, memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir()), newRecorder("b"), nil)
	waitFor(t, long, "settled", settled(a, b))
	b.kill()
	waitFor(t, long, "takeover", func() bool { return a.res.holds(gB) })
	mu.Lock()
	defer mu.Unlock()
	seen := map[EventKind]Event{}
	for _, ev := range evs {
		if _, ok := seen[ev.Kind]; !ok {
			seen[ev.Kind] = ev
		}
	}
	if ev := seen[EventLinkUp]; ev.Link != "eth0" || ev.Node != "nodeb" {
		t.Errorf("link-up event %+v", ev)
	}
	if ev := seen[EventAcquired]; ev.Group != gA || ev.At.IsZero() {
		t.Errorf("acquired event %+v", ev)
	}
	if ev := seen[EventNodeDead]; ev.Text != "node nodeb: is dead" {
		t.Errorf("node-dead event %+v", ev)
	}
	if _, ok := seen[EventLinkDead]; !ok {
		t.Error("no link-dead event")
	}
}

// eventLog records the engine's events (OnEvent must not block).
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }

// count counts the events of kind k about group g.
func (l *eventLog) count(k EventKind, g string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.evs {
		if e.Kind == k && e.Group == g {
			n++
		}
	}
	return n
}

// After a partition both nodes announced both addresses; when it heals,
// each keeps its own group and must announce it again (EventReassert), or
// the LAN keeps sending to the node that gave it back.
func TestHealedPartitionReassertsKeptGroups(t *testing.T) {
	mn := newMemNet()
	var evA, evB eventLog
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	cfgA.OnEvent, cfgB.OnEvent = evA.add, evB.add
	a := startMem(t, mn, cfgA, newRecorder("a"), nil)
	b := startMem(t, mn, cfgB, newRecorder("b"), nil)
	waitFor(t, long, "settled", settled(a, b))
	if n := evA.count(EventReassert, gA) + evB.count(EventReassert, gB); n != 0 {
		t.Fatalf("%d reassert events before any partition", n)
	}
	mn.setCut(0, true)
	waitFor(t, long, "split brain", func() bool { return b.res.holds(gA) && a.res.holds(gB) })
	mn.setCut(0, false)
	waitFor(t, long, "partition healed", func() bool { return settled(a, b)() && !a.res.holds(gB) && !b.res.holds(gA) })
	waitFor(t, long, "each node reasserts its own group", func() bool {
		return evA.count(EventReassert, gA) > 0 && evB.count(EventReassert, gB) > 0
	})
	// A group given back is never reasserted.
	if n := evA.count(EventReassert, gB) + evB.count(EventReassert, gA); n != 0 {
		t.Errorf("%d reassert events for a group given back", n)
	}
}

// A node whose checks are cold (Config.Ready false) does not take its group
// back from a live peer: the peer keeps serving until the checks complete a
// pass, so clients never meet a table at weight 0. A dead peer's groups are
// taken at once.
func TestFailbackWaitsForWarmChecks(t *testing.T) {
	mn := newMemNet()
	var ready atomic.Bool
	var lastSince atomic.Int64
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	cfgA.Ready = func(g string, since time.Time) bool {
		lastSince.Store(since.UnixNano())
		return ready.Load()
	}
	b := startMem(t, mn, cfgB, newRecorder("b"), nil)
	a := startMem(t, mn, cfgA, newRecorder("a"), nil)
	waitFor(t, long, "b holds its group", func() bool { return b.res.holds(gB) && b.e.State().Stable })
	// a comes up cold while b serves both groups (a was down: b took gA).
	a.kill()
	waitFor(t, long, "b takes gA from the dead a", func() bool { return b.res.holds(gA) })
	a2 := startMem(t, mn, cfgA, newRecorder("a2"), nil)
	waitFor(t, long, "a2 sees b", func() bool { return a2.e.State().Peer.Status == StatusActive })
	time.Sleep(time.Second) // < WarmWait; b's failback request comes within ~100 ms
	if a2.res.holds(gA) || !b.res.holds(gA) {
		t.Fatalf("a cold node took its group back: a2=%s b=%s", a2.res.callLog(), b.res.callLog())
	}
	if lastSince.Load() == 0 {
		t.Error("Ready was not given the time the links came back")
	}
	ready.Store(true)
	took := waitFor(t, long, "failback once warm", func() bool { return a2.res.holds(gA) && !b.res.holds(gA) })
	t.Logf("failback %v after the checks were warm", took)

	// Cold forever: the failback is delayed by WarmWait, not lost.
	ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	waitFor(t, long, "stable", func() bool { return a2.e.State().Stable && b.e.State().Stable })
	retry(t, func() error { return a2.e.Standby(ctx, All) }) // refused while a transition settles
	waitFor(t, long, "b holds both", func() bool { return b.res.holds(gA) && b.res.holds(gB) && !a2.res.holds(gA) })
	waitFor(t, long, "stable", func() bool { return a2.e.State().Stable && b.e.State().Stable })
	retry(t, func() error { return b.e.Standby(ctx, All) }) // refused while a transition settles
	took = waitFor(t, WarmWait(0)+long, "a2 takes both after WarmWait", func() bool { return a2.res.holds(gA) && a2.res.holds(gB) })
	if took < WarmWait(0)/2 {
		t.Errorf("a cold node took the groups %v after the request; expected about %v", took, WarmWait(0))
	}

	// A dead peer's groups are taken at once, cold or not.
	waitFor(t, long, "stable", func() bool { return a2.e.State().Stable && b.e.State().Stable })
	retry(t, func() error { return a2.e.Standby(ctx, All) }) // refused while a transition settles
	waitFor(t, long, "b holds both again", func() bool { return b.res.holds(gA) && b.res.holds(gB) && !a2.res.holds(gA) && !a2.res.holds(gB) })
	b.kill()
	waitFor(t, WarmWait(0)/2, "a2 takes a dead peer's groups at once", func() bool { return a2.res.holds(gA) && a2.res.holds(gB) })
}

// Between two directord nodes a planned handover (standby, failback) is make
// before break: the acquiring node holds the group before the other
// releases it, so the VIP is never held by nobody.
func TestStandbyMakesBeforeBreaking(t *testing.T) {
	mn := newMemNet()
	var gap atomic.Value
	var nodes [2]atomic.Pointer[testNode]
	probe := func(other int) func(string) {
		return func(g string) {
			if o := nodes[other].Load(); o != nil && !o.res.holds(g) {
				gap.Store(g)
			}
		}
	}
	resA, resB := newRecorder("a"), newRecorder("b")
	resA.onRelease, resB.onRelease = probe(1), probe(0)
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	addrsA := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	cfgA.LocalAddrs = func() []netip.Addr { return addrsA }
	a := startMem(t, mn, cfgA, resA, nil)
	b := startMem(t, mn, memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir()), resB, nil)
	nodes[0].Store(a)
	nodes[1].Store(b)
	waitFor(t, long, "settled", settled(a, b))
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	retry(t, func() error { return a.e.Standby(ctx, All) }) // refused while a transition settles
	waitFor(t, long, "b holds both", func() bool {
		return b.res.holds(gA) && !a.res.holds(gA) && a.e.State().Stable && b.e.State().Stable
	})
	if g := gap.Load(); g != nil {
		t.Errorf("nodea released %s before nodeb held it: a=%s b=%s", g, a.res.callLog(), b.res.callLog())
	}
	if h := b.res.handedOver(); h != gA || a.res.handedOver() != "" {
		t.Errorf("acquired as handed over: a %q, b %q, want b %s", a.res.handedOver(), h, gA)
	}
	// The standby request told b where a can be reached (dd_addrs), and
	// a's release knew b had taken the group.
	b.res.mu.Lock()
	got := fmt.Sprint(b.res.handedAddrs)
	b.res.mu.Unlock()
	if got != fmt.Sprint(addrsA) {
		t.Errorf("b's handover says a is at %s, want %s", got, addrsA)
	}
	a.res.mu.Lock()
	rel := strings.Join(a.res.releasedHanded, ",")
	a.res.mu.Unlock()
	if rel != gA {
		t.Errorf("a released as handed over: %q, want %s", rel, gA)
	}
	// Handing a's group back (hb_standby failback, as auto_failback does).
	retry(t, func() error { return b.e.Standby(ctx, Failback) }) // refused while a transition settles
	waitFor(t, long, "gA back on a", func() bool { return settled(a, b)() && !b.res.holds(gA) })
	if g := gap.Load(); g != nil {
		t.Errorf("nodeb released %s before nodea held it: a=%s b=%s", g, a.res.callLog(), b.res.callLog())
	}
}

// A make-before-break acquisition slower than mbbMaxAcquire is undone and
// the handover completes break before make, with the group on one node.
func TestSlowMakeBeforeBreakFallsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out mbbMaxAcquire")
	}
	mn := newMemNet()
	resB := newRecorder("b")
	// Only the make-before-break acquisition is slow: the undo ends it.
	resB.onRelease = func(string) { resB.slow.Store(0) }
	a := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir()), newRecorder("a"), nil)
	b := startMem(t, mn, memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir()), resB, nil)
	waitFor(t, long, "settled", settled(a, b))
	resB.slow.Store(int64(mbbMaxAcquire + 200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	retry(t, func() error { return a.e.Standby(ctx, Local) }) // refused while a transition settles
	waitFor(t, mbbMaxAcquire+3*long, "gA on b alone", func() bool {
		return b.res.holds(gA) && !a.res.holds(gA) && a.e.State().Stable && b.e.State().Stable
	})
	if !strings.Contains(resB.callLog(), "acquire 192.0.2.10, release 192.0.2.10, acquire 192.0.2.10") {
		t.Errorf("b did not undo its slow acquisition: %s", resB.callLog())
	}
}

// TestRestartDuringShutdownTakeoverFailsBack: nodea stops gracefully and
// restarts while nodeb is still acquiring its group (on the shutdown
// notice). nodea is back and stable before that takeover completes; once
// it does, auto_failback on must give the group back. (Found by
// testbed/hbinterop with two directord processes: nodeb kept the group.)
func TestRestartDuringShutdownTakeoverFailsBack(t *testing.T) {
	mn := newMemNet()
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	a := startMem(t, mn, cfgA, newRecorder("a"), nil)
	b := startMem(t, mn, cfgB, newRecorder("b"), nil)
	waitFor(t, long, "settled", settled(a, b))
	// nodeb's takeover outlasts nodea's restart.
	b.res.slow.Store(int64(500 * time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	if err := a.e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.errc:
		a.errc <- err
	case <-time.After(long):
		t.Fatal("Run did not return after Stop")
	}
	a2 := startMem(t, mn, memConfig("nodea", "nodeb", 1, hacf.FailbackOn, a.dir), newRecorder("a2"), nil)
	waitFor(t, long, "nodea back and stable", func() bool {
		return a2.e.State().Stable && a2.e.State().Peer.Status == StatusActive
	})
	if b.res.holds(gA) {
		t.Fatal("nodeb's takeover completed before nodea was back: the test proves nothing")
	}
	waitFor(t, long, "nodeb's takeover", func() bool { return b.log.has("mach_down takeover complete.") })
	waitFor(t, long, "failback to nodea", func() bool { return a2.res.holds(gA) && !b.res.holds(gA) })
}

// After a make-before-break standby the taker announces the group again
// once the peer has released it: during the overlap the peer may still
// have announced it, and a neighbour left pointing there loses packets.
func TestStandbyReassertsAfterRelease(t *testing.T) {
	mn := newMemNet()
	var evB eventLog
	cfgA := memConfig("nodea", "nodeb", 1, hacf.FailbackOn, t.TempDir())
	cfgB := memConfig("nodeb", "nodea", 1, hacf.FailbackOn, t.TempDir())
	cfgB.OnEvent = evB.add
	a := startMem(t, mn, cfgA, newRecorder("a"), nil)
	b := startMem(t, mn, cfgB, newRecorder("b"), nil)
	waitFor(t, long, "settled", settled(a, b))
	if n := evB.count(EventReassert, gA); n != 0 {
		t.Fatalf("%d reassert events before the standby", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	retry(t, func() error { return a.e.Standby(ctx, All) })
	waitFor(t, long, "b reasserts gA after a released it", func() bool {
		return evB.count(EventReassert, gA) == 1 && !a.res.holds(gA)
	})
	if n := evB.count(EventReassert, gB); n != 0 {
		t.Errorf("%d reassert events for b's own group, which did not move", n)
	}
}
