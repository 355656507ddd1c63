package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	probing "github.com/prometheus-community/pro-bing"
	"github.com/vishvananda/netns"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/testbed/heartbeatd"
)

// directord <-> directord over real UDP in two namespaces.

func ddPair(t *testing.T, links int, tm Timing, fb hacf.AutoFailback, tweakA, tweakB func(*Config, *Engine)) (*nsPair, *testNode, *testNode) {
	p := newNSPair(t, links)
	cfgA := ourConfig(t, p, "a", tm, fb, interopKey)
	cfgB := ourConfig(t, p, "b", tm, fb, interopKey)
	a := startOurs(t, p.hA, cfgA, func(e *Engine) {
		if tweakA != nil {
			tweakA(&e.cfg, e)
		}
	})
	b := startOurs(t, p.hB, cfgB, func(e *Engine) {
		if tweakB != nil {
			tweakB(&e.cfg, e)
		}
	})
	return p, a, b
}

func TestPairNetnsFailoverStandbyStop(t *testing.T) {
	p, a, b := ddPair(t, 1, DefaultTiming(), hacf.FailbackOn, nil, nil)
	waitFor(t, interopWait, "cold start", settled(a, b))
	ctx := context.Background()

	retry(t, func() error { return a.e.Standby(ctx, All) })
	waitFor(t, interopWait, "standby: nodeb holds all", func() bool {
		return b.res.holds(gA) && b.res.holds(gB) && !a.res.holds(gA) && a.e.State().Stable && b.e.State().Stable
	})
	retry(t, func() error { return a.e.Takeover(ctx, All) })
	waitFor(t, interopWait, "takeover: nodea holds all", func() bool {
		return a.res.holds(gA) && a.res.holds(gB) && !b.res.holds(gB) && a.e.State().Stable && b.e.State().Stable
	})
	retry(t, func() error { return b.e.Takeover(ctx, Local) })
	waitFor(t, interopWait, "nodeb takes back its own", settled(a, b))

	a.kill()
	waitFor(t, interopWait, "failover", func() bool { return b.res.holds(gA) })
	cfg := ourConfig(t, p, "a", DefaultTiming(), hacf.FailbackOn, interopKey)
	cfg.StateDir = a.dir
	a2 := startOurs(t, p.hA, cfg, nil)
	waitFor(t, interopWait, "failback", settled(a2, b))

	stopCtx, cancel := context.WithTimeout(ctx, interopWait)
	defer cancel()
	if err := a2.e.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, interopWait, "graceful handover", func() bool { return b.res.holds(gA) })
	if strings.Count(b.log.String(), `msg="node nodea: is dead"`) != 1 { // the kill, not the stop
		t.Error("graceful stop was treated as a death")
	}
}

func TestPairNetnsLinks(t *testing.T) {
	p, a, b := ddPair(t, 2, DefaultTiming(), hacf.FailbackOn, nil, nil)
	waitFor(t, interopWait, "cold start on two links", func() bool {
		s := b.e.State()
		return settled(a, b)() && len(s.Peer.Links) == 2 && s.Peer.Links[0].Up && s.Peer.Links[1].Up
	})
	p.setLink(t, 1, false)
	waitFor(t, interopWait, "Link nodea:hb1 dead.", func() bool { return b.log.has("Link nodea:hb1 dead.") })
	time.Sleep(5 * DefaultTiming().DeadTime)
	if b.res.holds(gA) || a.res.holds(gB) {
		t.Fatalf("one link of two cut moved resources: a=%s b=%s", a.res.callLog(), b.res.callLog())
	}
	p.setLink(t, 1, true)
	waitFor(t, interopWait, "Link nodea:hb1 up again", func() bool { return b.e.State().Peer.Links[1].Up })
	p.setLink(t, 0, false)
	p.setLink(t, 1, false)
	waitFor(t, interopWait, "split brain: both take all", func() bool { return b.res.holds(gA) && a.res.holds(gB) })
	if !b.log.has("split brain") || !a.log.has("split brain") {
		t.Error("split brain not logged loudly")
	}
}

// pingIn pings from inside ns: the ICMP socket must be created there, so
// the pinger's goroutine stays on a thread switched into ns.
func pingIn(ns netns.NsHandle) func(ctx context.Context, host string, iv time.Duration, seen func()) {
	return func(ctx context.Context, host string, iv time.Duration, seen func()) {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(ns); err != nil {
			return
		}
		for ctx.Err() == nil {
			p, err := probing.NewPinger(host)
			if err == nil {
				p.SetPrivileged(true)
				p.Interval = iv
				p.OnRecv = func(*probing.Packet) { seen() }
				p.RunWithContext(ctx)
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// TestPairNetnsIpfail: each node also has a "public" cable to a switch
// namespace holding the ping node 192.0.2.254. Pulling nodea's public
// cable must move its group to nodeb, and plugging it back return it.
func TestPairNetnsIpfail(t *testing.T) {
	needRoot(t)
	p := newNSPair(t, 1)
	sw := fmt.Sprintf("ddcl-sw-%d-%d", os.Getpid(), nsSeq.Add(1))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", sw).Run() })
	run(t, "ip", "netns", "add", sw)
	run(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", sw, "addr", "add", "192.0.2.254/24", "dev", "br0")
	run(t, "ip", "-n", sw, "link", "set", "br0", "up")
	for i, ns := range []string{p.a, p.b} {
		port := fmt.Sprintf("sw%d", i)
		run(t, "ip", "link", "add", "pub0", "netns", ns, "type", "veth", "peer", "name", port, "netns", sw)
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("192.0.2.%d/24", i+1), "dev", "pub0")
		run(t, "ip", "-n", ns, "link", "set", "pub0", "up")
		run(t, "ip", "-n", sw, "link", "set", port, "master", "br0", "up")
	}
	tm := DefaultTiming()
	withPing := func(ns netns.NsHandle) func(*Engine) {
		return func(e *Engine) {
			e.cfg.PingNodes = []string{"192.0.2.254"}
			e.pingHost = pingIn(ns)
		}
	}
	a := startOurs(t, p.hA, ourConfig(t, p, "a", tm, hacf.FailbackOn, interopKey), withPing(p.hA))
	b := startOurs(t, p.hB, ourConfig(t, p, "b", tm, hacf.FailbackOn, interopKey), withPing(p.hB))
	waitFor(t, interopWait, "cold start and both see the ping node", func() bool {
		return settled(a, b)() && a.e.State().PingCount == 1 && b.e.State().PeerPingCount == 1
	})
	run(t, "ip", "-n", sw, "link", "set", "sw0", "down") // nodea's public cable
	waitFor(t, interopWait, "nodea's group to move to nodeb", func() bool { return b.res.holds(gA) && !a.res.holds(gA) })
	if !a.log.has("Giving up because we") {
		t.Error("no ipfail log")
	}
	run(t, "ip", "-n", sw, "link", "set", "sw0", "up")
	waitFor(t, interopWait, "group back on nodea", func() bool { return a.res.holds(gA) && !b.res.holds(gA) })
}

// TestMeasureFailover measures the time from killing the holder to the
// other node acquiring, for several timings and both peers; it logs the
// figures for docs/heartbeat.md and asserts only generous bounds. Run it
// with CLUSTER_MEASURE=1 (it takes a few minutes).
func TestMeasureFailover(t *testing.T) {
	if os.Getenv("CLUSTER_MEASURE") == "" {
		t.Skip("set CLUSTER_MEASURE=1 to measure failover times")
	}
	needRoot(t)
	const runs = 5
	type row struct {
		name string
		tm   Timing
	}
	rows := []row{
		{"keepalive 1s / deadtime 5s", Timing{Keepalive: time.Second, WarnTime: 3 * time.Second, DeadTime: 5 * time.Second, InitDead: 10 * time.Second}},
		{"keepalive 100ms / deadtime 500ms (default)", DefaultTiming()},
		{"keepalive 50ms / deadtime 200ms", Timing{Keepalive: 50 * time.Millisecond, WarnTime: 150 * time.Millisecond, DeadTime: 200 * time.Millisecond, InitDead: time.Second, MaxRexmitDelay: 50 * time.Millisecond}},
	}
	var report strings.Builder
	for _, r := range rows {
		var kill, standby, stop []time.Duration
		for range runs {
			p, a, b := ddPair(t, 1, r.tm, hacf.FailbackOn, nil, nil)
			waitFor(t, interopWait, "cold start", settled(a, b))
			ctx := context.Background()
			// Graceful standby handover.
			start := time.Now()
			retry(t, func() error { return a.e.Standby(ctx, Local) })
			waitFor(t, interopWait, "standby", func() bool { return b.res.holds(gA) && !a.res.holds(gA) })
			standby = append(standby, time.Since(start))
			retry(t, func() error { return a.e.Takeover(ctx, Local) })
			waitFor(t, interopWait, "back", func() bool { return a.res.holds(gA) && !b.res.holds(gA) && a.e.State().Stable && b.e.State().Stable })
			// Kill (no goodbye): detection takes up to deadtime after the
			// last packet, which came up to a keepalive before the kill.
			time.Sleep(r.tm.Keepalive / 3)
			start = time.Now()
			a.kill()
			waitFor(t, 4*r.tm.DeadTime+10*time.Second, "failover", func() bool { return b.res.holds(gA) })
			kill = append(kill, time.Since(start))
			// Graceful stop of nodeb, which now holds everything.
			cfg := ourConfig(t, p, "a", r.tm, hacf.FailbackOn, interopKey)
			cfg.StateDir = a.dir
			a2 := startOurs(t, p.hA, cfg, nil)
			waitFor(t, interopWait, "failback", settled(a2, b))
			start = time.Now()
			sctx, cancel := context.WithTimeout(ctx, interopWait)
			if err := b.e.Stop(sctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			waitFor(t, interopWait, "stop handover", func() bool { return a2.res.holds(gB) })
			stop = append(stop, time.Since(start))
			a2.kill()
		}
		fmt.Fprintf(&report, "| directord ↔ directord, %s | %s | %s | %s |\n", r.name, spread(kill), spread(standby), spread(stop))
		for _, d := range kill {
			if d > r.tm.DeadTime+5*time.Second {
				t.Errorf("%s: failover took %v", r.name, d)
			}
		}
	}

	// Against the real daemon at Heartbeat's usual 1 s / 5 s.
	if heartbeatd.Missing() == "" {
		var theirsDie, oursDie []time.Duration
		tmOurs := Timing{Keepalive: time.Second, WarnTime: 3 * time.Second, DeadTime: 5 * time.Second, InitDead: 10 * time.Second}
		tmReal := heartbeatd.Timing{Keepalive: "1", WarnTime: "3", DeadTime: "5", InitDead: "10"}
		for range 3 {
			p := newNSPair(t, 1)
			rn := newRealNode(t, p.a, tmReal, hacf.FailbackOn, interopKey, []string{"198.51.100.2"})
			rn.start()
			ours := startOurs(t, p.hB, ourConfig(t, p, "b", tmOurs, hacf.FailbackOn, interopKey), nil)
			waitFor(t, 60*time.Second, "cold start", interopSettled(rn, ours))
			time.Sleep(6 * time.Second) // past Heartbeat's start-up dt (+2 s for 5 s)
			start := time.Now()
			rn.powerOff()
			waitFor(t, 30*time.Second, "directord takes over", func() bool { return ours.res.holds(gA) })
			theirsDie = append(theirsDie, time.Since(start))
			rn.start()
			waitFor(t, 60*time.Second, "failback", interopSettled(rn, ours))
			time.Sleep(6 * time.Second)
			start = time.Now()
			ours.kill()
			waitFor(t, 30*time.Second, "heartbeat takes over", func() bool { return rn.holds(gB) })
			oursDie = append(oursDie, time.Since(start))
			rn.Kill9()
		}
		fmt.Fprintf(&report, "| kill -9 heartbeat 3.0.6 → directord acquires, 1s / 5s | %s | | |\n", spread(theirsDie))
		fmt.Fprintf(&report, "| directord killed → heartbeat 3.0.6 acquires, 1s / 5s | %s | | |\n", spread(oursDie))
	}
	t.Logf("failover figures (min / median / max of each):\n| scenario | kill → acquired | standby handover | graceful stop handover |\n|---|---|---|---|\n%s", report.String())
}

// spread formats min / median / max.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	f := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("%s / %s / %s", f(s[0]), f(s[len(s)/2]), f(s[len(s)-1]))
}

// TestPairNetnsBcastMcast runs the pair over a bcast and an mcast medium
// at once (the admin-scoped group stays inside the test's namespaces).
func TestPairNetnsBcastMcast(t *testing.T) {
	media := func(c *Config, _ *Engine) {
		c.Media = []hacf.Medium{
			{Type: hacf.Bcast, Interface: "hb0", Port: hacf.DefaultUDPPort},
			{Type: hacf.Mcast, Interface: "hb1", Group: netip.MustParseAddr("239.0.0.1"), Port: 696, TTL: 1},
		}
	}
	p, a, b := ddPair(t, 2, DefaultTiming(), hacf.FailbackOn, media, media)
	waitFor(t, interopWait, "cold start on bcast and mcast", func() bool {
		s := b.e.State()
		return settled(a, b)() && s.Peer.Links[0].Up && s.Peer.Links[1].Up
	})
	if s := b.e.State(); !strings.HasPrefix(s.Peer.Links[0].Medium, "bcast hb0") || !strings.HasPrefix(s.Peer.Links[1].Medium, "mcast hb1 239.0.0.1") {
		t.Errorf("media %q %q", s.Peer.Links[0].Medium, s.Peer.Links[1].Medium)
	}
	p.setLink(t, 0, false) // the bcast link
	waitFor(t, interopWait, "bcast link dead", func() bool { return b.log.has("Link nodea:hb0 dead.") })
	time.Sleep(5 * DefaultTiming().DeadTime)
	if b.res.holds(gA) || b.log.has("is dead") {
		t.Fatal("losing the bcast link moved resources although mcast carries heartbeats")
	}
	a.kill()
	waitFor(t, interopWait, "failover over mcast alone", func() bool { return b.res.holds(gA) })
}
