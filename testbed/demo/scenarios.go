package demo

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/internal/ctxsleep"
)

// scenarioDef is one scenario: what it shows and what it does once the
// traffic runs.
type scenarioDef struct {
	name, desc string
	// ipfail adds a ping node (a router on the LAN) and ipfail to ha.cf.
	ipfail bool
	run    func(ctx context.Context, r *run) error
}

// settle is how long a scenario waits for something it expects (a
// takeover, a check to notice): generous, as the VM may be slow.
const settle = 30 * time.Second

var scenarios = []scenarioDef{
	{name: "power-loss", desc: "the active director loses power (seed 001 test 3): its links go down and its daemon dies at once; the standby takes over", run: powerLoss},
	{name: "kill9", desc: "kill -9 of the active's daemon (seed 001 test 5): its VIP lingers until the watchdog reboots it; both hold the VIP meanwhile", run: kill9},
	{name: "graceful", desc: "graceful stop of the active's daemon (SIGTERM) and its restart, auto_failback on (seed 001 test 1)", run: graceful},
	{name: "standby", desc: "`directord standby` on the active (hb_standby): a graceful handover (target: no request lost)", run: standby},
	{name: "public-cut", desc: "the active's LAN cable is pulled; ipfail sees fewer ping nodes there and hands over (seed 001 test 2)", ipfail: true, run: publicCut},
	{name: "split-brain", desc: "every link between the directors is cut (seed 001 test 4): BOTH take the VIP; then the links return", run: splitBrain},
	{name: "hb-link-cut", desc: "the heartbeat cable is cut, the LAN still carries heartbeats: nothing moves", run: hbLinkCut},
	{name: "rs-failure", desc: "rs1's web server stops: its check fails, quiescent weight 0, then it restarts (seed 003 section 10)", run: rsFailure},
	{name: "reload", desc: "a weight changed in lnoded.cf and `directord reload`: one IPVS operation, no connection broken", run: reload},
}

// expectTakeover waits for the VIP on node2 and records the takeover.
func (r *run) expectTakeover(ctx context.Context, t0 time.Time) (time.Duration, bool) {
	n2 := r.b.nodes[1]
	d, ok := r.waitVIP(ctx, t0, settle, func(_, n2 bool) bool { return n2 })
	if ok {
		r.sum.TakeoverMS = msp(d)
		r.event("VIP on node2 (%v after the event)", d.Round(time.Millisecond))
		r.warmCheck(ctx, n2)
	}
	r.check(ok, "the standby takes the VIP over", "%v", d.Round(time.Millisecond))
	return d, ok
}

// warmCheck records whether d's IPVS table is warm (no real server at weight
// 0; all are up in these scenarios) as it takes the VIP: a node that takes
// the VIP with a cold table refuses new connections until its checks pass.
func (r *run) warmCheck(ctx context.Context, d *director) {
	t, err := d.table(ctx)
	if err != nil {
		r.check(false, d.name+"'s table is warm when it takes the VIP", "%v", err)
		return
	}
	zero, all := 0, 0
	for _, vs := range t {
		for _, dst := range vs.Destinations {
			all++
			if dst.Weight == 0 {
				zero++
			}
		}
	}
	r.event("%s's IPVS table as it takes the VIP: %d of %d real servers at weight 0", d.name, zero, all)
	r.check(all == 8 && zero == 0, d.name+"'s table is warm when it takes the VIP", "%d of %d real servers at weight 0 (8 expected, all up)", zero, all)
}

// window records a disruption: from t0 to end plus the client's SYN
// retransmission (a request sent before end may still get through, or
// fail, up to a second later).
func (r *run) window(t0, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.windows = append(r.windows, span{t0, end.Add(time.Second)})
}

func (r *run) connectionChecks() {
	if r.b.o.NoSync {
		return
	}
	broken := len(r.tr.conns) - r.tr.alive()
	r.check(broken == 0, "long-lived connections survive (IPVS connection sync)", "%d of %d broken", broken, len(r.tr.conns))
}

// lossOutsideWindow checks the requests given up so far: each must have
// been in flight during one of the disruptions.
func (r *run) lossOutsideWindow() {
	r.mu.Lock()
	windows := append([]span(nil), r.windows...)
	r.mu.Unlock()
	n, total := 0, 0
	for _, s := range []*stream{&r.tr.http, &r.tr.dnsUDP, &r.tr.dnsTCP} {
		st := s.summary(r.t0, windows)
		n += st.LostOutsideWindow
		total += st.Lost
	}
	r.check(n == 0, "requests lost only during the disruption", "%d of %d lost outside it", n, total)
}

// ownership is what a scenario expects of who holds the VIP over the whole
// run, from both directors' address notifications.
type ownership struct {
	says string
	// want matches the spells, as "node1 nobody node2" (node1, node2,
	// both, nobody). The two nodes' notifications are read as they come,
	// so a handover may show a spurious brief "nobody" or "both": patterns
	// allow those between owners where the design does not forbid them.
	want *regexp.Regexp
	// maxAbsent and maxBoth bound any spell of nobody and of both (0: no
	// bound). Generous: they catch a VIP lost or doubled for good, not a
	// slow emulated CPU.
	maxAbsent, maxBoth time.Duration
}

// expectOwnership sets what checkOwnership checks at the end of the run.
func (r *run) expectOwnership(says, pattern string, maxAbsent, maxBoth time.Duration) {
	r.owners = &ownership{says: says, want: regexp.MustCompile(pattern), maxAbsent: maxAbsent, maxBoth: maxBoth}
}

// checkOwnership fills the summary's timeline and its longest spells with
// nobody and with both holding the VIP, and checks them against what the
// scenario expects.
func (r *run) checkOwnership(end time.Time) {
	r.mu.Lock()
	tl := append([]vipSpell(nil), r.timeline...)
	r.mu.Unlock()
	var seq, desc []string
	var absent, both time.Duration
	for i, sp := range tl {
		to := end
		if i+1 < len(tl) {
			to = tl[i+1].from
		}
		d := to.Sub(sp.from)
		r.sum.VIPTimeline = append(r.sum.VIPTimeline, VIPSpell{FromMS: ms(sp.from.Sub(r.t0)), MS: ms(d), On: sp.on()})
		seq = append(seq, sp.on())
		desc = append(desc, fmt.Sprintf("%s %v", sp.on(), d.Round(time.Millisecond)))
		switch sp.on() {
		case "nobody":
			absent = max(absent, d)
		case "both":
			both = max(both, d)
		}
	}
	r.sum.VIPAbsentMS, r.sum.VIPBothMS = ms(absent), ms(both)
	o := r.owners
	if o == nil {
		return
	}
	ok := o.want.MatchString(strings.Join(seq, " "))
	why := ""
	if !ok {
		why = fmt.Sprintf(" (want %s)", o.want)
	}
	if o.maxAbsent > 0 && absent > o.maxAbsent {
		ok, why = false, fmt.Sprintf("%s (nobody held it for %v, more than %v)", why, absent.Round(time.Millisecond), o.maxAbsent)
	}
	if o.maxBoth > 0 && both > o.maxBoth {
		ok, why = false, fmt.Sprintf("%s (both held it for %v, more than %v)", why, both.Round(time.Millisecond), o.maxBoth)
	}
	r.check(ok, "VIP ownership over time: "+o.says, "%s%s", strings.Join(desc, " → "), why)
}

// Bounds of a VIP spell nobody (or both, where the design does not
// want that) should ever come near: ten times the default deadtime.
const (
	longAbsent = 5 * time.Second
	longBoth   = 5 * time.Second
)

// handover is the pattern of transient spells between two owners.
const handover = `(nobody |both )*`

func powerLoss(ctx context.Context, r *run) error {
	n1, n2 := r.b.nodes[0], r.b.nodes[1]
	// node1's VIP goes with its power, before node2 can notice: never both.
	r.expectOwnership("node1, nobody until node2 declares it dead, then node2 alone", `^node1 nobody node2$`, longAbsent, 0)
	r.event("POWER LOSS on node1: its links go down and its directord is killed (kill -9), at once")
	t0 := time.Now()
	// Links first: a machine without power sends nothing, not even what a
	// dying process might still flush. Its neighbours see the carrier go.
	if err := n1.setLinks(false, "eth0", "hb0"); err != nil {
		return err
	}
	n1.signal(syscall.SIGKILL, 5*time.Second)
	// A machine that is off holds nothing: its VIP, IPVS table and sync
	// daemon go (unreachable already, behind links that are down).
	n1.reboot(ctx)
	d, ok := r.expectTakeover(ctx, t0)
	r.window(t0, t0.Add(d))
	if !ok {
		return nil
	}
	if err := ctxsleep.Sleep(ctx, r.b.o.Hold); err != nil {
		return err
	}
	r.connectionChecks()
	r.lossOutsideWindow()
	st, err := n2.status(ctx)
	r.check(err == nil && (st.HA.Resources == "all" || st.HA.Resources == "foreign") && (r.b.o.NoSync || st.Sync.State == "master"),
		"node2 holds node1's group, sync daemon master", "%s", statusLine(st, err))
	return nil
}

func kill9(ctx context.Context, r *run) error {
	n1, n2 := r.b.nodes[0], r.b.nodes[1]
	// The killed daemon releases nothing: both hold the VIP until the
	// watchdog reboots node1 (no bound on that spell), then node2 alone
	// until the failback.
	r.expectOwnership("node1, both until the watchdog reboots node1, node2 alone, node1 alone again after the failback", `^node1 both node2 `+handover+`node1$`, longAbsent, 0)
	r.event("kill -9 of node1's directord: nothing is released (no watchdog to reboot a namespace)")
	t0 := time.Now()
	n1.signal(syscall.SIGKILL, 5*time.Second)
	d, ok := r.expectTakeover(ctx, t0)
	r.window(t0, t0.Add(d))
	if !ok {
		return nil
	}
	both := n1.hasVIP() && n2.hasVIP()
	if both {
		r.event("!!! the VIP is on BOTH node1 (killed daemon, resources not released) and node2: clients follow the last gratuitous ARP, node2's")
	}
	r.check(both, "the killed node's VIP lingers (seed 001 test 5: why the watchdog exists)", "VIP on node1 %v, node2 %v", n1.hasVIP(), n2.hasVIP())
	// What ha.cf's `watchdog /dev/watchdog` does next: the kernel's
	// watchdog, no longer fed, reboots node1 (softdog's margin is 60 s by
	// default; here 2 s). The VM runs every namespace, so the testbed plays
	// the reboot: links down, a clean slate, links up, directord started
	// again, as after a boot.
	if err := ctxsleep.Sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	r.event("the watchdog reboots node1 (played by the testbed): links down, VIP, IPVS table and sync daemon gone")
	if err := n1.setLinks(false, "eth0", "hb0"); err != nil {
		return err
	}
	n1.reboot(ctx)
	if err := ctxsleep.Sleep(ctx, time.Second); err != nil {
		return err
	}
	if err := n1.setLinks(true, "eth0", "hb0"); err != nil {
		return err
	}
	r.event("node1 is back: directord starts (auto_failback on)")
	return r.restartAndFailBack(ctx)
}

func graceful(ctx context.Context, r *run) error {
	n1 := r.b.nodes[0]
	r.expectOwnership("node1, node2 after the stop, node1 after the restart (never both or nobody for long)", `^node1 `+handover+`node2 `+handover+`node1$`, longAbsent, longBoth)
	r.event("graceful stop of node1's directord (SIGTERM, as `service heartbeat stop`)")
	t0 := time.Now()
	if err := n1.signal(syscall.SIGTERM, settle); err != nil {
		return err
	}
	r.event("node1's directord exited (VIP on node1: %v)", n1.hasVIP())
	d, ok := r.expectTakeover(ctx, t0)
	r.window(t0, t0.Add(d))
	if !ok {
		return nil
	}
	if err := ctxsleep.Sleep(ctx, r.b.o.Hold); err != nil {
		return err
	}
	r.event("node1's directord starts again (auto_failback on)")
	return r.restartAndFailBack(ctx)
}

// restartAndFailBack starts node1's daemon again and expects auto_failback
// to return the VIP to node1 alone, with a warm table; the failback is a
// disruption window. Then the client's checks: sync kept the connections on
// node2 and, once node1 is back as backup, on node1 again.
func (r *run) restartAndFailBack(ctx context.Context) error {
	n1 := r.b.nodes[0]
	t1 := time.Now()
	if err := n1.startDaemon(); err != nil {
		return err
	}
	fb, ok := r.waitVIP(ctx, t1, settle+r.b.o.Timing.Initdead, func(n1, n2 bool) bool { return n1 && !n2 })
	if ok {
		r.sum.FailbackMS = msp(fb)
		r.event("VIP back on node1 alone (%v after its daemon started)", fb.Round(time.Millisecond))
		r.warmCheck(ctx, n1)
	}
	r.check(ok, "auto_failback returns the VIP to node1 alone", "%v", fb.Round(time.Millisecond))
	r.window(t1, time.Now())
	if err := ctxsleep.Sleep(ctx, time.Second); err != nil {
		return err
	}
	r.connectionChecks()
	r.lossOutsideWindow()
	return nil
}

func standby(ctx context.Context, r *run) error {
	n1, n2 := r.b.nodes[0], r.b.nodes[1]
	r.event("`directord standby` on node1 (hb_standby): its request on node1's control socket")
	t0 := time.Now()
	// The request `directord standby` sends, sent from here: starting the
	// CLI is ~300 ms of emulated CPU in this guest, taken from the traffic
	// being measured (a few ms on a real director).
	resp, err := control.Do(ctx, n1.sock, control.Request{Command: control.CmdStandby, Which: control.WhichAll})
	if err != nil {
		return fmt.Errorf("directord standby: %v", err)
	}
	if !resp.OK {
		return fmt.Errorf("directord standby: %s", resp.Error)
	}
	r.event("directord standby: %s", resp.Message)
	d, ok := r.expectTakeover(ctx, t0)
	r.window(t0, t0.Add(d))
	if !ok {
		return nil
	}
	_, gone := r.waitVIP(ctx, time.Now(), 5*time.Second, func(n1, _ bool) bool { return !n1 })
	r.check(gone, "node1 released the VIP", "VIP on node1 %v, node2 %v", n1.hasVIP(), n2.hasVIP())
	// The connection handover is what keeps the young connections; the
	// handoff (node2 forwarding what it does not know yet to node1) what
	// covers those whose handover came late. Read once the traffic has
	// stopped (and both have ended with the 2 s guard).
	r.afterTraffic = append(r.afterTraffic, func(ctx context.Context) {
		handed, herr := n1.metric(ctx, "directord_connections_handed_over_total")
		r.check(herr == nil && handed > 0, "node1 handed its connections over to node2", "%.0f connections (%v)", handed, herr)
		handoffs, ferr := n2.metric(ctx, "directord_handoffs_total")
		r.check(ferr == nil && handoffs > 0, "node2 forwarded connections it did not know yet to node1 during the move (handoff)", "%.0f handoffs (%v)", handoffs, ferr)
		recv, rerr := n1.metric(ctx, "directord_handoff_receives_total")
		r.check(rerr == nil && recv > 0, "node1 kept taking TCP for the VIP after releasing it, for what node2 forwards (handoff)", "%.0f (%v)", recv, rerr)
		if fw, err := n2.metric(ctx, "directord_handoff_forwarded_total"); err == nil {
			r.sum.HandoffForwarded = &fw
		}
		if held, err := n2.metric(ctx, "directord_reset_guard_dropped_total"); err == nil {
			r.sum.ResetsHeldBack = &held
		}
		// What the handovers cost node1 (the first delays the move).
		for _, line := range strings.Split(n1.tail(200), "\n") {
			if _, msg, ok := strings.Cut(line, "IPVS sync: handed "); ok {
				r.b.step("node1 handed %s", strings.TrimSuffix(msg, `"`))
			}
		}
	})
	if err := ctxsleep.Sleep(ctx, r.b.o.Hold); err != nil {
		return err
	}
	r.connectionChecks()
	lost := 0
	for _, s := range []*stream{&r.tr.http, &r.tr.dnsUDP, &r.tr.dnsTCP} {
		_, l := s.counts()
		lost += l
	}
	r.check(lost == 0, "no request lost in a graceful handover", "%d lost", lost)
	return nil
}

func publicCut(ctx context.Context, r *run) error {
	n1 := r.b.nodes[0]
	r.expectOwnership("node1, node2 while node1's cable is out, node1 again after it returns (never both or nobody for long)", `^node1 `+handover+`node2 `+handover+`node1$`, longAbsent, longBoth)
	r.event("node1's LAN cable (eth0) is pulled; heartbeats still flow on hb0; ping node %s", pingIP)
	t0 := time.Now()
	if err := n1.setLinks(false, "eth0"); err != nil {
		return err
	}
	d, ok := r.expectTakeover(ctx, t0)
	r.window(t0, t0.Add(d))
	if !ok {
		return nil
	}
	// node1 gave the group up (ipfail) rather than being declared dead.
	_, released := r.waitVIP(ctx, time.Now(), 5*time.Second, func(n1, _ bool) bool { return !n1 })
	r.check(released, "node1 released the VIP (ipfail: it sees fewer ping nodes)", "VIP on node1 %v", n1.hasVIP())
	if err := ctxsleep.Sleep(ctx, r.b.o.Hold); err != nil {
		return err
	}
	r.event("node1's cable is plugged back in")
	t1 := time.Now()
	if err := n1.setLinks(true, "eth0"); err != nil {
		return err
	}
	fb, ok := r.waitVIP(ctx, t1, settle, func(n1, n2 bool) bool { return n1 && !n2 })
	if ok {
		r.sum.FailbackMS = msp(fb)
		r.event("VIP back on node1 (%v after the cable returned)", fb.Round(time.Millisecond))
		// While its cable was out, node1's checks failed and quiescent
		// set its real servers to weight 0.
		r.warmCheck(ctx, n1)
	}
	r.check(ok, "the VIP returns to node1 when its ping node is back (auto_failback on)", "%v", fb.Round(time.Millisecond))
	r.window(t1, time.Now())
	if err := ctxsleep.Sleep(ctx, time.Second); err != nil {
		return err
	}
	// Checked after the failback too: a cold table on node1 would refuse
	// connections there.
	r.connectionChecks()
	r.lossOutsideWindow()
	return nil
}

func splitBrain(ctx context.Context, r *run) error {
	n1, n2 := r.b.nodes[0], r.b.nodes[1]
	// One node holds the VIP throughout: never nobody.
	r.expectOwnership("node1, both during the split brain, one of them alone after the heal", `^node1 both (node1|node2)$`, 0, 0)
	r.event("every link between node1 and node2 is cut: hb0 down, and the LAN switch isolates their ports from each other (clients still reach both)")
	t0 := time.Now()
	if err := n1.setLinks(false, "hb0"); err != nil {
		return err
	}
	for _, d := range r.b.nodes {
		if err := d.isolate(true); err != nil {
			return err
		}
	}
	d, ok := r.expectTakeover(ctx, t0)
	r.window(t0, t0.Add(d))
	if !ok {
		return nil
	}
	both := n1.hasVIP() && n2.hasVIP()
	if both {
		r.event("!!! SPLIT BRAIN: node1 AND node2 both hold the VIP %s and both run as sync master; clients go to whichever sent the last gratuitous ARP", vip)
	}
	r.check(both, "split brain: both directors hold the VIP (what Heartbeat does too; STONITH is the cure)", "VIP on node1 %v, node2 %v", n1.hasVIP(), n2.hasVIP())
	if err := ctxsleep.Sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	r.event("the links are restored")
	t1 := time.Now()
	for _, d := range r.b.nodes {
		if err := d.isolate(false); err != nil {
			return err
		}
	}
	if err := n1.setLinks(true, "hb0"); err != nil {
		return err
	}
	heal, ok := r.waitVIP(ctx, t1, settle, func(n1, n2 bool) bool { return n1 != n2 })
	holder := "node1"
	if n2.hasVIP() {
		holder = "node2"
	}
	if ok {
		r.sum.FailbackMS = msp(heal)
		r.event("one owner again: VIP on %s alone (%v after the links returned)", holder, heal.Round(time.Millisecond))
	}
	r.check(ok, "the pair resolves the double ownership once the links return", "VIP on %s after %v", holder, heal.Round(time.Millisecond))
	// The client last heard node2's gratuitous ARP: unless the node that
	// keeps the VIP announces it again, the client sends to node2, which
	// no longer holds it, until its ARP entry expires.
	healed := time.Now()
	back, ok := waitFor(ctx, t1, settle, func() bool {
		r.tr.http.mu.Lock()
		defer r.tr.http.mu.Unlock()
		return r.tr.http.lastOK.After(healed)
	})
	if ok {
		r.event("the client's HTTP requests are answered again (%v after the links returned)", back.Round(time.Millisecond))
	}
	limit := 2 * time.Second
	r.check(ok && back < heal+limit, "clients reach the VIP again within 2 s of the single owner", "answered again %v after the links returned, %v after one owner was left", back.Round(time.Millisecond), (back - heal).Round(time.Millisecond))
	r.window(t1, time.Now())
	if err := ctxsleep.Sleep(ctx, time.Second); err != nil {
		return err
	}
	// Both masters kept their entries for the connections opened before
	// the split, so neither move of the client's traffic resets them.
	r.connectionChecks()
	r.lossOutsideWindow()
	return nil
}

func hbLinkCut(ctx context.Context, r *run) error {
	n1, n2 := r.b.nodes[0], r.b.nodes[1]
	r.expectOwnership("node1 alone throughout", `^node1$`, 0, 0)
	r.event("the heartbeat cable hb0 is cut (the LAN still carries heartbeats)")
	t0 := time.Now()
	if err := n1.setLinks(false, "hb0"); err != nil {
		return err
	}
	// Watch for any movement for a few deadtimes.
	watch := 4*r.b.o.Timing.Deadtime + 2*time.Second
	_, moved := r.waitVIP(ctx, t0, watch, func(n1, n2 bool) bool { return n2 || !n1 })
	r.check(!moved, "nothing moves when one of two links is cut", "watched %v: VIP stayed on node1 alone: %v", watch, !moved)
	st, err := n2.status(ctx)
	hbDead, lanUp := false, false
	if err == nil && len(st.HA.Peers) == 1 {
		for _, l := range st.HA.Peers[0].Links {
			hbDead = hbDead || (l.Name == "hb0" && l.Status == "dead")
			lanUp = lanUp || (l.Name == "eth0" && l.Status == "up")
		}
	}
	r.check(hbDead && lanUp, "node2 reports link hb0 dead, eth0 up (a cable to fix before it becomes a split brain)", "%s", statusLine(st, err))
	r.b.showStatus(ctx, n2)
	if err := n1.setLinks(true, "hb0"); err != nil {
		return err
	}
	r.event("hb0 is plugged back in")
	r.lossOutsideWindow()
	r.connectionChecks()
	return nil
}

func rsFailure(ctx context.Context, r *run) error {
	n1 := r.b.nodes[0]
	rs1 := r.b.reals[0]
	r.expectOwnership("node1 alone throughout", `^node1$`, 0, 0)
	r.event("rs1's web server stops (service httpd stop); DNS and echo keep running")
	t0 := time.Now()
	rs1.stopWeb()
	d, ok := waitFor(ctx, t0, settle, func() bool { return n1.weight(ctx, 0) == 0 })
	if ok {
		r.event("node1's IPVS: rs1:80 weight 0 (quiescent) %v after the stop", d.Round(time.Millisecond))
	}
	r.check(ok, "the failed check sets rs1:80 to weight 0 (quiescent=yes keeps it in the table)", "%v", d.Round(time.Millisecond))
	r.window(t0, t0.Add(d))
	if err := ctxsleep.Sleep(ctx, r.b.o.Hold); err != nil {
		return err
	}
	r.event("rs1's web server starts again")
	t1 := time.Now()
	if err := rs1.startWeb(); err != nil {
		return err
	}
	up, ok := waitFor(ctx, t1, settle, func() bool { return n1.weight(ctx, 0) == 1 })
	if ok {
		r.event("node1's IPVS: rs1:80 weight 1 again %v after the restart", up.Round(time.Millisecond))
	}
	r.check(ok, "rs1:80 back to weight 1 when its check passes", "%v", up.Round(time.Millisecond))
	r.lossOutsideWindow()
	r.connectionChecks()
	return nil
}

func reload(ctx context.Context, r *run) error {
	n1, n2 := r.b.nodes[0], r.b.nodes[1]
	before, err := n1.metric(ctx, "directord_ipvs_ops_total{")
	if err != nil {
		return fmt.Errorf("node1 metrics: %w", err)
	}
	r.expectOwnership("node1 alone throughout", `^node1$`, 0, 0)
	r.event("lnoded.cf edited on both nodes: rs2's weight in the web service 1 → 3; `directord reload` on each")
	t0 := time.Now()
	for _, d := range r.b.nodes {
		if err := d.writeLnoded(lnodedCF([2]int{1, 3})); err != nil {
			return err
		}
		out, err := d.cli(ctx, "reload", "--socket", d.sock)
		if err != nil {
			return fmt.Errorf("%s: directord reload: %v: %s", d.name, err, out)
		}
		r.event("%s: directord reload: %s", d.name, strings.TrimSpace(out))
	}
	d, ok := waitFor(ctx, t0, settle, func() bool {
		return n1.weight(ctx, 1) == 3 && n2.weight(ctx, 1) == 3
	})
	r.check(ok, "weight 3 in both kernels' tables", "%v", d.Round(time.Millisecond))
	r.window(t0, t0.Add(d))
	if err := ctxsleep.Sleep(ctx, time.Second); err != nil {
		return err
	}
	after, err := n1.metric(ctx, "directord_ipvs_ops_total{")
	if err != nil {
		return fmt.Errorf("node1 metrics: %w", err)
	}
	r.check(after-before == 1, "the reload is one IPVS operation (edit of rs2:80)", "%v ops on node1", after-before)
	lost := 0
	for _, s := range []*stream{&r.tr.http, &r.tr.dnsUDP, &r.tr.dnsTCP} {
		_, l := s.counts()
		lost += l
	}
	r.check(lost == 0, "no request lost", "%d lost", lost)
	broken := len(r.tr.conns) - r.tr.alive()
	r.check(broken == 0, "no connection broken", "%d of %d broken", broken, len(r.tr.conns))
	return nil
}

// statusLine says in one line what a daemon's status says of its state.
func statusLine(st *control.Status, err error) string {
	if err != nil {
		return err.Error()
	}
	s := fmt.Sprintf("%s: %s, holding %s resources, sync %s", st.Node, st.HA.State, st.HA.Resources, st.Sync.State)
	for _, p := range st.HA.Peers {
		s += fmt.Sprintf("; peer %s %s", p.Name, p.Status)
		for _, l := range p.Links {
			s += fmt.Sprintf(", link %s %s", l.Name, l.Status)
		}
	}
	return s
}
