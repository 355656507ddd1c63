package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/proto"
	"github.com/directord/directord/heartbeat/wire"
	"github.com/directord/directord/testbed/heartbeatd"
)

// Interop with Debian's heartbeat 3.0.6: the real daemon is nodea and
// owns 192.0.2.10; directord is nodeb and owns 192.0.2.20. Both groups in
// one haresources cover both roles (our node as owner, and theirs).

const interopKey = "interop-test-key"

// Heartbeat at sub-second timings keeps the tests short; the measurement
// test uses its usual 1 s / 5 s.
var (
	realFast = heartbeatd.Timing{Keepalive: "200ms", WarnTime: "600ms", DeadTime: "1", InitDead: "2"}
	ourFast  = Timing{Keepalive: 200 * time.Millisecond, WarnTime: 600 * time.Millisecond, DeadTime: time.Second,
		InitDead: 2 * time.Second, MaxRexmitDelay: 100 * time.Millisecond, DeadPing: time.Second}
)

const interopWait = 30 * time.Second // generous: a loaded 2-core box

func interopPair(t *testing.T, fb hacf.AutoFailback, tweak func(*Engine)) (*nsPair, *realNode, *testNode) {
	return interopPairTimed(t, realFast, ourFast, fb, tweak)
}

// interopPairTimed is interopPair with the two nodes' timings given.
func interopPairTimed(t *testing.T, realTm heartbeatd.Timing, ourTm Timing, fb hacf.AutoFailback, tweak func(*Engine)) (*nsPair, *realNode, *testNode) {
	needHeartbeat(t)
	p := newNSPair(t, 1)
	rn := newRealNode(t, p.a, realTm, fb, interopKey, []string{"198.51.100.2"})
	rn.start()
	ours := startOurs(t, p.hB, ourConfig(t, p, "b", ourTm, fb, interopKey), tweak)
	return p, rn, ours
}

func interopSettled(rn *realNode, ours *testNode) func() bool {
	return func() bool {
		return rn.holds(gA) && !rn.holds(gB) && ours.res.holds(gB) && !ours.res.holds(gA) && ours.e.State().Stable
	}
}

func TestHeartbeatInteropFailoverAndFailback(t *testing.T) {
	p, rn, ours := interopPair(t, hacf.FailbackOn, nil)
	d := waitFor(t, interopWait, "cold start: each owner holds its group", interopSettled(rn, ours))
	t.Logf("cold start settled after %v", d)
	if !strings.Contains(rn.Log(), "Link nodeb:hb0 up") {
		t.Error("heartbeat never saw our link up")
	}
	if st := rn.NodeStatus("nodeb"); st != "active" {
		t.Errorf("cl_status nodestatus nodeb = %q", st)
	}
	if ours.e.State().Peer.Directord {
		t.Error("Heartbeat 3.0.6 taken for a directord peer")
	}

	// kill -9 the real node: we take its group after deadtime.
	rn.powerOff()
	killed := time.Now()
	waitFor(t, interopWait, "directord to take nodea's group", func() bool { return ours.res.holds(gA) })
	t.Logf("kill -9 heartbeat -> directord holds %s after %v (dt 1s)", gA, time.Since(killed))
	if !ours.log.has("node nodea: is dead") {
		t.Error("death not logged")
	}

	// Restart: auto_failback on gives it back.
	rn.start()
	waitFor(t, interopWait, "failback to heartbeat", func() bool { return rn.holds(gA) && !ours.res.holds(gA) && ours.res.holds(gB) })
	waitFor(t, interopWait, "stable", func() bool { return ours.e.State().Stable })

	// Now our node dies with no goodbye: heartbeat takes our group.
	ours.kill()
	killed = time.Now()
	waitFor(t, interopWait, "heartbeat to take nodeb's group", func() bool { return rn.holds(gB) })
	t.Logf("directord cancelled -> heartbeat holds %s after %v (dt 1s)", gB, time.Since(killed))

	// We come back (same state dir: new generation) and get it back.
	cfg := ourConfig(t, p, "b", ourFast, hacf.FailbackOn, interopKey)
	cfg.StateDir = ours.dir
	ours2 := startOurs(t, p.hB, cfg, nil)
	waitFor(t, interopWait, "failback to directord", interopSettled(rn, ours2))
	if !strings.Contains(rn.Log(), "Heartbeat restart on node nodeb") {
		t.Error("heartbeat did not see our restart")
	}
	if strings.Contains(rn.Log(), "Both machines own") {
		t.Errorf("heartbeat saw double ownership:\n%s", rn.Log())
	}
}

func TestHeartbeatInteropFailbackOff(t *testing.T) {
	_, rn, ours := interopPair(t, hacf.FailbackOff, nil)
	waitFor(t, interopWait, "cold start", interopSettled(rn, ours))
	rn.powerOff()
	waitFor(t, interopWait, "directord to take nodea's group", func() bool { return ours.res.holds(gA) })
	rn.start()
	waitFor(t, interopWait, "heartbeat back and stable", func() bool {
		return strings.Contains(rn.Log(), "remote resource transition completed") && ours.e.State().Peer.Status == StatusActive && ours.e.State().Stable
	})
	time.Sleep(5 * time.Second) // several deadtimes: nothing may move
	if rn.holds(gA) || !ours.res.holds(gA) || !ours.res.holds(gB) {
		t.Fatalf("auto_failback off moved resources: ours=%s heartbeat=%s", ours.res.callLog(), rn.vipLog())
	}
}

func TestHeartbeatInteropStandbyTakeover(t *testing.T) {
	_, rn, ours := interopPair(t, hacf.FailbackOn, nil)
	waitFor(t, interopWait, "cold start", interopSettled(rn, ours))

	// hb_standby on the real node: everything comes to us.
	if out, err := rn.Inside(heartbeatd.HBStandby); err != nil {
		t.Fatalf("hb_standby: %v\n%s", err, out)
	}
	start := time.Now()
	waitFor(t, interopWait, "standby: directord holds all", func() bool {
		return !rn.holds(gA) && ours.res.holds(gA) && ours.res.holds(gB) && ours.e.State().Stable
	})
	t.Logf("hb_standby on heartbeat -> directord holds all after %v", time.Since(start))
	if h := ours.res.handedOver(); h != gA+" (not from directord)" {
		t.Errorf("groups acquired as handed over by heartbeat's standby: %q", h)
	}

	// hb_takeover on the real node: everything goes back to it.
	if out, err := rn.Inside(heartbeatd.HBTakeover, "all"); err != nil {
		t.Fatalf("hb_takeover: %v\n%s", err, out)
	}
	waitFor(t, interopWait, "takeover: heartbeat holds all", func() bool {
		return rn.holds(gA) && rn.holds(gB) && !ours.res.holds(gA) && !ours.res.holds(gB) && ours.e.State().Stable
	})

	// Our Takeover(local): heartbeat goes standby for our group.
	waitFor(t, interopWait, "heartbeat idle", func() bool {
		return strings.Count(rn.Log(), "Other node completed standby") >= 1 || ours.e.State().Stable
	})
	ctx := context.Background()
	retry(t, func() error { return ours.e.Takeover(ctx, Local) })
	waitFor(t, interopWait, "our takeover local", func() bool { return ours.res.holds(gB) && !rn.holds(gB) && rn.holds(gA) && ours.e.State().Stable })

	// Our Standby(all): heartbeat takes everything.
	retry(t, func() error { return ours.e.Standby(ctx, All) })
	waitFor(t, interopWait, "our standby all", func() bool {
		return rn.holds(gA) && rn.holds(gB) && !ours.res.holds(gB) && ours.e.State().Stable
	})
	if strings.Contains(rn.Log(), "Ignored standby message") {
		t.Errorf("heartbeat ignored a standby message:\n%s", rn.Log())
	}
}

// retry repeats a request refused while a transition settles.
func retry(t *testing.T, f func() error) {
	t.Helper()
	var err error
	for range 100 {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
}

func TestHeartbeatInteropGracefulStop(t *testing.T) {
	p, rn, ours := interopPair(t, hacf.FailbackOn, nil)
	waitFor(t, interopWait, "cold start", interopSettled(rn, ours))

	// heartbeat -k: we take its group at once, not after deadtime.
	stopped := make(chan error, 1)
	go func() { stopped <- rn.Stop(30 * time.Second) }()
	start := time.Now()
	waitFor(t, interopWait, "directord to take nodea's group", func() bool { return ours.res.holds(gA) })
	t.Logf("heartbeat -k -> directord holds %s after %v", gA, time.Since(start))
	if !ours.log.has("Received shutdown notice from 'nodea'.") {
		t.Error("no shutdown notice")
	}
	if ours.log.has("node nodea: is dead") {
		t.Error("waited for deadtime instead of the shutdown notice")
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}

	// Back, then our graceful stop: heartbeat takes our group at once.
	rn.start()
	waitFor(t, interopWait, "failback", interopSettled(rn, ours))
	ctx, cancel := context.WithTimeout(context.Background(), interopWait)
	defer cancel()
	start = time.Now()
	if err := ours.e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	deadFirst := false
	waitFor(t, interopWait, "heartbeat to take nodeb's group", func() bool {
		deadFirst = deadFirst || strings.Contains(rn.Log(), "node nodeb: is dead")
		return rn.holds(gB)
	})
	t.Logf("directord Stop -> heartbeat holds %s after %v", gB, time.Since(start))
	if !strings.Contains(rn.Log(), "Received shutdown notice from 'nodeb'") {
		t.Errorf("heartbeat did not get our shutdown notice")
	}
	// Heartbeat declares a node that said goodbye dead later on; what
	// matters is that it took over before that.
	if deadFirst {
		t.Error("heartbeat waited for deadtime")
	}
	_ = p
}

func TestHeartbeatInteropWrongKey(t *testing.T) {
	needHeartbeat(t)
	p := newNSPair(t, 1)
	rn := newRealNode(t, p.a, realFast, hacf.FailbackOn, interopKey, []string{"198.51.100.2"})
	rn.start()
	ours := startOurs(t, p.hB, ourConfig(t, p, "b", ourFast, hacf.FailbackOn, "not-the-key"), nil)
	waitFor(t, interopWait, "both sides to reject", func() bool {
		l := rn.Log()
		return ours.log.has("authentication failed") && (strings.Contains(l, "authentication failed") || strings.Contains(l, "authtoken does not match"))
	})
	if ours.log.has("Link nodea:hb0 up") || strings.Contains(rn.Log(), "Link nodeb:hb0 up") {
		t.Error("a link came up with a wrong key")
	}
}

func TestHeartbeatInteropRetransmission(t *testing.T) {
	var droppedOut, droppedIn atomic.Int32
	tweak := func(e *Engine) {
		// Lose heartbeat's first resource message: we must ask for it.
		e.dropIn = func(m *wire.Message) bool {
			return m.Type() == proto.TypeResource && droppedIn.CompareAndSwap(0, 1)
		}
		// Lose our first resource message: heartbeat must ask for it.
		e.dropOut = func(m *wire.Message) bool {
			if m.Type() == proto.TypeResource && droppedOut.CompareAndSwap(0, 1) {
				return true
			}
			return false
		}
	}
	_, rn, ours := interopPair(t, hacf.FailbackOn, tweak)
	waitFor(t, interopWait, "cold start despite the loss", interopSettled(rn, ours))
	waitFor(t, interopWait, "heartbeat's NS_rexmit answered", func() bool { return ours.log.has("retransmitted on request") })
	waitFor(t, interopWait, "our NS_rexmit answered by heartbeat", func() bool { return ours.log.has("Retransmitted message") })
	if droppedOut.Load() != 1 || droppedIn.Load() != 1 {
		t.Fatal("nothing dropped")
	}
	if !strings.Contains(rn.Log(), "lost packet(s) for [nodeb]") {
		t.Error("heartbeat did not notice our lost packet")
	}
}

func TestHeartbeatInteropLegacy(t *testing.T) {
	needHeartbeat(t)
	p := newNSPair(t, 1)
	rn := newRealNode(t, p.a, realFast, hacf.FailbackLegacy, interopKey, []string{"198.51.100.2"})
	rn.start()
	// In legacy mode groups are named on the wire by their haresources key.
	cfg := ourConfig(t, p, "b", ourFast, hacf.FailbackLegacy, interopKey)
	cfg.Groups = []Group{{Name: "vip::" + gA, Owner: "nodea"}, {Name: "vip::" + gB, Owner: "nodeb"}}
	ours := startOurs(t, p.hB, cfg, nil)
	settledL := func() bool {
		return rn.holds(gA) && !rn.holds(gB) && ours.res.holds("vip::"+gB) && !ours.res.holds("vip::"+gA)
	}
	waitFor(t, interopWait, "cold start (legacy)", settledL)
	rn.powerOff()
	waitFor(t, interopWait, "directord takes nodea's group", func() bool { return ours.res.holds("vip::" + gA) })
	rn.start()
	waitFor(t, interopWait, "heartbeat asks for it back (ip-request)", settledL)
	// Our restart: we ask heartbeat for our group.
	ours.kill()
	waitFor(t, interopWait, "heartbeat takes nodeb's group", func() bool { return rn.holds(gB) })
	cfg2 := cfg
	cfg2.StateDir = ours.dir
	ours2 := startOurs(t, p.hB, cfg2, nil)
	waitFor(t, interopWait, "our ip-request answered", func() bool {
		return rn.holds(gA) && !rn.holds(gB) && ours2.res.holds("vip::"+gB)
	})
}

func TestHeartbeatInteropTwoLinks(t *testing.T) {
	needHeartbeat(t)
	p := newNSPair(t, 2)
	rn := newRealNode(t, p.a, realFast, hacf.FailbackOn, interopKey, []string{"198.51.100.2", "203.0.113.2"})
	rn.start()
	ours := startOurs(t, p.hB, ourConfig(t, p, "b", ourFast, hacf.FailbackOn, interopKey), nil)
	waitFor(t, interopWait, "cold start on two links", func() bool {
		return interopSettled(rn, ours)() && strings.Contains(rn.Log(), "Link nodeb:hb1 up") && ours.log.has("Link nodea:hb1 up.")
	})
	p.setLink(t, 1, false)
	waitFor(t, interopWait, "both sides see hb1 dead", func() bool {
		return strings.Contains(rn.Log(), "Link nodeb:hb1 dead") && ours.log.has("Link nodea:hb1 dead.")
	})
	time.Sleep(3 * time.Second) // three deadtimes
	if !interopSettled(rn, ours)() || ours.log.has("is dead") || strings.Contains(rn.Log(), "node nodeb: is dead") {
		t.Fatalf("cutting one of two links moved resources: ours=%s heartbeat=%s", ours.res.callLog(), rn.vipLog())
	}
	p.setLink(t, 1, true)
	waitFor(t, interopWait, "hb1 back on both sides", func() bool {
		return strings.Count(rn.Log(), "Link nodeb:hb1 up") >= 2 && ours.e.State().Peer.Links[1].Up
	})
}

// TestHeartbeatInteropIpfail pairs our built-in ipfail with Heartbeat's
// own ipfail client (respawned by heartbeat, ping node configured). The
// second heartbeat link runs over a "public" switch namespace that also
// holds the ping node; pulling heartbeat's public cable makes its ipfail
// ask for our count, we answer that we see more, and it goes standby.
func TestHeartbeatInteropIpfail(t *testing.T) {
	needHeartbeat(t)
	if _, err := os.Stat("/usr/libexec/heartbeat/ipfail"); err != nil {
		t.Skip("needs heartbeat's ipfail")
	}
	p := newNSPair(t, 1)
	sw := fmt.Sprintf("ddcl-sw-%d-%d", os.Getpid(), nsSeq.Add(1))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", sw).Run() })
	run(t, "ip", "netns", "add", sw)
	run(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", sw, "addr", "add", "203.0.113.254/24", "dev", "br0")
	run(t, "ip", "-n", sw, "link", "set", "br0", "up")
	for i, ns := range []string{p.a, p.b} {
		port := fmt.Sprintf("sw%d", i)
		run(t, "ip", "link", "add", "hb1", "netns", ns, "type", "veth", "peer", "name", port, "netns", sw)
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("203.0.113.%d/24", i+1), "dev", "hb1")
		run(t, "ip", "-n", ns, "link", "set", "hb1", "up")
		run(t, "ip", "-n", sw, "link", "set", port, "master", "br0", "up")
	}
	p.links = 2
	rn := newRealNode(t, p.a, realFast, hacf.FailbackOn, interopKey, []string{"198.51.100.2", "203.0.113.2"},
		"ping 203.0.113.254", "respawn hacluster /usr/libexec/heartbeat/ipfail", "apiauth ipfail gid=haclient uid=hacluster")
	rn.start()
	cfg := ourConfig(t, p, "b", ourFast, hacf.FailbackOn, interopKey)
	cfg.PingNodes = []string{"203.0.113.254"}
	ours := startOurs(t, p.hB, cfg, func(e *Engine) { e.pingHost = pingIn(p.hB) })
	waitFor(t, interopWait, "cold start, ping node seen", func() bool {
		return interopSettled(rn, ours)() && ours.e.State().PingCount == 1 && strings.Contains(rn.Log(), "Starting \"/usr/libexec/heartbeat/ipfail\"")
	})
	time.Sleep(3 * time.Second)                          // ipfail signs on and settles
	run(t, "ip", "-n", sw, "link", "set", "sw0", "down") // heartbeat's public cable
	waitFor(t, 60*time.Second, "heartbeat's ipfail to give its group to us", func() bool {
		return ours.res.holds(gA) && !rn.holds(gA)
	})
	l := rn.Log()
	for _, want := range []string{"Asking other side for ping node count", "Giving up because we were told that we have less ping nodes"} {
		if !strings.Contains(l, want) {
			t.Errorf("heartbeat's log lacks %q", want)
		}
	}
	if !ours.log.has("Telling other node that we have more visible ping nodes.") {
		t.Error("we did not answer heartbeat's ipfail")
	}
}

// TestHeartbeatInteropLateHeartbeat stops the real daemon for longer than
// warntime but less than deadtime: we warn and nothing moves. Heartbeat's
// own view of the pause is the stop plus up to a keepalive (our last
// heartbeat may have come just before it) plus its resumption, so the stop
// sits well inside warntime–deadtime: at deadtime 1 s a 750 ms stop left
// Heartbeat 50 ms, and under CI's parallel load it declared us dead.
func TestHeartbeatInteropLateHeartbeat(t *testing.T) {
	realTm, ourTm := realFast, ourFast
	realTm.DeadTime, realTm.InitDead = "3", "6"
	ourTm.DeadTime, ourTm.InitDead = 3*time.Second, 6*time.Second
	_, rn, ours := interopPairTimed(t, realTm, ourTm, hacf.FailbackOn, nil)
	waitFor(t, interopWait, "cold start", interopSettled(rn, ours))
	time.Sleep(6 * time.Second) // past heartbeat's start-up dt (deadtime + 2 s)
	pid := strconv.Itoa(rn.PID())
	run(t, "kill", "-STOP", pid)
	time.Sleep(1200 * time.Millisecond) // warntime 600 ms < 1.2 s, and 1.4 s < deadtime 3 s
	run(t, "kill", "-CONT", pid)
	waitFor(t, interopWait, "late heartbeat warning", func() bool { return ours.log.has("Late heartbeat: Node nodea: interval") })
	time.Sleep(2 * time.Second)
	if ours.log.has("is dead") || !interopSettled(rn, ours)() {
		t.Fatalf("a late heartbeat moved resources: %s", ours.res.callLog())
	}
	if s := ours.e.State(); s.Peer.Late == 0 || s.Peer.DeadTime != 3*time.Second {
		t.Errorf("snapshot: late %d, peer deadtime %v", s.Peer.Late, s.Peer.DeadTime)
	}
	if l := rn.Log(); strings.Contains(l, "nodeb: is dead") || strings.Contains(l, "Both machines own") {
		t.Errorf("heartbeat saw us dead:\n%s", filterLog(l))
	}
}

// TestHeartbeatInteropDetachResume: our engine detaches and a new one
// resumes it (same generation, sequence continued) within heartbeat's view
// of our deadtime: Heartbeat 3.0.6 logs no restart and no death, takes
// nothing, and keeps accepting our messages (our standby then moves our
// group to it). What it sent during the gap is asked for again.
func TestHeartbeatInteropDetachResume(t *testing.T) {
	p, rn, ours := interopPair(t, hacf.FailbackOn, nil)
	waitFor(t, interopWait, "cold start", interopSettled(rn, ours))
	time.Sleep(time.Second) // past heartbeat's own settling
	vips := rn.vipLog()

	ctx, cancel := context.WithTimeout(context.Background(), interopWait)
	defer cancel()
	r, err := ours.e.Detach(ctx)
	if err != nil {
		t.Fatalf("Detach: %v", err)
	}
	detached := time.Now()
	cfg := ourConfig(t, p, "b", ourFast, hacf.FailbackOn, interopKey)
	cfg.StateDir = ours.dir
	cfg.Resume = &r
	time.Sleep(300 * time.Millisecond) // a restart's gap; deadtime is 1 s
	ours2 := startOurs(t, p.hB, cfg, nil)
	waitFor(t, interopWait, "the resumed node to hold its group", func() bool { return ours2.res.holds(gB) && ours2.e.State().Stable })
	t.Logf("resumed %v after the detach", time.Since(detached).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // three of heartbeat's deadtimes

	log := rn.Log()
	for _, bad := range []string{"Heartbeat restart on node nodeb", "nodeb: is dead", "Link nodeb:hb0 dead", "replay", "Both machines own"} {
		if strings.Contains(log, bad) {
			t.Errorf("heartbeat logged %q:\n%s", bad, filterLog(log))
		}
	}
	if rn.vipLog() != vips || rn.holds(gB) {
		t.Errorf("heartbeat moved resources: %s", rn.vipLog())
	}
	if st := rn.NodeStatus("nodeb"); st != "active" {
		t.Errorf("cl_status nodestatus nodeb = %q", st)
	}
	// Heartbeat still processes our (resumed) sequence: a standby goes
	// through.
	retry(t, func() error { return ours2.e.Standby(ctx, Local) })
	waitFor(t, interopWait, "heartbeat to take our group on our standby", func() bool { return rn.holds(gB) && !ours2.res.holds(gB) })
}
