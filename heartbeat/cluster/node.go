package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

var rscNames = [4]string{proto.HoldNone, proto.HoldLocal, proto.HoldForeign, proto.HoldAll}

func rscName(b int) string { return rscNames[b&rscAll] }

func rscBits(s string) (int, bool) {
	for i, n := range rscNames {
		if n == s {
			return i, true
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
	pLinks     []peerLink
	track      *seqtrack.Tracker
	nextRexmit time.Time

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

	restarted bool                 // our starting was repeated
	pGone     bool                 // the peer sent shutdone
	pGoneGen  uint64               // ... in this generation
	ipReq     map[string]time.Time // legacy: groups asked for, when

	healPending bool
	stoodDown   bool // gave up when the peer vanished: fewer ping nodes
	recoverAt   time.Time
	recoverWhy  string

	lastAuthLog time.Time
	stonithAt   time.Time
	stopped     bool
}

func newNode(e *Engine, uuid wire.UUID, gen uint64, links []link) *node {
	n := &node{
		e: e, log: e.log, cfg: &e.cfg, t: e.cfg.Timing,
		self: e.cfg.Node, peer: e.cfg.Peers[0], uuid: uuid, gen: gen, links: links,
		status: StatusUp, pLinks: make([]peerLink, len(links)), track: seqtrack.New(),
		held: map[string]time.Time{}, ipReq: map[string]time.Time{}, pingLast: map[string]time.Time{}, pingUp: map[string]bool{},
		ackOffset: randOffset(), start: e.clk.Now(),
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
		}, proto.WithClock(e.clk.Now))
	return n
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
	n.sendStatus()
	n.publish()
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
	n.send(proto.Status(n.status, uint64(n.t.DeadTime.Milliseconds())))
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
		n.heard(p.link, now, false)
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
		n.heard(p.link, now, typ == proto.TypeStatus)
		if r.Seq != 0 && r.Seq%ackDiv == n.ackOffset {
			n.send(proto.Ack(n.peer, r.Seq))
		}
		if r.Verdict == seqtrack.Deliver {
			n.dispatch(m, false)
		}
		if n.healPending {
			n.healPending = false
			n.healPartition()
		}
	case seqtrack.Duplicate:
		n.heard(p.link, now, false)
	case seqtrack.Replay:
		n.log.Warn("replayed heartbeat message dropped", "from", n.peer, "err", r.Err)
	case seqtrack.Invalid:
		n.log.Debug("invalid heartbeat message dropped", "from", n.peer, "err", r.Err)
	}
}

// heard records a packet from the peer on link i.
func (n *node) heard(i int, now time.Time, isStatus bool) {
	pl := &n.pLinks[i]
	pl.lastHeard = now
	if !pl.up {
		pl.up = true
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

func (n *node) peerStatus(m *wire.Message) {
	now := n.now()
	st, _ := m.Get(wire.FieldStatus)
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

// ---- resource management (hb_resource.c) ----

func (n *node) groupsOf(bits int) []Group {
	var out []Group
	for _, g := range n.cfg.Groups {
		local := g.Owner == n.self
		if (local && bits&rscLocal != 0) || (!local && bits&rscForeign != 0) {
			out = append(out, g)
		}
	}
	return out
}

// acquireJob queues the acquisition of the groups in bits not yet held,
// then runs then.
func (n *node) acquireJob(name string, bits int, reason string, then func()) {
	n.queue = append(n.queue, n.groupJob(name, true, bits, reason, then))
}

func (n *node) releaseJob(name string, bits int, reason string, then func()) {
	n.queue = append(n.queue, n.groupJob(name, false, bits, reason, then))
}

type groupOutcome struct {
	group string
	err   error
	at    time.Time
}

// groupJob acquires or releases the groups in bits. Which ones is
// decided by the loop when the job starts, after earlier jobs are done.
func (n *node) groupJob(name string, acquire bool, bits int, reason string, then func()) job {
	return n.groupsJob(name, acquire, func() []Group { return n.groupsOf(bits) }, reason, then)
}

// groupsJob acquires or releases the groups pick returns when the job
// starts.
func (n *node) groupsJob(name string, acquire bool, pick func() []Group, reason string, then func()) job {
	res, clk := n.e.res, n.e.clk
	return job{
		name: name,
		start: func() func(ctx context.Context) any {
			var todo []string
			for _, g := range pick() {
				_, held := n.held[g.Name]
				if acquire != held {
					todo = append(todo, g.Name)
				}
			}
			if !acquire {
				// Stop right to left across groups too.
				for i, j := 0, len(todo)-1; i < j; i, j = i+1, j-1 {
					todo[i], todo[j] = todo[j], todo[i]
				}
			}
			return func(ctx context.Context) any {
				out := make([]groupOutcome, 0, len(todo))
				for _, g := range todo {
					var err error
					if acquire {
						err = res.Acquire(ctx, g)
					} else {
						err = res.Release(ctx, g)
					}
					out = append(out, groupOutcome{group: g, err: err, at: clk.Now()})
				}
				return out
			}
		},
		then: func(r any) {
			for _, o := range r.([]groupOutcome) {
				switch {
				case acquire && o.err == nil:
					n.held[o.group] = o.at
					n.transition("acquire "+o.group, reason)
					n.event(EventAcquired, slog.LevelInfo, fmt.Sprintf("Acquired resource group %s (%s)", o.group, reason), "group", o.group)
				case acquire:
					n.event(EventAcquired, slog.LevelError, fmt.Sprintf("Acquiring resource group %s failed: %v", o.group, o.err), "group", o.group)
				default:
					delete(n.held, o.group)
					n.transition("release "+o.group, reason)
					if o.err != nil {
						n.event(EventReleased, slog.LevelError, fmt.Sprintf("Releasing resource group %s failed (counted as released): %v", o.group, o.err), "group", o.group)
					} else {
						n.event(EventReleased, slog.LevelInfo, fmt.Sprintf("Released resource group %s (%s)", o.group, reason), "group", o.group)
					}
				}
			}
			if then != nil {
				then()
			}
		},
	}
}

// reqOurResources is req_our_resources(): take our local groups unless
// someone holds them.
func (n *node) reqOurResources(anyway bool, reason string) {
	if n.shuttingDown {
		return
	}
	if (n.otherHolds&rscForeign != 0 || n.iHold&rscLocal != 0) && !anyway {
		if n.going == sbNot {
			n.log.Info("Local Resource acquisition completed. (none)")
			return
		}
	}
	n.iHold |= rscLocal
	n.acquireJob("req_our_resources", rscLocal, reason, func() {
		n.log.Info("Local Resource acquisition completed.")
		n.sendHeld(true, "req_our_resources()")
	})
}

// settle ends the start-up protocol: take our groups and say we are
// stable.
func (n *node) settle() {
	n.reqOurResources(false, "start-up")
	n.rs = rStable
	n.rscRcvdAt = time.Time{}
	n.sendHeld(true, "")
	n.performAutoFailback()
}

func (n *node) processResources(m *wire.Message, fromMe bool) {
	typ := m.Type()
	if typ == proto.TypeStarting {
		if fromMe {
			return
		}
		switch n.rs {
		case rRscRcvd, rStable, rShutdown:
		case rStarting, rBothStarting:
			n.rs = rBothStarting
			if !n.restarted {
				// Heartbeat ignores a starting that arrives before its own
				// comm_now_up, and ours may have: say it again, once, so
				// that it answers with what it holds instead of both
				// sides waiting for its 10 s RQSTDELAY.
				n.restarted = true
				n.send(proto.Starting())
			}
		default:
			n.log.Error("Received 'starting' message in state init")
			return
		}
		n.otherStable = false
		n.sendHeld(n.rs == rStable, "")
		return
	}
	// resource
	hold, _ := m.Get(wire.FieldRscHold)
	bits, ok := rscBits(hold)
	if !ok {
		n.log.Error("resource message with bad rsc_hold", "rsc_hold", hold)
		return
	}
	rtype, _ := m.Get(wire.FieldRType)
	full := rtype == "full"
	switch n.rs {
	case rStarting, rBothStarting:
		n.rs = rRscRcvd
		n.rscRcvdAt = n.now()
	case rRscRcvd, rStable, rShutdown:
	default:
		n.log.Error("resource message received in state init")
		return
	}
	upd := func(cur int) int {
		if full || bits == rscNone {
			return bits
		}
		return bits | cur
	}
	info, _ := m.Get(wire.FieldInfo)
	if !fromMe {
		n.otherHolds = upd(n.otherHolds)
		if st, ok := m.Get(wire.FieldIsStable); ok {
			if st == "1" {
				if !n.otherStable {
					n.log.Info("remote resource transition completed.")
					n.otherStable = true
					n.sendHeld(n.rs == rStable, "")
					n.performAutoFailback()
				}
			} else {
				n.otherStable = false
			}
		}
		if n.rs != rStable && n.rs != rShutdown {
			// Heartbeat proceeds only when the peer is stable, else after
			// RQSTDELAY. Taking our local groups is safe as soon as the
			// peer says it holds none of them: it only takes foreign
			// groups when we are dead, on standby, or on hb_takeover.
			if n.otherStable || n.otherHolds&rscForeign == 0 {
				n.settle()
			}
		}
		n.audit()
		return
	}
	n.iHold = upd(n.iHold)
	switch info {
	case "mach_down":
		n.log.Info("mach_down takeover complete.")
		n.takeoverInProgress = false
		n.iHold |= rscForeign
		n.needsFailback = true
		n.otherStable = true
	case "shutdown":
		n.rs = rShutdown
	}
}

func (n *node) audit() {
	if n.iHold&rscLocal != 0 && n.otherHolds&rscForeign != 0 {
		n.log.Error("Both machines own our resources!")
	}
	if n.otherHolds&rscLocal != 0 && n.iHold&rscForeign != 0 {
		n.log.Error("Both machines own foreign resources!")
	}
}

func (n *node) performAutoFailback() {
	if n.shuttingDown || n.iHold&rscForeign == 0 || !n.needsFailback || n.cfg.AutoFailback != hacf.FailbackOn {
		n.needsFailback = false
		return
	}
	if n.going != sbNot || !n.otherStable || n.rs != rStable || n.busy || len(n.queue) > 0 {
		n.log.Debug("Auto failback delayed.")
		n.failbackRetry = n.now().Add(min(time.Second, n.peerDeadtime()))
		return
	}
	n.log.Info("Auto failback triggered: giving foreign resources back to " + n.peer)
	n.standbyBits = rscForeign
	n.send(proto.AskResources(proto.HoldForeign, "me"))
	n.needsFailback = false
}

// askForResources runs the standby handshake (ask_for_resources).
func (n *node) askForResources(m *wire.Message, fromMe bool) {
	if n.cfg.AutoFailback == hacf.FailbackLegacy {
		n.log.Info("Standby mode only implemented when nice_failback on")
		return
	}
	if n.rs == rShutdown {
		return
	}
	info, _ := m.Get(wire.FieldInfo)
	from := n.peer
	if fromMe {
		from = n.self
	}
	rtype := rscAll
	if h, ok := m.Get(wire.FieldRscHold); ok {
		if b, ok := rscBits(h); ok {
			rtype = b
		}
	}
	now := n.now()
	longTO := now.Add(time.Hour)
	ignored := false
	orig := n.going
	switch n.going {
	case sbNot:
		if !n.otherStable {
			n.log.Warn(fmt.Sprintf("standby message [%s] from %s ignored.  Other side is in flux.", info, from))
			return
		}
		if n.rs != rStable {
			n.log.Warn(fmt.Sprintf("standby message [%s] from %s ignored.  local resources in flux.", info, from))
			return
		}
		n.standbyBits = rtype
		if info != "me" {
			ignored = true
			break
		}
		n.otherStable = false
		n.event(EventRequested, slog.LevelInfo, fmt.Sprintf("%s wants to go standby [%s]", from, rscName(rtype)))
		if fromMe {
			n.standbyUntil = now.Add(max(10*time.Second, 4*n.peerDeadtime()))
			n.going = sbMe
		} else {
			n.going = sbOther
			n.send(proto.AskResources(rscName(n.standbyBits), "other"))
			n.standbyUntil = longTO
		}
	case sbMe:
		if !fromMe {
			n.standbyBits = rtype
			n.standbyUntil = longTO
			if info == "other" {
				n.log.Info(fmt.Sprintf("standby: %s can take our %s resources", from, rscName(rtype)))
				n.goStandby(true, rtype)
			} else {
				ignored = true
			}
		} else if info == "done" {
			n.log.Info(fmt.Sprintf("Local standby process completed [%s].", rscName(rtype)))
			n.going = sbDone
			n.iHold &^= n.standbyBits
			n.standbyUntil = longTO
		} else if info != "me" {
			ignored = true
		}
	case sbOther:
		n.standbyBits = rtype
		if info == "done" {
			n.standbyUntil = longTO
			if !fromMe {
				n.log.Info(fmt.Sprintf("standby: acquire [%s] resources from %s", rscName(rtype), from))
				n.goStandby(false, n.standbyBits)
				n.going = sbDone
			} else {
				ignored = true
			}
		} else if !fromMe || info != "other" {
			ignored = true
		}
	case sbDone:
		n.standbyBits = rtype
		if info != "done" {
			ignored = true
			break
		}
		n.standbyUntil = time.Time{}
		n.going = sbNot
		if fromMe {
			n.log.Info(fmt.Sprintf("Standby resource acquisition done [%s].", rscName(rtype)))
			switch rtype {
			case rscLocal:
				n.iHold |= rscForeign
			case rscForeign:
				n.iHold |= rscLocal
			case rscAll:
				n.iHold |= rscAll
			}
		} else {
			n.log.Info(fmt.Sprintf("Other node completed standby takeover of %s resources.", rscName(rtype)))
		}
		n.otherStable = true
		n.sendHeld(true, "")
	}
	if ignored {
		n.log.Error(fmt.Sprintf("Ignored standby message '%s' from %s in state %d", info, from, orig))
	}
}

// goStandby releases (me) or acquires (other) the groups of set, set
// being relative to the node that asked to go standby, then sends done.
func (n *node) goStandby(me bool, set int) {
	act := set
	if !me && set != rscAll {
		act = rscAll &^ set // the standby node's local groups are our foreign ones
	}
	kind := rscName(n.standbyBits)
	done := func() { n.send(proto.AskResources(kind, "done")) }
	if me {
		n.otherStable = false
		n.iHold &^= set
		n.sendHeld(false, "standby")
		n.log.Info(fmt.Sprintf("give up %s HA resources (standby).", rscName(act)))
		n.releaseJob("go_standby", act, "standby", func() {
			n.log.Info(fmt.Sprintf("%s HA resource release completed (standby).", rscName(act)))
			done()
		})
		return
	}
	n.log.Info(fmt.Sprintf("acquire %s HA resources (standby).", rscName(act)))
	n.acquireJob("go_standby", act, "standby of "+n.peer, func() {
		n.log.Info(fmt.Sprintf("%s HA resource acquisition completed (standby).", rscName(act)))
		done()
	})
}

// peerTakeover handles hb_takeover from the peer: its rc.d script runs
// hb_standby here with the kind seen from this side.
func (n *node) peerTakeover(m *wire.Message) {
	h, _ := m.Get(wire.FieldRscHold)
	var k string
	switch h {
	case proto.HoldLocal:
		k = proto.HoldForeign
	case proto.HoldForeign:
		k = proto.HoldLocal
	default:
		k = proto.HoldAll
	}
	n.event(EventRequested, slog.LevelInfo, fmt.Sprintf("%s asks to take over [%s]: going standby [%s]", n.peer, h, k))
	n.send(proto.AskResources(k, "me"))
}

func (n *node) peerShutdone() {
	n.event(EventShutdown, slog.LevelInfo, fmt.Sprintf("Received shutdown notice from '%s'.", n.peer))
	n.otherStable = true
	n.otherHolds = rscNone
	if n.shuttingDown {
		return
	}
	n.going = sbNot
	n.standbyUntil = time.Time{}
	n.takeoverFromNode(fmt.Sprintf("%s shut down", n.peer))
	// It has said goodbye: expect silence, not death.
	n.pDead = true
	n.pGone, n.pGoneGen = true, n.track.Generation()
	n.pStatus = StatusDead
	for i := range n.pLinks {
		n.pLinks[i].up = false
	}
}

// peerDied is mark_node_dead + hb_rsc_recover_dead_resources.
func (n *node) peerDied(why string) {
	if n.pDead {
		return
	}
	n.pDead = true
	n.pStatus = StatusDead
	n.track.MarkDead()
	for i := range n.pLinks {
		if n.pLinks[i].up {
			n.pLinks[i].up = false
			n.event(EventLinkDead, slog.LevelInfo, fmt.Sprintf("Link %s:%s dead.", n.peer, n.links[i].Interface()), "link", n.links[i].Interface())
		}
	}
	n.event(EventNodeDead, slog.LevelWarn, why)
	if len(n.links) > 1 {
		n.event(EventSplit, slog.LevelError, fmt.Sprintf("all %d heartbeat links to %s are down: the node is dead or the cluster is partitioned (split brain if %s still runs)", len(n.links), n.peer, n.peer))
	}
	if n.going != sbNot {
		n.log.Info("Cancelling pending standby operation")
		n.going = sbNot
		n.standbyUntil = time.Time{}
		if !n.otherStable && n.iHold == rscAll {
			n.otherStable = true
		}
	}
	if n.shuttingDown {
		return
	}
	if n.rs == rInit || n.rs == rStarting || n.rs == rBothStarting || n.rs == rRscRcvd {
		n.rs = rStable
	}
	n.needsFailback = true
	if n.pingConfigured() {
		// A pulled cable takes the ping nodes and the peer away together:
		// let the ping state catch up (two pings) before deciding.
		n.recoverAt, n.recoverWhy = n.now().Add(2*n.t.Keepalive), why
		return
	}
	n.recoverDead(why)
}

// recoverDead is the rest of hb_rsc_recover_dead_resources: stand down if
// we see fewer ping nodes than the peer did, else STONITH if configured,
// then take everything.
func (n *node) recoverDead(why string) {
	if n.shuttingDown || !n.pDead {
		return
	}
	if n.pingConfigured() && n.peerPingKnown && n.pingCount < n.peerPingCount {
		n.event(EventPing, slog.LevelError, fmt.Sprintf("%s is unreachable but we see fewer ping nodes (%d, %s saw %d): not taking over, giving up our resources", n.peer, n.pingCount, n.peer, n.peerPingCount))
		n.iHold = rscNone
		n.stoodDown = true
		n.releaseJob("ipfail", rscAll, "fewer ping nodes than "+n.peer, nil)
		return
	}
	needStonith := true
	if n.pHeard && n.otherHolds == rscNone && n.otherStable {
		needStonith = false
	}
	if needStonith {
		if len(n.cfg.StonithCmd) > 0 {
			n.stonith()
			return
		}
		n.send(proto.StonithResult(n.peer, "n_stnth"))
		n.log.Warn("No STONITH device configured.")
		n.log.Warn("Shared disks are not protected.")
		n.takeoverFromNode(why)
		return
	}
	n.log.Info(fmt.Sprintf("Dead node %s gave up resources.", n.peer))
	if n.iHold == rscAll {
		n.otherStable = true
	}
	n.takeoverFromNode(why)
}

// healPartition resolves double ownership after a partition: both sides
// took the other's groups while they could not talk, so each gives back
// the foreign ones and keeps its own. (Heartbeat restarts itself here.)
func (n *node) healPartition() {
	foreign := false
	for _, g := range n.groupsOf(rscForeign) {
		if _, ok := n.held[g.Name]; ok {
			foreign = true
		}
	}
	if !foreign && n.iHold&rscForeign == 0 {
		n.sendHeld(n.rs == rStable, "")
		return
	}
	n.event(EventSplit, slog.LevelError, fmt.Sprintf("partition with %s healed: giving back its resource groups, keeping ours", n.peer))
	n.iHold &^= rscForeign
	n.otherHolds = rscLocal
	n.needsFailback = false
	n.releaseJob("heal", rscForeign, "partition healed", func() {
		n.sendHeld(true, "")
	})
}

// takeoverFromNode takes every group: the peer's through mach_down, ours
// through req_our_resources.
func (n *node) takeoverFromNode(reason string) {
	if n.shuttingDown {
		n.log.Info("Resource takeover cancelled - shutdown in progress.")
		return
	}
	n.log.Info(fmt.Sprintf("Resources being acquired from %s.", n.peer))
	n.iHold |= rscForeign
	n.otherHolds = rscNone
	n.otherStable = true
	n.takeoverInProgress = true
	n.acquireJob("mach_down", rscForeign, reason, func() {
		n.log.Info(fmt.Sprintf("mach_down takeover complete for node %s.", n.peer))
		if n.cfg.AutoFailback != hacf.FailbackLegacy {
			n.send(proto.MachDown())
		}
	})
	n.reqOurResources(true, reason)
}

// ---- requests from the daemon ----

func (n *node) request(r request) {
	switch r.kind {
	case "standby":
		if n.pDead || !n.pHeard {
			r.errc <- fmt.Errorf("cluster: standby refused: %s is not up", n.peer)
			return
		}
		if n.cfg.AutoFailback == hacf.FailbackLegacy {
			r.errc <- errors.New("cluster: standby needs auto_failback on or off (Heartbeat: nice_failback)")
			return
		}
		if n.going != sbNot || !n.otherStable || n.rs != rStable {
			r.errc <- errors.New("cluster: standby refused: a resource transition is under way, retry")
			return
		}
		k := r.arg
		if k == Failback {
			k = Foreign
		}
		n.log.Info(fmt.Sprintf("Going standby [%s].", k))
		n.send(proto.AskResources(string(k), "me"))
		r.errc <- nil
	case "takeover":
		if n.pDead || !n.pHeard {
			r.errc <- fmt.Errorf("cluster: takeover refused: %s is not up", n.peer)
			return
		}
		n.send(wire.New(proto.TypeTakeover).Add(wire.FieldRscHold, string(r.arg)))
		r.errc <- nil
	case "stop":
		if n.stopReq != nil || n.shuttingDown {
			r.errc <- errors.New("cluster: already stopping")
			return
		}
		n.stopReq = &r
		if !n.idle() {
			n.log.Warn("Shutdown delayed until current resource activity finishes.")
		}
		n.maybeShutdown()
	default:
		r.errc <- fmt.Errorf("cluster: unknown request %q", r.kind)
	}
}

// idle reports that no resource work or standby handshake is under way.
func (n *node) idle() bool { return n.going == sbNot && !n.busy && len(n.queue) == 0 }

// maybeShutdown starts a requested shutdown once idle (Heartbeat's
// hb_shutdown_if_needed); the loop calls it after every event.
func (n *node) maybeShutdown() {
	if n.stopReq != nil && !n.shuttingDown && n.idle() {
		n.beginShutdown()
	}
}

// beginShutdown is hb_giveup_resources.
func (n *node) beginShutdown() {
	if n.shuttingDown {
		return
	}
	n.shuttingDown = true
	n.log.Info("Heartbeat shutdown in progress.")
	n.iHold = rscNone
	n.rs = rShutdown
	if n.commUp {
		n.sendHeld(false, "shutdown")
	}
	n.log.Info("Giving up all HA resources.")
	n.releaseJob("hb_giveup_resources", rscAll, "shutdown", func() {
		n.log.Info("All HA resources relinquished.")
		n.send(proto.Shutdone())
		// Repeat the last packet: nobody will answer an NS_rexmit.
		if len(n.hist) > 0 {
			last := n.hist[len(n.hist)-1].pkt
			n.sendRaw(last)
			n.sendRaw(last)
		}
		n.stopped = true
		if n.stopReq != nil {
			n.stopReq.errc <- nil
			n.stopReq = nil
		}
	})
}

// ---- STONITH ----

func (n *node) stonith() {
	argv := append(append([]string(nil), n.cfg.StonithCmd...), n.peer)
	n.event(EventStonith, slog.LevelInfo, fmt.Sprintf("Resetting node %s with [%s]", n.peer, argv[0]))
	peer := n.peer
	n.queue = append(n.queue, job{name: "stonith",
		start: func() func(ctx context.Context) any {
			return func(ctx context.Context) any { return runStonith(ctx, argv, 2*time.Minute) }
		},
		then: func(r any) {
			err, _ := r.(error)
			if err != nil {
				n.event(EventStonith, slog.LevelError, fmt.Sprintf("STONITH of %s failed: %v; not taking over its resources. Retrying in 5 seconds.", peer, err))
				n.send(proto.StonithResult(peer, "bad"))
				n.stonithAt = n.now().Add(5 * time.Second)
				return
			}
			if !n.pDead {
				n.log.Info(fmt.Sprintf("node %s came back during STONITH; not taking over", peer))
				return
			}
			n.event(EventStonith, slog.LevelInfo, fmt.Sprintf("node %s now reset.", peer))
			n.send(proto.StonithResult(peer, "OK"))
			n.takeoverFromNode(fmt.Sprintf("node %s is dead (STONITH done)", peer))
		}})
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
		DeadTime: n.pDT, LastHeard: n.pLast, Holding: rscName(n.otherHolds), Late: n.pLate}
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
