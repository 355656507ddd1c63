package cluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/proto"
	"github.com/directord/directord/heartbeat/wire"
)

// auto_failback legacy is Heartbeat's nice_failback off: no starting or
// resource messages; at start a node asks for each of its own groups with
// ip-request, and whoever holds one gives it up and answers
// ip-request-resp (rc.d/ip-request, req_resource). Groups are named on
// the wire by their haresources key, so Group.Name must be that key (the
// group's first resource as written) to pair with Heartbeat in this mode.

const (
	typeIPRequest = "ip-request"
	fieldIPAddr   = "ipaddr"
)

func (n *node) group(name string) (Group, bool) {
	for _, g := range n.cfg.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return Group{}, false
}

// oneGroupJob acquires or releases the named group.
func (n *node) oneGroupJob(name string, acquire bool, reason string, then func()) job {
	return n.groupsJob("group "+name, acquire, false, func() []Group {
		if g, ok := n.group(name); ok {
			return []Group{g}
		}
		return nil
	}, reason, then)
}

// legacyStart is the original start-up: claim our own groups, asking the
// peer to release any it holds.
func (n *node) legacyStart() {
	n.rs = rStable
	n.otherStable = true
	n.iHold |= rscLocal
	alive := n.pHeard && !n.pDead
	for _, g := range n.groupsOf(rscLocal) {
		if _, ok := n.held[g.Name]; ok {
			continue
		}
		if alive {
			// Sent from pingIPRequests once the peer is active: Heartbeat
			// drops requests that arrive before its comm_now_up.
			n.ipReq[g.Name] = time.Time{}
			continue
		}
		n.queue = append(n.queue, n.oneGroupJob(g.Name, true, "start-up (alone)", nil))
	}
}

// retryIPRequests (re)sends pending ip-requests while the peer is active
// and has not answered.
func (n *node) retryIPRequests(now time.Time) {
	if n.pDead {
		clear(n.ipReq)
		return
	}
	if n.pStatus != StatusActive {
		return
	}
	for name, sent := range n.ipReq {
		if sent.IsZero() || now.Sub(sent) > max(4*n.t.Keepalive, time.Second) {
			n.log.Info(fmt.Sprintf("Asking %s for resource group %s (ip-request)", n.peer, name))
			n.send(wire.New(typeIPRequest).Add(fieldIPAddr, name))
			n.ipReq[name] = now
		}
	}
}

// ipRequest gives up a group the peer asks for, if we hold it, and
// answers in any case (rc.d/ip-request).
func (n *node) ipRequest(m *wire.Message) {
	name, _ := m.Get(fieldIPAddr)
	g, ok := n.group(name)
	if !ok {
		n.log.Warn("ip-request for an unknown resource group", "group", name)
		return
	}
	reply := func(weown string) {
		n.send(wire.New(proto.TypeIPRequest).Add(wire.FieldDest, n.peer).Add(fieldIPAddr, name).Add("weown", weown).Add("ok", "OK"))
	}
	if _, held := n.held[name]; !held {
		reply("no")
		return
	}
	n.event(EventRequested, slog.LevelInfo, fmt.Sprintf("%s asks for resource group %s: giving it up", n.peer, name))
	if g.Owner == n.self {
		n.iHold &^= rscLocal
	} else {
		n.iHold &^= rscForeign
	}
	n.queue = append(n.queue, n.oneGroupJob(name, false, "ip-request from "+n.peer, func() { reply("yes") }))
}

// ipRequestResp takes a group we asked for once the peer let it go
// (rc.d/ip-request-resp).
func (n *node) ipRequestResp(m *wire.Message) {
	if d, _ := m.Get(wire.FieldDest); d != n.self {
		return
	}
	name, _ := m.Get(fieldIPAddr)
	if ok, _ := m.Get("ok"); ok != "OK" {
		n.log.Warn("ip-request refused", "group", name, "ok", ok)
		return
	}
	if _, known := n.group(name); !known {
		return
	}
	if _, asked := n.ipReq[name]; !asked {
		return
	}
	delete(n.ipReq, name)
	n.log.Info(fmt.Sprintf("received ip-request-resp %s OK", name))
	n.queue = append(n.queue, n.oneGroupJob(name, true, "ip-request-resp from "+n.peer, nil))
}

// peerSelfGrant handles an ip-request-resp the peer addressed to itself:
// a legacy Heartbeat that thinks it is alone at start-up (its req_resource
// counted the nodes before hearing us) grants itself its groups without
// asking. If we hold such a group, let it go rather than both hold it.
func (n *node) peerSelfGrant(m *wire.Message) {
	if n.cfg.AutoFailback != hacf.FailbackLegacy {
		return
	}
	if d, _ := m.Get(wire.FieldDest); d != n.peer {
		return
	}
	name, _ := m.Get(fieldIPAddr)
	g, known := n.group(name)
	if _, held := n.held[name]; !known || !held {
		return
	}
	n.event(EventRequested, slog.LevelWarn, fmt.Sprintf("%s took resource group %s without asking: giving it up", n.peer, name), "group", name)
	if g.Owner == n.self {
		n.iHold &^= rscLocal
	} else {
		n.iHold &^= rscForeign
	}
	n.queue = append(n.queue, n.oneGroupJob(name, false, n.peer+" took it", nil))
}
