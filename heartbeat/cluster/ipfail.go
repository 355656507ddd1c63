package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/directord/directord/heartbeat/hacf"

	"github.com/directord/directord/heartbeat/wire"
)

// ipfail's messages (contrib/ipfail/ipfail.c), sent node to node.
const (
	typeNumPing     = "num_ping_nodes"
	typeYouAreDead  = "you_are_dead"
	typeAbortGiveup = "abort_giveup"
	// typeAPIClientStatus announces a Heartbeat API client joining or
	// leaving; ipfail's join asks us for our count.
	typeAPIClientStatus = "hbapi-clstat"
	fieldNumPing        = "num_ping"
)

func (n *node) pingConfigured() bool {
	return len(n.cfg.PingNodes)+len(n.cfg.PingGroups) > 0
}

// pingHosts lists every host to ping, ping nodes first, each once.
func (n *node) pingHosts() []string {
	seen := map[string]bool{}
	var out []string
	add := func(h string) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, h := range n.cfg.PingNodes {
		add(h)
	}
	for _, g := range n.cfg.PingGroups {
		for _, h := range g.Hosts {
			add(h)
		}
	}
	return out
}

// pingTick recomputes which ping nodes are up (a reply within deadping)
// and the ipfail count: ping nodes up plus ping groups with a host up.
func (n *node) pingTick(now time.Time) {
	if !n.pingConfigured() {
		return
	}
	for _, h := range n.pingHosts() {
		last, ok := n.pingLast[h]
		up := ok && now.Sub(last) <= n.t.DeadPing
		if up != n.pingUp[h] {
			n.pingUp[h] = up
			if up {
				n.reconnected = now
			}
			st := "dead"
			if up {
				st = "up"
			}
			n.event(EventPing, slog.LevelInfo, fmt.Sprintf("Ping node %s now has status %s", h, st), "ping", h)
		}
	}
	count := 0
	for _, h := range n.cfg.PingNodes {
		if n.pingUp[h] {
			count++
		}
	}
	for _, g := range n.cfg.PingGroups {
		for _, h := range g.Hosts {
			if n.pingUp[h] {
				count++
				break
			}
		}
	}
	if count != n.pingCount {
		up := count > n.pingCount
		n.pingCount = count
		n.askPingNodes()
		// We stood down when the peer vanished because we saw fewer ping
		// nodes; if we now see as many as it did, it may really be dead.
		if up && n.pDead && n.stoodDown && !n.shuttingDown && n.pingCount >= n.peerPingCount {
			n.stoodDown = false
			n.event(EventPing, slog.LevelWarn, fmt.Sprintf("ping nodes visible again (%d) and %s still dead: taking over", n.pingCount, n.peer))
			n.takeoverFromNode("ping nodes visible again")
		}
	}
}

// askPingNodes tells the peer how many ping nodes we see; it answers by
// comparing with its own count (ask_ping_nodes).
func (n *node) askPingNodes() {
	if !n.pingConfigured() || n.pDead || !n.pHeard {
		return
	}
	n.log.Info("Asking other side for ping node count.", "ours", n.pingCount)
	n.send(wire.New(typeNumPing).Add(wire.FieldDest, n.peer).Add(fieldNumPing, strconv.Itoa(n.pingCount)))
}

func (n *node) ipfailNumPing(m *wire.Message) {
	s, _ := m.Get(fieldNumPing)
	theirs, ok := parseUint(s)
	if !ok {
		n.log.Warn("num_ping_nodes with a bad count ignored", "num_ping", s)
		return
	}
	n.peerPingCount, n.peerPingKnown = theirs, true
	if !n.pingConfigured() {
		return
	}
	switch {
	case n.pingCount > theirs:
		n.log.Info("Telling other node that we have more visible ping nodes.", "ours", n.pingCount, "theirs", theirs)
		n.send(wire.New(typeYouAreDead).Add(wire.FieldDest, n.peer))
	case n.pingCount < theirs:
		n.log.Info("Giving up because we have less visible ping nodes.", "ours", n.pingCount, "theirs", theirs)
		n.delayGiveup(rscAll)
	default:
		n.log.Info("Ping node count is balanced.", "count", theirs)
		n.send(wire.New(typeAbortGiveup).Add(wire.FieldDest, n.peer))
		if !n.giveupAt.IsZero() {
			n.abortGiveup()
		} else if n.rs == rStable && n.going == sbNot && n.iHold&rscForeign != 0 && n.otherStable {
			// Balanced again: hand foreign groups back as auto_failback wants.
			if n.cfg.AutoFailback == hacf.FailbackOn {
				n.log.Info("Giving up foreign resources (auto_failback).")
				n.delayGiveup(rscForeign)
			}
		}
	}
}

// delayGiveup goes standby after two keepalives, as ipfail does, so that
// a balanced count arriving meanwhile can cancel it.
func (n *node) delayGiveup(bits int) {
	n.giveupAt = n.now().Add(2 * n.t.Keepalive)
	n.giveupBits = bits
}

func (n *node) abortGiveup() {
	if !n.giveupAt.IsZero() {
		n.log.Info("Aborted delayed giveup")
	}
	n.giveupAt = time.Time{}
}

func (n *node) giveup() {
	bits := n.giveupBits
	if n.rs != rStable || n.going != sbNot || !n.otherStable || n.pDead {
		// Not now; ipfail retries when the peer is next stable.
		n.giveupAt = n.now().Add(n.t.Keepalive)
		if n.pDead {
			n.giveupAt = time.Time{}
		}
		return
	}
	n.giveupAt = time.Time{}
	if n.iHold&bits == 0 {
		return
	}
	n.event(EventPing, slog.LevelWarn, fmt.Sprintf("ipfail: %s sees more ping nodes (%d against our %d): going standby [%s]", n.peer, n.peerPingCount, n.pingCount, rscName(bits)))
	n.send(n.askMe(rscName(bits)))
}

// pinger pings host every keepalive until ctx ends, reporting replies.
func (e *Engine) pinger(ctx context.Context, host string, seen chan<- pingSeen) {
	report := func() {
		select {
		case seen <- pingSeen{host: host, at: e.clk.Now()}:
		default: // the loop is busy; the next reply will do
		}
	}
	interval := e.cfg.Timing.Keepalive
	if e.pingHost != nil {
		e.pingHost(ctx, host, interval, report)
		return
	}
	backoff, lastErr := time.Second, ""
	for ctx.Err() == nil {
		p, err := probing.NewPinger(host)
		if err == nil {
			p.SetPrivileged(true) // raw ICMP, as Heartbeat's ping plugin; needs CAP_NET_RAW
			p.Interval = interval
			p.RecordRtts = false
			p.OnRecv = func(*probing.Packet) { report() }
			err = p.RunWithContext(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		// Retry (a name that does not resolve yet, a missing route), but
		// log a failure once, not every second.
		if err != nil && err.Error() != lastErr {
			e.log.Warn("ping node: cannot ping", "host", host, "err", err)
			lastErr = err.Error()
		}
		if err == nil {
			backoff, lastErr = time.Second, ""
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// runStonith runs the STONITH command and reports why it failed.
func runStonith(ctx context.Context, argv []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		if msg != "" {
			return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}
