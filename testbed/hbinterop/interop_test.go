package hbinterop

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/directord/directord/testbed/heartbeatd"
)

// killMargin is what a takeover after kill -9 may take beyond deadtime:
// the detection tick, the peer's check interval, Heartbeat's fork of its
// mach_down and IPaddr2 scripts, on a loaded machine.
const killMargin = 2 * time.Second

// coldStart starts both daemons and waits until each owner holds its VIP,
// and only it, and the client reaches each through it.
func coldStart(t *testing.T, b *bed) {
	t.Helper()
	b.startHeartbeat()
	b.dd.start()
	d := b.expect("cold start", owners{nodeA, nodeB})
	t.Logf("cold start: each owner holds its VIP after %v", d.Round(time.Millisecond))
	for _, v := range vips {
		out, err := b.c.CombinedOutput(exec.Command("ping", "-c", "1", "-W", "2", v.String()))
		if err != nil {
			t.Errorf("ping %s from the client: %v\n%s", v, err, out)
		}
	}
	if st := b.hb.NodeStatus(nodeB); st != "active" {
		t.Errorf("heartbeat's cl_status nodestatus nodeb = %q, want active", st)
	}
	out, err := b.dd.cli("status", "--socket", b.dd.sock)
	if err != nil || !strings.Contains(out, "peer nodea: active") {
		t.Errorf("directord status: %v\n%s", err, out)
	}
}

// TestColdStartKillRestart, auto_failback on: cold start; kill -9 of
// heartbeat moves its VIP to directord within deadtime + margin and its
// restart brings it back; then the same with directord killed and
// restarted.
func TestColdStartKillRestart(t *testing.T) {
	b := newBed(t, options{failback: "on"})
	coldStart(t, b)

	// Heartbeat, holding vipA, is killed.
	b.heartbeatSettled()
	took := b.kill9Heartbeat()
	t.Logf("kill -9 heartbeat -> directord holds %s after %v (deadtime %v)", vipA, took.Round(time.Millisecond), deadTime)
	if took > deadTime+killMargin {
		t.Errorf("takeover after kill -9 of heartbeat took %v, want at most deadtime %v + %v", took, deadTime, killMargin)
	}
	b.expect("directord holds everything", owners{nodeB, nodeB})
	if !strings.Contains(b.dd.log(), "node nodea: is dead") {
		t.Error("directord did not log nodea's death")
	}

	// Heartbeat restarts: auto_failback on gives vipA back.
	b.startHeartbeat()
	d := b.expect("failback to heartbeat", owners{nodeA, nodeB})
	t.Logf("heartbeat restarted -> holds %s again after %v", vipA, d.Round(time.Millisecond))

	// directord, holding vipB, is killed.
	b.heartbeatSettled()
	took = b.kill9Directord()
	t.Logf("kill -9 directord -> heartbeat holds %s after %v (deadtime %v)", vipB, took.Round(time.Millisecond), deadTime)
	if took > deadTime+killMargin {
		t.Errorf("takeover after kill -9 of directord took %v, want at most deadtime %v + %v", took, deadTime, killMargin)
	}
	b.expect("heartbeat holds everything", owners{nodeA, nodeA})
	if !strings.Contains(b.hbLog(), "node nodeb: is dead") {
		t.Error("heartbeat did not log nodeb's death")
	}

	// directord restarts (a new generation): vipB comes back to it.
	b.dd.start()
	d = b.expect("failback to directord", owners{nodeA, nodeB})
	t.Logf("directord restarted -> holds %s again after %v", vipB, d.Round(time.Millisecond))
	b.stays("settled after the failbacks", owners{nodeA, nodeB}, 2*time.Second)
	if l := b.hbLog(); strings.Contains(l, "Both machines own") {
		t.Error("heartbeat saw both machines own resources")
	}
}

// TestFailbackOff: with auto_failback off a restarted owner does not get
// its VIP back, in either role.
func TestFailbackOff(t *testing.T) {
	b := newBed(t, options{failback: "off"})
	coldStart(t, b)

	b.heartbeatSettled()
	b.kill9Heartbeat()
	b.expect("directord holds everything", owners{nodeB, nodeB})
	from := len(b.hbLog())
	b.startHeartbeat()
	waitLog(t, "heartbeat back", b.hbLog, from, "Status update for node nodeb: status active")
	b.stays("heartbeat restarted, auto_failback off", owners{nodeB, nodeB}, 3*deadTime)
	if !b.hb.Running() || b.hb.NodeStatus(nodeB) != "active" {
		t.Fatalf("heartbeat is not up with nodeb active: %q", b.hb.NodeStatus(nodeB))
	}

	b.heartbeatSettled()
	b.kill9Directord()
	b.expect("heartbeat holds everything", owners{nodeA, nodeA})
	from = len(b.dd.log())
	b.dd.start()
	waitLog(t, "directord back", b.dd.log, from, "Link nodea:hb0 up.")
	b.stays("directord restarted, auto_failback off", owners{nodeA, nodeA}, 3*deadTime)
}

// TestStandbyTakeover: directord's standby and takeover and Heartbeat's
// hb_standby and hb_takeover move the VIPs, each way.
func TestStandbyTakeover(t *testing.T) {
	b := newBed(t, options{failback: "on"})
	coldStart(t, b)

	start := time.Now()
	b.dd.request("standby")
	b.expect("directord standby: heartbeat holds everything", owners{nodeA, nodeA})
	t.Logf("directord standby -> heartbeat holds both VIPs after %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	b.dd.request("takeover")
	b.expect("directord takeover: directord holds everything", owners{nodeB, nodeB})
	t.Logf("directord takeover -> directord holds both VIPs after %v", time.Since(start).Round(time.Millisecond))

	b.quiet() // Heartbeat ignores a standby asked during a transition
	start = time.Now()
	b.hbCommand(heartbeatd.HBTakeover, "all")
	b.expect("hb_takeover: heartbeat holds everything", owners{nodeA, nodeA})
	t.Logf("hb_takeover all -> heartbeat holds both VIPs after %v", time.Since(start).Round(time.Millisecond))

	b.quiet()
	start = time.Now()
	b.hbCommand(heartbeatd.HBStandby)
	b.expect("hb_standby: directord holds everything", owners{nodeB, nodeB})
	t.Logf("hb_standby -> directord holds both VIPs after %v", time.Since(start).Round(time.Millisecond))
	b.stays("after hb_standby", owners{nodeB, nodeB}, 2*time.Second)

	if l := b.hbLog(); strings.Contains(l, "Ignored standby message") {
		t.Error("heartbeat ignored a standby message")
	}
}

// TestGracefulStop: SIGTERM of directord and heartbeat -k hand the VIP
// over at once (the shutdown notice), not after deadtime. The deadtime is
// 3 s here: Heartbeat's own takeover forks a chain of shell scripts that
// takes a good part of a second on a loaded machine, and a node that said
// goodbye is declared dead after deadtime all the same.
func TestGracefulStop(t *testing.T) {
	const deadTime = 3 * time.Second
	b := newBed(t, options{failback: "on", tm: heartbeatd.Timing{Keepalive: "200ms", WarnTime: "1", DeadTime: "3", InitDead: "6"}})
	coldStart(t, b)

	// SIGTERM of directord: heartbeat takes vipB on our shutdone.
	b.quiet()
	stopped := make(chan error, 1)
	go func() { stopped <- b.dd.signal(syscall.SIGTERM) }()
	took := b.waitVIP("heartbeat takes vipB on directord's SIGTERM", b.a, vipB)
	deadFirst := strings.Contains(b.hbLog(), "node nodeb: is dead")
	t.Logf("SIGTERM directord -> heartbeat holds %s after %v", vipB, took.Round(time.Millisecond))
	if err := <-stopped; err != nil {
		t.Errorf("directord's graceful stop: %v", err)
	}
	if took >= deadTime || deadFirst {
		t.Errorf("heartbeat took over after %v (deadtime %v), nodeb declared dead first: %v", took, deadTime, deadFirst)
	}
	if !strings.Contains(b.hbLog(), "Received shutdown notice from 'nodeb'") {
		t.Error("heartbeat did not get directord's shutdown notice")
	}
	b.expect("heartbeat holds everything", owners{nodeA, nodeA})

	b.dd.start()
	b.expect("failback to directord", owners{nodeA, nodeB})

	// heartbeat -k: directord takes vipA on heartbeat's shutdone.
	b.quiet()
	hbStopped := make(chan error, 1)
	go func() { hbStopped <- b.hb.Stop(wait) }()
	took = b.waitVIP("directord takes vipA on heartbeat -k", b.b, vipA)
	deadFirst = strings.Contains(b.dd.log(), "node nodea: is dead")
	t.Logf("heartbeat -k -> directord holds %s after %v", vipA, took.Round(time.Millisecond))
	if err := <-hbStopped; err != nil {
		t.Error(err)
	}
	if took >= deadTime || deadFirst {
		t.Errorf("directord took over after %v (deadtime %v), nodea declared dead first: %v", took, deadTime, deadFirst)
	}
	if !strings.Contains(b.dd.log(), "Received shutdown notice from 'nodea'.") {
		t.Error("directord did not get heartbeat's shutdown notice")
	}
	b.expect("directord holds everything", owners{nodeB, nodeB})
}

// TestWrongKey: a peer with another key is rejected and logged by both,
// its link never comes up, and nothing moves to it. The node with the wrong
// key waits out a long initdead, so that it holds nothing of its own: had
// its packets been accepted, auto_failback on would give it its group.
func TestWrongKey(t *testing.T) {
	for _, c := range []struct {
		name   string
		o      options
		holder string
	}{
		{"directord has the wrong key", options{ddKey: "not-the-key", ddInitDead: "60"}, nodeA},
		{"heartbeat has the wrong key", options{hbKey: "not-the-key", hbInitDead: "60"}, nodeB},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.failback = "on"
			b := newBed(t, c.o)
			b.startHeartbeat()
			b.dd.start()
			waitLog(t, "directord rejects heartbeat", b.dd.log, 0, "heartbeat packet rejected: authentication failed")
			waitLog(t, "heartbeat rejects directord", b.hbLog, 0, "authtoken does not match")
			all := owners{c.holder, c.holder}
			b.expect("the node with the right key alone holds everything", all)
			b.stays("a wrong-key peer", all, 3*deadTime)
			if strings.Contains(b.hbLog(), "Link nodeb:hb0 up") || strings.Contains(b.dd.log(), "Link nodea:hb0 up") {
				t.Error("a link came up with a wrong key")
			}
		})
	}
}

// TestLostHeartbeats drops the heartbeat packets one way for a little less
// than half the deadtime, each way in turn: the receiver asks for what it
// missed (NS_rexmit), the sender retransmits it, the receiver logs it, and
// nobody is declared dead.
func TestLostHeartbeats(t *testing.T) {
	b := newBed(t, options{failback: "on"})
	coldStart(t, b)
	b.heartbeatSettled()
	settled := owners{nodeA, nodeB}

	// heartbeat -> directord: directord asks, heartbeat retransmits. Only
	// what is logged after the drop counts (a start-up can lose a packet
	// too).
	from := len(b.dd.log())
	b.dropHeartbeats(b.b, 450*time.Millisecond)
	waitLog(t, "directord receives the retransmission", b.dd.log, from, "Retransmitted message")
	if l := b.dd.log()[from:]; !strings.Contains(l, "from nodea received") {
		t.Errorf("directord's retransmission line names no nodea:\n%s", l)
	}

	// directord -> heartbeat: heartbeat asks, directord retransmits.
	from = len(b.hbLog())
	b.dropHeartbeats(b.a, 450*time.Millisecond)
	waitLog(t, "heartbeat notices the loss", b.hbLog, from, "lost packet(s) for [nodeb]")
	waitLog(t, "heartbeat receives the retransmission", b.hbLog, from, "No pkts missing from nodeb!")

	b.stays("after the losses", settled, 2*deadTime)
	if l := b.hbLog(); strings.Contains(l, "is dead") || strings.Contains(l, "Irretrievably lost") {
		t.Errorf("heartbeat declared a death or gave a packet up")
	}
	if l := b.dd.log(); strings.Contains(l, "is dead") {
		t.Errorf("directord declared a death")
	}
}
