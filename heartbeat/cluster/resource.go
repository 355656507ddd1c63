package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/proto"
	"github.com/directord/directord/heartbeat/wire"
)

// Resource management after Heartbeat 3.0.6's hb_resource.c: the
// start-up exchange, the standby handshake, takeover from a dead node,
// and graceful shutdown. Everything here runs in the loop goroutine.

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
	n.queue = append(n.queue, n.groupJob(name, true, false, bits, reason, then))
}

// handoverJob is acquireJob for groups a live peer hands over (its standby,
// make before break, its shutdown): Acquire's context says so (HandoverOf).
func (n *node) handoverJob(name string, bits int, reason string, then func()) {
	n.queue = append(n.queue, n.groupJob(name, true, true, bits, reason, then))
}

func (n *node) releaseJob(name string, bits int, reason string, then func()) {
	n.queue = append(n.queue, n.groupJob(name, false, false, bits, reason, then))
}

// handoverReleaseJob is releaseJob for groups the peer has taken already (it
// answered our standby after its make before break): Release's context
// says so (HandoverOf).
func (n *node) handoverReleaseJob(name string, bits int, reason string, then func()) {
	n.queue = append(n.queue, n.groupJob(name, false, true, bits, reason, then))
}

type groupOutcome struct {
	group string
	err   error
	at    time.Time
}

// groupJob acquires or releases the groups in bits. Which ones is
// decided by the loop when the job starts, after earlier jobs are done.
func (n *node) groupJob(name string, acquire, handover bool, bits int, reason string, then func()) job {
	return n.groupsJob(name, acquire, handover, func() []Group { return n.groupsOf(bits) }, reason, then)
}

// groupsJob acquires or releases the groups pick returns when the job
// starts.
func (n *node) groupsJob(name string, acquire, handover bool, pick func() []Group, reason string, then func()) job {
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
			ho := Handover{Directord: n.pDirectord, PeerAddrs: n.pAddrs}
			return func(ctx context.Context) any {
				if handover {
					ctx = context.WithValue(ctx, handoverKey{}, ho)
				}
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
		if n.pDead {
			n.otherStable = true
		} else {
			// The peer came back (a quick restart after its shutdown)
			// while we were taking its groups. Its own word on its
			// stability stands: if it said isstable=1 already, that
			// found no failback due and nothing else would trigger one;
			// if not, its isstable=1 will.
			n.performAutoFailback()
		}
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
	n.send(n.askMe(proto.HoldForeign))
	n.needsFailback = false
}

// WarmWait bounds how long a live peer's handover waits for this node's
// checks (Config.Ready): never less than 3 s nor more than 8 s, below the
// 10 s a standby handshake may take before the peer cancels it.
func WarmWait(peerDeadTime time.Duration) time.Duration {
	return min(max(3*time.Second, 2*peerDeadTime), 8*time.Second)
}

// mirror turns the peer's rsc_hold bits into ours: its local groups are our
// foreign ones.
func mirror(bits int) int {
	out := 0
	if bits&rscLocal != 0 {
		out |= rscForeign
	}
	if bits&rscForeign != 0 {
		out |= rscLocal
	}
	return out
}

// cold returns the groups in bits that we do not hold and Ready says are
// not ready to serve here.
func (n *node) cold(bits int) []string {
	if n.cfg.Ready == nil {
		return nil
	}
	var out []string
	for _, g := range n.groupsOf(bits) {
		if _, ok := n.held[g.Name]; !ok && !n.cfg.Ready(g.Name, n.reconnected) {
			out = append(out, g.Name)
		}
	}
	return out
}

// deferCold keeps the peer's standby request m, which would give us the
// groups in bits, while their checks here are cold: the handover is
// delayed until they are warm or WarmWait passes, never lost. It reports
// whether m was kept.
func (n *node) deferCold(m *wire.Message, bits int, now time.Time) bool {
	if n.pDead || n.retrying {
		return false
	}
	if n.deferredAsk == nil {
		n.deferUntil = now.Add(WarmWait(n.peerDeadtime()))
	} else if !now.Before(n.deferUntil) {
		return false
	}
	cold := n.cold(bits)
	if len(cold) == 0 {
		return false
	}
	if n.deferredAsk == nil {
		n.log.Warn(fmt.Sprintf("%s hands us resource groups %s but our checks have not completed a pass since our links came back: waiting for them (at most %v)",
			n.peer, strings.Join(cold, " "), n.deferUntil.Sub(now).Round(time.Millisecond)))
	}
	n.deferredAsk = m
	return true
}

// retryDeferredAsk processes a deferred standby request once our checks
// are warm, the wait is over, or the peer has died.
func (n *node) retryDeferredAsk(now time.Time) {
	m := n.deferredAsk
	if n.pDead {
		n.deferredAsk, n.deferUntil = nil, time.Time{}
		return
	}
	if now.Before(n.deferUntil) {
		bits := rscAll
		if h, ok := m.Get(wire.FieldRscHold); ok {
			if b, ok := rscBits(h); ok {
				bits = b
			}
		}
		if len(n.cold(mirror(bits))) > 0 {
			return
		}
		n.log.Info("checks completed a pass: taking the handed-over resource groups")
	} else {
		n.log.Warn("checks still cold after waiting: taking the handed-over resource groups anyway")
	}
	n.deferredAsk, n.deferUntil = nil, time.Time{}
	n.retrying = true
	n.askForResources(m, false)
	n.retrying = false
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
		if !fromMe && info == "me" && n.deferCold(m, mirror(rtype), now) {
			return
		}
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
			n.sbOtherSince = now
			n.standbyUntil = longTO
			n.pAddrs = nil
			if v, _ := m.Get(fieldMakeBeforeBreak); v == "1" {
				v, _ := m.Get(fieldAddrs)
				n.pAddrs = parseAddrs(v)
				n.makeBeforeBreak()
			} else {
				n.send(proto.AskResources(rscName(n.standbyBits), "other"))
			}
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
// fieldMakeBeforeBreak, on ask_resources info=me, is directord's
// extension: the node going standby lets the peer acquire before it
// releases. Heartbeat 3.0.6 reads only the fields it knows and ignores it
// (and answers as always: break before make).
const fieldMakeBeforeBreak = "dd_mbb"

// fieldAddrs, beside fieldMakeBeforeBreak, lists the addresses the
// standby node can be reached at on its LANs (Config.LocalAddrs), comma
// separated: the node taking over passes it the segments of connections it
// does not know yet (vip/handoff), which needs its address on the VIP's LAN.
const fieldAddrs = "dd_addrs"

// maxAddrs bounds the addresses read from fieldAddrs.
const maxAddrs = 32

// askMe is the standby request, ask_resources info=me, offering the peer a
// make-before-break handover.
func (n *node) askMe(kind string) *wire.Message {
	m := proto.AskResources(kind, "me").Add(fieldMakeBeforeBreak, "1")
	if n.cfg.LocalAddrs != nil {
		var as []string
		for _, a := range n.cfg.LocalAddrs() {
			if len(as) == maxAddrs {
				break
			}
			as = append(as, a.String())
		}
		if len(as) > 0 {
			m.Add(fieldAddrs, strings.Join(as, ","))
		}
	}
	return m
}

// parseAddrs reads fieldAddrs; what is not an address is skipped, and at
// most maxAddrs are read.
func parseAddrs(v string) []netip.Addr {
	var out []netip.Addr
	for _, f := range strings.SplitN(v, ",", maxAddrs+1) {
		if len(out) == maxAddrs {
			break
		}
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if a = a.Unmap(); err == nil && !a.IsUnspecified() && !a.IsMulticast() {
			out = append(out, a)
		}
	}
	return out
}

// makeBeforeBreak acquires what the peer's standby hands us before
// answering "other", so the VIP is never held by nobody: the peer releases
// only after our announcements went out, and connection sync keeps its
// connections. The rest of the handshake runs as usual (the acquisition
// on "done" finds everything held).
func (n *node) makeBeforeBreak() {
	act := n.standbyBits
	if act != rscAll {
		act = rscAll &^ act // the standby node's local groups are our foreign ones
	}
	kind := rscName(n.standbyBits)
	n.log.Info(fmt.Sprintf("acquire %s HA resources before %s releases them (make before break).", rscName(act), n.peer))
	start := n.now()
	n.handoverJob("make_before_break", act, "standby of "+n.peer, func() {
		if took := n.now().Sub(start); took > mbbMaxAcquire {
			// The peer may have given up waiting for "other" (after 10 s)
			// and kept its groups: undo, and hand over break before make.
			n.log.Warn(fmt.Sprintf("make before break: acquiring took %v; releasing again, the handover proceeds break before make", took.Round(time.Millisecond)))
			n.releaseJob("make_before_break", act, "slow make before break", func() {
				n.send(proto.AskResources(kind, "other"))
			})
			return
		}
		n.send(proto.AskResources(kind, "other"))
	})
}

// mbbMaxAcquire bounds a make-before-break acquisition: half the 10 s a
// standby handshake may wait for "other" before the peer cancels it.
const mbbMaxAcquire = 5 * time.Second

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
		n.handoverReleaseJob("go_standby", act, "standby", func() {
			n.log.Info(fmt.Sprintf("%s HA resource release completed (standby).", rscName(act)))
			done()
		})
		return
	}
	n.log.Info(fmt.Sprintf("acquire %s HA resources (standby).", rscName(act)))
	n.handoverJob("go_standby", act, "standby of "+n.peer, func() {
		n.log.Info(fmt.Sprintf("%s HA resource acquisition completed (standby).", rscName(act)))
		done()
		// The peer has released them now. In a make-before-break handover it
		// may still have announced them during the overlap (its own
		// announcements of an acquisition a moment earlier, its ARP
		// replies): announce once more, so that no neighbour is left
		// pointing at a node that gave the addresses up.
		for _, g := range n.groupsOf(act) {
			if at, ok := n.held[g.Name]; ok && !at.Before(n.sbOtherSince) { // taken in this handover
				n.event(EventReassert, slog.LevelInfo, fmt.Sprintf("standby of %s completed: announcing resource group %s again", n.peer, g.Name), "group", g.Name)
			}
		}
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
	if n.inTransition() {
		// Heartbeat's rc.d/hb_takeover runs hb_standby in a forked script,
		// by when its transition is usually over; a standby asked now would
		// be ignored by both sides and the takeover lost. Ask once stable.
		n.event(EventRequested, slog.LevelInfo, fmt.Sprintf("%s asks to take over [%s]: going standby [%s] once the resource transition under way completes", n.peer, h, k))
		n.takeoverAsk = k
		n.takeoverAskUntil = n.now().Add(max(10*time.Second, 4*n.peerDeadtime()))
		return
	}
	n.event(EventRequested, slog.LevelInfo, fmt.Sprintf("%s asks to take over [%s]: going standby [%s]", n.peer, h, k))
	n.send(n.askMe(k))
}

// inTransition says whether a resource transition is under way here or at
// the peer: a standby asked now would be ignored.
func (n *node) inTransition() bool {
	return n.going != sbNot || !n.otherStable || n.rs != rStable
}

// retryTakeoverAsk sends the standby a deferred hb_takeover asked for once
// no transition is under way; it gives up when the peer is gone or after
// takeoverAskUntil.
func (n *node) retryTakeoverAsk(now time.Time) {
	switch {
	case n.pDead || n.shuttingDown:
		n.takeoverAsk = ""
	case !n.inTransition():
		n.log.Info(fmt.Sprintf("Going standby [%s] (%s's takeover).", n.takeoverAsk, n.peer))
		n.send(n.askMe(n.takeoverAsk))
		n.takeoverAsk = ""
	case now.After(n.takeoverAskUntil):
		n.log.Warn(fmt.Sprintf("%s's takeover [%s] dropped: the resource transition under way did not complete", n.peer, n.takeoverAsk))
		n.takeoverAsk = ""
	}
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
	n.takeover(fmt.Sprintf("%s shut down", n.peer), true)
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
	// The peer took our groups while it could not hear us and announced
	// their addresses, so the LAN now sends to it: announce ours again.
	n.reassert(rscLocal, "partition with "+n.peer+" healed")
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

// reassert emits EventReassert for each group in bits that this node holds:
// another node may have announced its addresses, and the daemon announces
// them again.
func (n *node) reassert(bits int, why string) {
	for _, g := range n.groupsOf(bits) {
		if _, ok := n.held[g.Name]; ok {
			n.event(EventReassert, slog.LevelWarn, fmt.Sprintf("keeping resource group %s (%s): announcing it again", g.Name, why), "group", g.Name)
		}
	}
}

// takeoverFromNode takes every group: the peer's through mach_down, ours
// through req_our_resources.
func (n *node) takeoverFromNode(reason string) { n.takeover(reason, false) }

// takeover is takeoverFromNode; handover says the peer handed its groups
// over (a graceful shutdown) rather than died.
func (n *node) takeover(reason string, handover bool) {
	if n.shuttingDown {
		n.log.Info("Resource takeover cancelled - shutdown in progress.")
		return
	}
	n.log.Info(fmt.Sprintf("Resources being acquired from %s.", n.peer))
	n.iHold |= rscForeign
	n.otherHolds = rscNone
	n.otherStable = true
	n.takeoverInProgress = true
	job := n.acquireJob
	if handover {
		job = n.handoverJob
	}
	job("mach_down", rscForeign, reason, func() {
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
		if n.inTransition() {
			r.errc <- errors.New("cluster: standby refused: a resource transition is under way, retry")
			return
		}
		k := r.arg
		if k == Failback {
			k = Foreign
		}
		n.log.Info(fmt.Sprintf("Going standby [%s].", k))
		n.send(n.askMe(string(k)))
		r.errc <- nil
	case "takeover":
		if n.pDead || !n.pHeard {
			r.errc <- fmt.Errorf("cluster: takeover refused: %s is not up", n.peer)
			return
		}
		if n.inTransition() {
			// The peer would ignore the standby it answers with.
			r.errc <- errors.New("cluster: takeover refused: a resource transition is under way, retry")
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
	case "detach":
		switch {
		case n.stopReq != nil || n.shuttingDown:
			r.errc <- errors.New("cluster: detach refused: shutting down")
			return
		case n.detachReq != nil:
			r.errc <- errors.New("cluster: already detaching")
			return
		case !n.commUp:
			r.errc <- errors.New("cluster: detach refused: still starting up (initdead), retry")
			return
		}
		n.detachReq = &r
		n.maybeDetach()
	default:
		r.errc <- fmt.Errorf("cluster: unknown request %q", r.kind)
	}
}

// maybeDetach ends the loop for a requested Detach once no transition is
// under way, with nothing sent: the successor continues this node.
func (n *node) maybeDetach() {
	// Decisions due later (an ipfail give-up, a recovery waiting for the
	// ping state, STONITH, a legacy ip-request) are not handed over: wait
	// for them too.
	if n.detachReq == nil || n.stopped || !n.idle() || n.rs != rStable ||
		!n.giveupAt.IsZero() || !n.recoverAt.IsZero() || !n.stonithAt.IsZero() || len(n.ipReq) > 0 {
		return
	}
	*n.detachReq.resume = n.resumeState()
	n.log.Info("heartbeat engine detached: nothing released, nothing said to the peer", "generation", n.gen, "next_seq", n.detachReq.resume.NextSeq, "held", n.detachReq.resume.Held)
	n.stopped = true
	n.detachReq.errc <- nil
	n.detachReq = nil
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
