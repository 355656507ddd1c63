// Package demo runs directord's testbed: the appliance end to end in network
// namespaces. A client, two directors each running a real `directord run`
// daemon (seed-style /etc/ha.d: ha.cf with ucast on the LAN and on a
// dedicated heartbeat cable, haresources "node1 IPaddr::VIP lnoded::lnoded.cf",
// authkeys sha1), and two LVS-DR real servers prepared with `directord
// realserver up`, serving web, DNS (UDP and TCP) and an echo service. The
// client sends a steady stream of HTTP requests and DNS queries through the
// VIP and holds long-lived connections open while a scenario fails something
// (the active director's power, a cable, a real server…); the Summary says
// what the client saw.
//
// It must run where the kernel has IPVS (on such a host, or inside the
// testbed VM); cmd/directord's `testbed` command arranges that.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/directord/directord/internal/ctxsleep"
	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/testbed/netns"
)

// Options say how the testbed runs.
type Options struct {
	// Binary is the directord executable the daemons and the real-server
	// preparation run (the CLI passes os.Executable()). Required.
	Binary string
	// Timing is the heartbeat timing of ha.cf; zero means DefaultTiming.
	Timing Timing
	// NoSync turns the IPVS connection sync daemon off (the daemons then run
	// from the YAML `directord import` makes of the ha.d, with sync
	// disabled): established connections break on a takeover. By default the
	// daemons run from the ha.d files (`directord run --ha-dir`), where sync
	// is on, on the first heartbeat medium: the hb0 cable.
	NoSync bool
	// Hold is how long the traffic runs before the scenario's event and
	// after the service settles (default 2 s).
	Hold time.Duration
	// Progress receives what happens, step by step, and `directord status`
	// before and after the event.
	Progress io.Writer
}

// Summary is what the client saw. Its JSON names are a stable interface for
// scripts.
type Summary struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	// ConnSync says whether the IPVS connection sync daemon ran.
	ConnSync bool   `json:"conn_sync"`
	Timing   string `json:"timing"`
	// TakeoverMS is the time from the event to the VIP on the other
	// director, read from the kernel every 5 ms; null when the VIP did not
	// move (or was not meant to).
	TakeoverMS *float64 `json:"takeover_ms"`
	// FailbackMS is the time from the failed node's return to the VIP
	// back on it, for scenarios that bring it back; null otherwise.
	FailbackMS *float64 `json:"failback_ms,omitempty"`
	// VIPAbsentMS is the longest time no director held the VIP, and
	// VIPBothMS the longest both did, timed by the kernel's address
	// notifications as they were read.
	VIPAbsentMS float64 `json:"vip_absent_ms"`
	VIPBothMS   float64 `json:"vip_both_ms"`
	// LongestGapMS is the longest time without a successful answer in any
	// request stream (HTTP, DNS over UDP, DNS over TCP), each of which
	// sends its next request as soon as the last is answered plus its
	// interval (10 ms HTTP, 20 ms DNS).
	LongestGapMS float64 `json:"longest_gap_ms"`
	// WindowGapMS is the longest such gap that overlapped the scenario's
	// disruption (from its event to the service settling, plus 1 s); 0
	// for a scenario without one. An emulated guest pauses now and then
	// whatever the scenario (its floor: hb-link-cut, reload), so the
	// longest gap of a run need not be the scenario's.
	WindowGapMS float64 `json:"window_gap_ms"`
	// QuietGapMS is the longest gap that overlapped no disruption: the
	// machine's own noise, which WindowGapMS cannot be told apart from
	// when it is no longer.
	QuietGapMS float64 `json:"quiet_gap_ms"`
	// RequestsSent and RequestsLost add HTTP and DNS (UDP and TCP) up.
	RequestsSent int `json:"requests_sent"`
	RequestsLost int `json:"requests_lost"`
	// RequestsLostOutsideWindow are lost requests that were neither sent
	// nor given up between the event and the service settling again.
	RequestsLostOutsideWindow int `json:"requests_lost_outside_window"`
	// ConnectionsHeld long-lived TCP connections through the VIP, each
	// exchanging a line every 100 ms; ConnectionsBroken of them were reset,
	// closed, or stalled for 10 s.
	ConnectionsHeld   int      `json:"connections_held"`
	ConnectionsBroken int      `json:"connections_broken"`
	BrokenReasons     []string `json:"broken_reasons,omitempty"`
	HTTP              Stream   `json:"http"`
	DNSUDP            Stream   `json:"dns_udp"`
	DNSTCP            Stream   `json:"dns_tcp"`
	// VIPOn lists the directors holding the VIP at the end.
	VIPOn []string `json:"vip_on"`
	// VIPTimeline is who held the VIP over the traffic, one spell per
	// change seen by the 2 ms sampling.
	VIPTimeline []VIPSpell `json:"vip_timeline"`
	// Events is the timeline, in ms from the start of the traffic.
	Events []Event `json:"events"`
	// Checks are what the scenario expects; OK is true when all hold.
	Checks    []Check `json:"checks"`
	OK        bool    `json:"ok"`
	SetupMS   float64 `json:"setup_ms"`
	TrafficMS float64 `json:"traffic_ms"`
	// MaxStallMS is the longest a 10 ms timer of the testbed fired late
	// during the traffic: how long the machine (an emulated guest on a busy
	// host) froze. A freeze near the deadtime is a death to heartbeat, so a
	// run with one measures the host, not directord.
	MaxStallMS float64 `json:"max_stall_ms"`
	// In a graceful handover (standby): HandoffForwarded is how many TCP
	// segments node2 passed back to node1 because its IPVS did not know
	// their connection yet (vip/handoff), ResetsHeldBack how many of its
	// own resets from the VIP it dropped (vip/rstguard).
	HandoffForwarded *float64 `json:"handoff_forwarded,omitempty"`
	ResetsHeldBack   *float64 `json:"resets_held_back,omitempty"`
}

// VIPSpell is a time during which the same directors held the VIP: On is
// "node1", "node2", "both" or "nobody".
type VIPSpell struct {
	FromMS float64 `json:"from_ms"`
	MS     float64 `json:"ms"`
	On     string  `json:"on"`
}

// Event is one moment of the timeline.
type Event struct {
	AtMS float64 `json:"at_ms"`
	What string  `json:"what"`
}

// Check is one expectation of a scenario and whether it held.
type Check struct {
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// DefaultScenario is what `directord testbed` runs with no --scenario.
const DefaultScenario = "power-loss"

// Scenarios lists the scenario names Run accepts, with what each shows.
func Scenarios() map[string]string {
	m := map[string]string{}
	for _, s := range scenarios {
		m[s.name] = s.desc
	}
	return m
}

// ScenarioNames returns the scenario names, sorted.
func ScenarioNames() []string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownScenario is returned by Run for a name Scenarios does not list.
var ErrUnknownScenario = errors.New("unknown scenario")

// run is one scenario run's state, shared by the scenario and Run.
type run struct {
	b   *bed
	tr  *traffic
	t0  time.Time // traffic start
	sum *Summary
	// windows are the disruptions the scenario causes (from an event to
	// the service settling, plus the client's SYN retransmission): a
	// request lost outside every one of them is a failure of the design.
	windows []span
	// owners is what the scenario expects of VIP ownership over the run,
	// checked once the traffic has stopped.
	owners *ownership
	mu     sync.Mutex
	// timeline is who held the VIP, appended by watchVIP (under mu).
	timeline []vipSpell
	// heldChanged is closed (and replaced) on each change of the timeline,
	// for waitVIP.
	heldChanged chan struct{}
	// afterTraffic are checks to make once the traffic has stopped: reading
	// a daemon's metrics costs emulated CPU the traffic would feel.
	afterTraffic []func(context.Context)
}

type span struct{ from, to time.Time }

type vipSpell struct {
	from time.Time
	held [2]bool // node1, node2
}

// on names who held the VIP: nobody, node1, node2 or both.
func (sp vipSpell) on() string {
	return [2][2]string{{"nobody", "node2"}, {"node1", "both"}}[b2i(sp.held[0])][b2i(sp.held[1])]
}

func (r *run) event(format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	at := time.Since(r.t0)
	r.mu.Lock()
	r.sum.Events = append(r.sum.Events, Event{AtMS: ms(at), What: what})
	r.mu.Unlock()
	r.b.step("t+%5.2fs  %s", at.Seconds(), what)
}

func (r *run) check(ok bool, what, format string, args ...any) {
	c := Check{What: what, OK: ok, Detail: fmt.Sprintf(format, args...)}
	r.mu.Lock()
	r.sum.Checks = append(r.sum.Checks, c)
	r.mu.Unlock()
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	r.b.step("check %s %s: %s", mark, what, c.Detail)
}

// Run builds the testbed, runs the named scenario and tears everything down,
// also when ctx is cancelled (SIGINT): daemons stopped, namespaces and
// temporary files removed. The Summary is valid when err is nil; a scenario
// whose expectations did not hold is not an error (see Summary.OK).
func Run(ctx context.Context, scenario string, o Options) (sum Summary, err error) {
	var sc *scenarioDef
	for i := range scenarios {
		if scenarios[i].name == scenario {
			sc = &scenarios[i]
		}
	}
	if sc == nil {
		return Summary{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownScenario, scenario, strings.Join(ScenarioNames(), ", "))
	}
	if o.Binary == "" {
		return Summary{}, errors.New("demo: Options.Binary (the directord executable) is required")
	}
	if o.Timing == (Timing{}) {
		o.Timing = DefaultTiming
	}
	if o.Hold <= 0 {
		o.Hold = 2 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	start := time.Now()
	b := &bed{o: o, start: start, ipfail: sc.ipfail}
	b.step = func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "testbed: "+format+"\n", args...)
	}
	sum = Summary{Scenario: sc.name, Description: sc.desc, ConnSync: !o.NoSync,
		Timing: fmt.Sprintf("keepalive %v, deadtime %v, checkinterval 1s", o.Timing.Keepalive, o.Timing.Deadtime)}

	if b.dir, err = os.MkdirTemp("", "directord-testbed-"); err != nil {
		return Summary{}, err
	}
	if b.topo, err = netns.New(); err != nil {
		os.RemoveAll(b.dir)
		return Summary{}, err
	}
	var tr *traffic
	defer func() {
		b.step("tearing down: daemons, servers, namespaces")
		if tr != nil {
			tr.stop()
		}
		for _, d := range b.nodes {
			if d != nil {
				d.stopDaemon()
			}
		}
		for _, rs := range b.reals {
			if rs != nil {
				rs.stop()
			}
		}
		if cerr := b.topo.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("tearing down: %w", cerr)
		}
		if err != nil {
			for _, d := range b.nodes {
				if d != nil {
					fmt.Fprintf(o.Progress, "--- last lines of %s's directord log ---\n%s\n", d.name, d.tail(25))
				}
			}
		}
		os.RemoveAll(b.dir)
	}()

	b.step("building: client %s, directors node1 %s and node2 %s (heartbeat cable hb0 %s–%s), real servers %s and %s, VIP %s",
		clientIP, nodeLAN[0], nodeLAN[1], nodeHB[0], nodeHB[1], realIPs[0], realIPs[1], vip)
	if err := b.build(ctx); err != nil {
		return sum, err
	}
	how := "directord run --ha-dir (IPVS connection sync on hb0, the default)"
	if o.NoSync {
		how = "directord run --config directord.yaml (ha.d imported, connection sync disabled)"
	}
	b.step("starting the daemons: %s, %s", how, sum.Timing)
	for _, d := range b.nodes {
		if err := d.startDaemon(); err != nil {
			return sum, err
		}
	}
	if err := b.waitReady(ctx); err != nil {
		return sum, err
	}
	sum.SetupMS = ms(time.Since(start))
	b.showStatus(ctx, b.nodes[0])

	b.step("client: HTTP every %v, DNS over UDP and TCP every %v, %d long-lived connections to %s:%d exchanging a line every %v",
		httpInterval, dnsInterval, longLived, vip, echoPort, longLivedEvery)
	if tr, err = b.startTraffic(ctx); err != nil {
		return sum, err
	}
	r := &run{b: b, tr: tr, t0: time.Now(), sum: &sum}
	stopWatch, err := r.watchVIP()
	if err != nil {
		return sum, err
	}
	stopTicker := r.ticker()
	stopStalls := r.watchStalls()
	err = func() error {
		if err := ctxsleep.Sleep(ctx, o.Hold); err != nil {
			return err
		}
		if err := sc.run(ctx, r); err != nil {
			return err
		}
		return ctxsleep.Sleep(ctx, o.Hold)
	}()
	stopTicker()
	stopWatch()
	stopStalls()
	if err != nil {
		return sum, err
	}
	tr.stop()
	end := time.Now()
	sum.TrafficMS = ms(end.Sub(r.t0))
	for _, f := range r.afterTraffic {
		f(ctx)
	}
	r.finish()
	r.checkOwnership(end)
	r.lostConnEntries(ctx)
	tr = nil
	for _, d := range b.nodes {
		if d.hasVIP() {
			sum.VIPOn = append(sum.VIPOn, d.name)
		}
	}
	for _, d := range b.nodes {
		if d.hasVIP() && d.pid() != 0 {
			b.showStatus(ctx, d)
			break
		}
	}
	sum.OK = true
	for _, c := range sum.Checks {
		sum.OK = sum.OK && c.OK
	}
	return sum, nil
}

// finish fills the summary from the traffic.
func (r *run) finish() {
	s, tr := r.sum, r.tr
	s.HTTP = tr.http.summary(r.t0, r.windows)
	s.DNSUDP = tr.dnsUDP.summary(r.t0, r.windows)
	s.DNSTCP = tr.dnsTCP.summary(r.t0, r.windows)
	for _, st := range []Stream{s.HTTP, s.DNSUDP, s.DNSTCP} {
		s.RequestsSent += st.Sent
		s.RequestsLost += st.Lost
		s.RequestsLostOutsideWindow += st.LostOutsideWindow
		s.LongestGapMS = max(s.LongestGapMS, st.LongestGapMS)
		s.WindowGapMS = max(s.WindowGapMS, st.WindowGapMS)
		s.QuietGapMS = max(s.QuietGapMS, st.QuietGapMS)
	}
	s.ConnectionsHeld = len(tr.conns)
	for i, hc := range tr.conns {
		if hc.broken != "" {
			s.ConnectionsBroken++
			s.BrokenReasons = append(s.BrokenReasons, fmt.Sprintf("conn %d (via %s) at t+%.2fs: %s", i, hc.server, hc.brokenAt.Sub(r.t0).Seconds(), hc.broken))
		}
	}
}

// watchVIP follows who holds the VIP from the kernel's address
// notifications (exact times; a poll every 2 ms took a quarter of the CPU
// of this process in the emulated guest, from the traffic it measures)
// into the run's timeline.
func (r *run) watchVIP() (func(), error) {
	done := make(chan struct{})
	var changes [2]<-chan netns.AddrChange
	for i, d := range r.b.nodes {
		c, err := d.host.WatchAddr("eth0", vip, done)
		if err != nil {
			close(done)
			return nil, fmt.Errorf("watching the VIP on %s: %w", d.name, err)
		}
		changes[i] = c
	}
	// Each watcher says first what holds now: the timeline starts with both.
	var held [2]bool
	for i, c := range changes {
		held[i] = (<-c).Present
	}
	r.heldNow(time.Now(), held)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var c netns.AddrChange
			var ok bool
			i := 0
			select {
			case c, ok = <-changes[0]:
			case c, ok = <-changes[1]:
				i = 1
			}
			if !ok { // done
				return
			}
			held[i] = c.Present
			r.heldNow(c.At, held)
		}
	}()
	return func() { close(done); wg.Wait() }, nil
}

// clientPort finds the client's address of a failed request in its error.
var clientPort = regexp.MustCompile(regexp.QuoteMeta(clientIP.String()) + `:\d+`)

// lostConnEntries shows, for each lost TCP request whose connection the
// client knows, what each director's IPVS holds for it: whether the
// director the client's segments went to knew the connection.
func (r *run) lostConnEntries(ctx context.Context) {
	var conns []string
	for _, st := range []Stream{r.sum.HTTP, r.sum.DNSTCP} {
		for _, l := range st.LostRequests {
			if c := clientPort.FindString(l.Error); c != "" {
				conns = append(conns, c)
			}
		}
	}
	for _, d := range r.b.nodes {
		out, err := d.host.CombinedOutput(exec.CommandContext(ctx, "ipvsadm", "-Lnc"))
		if err != nil {
			continue
		}
		for _, c := range conns {
			found := false
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, c+" ") {
					r.event("lost request's connection %s on %s: %s", c, d.name, strings.Join(strings.Fields(l), " "))
					found = true
				}
			}
			if !found {
				r.event("lost request's connection %s: no IPVS entry on %s", c, d.name)
			}
		}
	}
}

// watchStalls records in the summary the longest a 10 ms sleep overran.
func (r *run) watchStalls() func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		const tick = 10 * time.Millisecond
		var worst time.Duration
		for {
			t := time.Now()
			select {
			case <-done:
				r.mu.Lock()
				r.sum.MaxStallMS = ms(worst)
				r.mu.Unlock()
				return
			case <-time.After(tick):
			}
			worst = max(worst, time.Since(t)-tick)
		}
	}()
	return func() { close(done); wg.Wait() }
}

// ticker prints what the client sees every second until stopped.
func (r *run) ticker() func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var on []string
				for _, d := range r.b.nodes {
					if d.hasVIP() {
						on = append(on, d.name)
					}
				}
				where := strings.Join(on, "+")
				if where == "" {
					where = "nobody"
				}
				r.b.step("t+%5.2fs  client: %s; VIP on %s", time.Since(r.t0).Seconds(), r.tr.progress(), where)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// waitReady waits for the cold start to settle: the VIP on node1 only, both
// daemons seeing each other active, every real server up (weight > 0) in
// both nodes' tables, and the sync daemon master on node1, backup on node2.
func (b *bed) waitReady(ctx context.Context) error {
	const limit = 90 * time.Second
	start := time.Now()
	why := ""
	for {
		why = b.notReady(ctx)
		if why == "" {
			b.step("ready %v after the daemons started: VIP on node1, node2 standby with a warm table", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if time.Since(start) > limit {
			return fmt.Errorf("the appliance did not settle within %v: %s", limit, why)
		}
		for _, d := range b.nodes {
			if d.pid() == 0 {
				return fmt.Errorf("%s: directord exited during start-up", d.name)
			}
		}
		if err := ctxsleep.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func (b *bed) notReady(ctx context.Context) string {
	if !b.nodes[0].hasVIP() || b.nodes[1].hasVIP() {
		return "VIP not on node1 alone"
	}
	for _, d := range b.nodes {
		st, err := d.status(ctx)
		if err != nil {
			return fmt.Sprintf("%s: status: %v", d.name, err)
		}
		if len(st.HA.Peers) != 1 || st.HA.Peers[0].Status != "active" || !st.HA.Stable {
			return fmt.Sprintf("%s: peer not active yet", d.name)
		}
		want := []string{"master", "backup"}[d.i]
		if !b.o.NoSync && st.Sync.State != want {
			return fmt.Sprintf("%s: sync daemon %q, want %s", d.name, st.Sync.State, want)
		}
		t, err := d.table(ctx)
		if err != nil {
			return err.Error()
		}
		if len(t) != 4 {
			return fmt.Sprintf("%s: %d virtual services, want 4", d.name, len(t))
		}
		for _, vs := range t {
			if len(vs.Destinations) != 2 {
				return fmt.Sprintf("%s: %s has %d real servers", d.name, vs.Service.Key(), len(vs.Destinations))
			}
			for _, dst := range vs.Destinations {
				if dst.Weight == 0 {
					return fmt.Sprintf("%s: %s:%d not checked up yet", d.name, dst.Addr, dst.Port)
				}
			}
		}
	}
	return ""
}

// table reads the node's IPVS table from the kernel.
func (d *director) table(ctx context.Context) (ipvs.Table, error) {
	var t ipvs.Table
	err := d.host.Do(func() error {
		h, err := ipvs.Open()
		if err != nil {
			return err
		}
		defer h.Close()
		t, err = h.Table(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: IPVS table: %w", d.name, err)
	}
	return t, nil
}

// weight returns the weight of real server rs (0 or 1) in the node's :80
// service, -1 when it is not in the table.
func (d *director) weight(ctx context.Context, rs int) int {
	t, err := d.table(ctx)
	if err != nil {
		return -1
	}
	for _, vs := range t {
		if vs.Service.Port != httpPort || vs.Service.Protocol != ipvs.TCP {
			continue
		}
		for _, dst := range vs.Destinations {
			if dst.Addr == realIPs[rs] {
				return int(dst.Weight)
			}
		}
	}
	return -1
}

// showStatus prints `directord status` as the operator on d sees it.
func (b *bed) showStatus(ctx context.Context, d *director) {
	out, err := d.cli(ctx, "status", "--socket", d.sock)
	b.step("directord status on %s:", d.name)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Fprintf(b.o.Progress, "    | %s\n", l)
	}
	if err != nil {
		b.step("directord status on %s: %v", d.name, err)
	}
}

// heldNow records who holds the VIP (node1, node2) from now on.
func (r *run) heldNow(now time.Time, held [2]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.timeline); n > 0 && r.timeline[n-1].held == held {
		return
	}
	r.timeline = append(r.timeline, vipSpell{now, held})
	if r.heldChanged != nil {
		close(r.heldChanged)
	}
	r.heldChanged = make(chan struct{})
}

// waitVIP waits until cond holds for who holds the VIP (node1, node2) and
// returns when that began, since from, or false after limit. It follows
// watchVIP's notifications (which must be running): a netlink poll during
// the disruption took CPU from the traffic being measured.
func (r *run) waitVIP(ctx context.Context, from time.Time, limit time.Duration, cond func(n1, n2 bool) bool) (time.Duration, bool) {
	deadline := time.NewTimer(time.Until(from.Add(limit)))
	defer deadline.Stop()
	for {
		r.mu.Lock()
		changed := r.heldChanged
		// When cond holds now, it began with the earliest of the spells it
		// holds for that lead up to now.
		var began time.Time
		holds := false
		for i := len(r.timeline) - 1; i >= 0 && cond(r.timeline[i].held[0], r.timeline[i].held[1]); i-- {
			began, holds = r.timeline[i].from, true
		}
		r.mu.Unlock()
		if changed == nil {
			panic("demo: waitVIP without watchVIP")
		}
		if holds {
			return max(began.Sub(from), 0), true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return time.Since(from), false
		case <-ctx.Done():
			return time.Since(from), false
		}
	}
}

// waitFor polls cond every 5 ms until it holds (and returns how long that
// took since from) or limit passes.
func waitFor(ctx context.Context, from time.Time, limit time.Duration, cond func() bool) (time.Duration, bool) {
	for {
		if cond() {
			return time.Since(from), true
		}
		if time.Since(from) > limit {
			return time.Since(from), false
		}
		if ctxsleep.Sleep(ctx, 5*time.Millisecond) != nil {
			return time.Since(from), false
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msp(d time.Duration) *float64 { v := ms(d); return &v }
