package cluster

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/proto"
	"github.com/directord/directord/heartbeat/wire"
)

// These tests drive the node state machine directly with a fake clock
// and capturing links: no goroutines, no sockets, fully deterministic.

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time                       { return c.t }
func (c *fakeClock) After(time.Duration) <-chan time.Time { return nil }
func (c *fakeClock) advance(d time.Duration)              { c.t = c.t.Add(d) }

type capLink struct {
	iface string
	mu    sync.Mutex
	sent  [][]byte
}

func (l *capLink) Send(p []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, append([]byte(nil), p...))
	return nil
}
func (l *capLink) ReadFrom([]byte) (int, netip.AddrPort, error) { select {} }
func (l *capLink) Close() error                                 { return nil }
func (l *capLink) String() string                               { return "cap " + l.iface }
func (l *capLink) Interface() string                            { return l.iface }

// take returns and forgets what was sent, decoded.
func (l *capLink) take(t *testing.T) []*wire.Message {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*wire.Message
	for _, p := range l.sent {
		m, err := testKeyring().Open(p)
		if err != nil {
			t.Fatalf("we sent a packet that does not verify: %v", err)
		}
		out = append(out, m)
	}
	l.sent = nil
	return out
}

type harness struct {
	t     *testing.T
	clk   *fakeClock
	n     *node
	links []*capLink
	log   *logBuf
	res   *recorder
	peer  *proto.Stamper
}

func newHarness(t *testing.T, nlinks int, ours Timing) *harness {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
	lb := &logBuf{}
	cfg := memConfig("nodea", "nodeb", nlinks, hacf.FailbackOn, t.TempDir())
	cfg.Timing = ours
	cfg.Clock = clk
	cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res := newRecorder("a")
	e, err := New(cfg, res)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clk: clk, log: lb, res: res}
	var links []link
	for i := range nlinks {
		l := &capLink{iface: "eth" + string(rune('0'+i))}
		h.links = append(h.links, l)
		links = append(links, l)
	}
	h.n = newNode(e, wire.UUID{1}, 7, links, nil)
	h.peer = proto.NewStamper(proto.Identity{Name: "nodeb", UUID: wire.UUID{2}, Generation: 9, TTL: 3}, nil, proto.WithClock(clk.Now))
	return h
}

// fromPeer delivers m, stamped as nodeb's next message, on link i.
func (h *harness) fromPeer(i int, m *wire.Message) uint64 {
	h.t.Helper()
	seq, err := h.peer.Stamp(m)
	if err != nil {
		h.t.Fatal(err)
	}
	pkt, err := testKeyring().Seal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	h.n.receive(inbound{link: i, pkt: pkt})
	h.n.drainOwn()
	return seq
}

func (h *harness) status(i int, dt time.Duration) {
	h.fromPeer(i, proto.Status(proto.StatusActive, uint64(dt.Milliseconds())))
}

// runJobs runs queued resource work synchronously.
func (h *harness) runJobs() {
	for len(h.n.queue) > 0 {
		j := h.n.queue[0]
		h.n.queue = h.n.queue[1:]
		var out any
		if j.start != nil {
			out = j.start()(context.Background())
		}
		if j.then != nil {
			j.then(out)
		}
		h.n.drainOwn()
	}
}

// tickFor advances the clock in steps of the node's tick.
func (h *harness) tickFor(d time.Duration) {
	for end := h.clk.t.Add(d); h.clk.t.Before(end); {
		h.clk.advance(h.n.tick())
		h.n.onTick()
		h.n.drainOwn()
	}
}

func slowTiming() Timing {
	return Timing{Keepalive: 200 * time.Millisecond, WarnTime: 500 * time.Millisecond, DeadTime: time.Second,
		InitDead: 10 * time.Second, MaxRexmitDelay: 100 * time.Millisecond, DeadPing: time.Second}
}

func TestDeathUsesThePeersDeadtime(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.status(0, 3*time.Second) // the peer says: wait 3 s for me
	h.tickFor(2500 * time.Millisecond)
	if h.n.pDead || h.log.has("is dead") {
		t.Fatal("declared dead within the peer's deadtime (ours is 1 s, the peer's 3 s)")
	}
	if got := h.n.peerDeadtime(); got != 3*time.Second {
		t.Fatalf("peer deadtime %v", got)
	}
	h.tickFor(700 * time.Millisecond)
	if !h.n.pDead || !h.log.has(`msg="node nodeb: is dead"`) || !h.log.has(`msg="Link nodeb:eth0 dead."`) {
		t.Fatalf("not dead 3.2 s after the last packet:\n%s", h.log.String())
	}
	h.runJobs()
	if !h.res.holds(gB) || !h.res.holds(gA) {
		t.Errorf("dead peer's group not taken: %s", h.res.callLog())
	}
	// The peer's deadtime at death, as Heartbeat keeps it, also bounds a
	// later return.
	h.status(0, time.Second)
	if h.n.pDead || !h.log.has("Status update for node nodeb: status active") {
		t.Error("peer did not come back")
	}
}

func TestLateHeartbeatWarning(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.status(0, time.Second)
	h.clk.advance(400 * time.Millisecond)
	h.status(0, time.Second)
	if h.log.has("Late heartbeat") {
		t.Fatal("400 ms is within warntime 500 ms")
	}
	h.clk.advance(800 * time.Millisecond)
	h.status(0, time.Second)
	if !h.log.has("Late heartbeat: Node nodeb: interval 800 ms") {
		t.Fatalf("no late warning:\n%s", h.log.String())
	}
	if h.n.pLate != 1 {
		t.Errorf("late count %d", h.n.pLate)
	}
	h.n.publish()
	if s := h.n.e.State(); s.Peer.Late != 1 {
		t.Errorf("snapshot late %d", s.Peer.Late)
	}
}

func TestLinksTrackedPerInterface(t *testing.T) {
	h := newHarness(t, 2, slowTiming())
	h.status(0, time.Second)
	h.status(1, time.Second)
	if !h.log.has("Link nodeb:eth0 up.") || !h.log.has("Link nodeb:eth1 up.") {
		t.Fatal("links not up")
	}
	// Only eth0 carries packets from now on.
	for range 10 {
		h.tickFor(200 * time.Millisecond)
		h.status(0, time.Second)
	}
	if !h.log.has("Link nodeb:eth1 dead.") || h.log.has("Link nodeb:eth0 dead.") || h.n.pDead {
		t.Fatalf("per-link state wrong:\n%s", h.log.String())
	}
	h.status(1, time.Second)
	if !h.n.pLinks[1].up {
		t.Error("eth1 did not come back")
	}
}

func TestGapRequestsRetransmissionUntilFilled(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.status(0, time.Second)
	h.links[0].take(t)
	// Lose the peer's next message: stamp it but do not deliver.
	lost := proto.Starting()
	lostSeq, _ := h.peer.Stamp(lost)
	h.status(0, time.Second)
	asked := func() int {
		c := 0
		for _, m := range h.links[0].take(t) {
			if m.Type() == proto.TypeRexmit {
				f, _ := m.Uint(wire.FieldFirstSeq)
				l, _ := m.Uint(wire.FieldLastSeq)
				if f != lostSeq || l != lostSeq {
					t.Errorf("asked for %d..%d, lost %d", f, l, lostSeq)
				}
				if d, _ := m.Get(wire.FieldDest); d != "nodeb" {
					t.Errorf("rexmit dest %q", d)
				}
				c++
			}
		}
		return c
	}
	if asked() != 1 {
		t.Fatal("gap not requested at once")
	}
	h.tickFor(250 * time.Millisecond)
	if n := asked(); n < 2 {
		t.Fatalf("re-asked %d times in 250 ms (max_rexmit_delay 100 ms)", n)
	}
	// The retransmission arrives.
	pkt, _ := testKeyring().Seal(lost)
	h.n.receive(inbound{link: 0, pkt: pkt})
	if !h.log.has("Retransmitted message") {
		t.Error("retransmission not recognised")
	}
	h.tickFor(300 * time.Millisecond)
	if asked() != 0 {
		t.Error("still asking after the gap was filled")
	}
	// A duplicate is dropped without effect.
	before := h.log.String()
	h.n.receive(inbound{link: 0, pkt: pkt})
	if h.log.String() != before {
		t.Errorf("duplicate had an effect:\n%s", strings.TrimPrefix(h.log.String(), before))
	}
}

func TestAnswersRexmitFromHistory(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.status(0, time.Second)
	h.n.send(proto.Starting()) // something of ours to lose
	var want uint64
	for _, m := range h.links[0].take(t) {
		if m.Type() == proto.TypeStarting {
			want, _ = m.Uint(wire.FieldSeq)
		}
	}
	if want == 0 {
		t.Fatal("no starting sent")
	}
	h.fromPeer(0, proto.Rexmit("nodea", want, want))
	got := h.links[0].take(t)
	if len(got) != 1 || got[0].Type() != proto.TypeStarting {
		t.Fatalf("rexmit answered with %v", got)
	}
	if s, _ := got[0].Uint(wire.FieldSeq); s != want {
		t.Errorf("resent seq %d, want %d", s, want)
	}
	// A seq we never had gets NS_nak_rexmit.
	h.fromPeer(0, proto.Rexmit("nodea", 999, 999))
	got = h.links[0].take(t)
	if len(got) != 1 || got[0].Type() != proto.TypeNakRexmit {
		t.Fatalf("unknown seq answered with %v", got)
	}
	// Requests for another node are not ours to answer.
	h.fromPeer(0, proto.Rexmit("nodec", want, want))
	if got := h.links[0].take(t); len(got) != 0 {
		t.Errorf("answered a rexmit for nodec: %v", got)
	}
}

func TestReplayFromOlderGenerationDropped(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.status(0, time.Second)
	old := proto.NewStamper(proto.Identity{Name: "nodeb", UUID: wire.UUID{2}, Generation: 8, TTL: 3}, nil, proto.WithClock(h.clk.Now))
	m := proto.AskResources(proto.HoldAll, "me")
	old.Stamp(m)
	pkt, _ := testKeyring().Seal(m)
	h.n.receive(inbound{link: 0, pkt: pkt})
	if !h.log.has("replayed heartbeat message dropped") || h.log.has("wants to go standby") {
		t.Fatalf("replay not dropped:\n%s", h.log.String())
	}
}

func TestAcksEveryTenthSeq(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	acks := 0
	for range 30 {
		h.status(0, time.Second)
		for _, m := range h.links[0].take(t) {
			if m.Type() == proto.TypeAck {
				acks++
				s, _ := m.Uint(wire.FieldAckSeq)
				if s%ackDiv != h.n.ackOffset {
					t.Errorf("acked %d, offset %d", s, h.n.ackOffset)
				}
			}
		}
	}
	if acks != 3 {
		t.Errorf("%d acks for 30 messages, want 3", acks)
	}
}

func TestLegacyPeerGrantingItselfOurHeldGroup(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.n.cfg.AutoFailback = hacf.FailbackLegacy
	h.status(0, time.Second)
	h.n.held[gA] = h.clk.t // we hold 192.0.2.10
	h.res.held[gA] = true
	// The peer, thinking it is alone, grants itself the group.
	h.fromPeer(0, wire.New(proto.TypeIPRequest).Add(wire.FieldDest, "nodeb").Add(fieldIPAddr, gA).Add("weown", "yes").Add("ok", "OK"))
	h.runJobs()
	if h.res.holds(gA) || !h.log.has("took resource group 192.0.2.10 without asking") {
		t.Fatalf("still holding a group the peer took:\n%s", h.log.String())
	}
	// One addressed to us is an answer, not a grab: nothing is released.
	h.n.held[gB] = h.clk.t
	h.res.held[gB] = true
	h.fromPeer(0, wire.New(proto.TypeIPRequest).Add(wire.FieldDest, "nodea").Add(fieldIPAddr, gB).Add("weown", "no").Add("ok", "OK"))
	h.runJobs()
	if !h.res.holds(gB) {
		t.Error("released our own group on an unrequested answer")
	}
}

// settle brings the harness node to the stable two-node state: each side
// holds its own group.
func (h *harness) settle() {
	h.t.Helper()
	h.status(0, time.Second)
	h.fromPeer(0, proto.Starting())
	h.fromPeer(0, proto.Resource(proto.HoldLocal, true, ""))
	h.runJobs()
	if !h.res.holds(gA) || h.n.rs != rStable || !h.n.otherStable {
		h.h().Fatalf("not settled: rs=%d otherStable=%v held=%v\n%s", h.n.rs, h.n.otherStable, h.res.callLog(), h.log.String())
	}
	h.links[0].take(h.t)
}

func (h *harness) h() *testing.T { return h.t }

// sent summarises our messages of the resource protocol, in order.
func (h *harness) sent() []string {
	var out []string
	for _, m := range h.links[0].take(h.t) {
		switch m.Type() {
		case proto.TypeResource, proto.TypeAskResources, proto.TypeShutdone, proto.TypeStarting, proto.TypeTakeover:
			var f []string
			for _, name := range []string{wire.FieldRscHold, wire.FieldIsStable, wire.FieldInfo, wire.FieldStatus} {
				if v, ok := m.Get(name); ok {
					f = append(f, name+"="+v)
				}
			}
			out = append(out, m.Type()+" "+strings.Join(f, " "))
		}
	}
	return out
}

func eqSeq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func TestStartupMessages(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.status(0, time.Second) // first contact: comm up
	eqSeq(t, "on contact", h.sent(), []string{"starting "})
	h.fromPeer(0, proto.Starting())
	// Repeat starting once (a Heartbeat peer may have ignored the first)
	// and answer with what we hold: nothing yet, not stable.
	eqSeq(t, "on the peer's starting", h.sent(), []string{"starting ", "resource rsc_hold=none isstable=0"})
	h.fromPeer(0, proto.Resource(proto.HoldNone, false, ""))
	// The peer holds none of ours: take our group at once (no RQSTDELAY).
	h.runJobs()
	eqSeq(t, "settling", h.sent(), []string{"resource rsc_hold=local isstable=1", "resource rsc_hold=local isstable=1 info=req_our_resources()"})
	if !h.res.holds(gA) || h.res.holds(gB) {
		t.Errorf("held: %s", h.res.callLog())
	}
}

func TestShutdownMessages(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.settle()
	errc := make(chan error, 1)
	h.n.request(request{kind: "stop", errc: errc})
	h.n.drainOwn()
	eqSeq(t, "before releasing", h.sent(), []string{"resource rsc_hold=none isstable=0 info=shutdown"})
	if !h.res.holds(gA) {
		t.Fatal("released before announcing")
	}
	h.runJobs()
	if h.res.holds(gA) {
		t.Fatal("not released")
	}
	// The last word goes out three times (one seq: the copies are
	// duplicates to the peer): nobody is left to answer an NS_rexmit.
	eqSeq(t, "after releasing", h.sent(), []string{"shutdone st=dead", "shutdone st=dead", "shutdone st=dead"})
	if err := <-errc; err != nil || !h.n.stopped {
		t.Errorf("stop: %v stopped=%v", err, h.n.stopped)
	}
}

func TestStandbyHandshakeMessages(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.settle()
	errc := make(chan error, 1)
	h.n.request(request{kind: "standby", arg: All, errc: errc})
	h.n.drainOwn()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	eqSeq(t, "standby request", h.sent(), []string{"ask_resources rsc_hold=all info=me"})
	// The peer agrees; we release, then say done.
	h.fromPeer(0, proto.AskResources(proto.HoldAll, "other"))
	eqSeq(t, "before releasing", h.sent(), []string{"resource rsc_hold=none isstable=0 info=standby"})
	h.runJobs()
	eqSeq(t, "after releasing", h.sent(), []string{"ask_resources rsc_hold=all info=done"})
	if h.res.holds(gA) {
		t.Fatal("still holding")
	}
	// The peer took everything and says done: we are stable, holding none.
	h.fromPeer(0, proto.AskResources(proto.HoldAll, "done"))
	eqSeq(t, "end", h.sent(), []string{"resource rsc_hold=none isstable=1"})
	if h.n.going != sbNot || !h.n.otherStable {
		t.Errorf("going=%d otherStable=%v", h.n.going, h.n.otherStable)
	}
}

func TestPeerStandbyAcquires(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.settle()
	h.fromPeer(0, proto.AskResources(proto.HoldLocal, "me")) // the peer gives up its own group
	eqSeq(t, "agree", h.sent(), []string{"ask_resources rsc_hold=local info=other"})
	h.fromPeer(0, proto.Resource(proto.HoldNone, false, "standby"))
	h.fromPeer(0, proto.AskResources(proto.HoldLocal, "done"))
	h.runJobs()
	if !h.res.holds(gB) {
		t.Fatal("the peer's group was not taken")
	}
	eqSeq(t, "done", h.sent(), []string{"ask_resources rsc_hold=local info=done", "resource rsc_hold=all isstable=1"})
}

func TestPeerTakeoverMirrorsKind(t *testing.T) {
	for _, c := range []struct{ asked, standby string }{
		{proto.HoldAll, proto.HoldAll}, {proto.HoldLocal, proto.HoldForeign},
		{proto.HoldForeign, proto.HoldLocal}, {"failback", proto.HoldAll},
	} {
		h := newHarness(t, 1, slowTiming())
		h.settle()
		h.fromPeer(0, wire.New(proto.TypeTakeover).Add(wire.FieldRscHold, c.asked))
		eqSeq(t, "hb_takeover "+c.asked, h.sent(), []string{"ask_resources rsc_hold=" + c.standby + " info=me"})
	}
}

// TestPeerTakeoverDuringTransition: an hb_takeover from the peer that
// arrives while a standby handshake is under way is not turned into a
// standby request at once (both sides would ignore it and the takeover be
// lost) but once the transition is over; our own takeover is refused then.
func TestPeerTakeoverDuringTransition(t *testing.T) {
	h := newHarness(t, 1, slowTiming())
	h.settle()
	h.fromPeer(0, proto.AskResources(proto.HoldLocal, "me")) // the peer goes standby
	eqSeq(t, "agree", h.sent(), []string{"ask_resources rsc_hold=local info=other"})
	h.fromPeer(0, wire.New(proto.TypeTakeover).Add(wire.FieldRscHold, proto.HoldAll))
	eqSeq(t, "hb_takeover during the handshake", h.sent(), nil)
	errc := make(chan error, 1)
	h.n.request(request{kind: "takeover", arg: All, errc: errc})
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "transition") {
		t.Errorf("our takeover during the handshake: %v, want refused", err)
	}
	h.fromPeer(0, proto.Resource(proto.HoldNone, false, "standby"))
	h.fromPeer(0, proto.AskResources(proto.HoldLocal, "done"))
	h.runJobs()
	eqSeq(t, "handshake done", h.sent(), []string{"ask_resources rsc_hold=local info=done", "resource rsc_hold=all isstable=1"})
	h.tickFor(h.n.tick())
	eqSeq(t, "the deferred standby", h.sent(), []string{"ask_resources rsc_hold=all info=me"})
	if h.log.has("Ignored standby message") {
		t.Errorf("a standby message was ignored:\n%s", h.log.String())
	}
}
