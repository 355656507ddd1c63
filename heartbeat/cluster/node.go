package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/proto"
	"github.com/directord/directord/heartbeat/seqtrack"
	"github.com/directord/directord/heartbeat/wire"
)

const (
	ackDiv      = 10  // Heartbeat's ACK_MSG_DIV: ack every 10th seq
	maxHist     = 200 // Heartbeat's MAXMSGHIST: messages kept for rexmit
	rexmitBurst = 20  // NS_rexmit requests sent per tick at most
)

// Resource bits, Heartbeat's HB_*_RSC.
const (
	rscNone    = 0
	rscLocal   = 1
	rscForeign = 2
	rscAll     = 3
)

// rscName is encode_resources' table: bits to rsc_hold.
func rscName(b int) string {
	switch b & rscAll {
	case rscLocal:
		return proto.HoldLocal
	case rscForeign:
		return proto.HoldForeign
	case rscAll:
		return proto.HoldAll
	}
	return proto.HoldNone
}

// rscBits is decode_resources: rsc_hold to bits.
func rscBits(s string) (int, bool) {
	for b := rscNone; b <= rscAll; b++ {
		if rscName(b) == s {
			return b, true
		}
	}
	return 0, false
}

// Resource states (hb_resource.c's enum hb_rsc_state).
type rstate uint8

const (
	rInit rstate = iota
	rStarting
	rBothStarting
	rRscRcvd
	rStable
	rShutdown
)

// Standby handshake states.
type standby uint8

const (
	sbNot standby = iota
	sbMe
	sbOther
	sbDone
)

type peerLink struct {
	up        bool
	lastHeard time.Time
}

type histEntry struct {
	seq uint64
	pkt []byte
}

type pingSeen struct {
	host string
	at   time.Time
}

// node is the loop's state; only the loop goroutine touches it.
type node struct {
	e     *Engine
	log   *slog.Logger
	cfg   *Config
	t     Timing
	self  string
	peer  string
	uuid  wire.UUID
	gen   uint64
	links []link
	st    *proto.Stamper
	start time.Time

	status    string // ours: up, then active
	commUp    bool
	nextKA    time.Time
	hist      []histEntry
	ackOffset uint64

	// The peer.
	pUUID      wire.UUID
	pStatus    string
	pDead      bool
	pHeard     bool
	pLast      time.Time
	pLastSt    time.Time
	pDT        time.Duration
	pGen       uint64
	pLate      uint64
	pDirectord bool         // its status messages carry fieldDirectord
	pAddrs     []netip.Addr // what its last standby request said it can be reached at (fieldAddrs)
	// sbOtherSince is when the peer's current standby request came.
	sbOtherSince time.Time
	pLinks       []peerLink
	track        *seqtrack.Tracker
	nextRexmit   time.Time

	// Resource management, after hb_resource.c.
	rs                 rstate
	iHold              int
	otherHolds         int
	otherStable        bool
	going              standby
	standbyBits        int
	standbyUntil       time.Time
	needsFailback      bool
	failbackRetry      time.Time
	takeoverInProgress bool
	shuttingDown       bool
	rscRcvdAt          time.Time
	held               map[string]time.Time
	last               Transition
	stopReq            *request

	// Work for the resource worker.
	queue []job
	busy  bool

	// Our own cluster messages, processed after the current one as
	// Heartbeat processes what it sends.
	own []*wire.Message

	// ipfail.
	pingLast      map[string]time.Time
	pingUp        map[string]bool
	pingCount     int
	peerPingCount int
	peerPingKnown bool
	giveupAt      time.Time
	giveupBits    int

	// The peer's hb_takeover that arrived during a resource transition:
	// the standby it asks for, sent once stable (until takeoverAskUntil).
	takeoverAsk      string
	takeoverAskUntil time.Time

	restarted bool                 // our starting was repeated
	pGone     bool                 // the peer sent shutdone
	pGoneGen  uint64               // ... in this generation
	ipReq     map[string]time.Time // legacy: groups asked for, when

	// Cold tables: connectivity last came back at reconnected; a live
	// peer's standby request that would give us groups before Ready says
	// so waits in deferredAsk until deferUntil.
	reconnected time.Time
	deferredAsk *wire.Message
	deferUntil  time.Time
	retrying    bool // processing deferredAsk: do not defer it again

	healPending bool
	stoodDown   bool // gave up when the peer vanished: fewer ping nodes
	recoverAt   time.Time
	recoverWhy  string

	lastAuthLog time.Time
	stonithAt   time.Time
	stopped     bool
	detachReq   *request
}

func newNode(e *Engine, uuid wire.UUID, gen uint64, links []link, resume *Resume) *node {
	n := &node{
		e: e, log: e.log, cfg: &e.cfg, t: e.cfg.Timing,
		self: e.cfg.Node, peer: e.cfg.Peers[0], uuid: uuid, gen: gen, links: links,
		status: StatusUp, pLinks: make([]peerLink, len(links)), track: seqtrack.New(),
		held: map[string]time.Time{}, ipReq: map[string]time.Time{}, pingLast: map[string]time.Time{}, pingUp: map[string]bool{},
		ackOffset: randOffset(), start: e.clk.Now(),
	}
	opts := []proto.StamperOption{proto.WithClock(e.clk.Now)}
	if resume != nil {
		opts = append(opts, proto.WithFirstSeq(resume.NextSeq))
	}
	n.st = proto.NewStamper(proto.Identity{Name: n.self, UUID: uuid, Generation: gen, TTL: e.cfg.HopFudge + 2},
		func(dest string) (wire.UUID, bool) {
			if dest == n.peer && !n.pUUID.IsZero() {
				return n.pUUID, true
			}
			if dest == n.self {
				return n.uuid, true
			}
			return wire.UUID{}, false
		}, opts...)
	if resume != nil {
		n.resumeFrom(resume)
	}
	return n
}

// resumeFrom makes the node the one that detached: active, stable, the peer
// as it was known, and the groups it held adopted (Acquire) before anything
// else runs. Nothing is sent that the peer would not expect from a node
// that merely paused.
func (n *node) resumeFrom(r *Resume) {
	now := n.now()
	n.status = StatusActive
	n.commUp = true
	n.rs = rStable
	n.otherStable = true
	n.restarted = true
	n.needsFailback = r.NeedsFailback
	if n.needsFailback && r.PeerStatus != StatusDead && r.PeerStatus != "" {
		// A failback to a live peer that was due is tried again, as a
		// delayed one is; one to a dead peer waits for it as before.
		n.failbackRetry = now.Add(n.t.Keepalive)
	}
	n.pUUID = r.PeerUUID
	n.pDT = r.PeerDeadTime
	n.pStatus = r.PeerStatus
	n.otherHolds, _ = rscBits(r.PeerHolding)
	if r.PeerGeneration != 0 {
		n.track = seqtrack.Resume(r.PeerGeneration, r.PeerLastSeq)
	}
	if r.PeerStatus != "" {
		// The peer was known: its silence from now on counts towards its
		// death as before, and its links start up (no "Link up" events for
		// links that never went down).
		n.pHeard, n.pLast = true, now
		if r.PeerStatus == StatusDead {
			n.pDead = true
			n.track.MarkDead()
		} else {
			for i := range n.pLinks {
				n.pLinks[i] = peerLink{up: true, lastHeard: now}
			}
		}
	}
	for _, h := range r.PingUp {
		n.pingLast[h], n.pingUp[h] = now, true
	}
	n.pingCount, n.peerPingCount, n.peerPingKnown = r.PingCount, r.PeerPingCount, r.PeerPingKnown
	want := map[string]bool{}
	for _, g := range r.Held {
		want[g] = true
	}
	var groups []Group
	for _, g := range n.cfg.Groups {
		if want[g.Name] {
			groups = append(groups, g)
			if g.Owner == n.self {
				n.iHold |= rscLocal
			} else {
				n.iHold |= rscForeign
			}
		}
	}
	n.log.Info("heartbeat engine resuming a detached node: same generation, sequence continued", "generation", n.gen, "next_seq", r.NextSeq, "held", r.Held, "peer", r.PeerStatus)
	n.queue = append(n.queue, n.groupsJob("resume", true, false, func() []Group { return groups }, "resumed after a restart", func() {
		missing := false
		for _, g := range groups {
			if _, ok := n.held[g.Name]; !ok {
				missing = true
			}
		}
		if missing {
			// Tell the peer what is really held, so that it does not count
			// on a group this node could not adopt.
			n.iHold = rscNone
			for _, g := range groups {
				if _, ok := n.held[g.Name]; ok {
					if g.Owner == n.self {
						n.iHold |= rscLocal
					} else {
						n.iHold |= rscForeign
					}
				}
			}
			n.log.Error("not every group held before the restart could be adopted", "held", n.holding())
			n.sendHeld(true, "")
		}
	}))
}

// resumeState is what a successor needs to continue this node.
func (n *node) resumeState() Resume {
	r := Resume{
		Node: n.self, UUID: n.uuid, Generation: n.gen, NextSeq: n.st.Next(), NeedsFailback: n.needsFailback,
		PeerStatus: n.pStatus, PeerUUID: n.pUUID, PeerGeneration: n.track.Generation(), PeerDeadTime: n.pDT,
		PeerHolding: rscName(n.otherHolds), PingCount: n.pingCount, PeerPingCount: n.peerPingCount,
		PeerPingKnown: n.peerPingKnown, At: n.now(),
	}
	if n.pDead {
		r.PeerStatus = StatusDead
	}
	if last, ok := n.track.LastSeq(); ok {
		r.PeerLastSeq = last
	}
	for _, g := range n.cfg.Groups {
		if _, ok := n.held[g.Name]; ok {
			r.Held = append(r.Held, g.Name)
		}
	}
	for _, h := range n.pingHosts() {
		if n.pingUp[h] {
			r.PingUp = append(r.PingUp, h)
		}
	}
	return r
}

func (n *node) now() time.Time { return n.e.clk.Now() }

func (n *node) tick() time.Duration {
	d := n.t.Keepalive / 4
	return min(max(d, 5*time.Millisecond), 250*time.Millisecond)
}

func (n *node) loop(ctx context.Context, in <-chan inbound, spawn func(func()), pings <-chan pingSeen) error {
	results := make(chan jobResult, 1)
	n.log.Info("heartbeat engine starting", "node", n.self, "peer", n.peer, "generation", n.gen,
		"keepalive", n.t.Keepalive, "deadtime", n.t.DeadTime, "initdead", n.t.InitDead, "auto_failback", n.cfg.AutoFailback.String())
	// The first snapshot before the first packet: whoever hears us can
	// already read our generation in State.
	n.publish()
	n.sendStatus()
	timer := n.e.clk.After(n.tick())
	for {
		n.startJob(ctx, spawn, results)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-in:
			n.receive(p)
		case r := <-results:
			n.busy = false
			if r.j.then != nil {
				r.j.then(r.out)
			}
		case p := <-pings:
			n.pingLast[p.host] = p.at
		case r := <-n.e.reqs:
			n.request(r)
		case <-timer:
			n.onTick()
			timer = n.e.clk.After(n.tick())
		}
		n.drainOwn()
		n.maybeShutdown()
		n.drainOwn()
		n.maybeDetach()
		n.publish()
		if n.stopped {
			return nil
		}
	}
}

// startJob runs the next queued job in its own goroutine when none is
// running: resource scripts take seconds, heartbeats must go on.
func (n *node) startJob(ctx context.Context, spawn func(func()), results chan<- jobResult) {
	for !n.busy && len(n.queue) > 0 {
		j := n.queue[0]
		n.queue = n.queue[1:]
		if j.start == nil {
			if j.then != nil {
				j.then(nil)
			}
			n.drainOwn()
			continue
		}
		run := j.start()
		n.busy = true
		spawn(func() {
			out := run(ctx)
			select {
			case results <- jobResult{j: j, out: out}:
			case <-ctx.Done():
			}
		})
	}
}

// ---- sending ----

// send stamps, seals and sends m on every link, keeping it for
// retransmission. Resource-class messages are also processed locally.
func (n *node) send(m *wire.Message) {
	seq, err := n.st.Stamp(m)
	if err != nil {
		n.log.Error("cannot stamp heartbeat message", "type", m.Type(), "err", err)
		return
	}
	pkt, err := n.cfg.Keyring.Seal(m)
	if err != nil {
		n.log.Error("cannot seal heartbeat message", "type", m.Type(), "err", err)
		return
	}
	if seq != 0 {
		n.hist = append(n.hist, histEntry{seq: seq, pkt: pkt})
		if len(n.hist) > maxHist {
			n.hist = n.hist[len(n.hist)-maxHist:]
		}
	}
	if n.e.dropOut != nil && n.e.dropOut(m) {
		n.log.Debug("test filter dropped outgoing message", "type", m.Type(), "seq", seq)
	} else {
		n.sendRaw(pkt)
	}
	switch m.Type() {
	case proto.TypeStarting, proto.TypeResource, proto.TypeAskResources, proto.TypeShutdone, proto.TypeTakeover:
		n.own = append(n.own, m)
	}
}

func (n *node) sendRaw(pkt []byte) {
	for _, l := range n.links {
		if err := l.Send(pkt); err != nil {
			n.log.Debug("heartbeat send failed", "link", l.String(), "err", err)
		}
	}
}

func (n *node) sendStatus() {
	n.send(proto.Status(n.status, uint64(n.t.DeadTime.Milliseconds())).Add(fieldDirectord, "1"))
	n.nextKA = n.now().Add(n.t.Keepalive)
}

func (n *node) sendHeld(stable bool, info string) {
	if n.cfg.AutoFailback == hacf.FailbackLegacy {
		return // nice_failback off sends no resource messages
	}
	n.send(proto.Resource(rscName(n.iHold), stable, info))
}

func (n *node) drainOwn() {
	for len(n.own) > 0 {
		m := n.own[0]
		n.own = n.own[1:]
		n.dispatch(m, true)
	}
}

// ---- events and logs ----

// event logs text and reports it to OnEvent; "group" and "link" attrs
// also fill the Event's fields.
func (n *node) event(kind EventKind, level slog.Level, text string, attrs ...any) Event {
	ev := Event{At: n.now(), Kind: kind, Node: n.peer, Text: text}
	for i := 0; i+1 < len(attrs); i += 2 {
		v, _ := attrs[i+1].(string)
		switch attrs[i] {
		case "group":
			ev.Group = v
		case "link":
			ev.Link = v
		}
	}
	n.log.Log(context.Background(), level, text, attrs...)
	if n.cfg.OnEvent != nil {
		n.cfg.OnEvent(ev)
	}
	return ev
}

func (n *node) transition(what, reason string) {
	n.last = Transition{At: n.now(), What: what, Reason: reason}
}

// ---- receiving ----

func (n *node) receive(p inbound) {
	m, err := n.cfg.Keyring.Open(p.pkt)
	if err != nil {
		if errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrNoAuth) {
			// Log at most once a second: a misconfigured peer sends
			// several packets a second.
			if now := n.now(); now.Sub(n.lastAuthLog) >= time.Second {
				n.lastAuthLog = now
				n.event(EventAuthFail, slog.LevelWarn, "heartbeat packet rejected: authentication failed (check authkeys)", "link", n.links[p.link].String(), "err", err)
			}
		} else {
			n.log.Debug("heartbeat packet dropped", "link", n.links[p.link].String(), "err", err)
		}
		return
	}
	src, _ := m.Get(wire.FieldSrc)
	if src == n.self {
		return // our own broadcast coming back
	}
	if n.e.dropIn != nil && n.e.dropIn(m) {
		n.log.Debug("test filter dropped incoming message", "type", m.Type())
		return
	}
	if src != n.peer {
		n.log.Debug("message from unknown node ignored", "src", src)
		return
	}
	now := n.now()
	if u, err := m.UUIDField(wire.FieldSrcUUID); err == nil {
		n.pUUID = u
	}
	typ := m.Type()
	if typ == proto.TypeRexmit || typ == proto.TypeAck || typ == proto.TypeNakRexmit {
		n.heard(p.link, now)
		if !seqtrack.ToUs(m, n.self, n.uuid) {
			return
		}
		switch typ {
		case proto.TypeRexmit:
			n.answerRexmit(m)
			return
		case proto.TypeAck:
			return
		}
	}
	if n.pGone {
		// After its shutdone the peer keeps sending keepalives while it
		// exits; they must not bring it back to life.
		if g, err := m.Uint(wire.FieldGen); err == nil && g <= n.pGoneGen {
			return
		}
		n.pGone = false
	}
	r := n.track.Observe(m, seqtrack.ToUs(m, n.self, n.uuid))
	if r.Restart {
		n.peerRestarted()
	}
	if r.Healed {
		n.event(EventSplit, slog.LevelError, fmt.Sprintf("Cluster node %s returning after partition.", n.peer))
		n.healPending = true
	}
	if r.Request != nil {
		for k := uint64(0); k <= r.Request.Last-r.Request.First && k < rexmitBurst; k++ {
			n.send(proto.Rexmit(n.peer, r.Request.First+k, r.Request.First+k))
		}
		n.nextRexmit = now.Add(n.t.MaxRexmitDelay)
	}
	if r.Recovered {
		n.event(EventRexmit, slog.LevelInfo, fmt.Sprintf("Retransmitted message %d from %s received", r.Seq, n.peer))
	}
	switch r.Verdict {
	case seqtrack.Deliver, seqtrack.NotForUs:
		n.heard(p.link, now)
		if r.Seq != 0 && r.Seq%ackDiv == n.ackOffset {
			n.send(proto.Ack(n.peer, r.Seq))
		}
		if r.Verdict == seqtrack.Deliver {
			n.dispatch(m, false)
		} else if typ == proto.TypeIPRequest {
			n.peerSelfGrant(m)
		}
		if n.healPending {
			n.healPending = false
			n.healPartition()
		}
	case seqtrack.Duplicate:
		n.heard(p.link, now)
	case seqtrack.Replay:
		n.log.Warn("replayed heartbeat message dropped", "from", n.peer, "err", r.Err)
	case seqtrack.Invalid:
		n.log.Debug("invalid heartbeat message dropped", "from", n.peer, "err", r.Err)
	}
}

// heard records a packet from the peer on link i.
func (n *node) heard(i int, now time.Time) {
	pl := &n.pLinks[i]
	pl.lastHeard = now
	if !pl.up {
		pl.up = true
		n.reconnected = now
		n.event(EventLinkUp, slog.LevelInfo, fmt.Sprintf("Link %s:%s up.", n.peer, n.links[i].Interface()), "link", n.links[i].Interface())
	}
	n.pLast = now
	n.pHeard = true
}

func (n *node) answerRexmit(m *wire.Message) {
	first, err1 := m.Uint(wire.FieldFirstSeq)
	last, err2 := m.Uint(wire.FieldLastSeq)
	if err1 != nil || err2 != nil || last < first || last-first > maxHist {
		n.log.Debug("bad NS_rexmit ignored", "msg", m.String())
		return
	}
	for k := uint64(0); k <= last-first; k++ { // counted: last may be MaxUint64
		s := first + k
		found := false
		for _, h := range n.hist {
			if h.seq == s {
				n.sendRaw(h.pkt)
				found = true
				break
			}
		}
		if !found {
			n.send(proto.NakRexmit(n.peer, s))
		}
	}
	n.log.Debug("retransmitted on request", "from", n.peer, "first", first, "last", last)
}

// dispatch acts on a message from the peer (fromMe false) or one we sent
// ourselves (fromMe true).
func (n *node) dispatch(m *wire.Message, fromMe bool) {
	if !fromMe && !n.commUp {
		n.commNowUp()
	}
	if !fromMe && m.Type() != proto.TypeStatus {
		n.log.Debug("received", "msg", m.String())
	}
	switch m.Type() {
	case proto.TypeStatus:
		if !fromMe {
			n.peerStatus(m)
		}
	case proto.TypeReqNodes:
		if !fromMe {
			n.send(proto.RepNodes(n.peer, []string{n.self, n.peer}, nil))
		}
	case proto.TypeStarting, proto.TypeResource:
		n.processResources(m, fromMe)
	case proto.TypeShutdone:
		if !fromMe {
			n.peerShutdone()
		}
	case proto.TypeAskResources:
		n.askForResources(m, fromMe)
	case proto.TypeTakeover:
		if !fromMe {
			n.peerTakeover(m)
		}
	case typeIPRequest:
		if !fromMe {
			n.ipRequest(m)
		}
	case proto.TypeIPRequest:
		if !fromMe {
			n.ipRequestResp(m)
		}
	case typeAPIClientStatus:
		// Heartbeat's ipfail signing on: it wants to compare counts.
		if st, _ := m.Get(wire.FieldStatus); !fromMe && st == "join" {
			if id, _ := m.Get("from_id"); id == "ipfail" {
				n.askPingNodes()
			}
		}
	case typeNumPing:
		if !fromMe {
			n.ipfailNumPing(m)
		}
	case typeYouAreDead:
		if !fromMe {
			n.log.Info("Giving up because we were told that we have less ping nodes.")
			n.delayGiveup(rscAll)
		}
	case typeAbortGiveup:
		if !fromMe {
			n.abortGiveup()
		}
	}
}

// fieldDirectord, in every status message, says the sender is a directord
// node, which speaks directord's extensions (make before break on a
// graceful stop). Heartbeat 3.0.6 ignores fields it does not know.
const fieldDirectord = "dd_ver"

func (n *node) peerStatus(m *wire.Message) {
	now := n.now()
	st, _ := m.Get(wire.FieldStatus)
	_, n.pDirectord = m.Get(fieldDirectord)
	if dt, err := m.Uint(wire.FieldDeadtime); err == nil && dt > 0 {
		n.pDT = time.Duration(dt) * time.Millisecond
	}
	if !n.pLastSt.IsZero() && !n.pDead {
		if iv := now.Sub(n.pLastSt); iv > n.t.WarnTime {
			n.pLate++
			n.event(EventLate, slog.LevelWarn, fmt.Sprintf("Late heartbeat: Node %s: interval %d ms", n.peer, iv.Milliseconds()))
		}
	}
	n.pLastSt = now
	n.pGen = n.track.Generation()
	if n.pDead {
		n.pDead = false
		n.stoodDown = false
		n.recoverAt = time.Time{}
		n.event(EventNodeUp, slog.LevelInfo, fmt.Sprintf("Status update for node %s: status %s", n.peer, st))
		n.pStatus = st
		n.askPingNodes()
		return
	}
	if st != n.pStatus {
		if n.pStatus == "" {
			n.event(EventNodeUp, slog.LevelInfo, fmt.Sprintf("Status update for node %s: status %s", n.peer, st))
			n.askPingNodes()
		} else {
			n.log.Info(fmt.Sprintf("Status update for node %s: status %s", n.peer, st))
		}
		n.pStatus = st
	}
}

// peerDeadtime is how long silence means death: the dt the peer
// advertised, else our own deadtime.
func (n *node) peerDeadtime() time.Duration {
	if n.pDT > 0 {
		return n.pDT
	}
	return n.t.DeadTime
}

// ---- the clock ----

func (n *node) onTick() {
	now := n.now()
	if !now.Before(n.nextKA) && !n.stopped {
		n.sendStatus()
	}
	dt := n.peerDeadtime()
	if n.pHeard && !n.pDead {
		for i := range n.pLinks {
			pl := &n.pLinks[i]
			if pl.up && now.Sub(pl.lastHeard) > dt {
				pl.up = false
				n.event(EventLinkDead, slog.LevelInfo, fmt.Sprintf("Link %s:%s dead.", n.peer, n.links[i].Interface()), "link", n.links[i].Interface())
				if n.anyLinkUp() {
					n.askPingNodes()
				}
			}
		}
		if now.Sub(n.pLast) > dt {
			n.peerDied(fmt.Sprintf("node %s: is dead", n.peer))
		}
	}
	if !n.commUp && now.Sub(n.start) > n.t.InitDead {
		n.commNowUp()
		if !n.pHeard {
			n.peerDied(fmt.Sprintf("node %s: is dead (nothing heard within initdead %v)", n.peer, n.t.InitDead))
		}
	}
	if !n.pDead && n.pHeard && !now.Before(n.nextRexmit) {
		miss := n.track.Missing()
		for i, s := range miss {
			if i == rexmitBurst {
				break
			}
			n.send(proto.Rexmit(n.peer, s, s))
		}
		n.nextRexmit = now.Add(n.t.MaxRexmitDelay)
	}
	if n.going != sbNot && !n.standbyUntil.IsZero() && now.After(n.standbyUntil) {
		n.log.Warn("standby handshake timed out; cancelled")
		n.going = sbNot
		n.standbyUntil = time.Time{}
		n.otherStable = true
	}
	// Both nodes started together and neither is stable: Heartbeat waits
	// RQSTDELAY (10 s) here; we take our own groups as soon as we know the
	// peer does not hold them, and this is the fallback when it might.
	if n.rs == rRscRcvd && !n.rscRcvdAt.IsZero() && now.Sub(n.rscRcvdAt) > max(2*dt, time.Second) {
		n.log.Info("resource state still unsettled; acquiring our own resources")
		n.settle()
	}
	if n.deferredAsk != nil {
		n.retryDeferredAsk(now)
	}
	if !n.failbackRetry.IsZero() && now.After(n.failbackRetry) {
		n.failbackRetry = time.Time{}
		n.performAutoFailback()
	}
	if !n.stonithAt.IsZero() && now.After(n.stonithAt) {
		n.stonithAt = time.Time{}
		if n.pDead {
			n.stonith()
		}
	}
	n.pingTick(now)
	if !n.recoverAt.IsZero() && !now.Before(n.recoverAt) {
		n.recoverAt = time.Time{}
		n.recoverDead(n.recoverWhy)
	}
	if len(n.ipReq) > 0 {
		n.retryIPRequests(now)
	}
	if !n.giveupAt.IsZero() && now.After(n.giveupAt) {
		n.giveup()
	}
	if n.takeoverAsk != "" {
		n.retryTakeoverAsk(now)
	}
}

func (n *node) anyLinkUp() bool {
	for _, pl := range n.pLinks {
		if pl.up {
			return true
		}
	}
	return false
}

// commNowUp is Heartbeat's comm_now_up: we are active and, with
// auto_failback on or off (nice_failback), announce that we are starting.
func (n *node) commNowUp() {
	if n.commUp {
		return
	}
	n.commUp = true
	n.status = StatusActive
	n.log.Info("Local status now set to: 'active'")
	n.sendStatus()
	if n.cfg.AutoFailback == hacf.FailbackLegacy {
		n.legacyStart()
		return
	}
	n.send(proto.Starting())
	n.rs = rStarting
}

func (n *node) peerRestarted() {
	n.event(EventRestart, slog.LevelInfo, fmt.Sprintf("Heartbeat restart on node %s", n.peer))
	if n.pHeard && !n.pDead {
		// It crashed and came back within deadtime: whatever it held is
		// gone, so recover as if it had been declared dead.
		n.peerDied(fmt.Sprintf("node %s restarted", n.peer))
	}
	n.pDead = false
	n.pStatus = ""
	n.pLastSt = time.Time{}
	n.otherStable = false
	n.otherHolds = rscNone
	n.peerPingKnown = false
}

// ---- snapshot ----

func (n *node) publish() {
	s := Snapshot{
		Node: n.self, Status: n.status, UUID: n.uuid, Generation: n.gen,
		Holding: n.holding(), PingCount: n.pingCount, PeerPingCount: n.peerPingCount, Last: n.last,
		Stable: n.rs == rStable && n.going == sbNot && !n.busy && len(n.queue) == 0,
	}
	for _, g := range n.cfg.Groups {
		at, ok := n.held[g.Name]
		s.Groups = append(s.Groups, GroupState{Group: g, Held: ok, Since: at})
	}
	s.Peer = PeerState{Name: n.peer, Status: n.pStatus, UUID: n.pUUID, Generation: n.track.Generation(),
		DeadTime: n.pDT, LastHeard: n.pLast, Holding: rscName(n.otherHolds), Late: n.pLate, Directord: n.pDirectord}
	for i, l := range n.links {
		s.Peer.Links = append(s.Peer.Links, LinkState{Medium: l.String(), Interface: l.Interface(), Up: n.pLinks[i].up, LastHeard: n.pLinks[i].lastHeard})
	}
	for _, h := range n.pingHosts() {
		s.Ping = append(s.Ping, PingState{Name: h, Up: n.pingUp[h], LastHeard: n.pingLast[h]})
	}
	n.e.mu.Lock()
	n.e.snap = s
	n.e.mu.Unlock()
}

// holding is what this node actually holds, in Heartbeat's words.
func (n *node) holding() string {
	bits := rscNone
	for _, g := range n.cfg.Groups {
		if _, ok := n.held[g.Name]; ok {
			if g.Owner == n.self {
				bits |= rscLocal
			} else {
				bits |= rscForeign
			}
		}
	}
	return rscName(bits)
}

func parseUint(s string) (int, bool) {
	v, err := strconv.Atoi(s)
	return v, err == nil && v >= 0
}
