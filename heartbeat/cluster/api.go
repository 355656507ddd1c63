// Package cluster is directord's heartbeat engine: membership and resource
// ownership for a two-node cluster, speaking Linux-HA Heartbeat 3.0.6's
// protocol so that a directord node pairs with a real Heartbeat node.
//
// The engine sends keepalives on every medium, tracks the peer per link,
// keeps a send history for retransmission, declares the peer dead when
// nothing arrived within the deadtime the peer advertised, and arbitrates
// haresources groups the way Heartbeat's hb_resource.c does with
// auto_failback on, off or legacy (starting / resource / ask_resources /
// hb_takeover messages). The daemon supplies the resources: the engine calls
// Resources.Acquire and Resources.Release and tells the peer only after they
// return.
//
// Usage:
//
//	e, err := cluster.New(cfg, res)
//	go e.Run(ctx)          // until ctx ends (no goodbye) or Stop
//	e.Standby(ctx, cluster.All) // hb_standby
//	e.Stop(ctx)            // graceful: release, tell the peer, return
package cluster

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/wire"
)

// Resources is implemented by the daemon: it starts and stops one resource
// group (VIP, lnoded, scripts). Both calls are synchronous: the engine
// announces a change to the peer only after the call returns. They are
// called from one goroutine at a time, never concurrently. An Acquire that
// fails is logged and the group counts as not held; a Release that fails is
// logged and the group counts as released (Heartbeat does the same: its
// ResourceManager carries on).
type Resources interface {
	Acquire(ctx context.Context, group string) error
	Release(ctx context.Context, group string) error
}

// Group is one haresources line: its name and the node that normally
// holds it. Only with auto_failback legacy do names go on the wire
// (ip-request); to pair with Heartbeat then, use its key for the group:
// the first resource as written in haresources (haresources.Group.Key).
type Group struct {
	Name  string
	Owner string // node name; compared lowercased as on the wire
}

// Timing holds Heartbeat's timers (ha.cf keepalive, warntime, deadtime,
// initdead, max_rexmit_delay, deadping). Zero values are filled in as
// ha.cf does (warntime = deadtime/2, initdead from deadtime, …) and a
// zero Timing is DefaultTiming().
type Timing struct {
	Keepalive      time.Duration
	WarnTime       time.Duration // "Late heartbeat" after this long
	DeadTime       time.Duration // advertised to the peer as dt
	InitDead       time.Duration // how long to wait for the peer at start-up
	MaxRexmitDelay time.Duration // between NS_rexmit requests for one gap
	DeadPing       time.Duration // a ping node is dead after this long
}

// DefaultTiming is directord's default: failover in under a second on a
// quiet LAN. Heartbeat's own defaults (keepalive 1 s, deadtime 30 s) are
// what hacf gives when ha.cf says nothing; see docs/heartbeat.md for the
// trade-off.
func DefaultTiming() Timing {
	return Timing{
		Keepalive:      100 * time.Millisecond,
		WarnTime:       300 * time.Millisecond,
		DeadTime:       500 * time.Millisecond,
		InitDead:       2 * time.Second,
		MaxRexmitDelay: 50 * time.Millisecond,
		DeadPing:       500 * time.Millisecond,
	}
}

// Clock is the engine's time source; tests substitute a fake one.
type Clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) <-chan time.Time
}

// Config describes one node of a two-node cluster.
type Config struct {
	Node  string // this node's name (uname -n); lowercased on the wire
	Peers []string
	// Media are the heartbeat paths (ucast, bcast, mcast); the peer is
	// alive while any of them carries its packets.
	Media   []hacf.Medium
	Keyring *wire.Keyring
	Timing  Timing
	// Groups are the haresources groups, in file order.
	Groups       []Group
	AutoFailback hacf.AutoFailback
	// PingNodes and PingGroups are ha.cf's ping and ping_group: the node
	// that reaches fewer of them gives its resources to the other (ipfail).
	PingNodes  []string
	PingGroups []hacf.PingGroup
	// StonithCmd, when set, is run (argv, with the dead node's name
	// appended) before taking over from a node declared dead; if it fails
	// the resources are not taken.
	StonithCmd []string
	// StateDir holds hb_uuid and hb_generation (state.DefaultDir).
	StateDir string
	// HopFudge is ha.cf's hopfudge (default 1); ttl = hopfudge + nodes.
	HopFudge int
	Logger   *slog.Logger // nil: slog.Default()
	Clock    Clock        // nil: the system clock
	// OnEvent, when set, is called from the engine's goroutine for every
	// Event; it must not block.
	OnEvent func(Event)
	// Ready, when set, says whether this node is ready to serve group: the
	// daemon answers true once every real server of the group's lnoded
	// modules has been checked by a check that started after since (the
	// last time a heartbeat link or ping node came back here), so that a
	// table whose checks failed during an outage is not served. A live
	// peer's handover (auto_failback, ipfail, standby) waits for it, at
	// most WarmWait; a dead peer's groups are taken at once. It is called
	// from the engine's goroutine and must not block.
	Ready func(group string, since time.Time) bool
	// LocalAddrs, when set, returns the addresses this node can be reached
	// at on its LANs (not the VIPs), sent to the peer with a standby
	// request: the peer taking over passes segments of our connections
	// back to us there until their sync arrives (vip/handoff). It is called
	// from the engine's goroutine and must not block for long.
	LocalAddrs func() []netip.Addr
	// Resume, when set, continues a node that Detach ended: same
	// generation, the next sequence number, its groups held (Acquire is
	// called for each and must adopt what runs), status active at once and
	// no start-up exchange. The peer sees only a gap in heartbeats, which
	// must be shorter than the deadtime. A Resume for another node or for a
	// generation that is no longer the one in StateDir is ignored (logged)
	// and the node starts afresh.
	Resume *Resume
}

// Resume is what a detached engine hands to its successor (Engine.Detach,
// Config.Resume) so that a daemon restart is invisible to the peer. It
// marshals to JSON for a daemon that writes it to disk across an exec or a
// new process.
type Resume struct {
	Node       string    `json:"node"`
	UUID       wire.UUID `json:"uuid"`
	Generation uint64    `json:"generation"`
	// NextSeq is the sequence number the successor sends first; the peer
	// expects it next, so it sees no gap and no restart.
	NextSeq uint64 `json:"next_seq"`
	// Held are the groups this node held, in file order.
	Held []string `json:"held"`
	// NeedsFailback: foreign groups held are to go back to their owner
	// once it is stable (auto_failback on).
	NeedsFailback bool `json:"needs_failback,omitempty"`
	// The peer as this node knew it.
	PeerStatus     string        `json:"peer_status,omitempty"`
	PeerUUID       wire.UUID     `json:"peer_uuid"`
	PeerGeneration uint64        `json:"peer_generation,omitempty"`
	PeerLastSeq    uint64        `json:"peer_last_seq,omitempty"`
	PeerDeadTime   time.Duration `json:"peer_deadtime,omitempty"`
	PeerHolding    string        `json:"peer_holding,omitempty"`
	// ipfail: the ping nodes and groups up, and both counts.
	PingUp        []string `json:"ping_up,omitempty"`
	PingCount     int      `json:"ping_count,omitempty"`
	PeerPingCount int      `json:"peer_ping_count,omitempty"`
	PeerPingKnown bool     `json:"peer_ping_known,omitempty"`
	// At is when the engine detached.
	At time.Time `json:"at"`
}

// Kind is the argument of hb_standby and hb_takeover: which groups a
// request concerns.
type Kind string

// Kinds of standby and takeover requests.
const (
	All      Kind = "all"      // every group
	Local    Kind = "local"    // the groups this node owns in haresources
	Foreign  Kind = "foreign"  // the groups the other node owns
	Failback Kind = "failback" // foreign groups, the auto_failback handover
)

// Node statuses as Heartbeat reports them (st, cl_status nodestatus).
const (
	StatusInit   = "init"
	StatusUp     = "up"
	StatusActive = "active"
	StatusDead   = "dead"
)

// Snapshot is the engine's state at one instant, for status output.
type Snapshot struct {
	Node       string
	Status     string // init, up, active
	UUID       wire.UUID
	Generation uint64
	// Holding is what this node holds in Heartbeat's words: none, local,
	// foreign or all.
	Holding string
	Groups  []GroupState
	Peer    PeerState
	Ping    []PingState
	// PingCount and PeerPingCount are the ipfail counts: ping nodes and
	// groups reachable from here and (as last reported) from the peer.
	PingCount, PeerPingCount int
	Last                     Transition
	Stable                   bool // no resource transition under way
}

// GroupState is one group and whether this node holds it.
type GroupState struct {
	Group
	Held  bool
	Since time.Time
}

// PeerState is what this node knows of the peer.
type PeerState struct {
	Name       string
	Status     string // init, up, active, dead, or "" before first contact
	UUID       wire.UUID
	Generation uint64
	DeadTime   time.Duration // as the peer advertised it (dt)
	LastHeard  time.Time
	Holding    string // the peer's last rsc_hold
	Late       uint64 // "Late heartbeat" warnings so far
	Links      []LinkState
	// Directord says the peer's status messages say it is a directord
	// node (not Heartbeat): it speaks directord's extensions.
	Directord bool
}

// LinkState is one medium as seen for the peer.
type LinkState struct {
	Medium    string // as ha.cf writes it, e.g. "ucast hb0 192.0.2.2"
	Interface string
	Up        bool
	LastHeard time.Time
}

// PingState is one ping node or ping group.
type PingState struct {
	Name      string
	Up        bool
	LastHeard time.Time
}

// Transition is the last change of resource ownership.
type Transition struct {
	At     time.Time
	What   string // e.g. "acquire 192.0.2.10", "release all"
	Reason string // e.g. "node nodeb is dead", "standby requested by nodeb"
}

// EventKind classifies an Event.
type EventKind string

// Event kinds.
const (
	EventLinkUp    EventKind = "link-up"
	EventLinkDead  EventKind = "link-dead"
	EventNodeUp    EventKind = "node-up"
	EventNodeDead  EventKind = "node-dead"
	EventRestart   EventKind = "node-restart"
	EventLate      EventKind = "late-heartbeat"
	EventAcquired  EventKind = "acquired"
	EventReleased  EventKind = "released"
	EventAuthFail  EventKind = "auth-failed"
	EventSplit     EventKind = "split-brain"
	EventPing      EventKind = "ping"
	EventStonith   EventKind = "stonith"
	EventShutdown  EventKind = "peer-shutdown"
	EventRexmit    EventKind = "rexmit"
	EventRequested EventKind = "request" // standby/takeover from either side
	// EventReassert: this node keeps Group after an event where another
	// node may have announced the group's addresses (a healed partition,
	// the end of a make-before-break handover);
	// the daemon announces them again (gratuitous ARP, unsolicited NA) so
	// that the LAN's neighbour caches point here.
	EventReassert EventKind = "reassert"
)

// Event is something the engine did or saw; Text is the log line, in
// Heartbeat's words where Heartbeat has them.
type Event struct {
	At    time.Time
	Kind  EventKind
	Node  string // the node concerned
	Link  string // interface, for link events
	Group string // for acquire/release
	Text  string
}

type handoverKey struct{}

// Handover describes a Resources.Acquire of groups a live peer hands over
// (its standby, a make-before-break handover, its graceful shutdown), as
// opposed to a start-up or the takeover from a dead node; or a
// Resources.Release of groups the peer has already taken (our standby,
// answered after its make before break).
type Handover struct {
	// Directord: the peer is a directord node (Snapshot.Peer.Directord),
	// which also hands its connections over as it lets go.
	Directord bool
	// PeerAddrs are the addresses the peer going standby said it can be
	// reached at (Config.LocalAddrs); nil when it did not say.
	PeerAddrs []netip.Addr
}

// HandoverOf returns the Handover of an Acquire's or Release's ctx; ok is
// false for one that is not a handover.
func HandoverOf(ctx context.Context) (h Handover, ok bool) {
	h, ok = ctx.Value(handoverKey{}).(Handover)
	return h, ok
}
