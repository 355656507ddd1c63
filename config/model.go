package config

import (
	"net/netip"
	"strconv"
	"time"

	lnoded "github.com/directord/directord/lnoded/config"
)

// Pos is where a setting was written: the file and its 1-based line (0 when
// the setting is about the whole file, or was not written and has its
// default). Every element of the model that can be wrong carries one, so that
// validation names file:line.
type Pos struct {
	File string
	Line int
}

// Config is one director's whole configuration: what Heartbeat's ha.cf,
// haresources and authkeys and ldirectord's lnoded.cf files say, plus
// directord's own settings. Both front ends (LoadHADir and LoadYAML) produce
// it, with every default resolved; nothing in the daemon reads a file format.
type Config struct {
	Cluster   Cluster
	Auth      Auth
	Groups    []Group
	Directord Directord

	// Sources are the files read, in the order they were read.
	Sources []string
	// Warnings are legal settings that probably do not do what was meant,
	// and settings accepted for compatibility that directord ignores.
	Warnings []Diagnostic
}

// Cluster is the membership part of the configuration (ha.cf).
type Cluster struct {
	// Nodes are the cluster members as Heartbeat names them on the wire:
	// `uname -n`, lowercased.
	Nodes []string
	// NodesPos is where the node list was written.
	NodesPos Pos
	// ThisNode is the name of the node this configuration runs on
	// (lowercased); it must be one of Nodes. It is empty only when loaded
	// with Options.AnyNode.
	ThisNode string
	// ThisNodePos is where this_node was written; zero when it came from
	// the host name (or Options.NodeName).
	ThisNodePos Pos

	// UDPPort is the default port of bcast and ucast media (udpport,
	// default 694). Each Medium carries the port it actually uses.
	UDPPort int
	// Media are the heartbeat paths, in file order.
	Media []Medium

	// Keepalive is the interval between heartbeats (default 1s).
	Keepalive time.Duration
	// WarnTime is how long a node may be silent before a late-heartbeat
	// warning (default DeadTime/2).
	WarnTime time.Duration
	// DeadTime is how long a node may be silent before it is declared dead
	// (default 30s).
	DeadTime time.Duration
	// InitDead is DeadTime right after start-up, while networks come up
	// (default: DeadTime when above 10s, 12s below 6s, else 2×DeadTime).
	InitDead time.Duration
	// DeadPing is how long a ping node may be silent before it is declared
	// dead (default DeadTime).
	DeadPing time.Duration
	// TimingPos is where each timing was written, by directive name
	// ("keepalive", "warntime", "deadtime", "initdead", "deadping").
	TimingPos map[string]Pos

	// AutoFailback says whether resources go back to their owner when it
	// comes back (default legacy, as Heartbeat's).
	AutoFailback    AutoFailback
	AutoFailbackPos Pos

	// PingNodes are hosts whose reachability ipfail weighs.
	PingNodes []PingNode
	// PingGroups count as reachable while any of their hosts is.
	PingGroups []PingGroup
	// IPFail makes a node that sees fewer ping nodes than its peer give its
	// resources up (ha.cf: respawn hacluster .../ipfail).
	IPFail bool

	// Watchdog is the watchdog device ("/dev/watchdog"), "" for none.
	Watchdog string
	// Stonith is the command that fences a dead peer before its resources
	// are taken over; nil for none.
	Stonith *Stonith

	// MsgFmt is the wire format of outgoing messages: "classic" (default)
	// or "netstring".
	MsgFmt string

	// Logging is where messages go.
	Logging Logging
}

// MediaType is the kind of a heartbeat medium.
type MediaType string

// Heartbeat media directord speaks (Heartbeat's serial medium is not one).
const (
	Bcast MediaType = "bcast"
	Mcast MediaType = "mcast"
	Ucast MediaType = "ucast"
)

// Medium is one heartbeat path.
type Medium struct {
	Pos
	Type MediaType
	// Interface is the network interface heartbeats are sent and received on.
	Interface string
	// Peer is the ucast peer, an address or a host name.
	Peer string
	// Group is the mcast group (IPv4 224.0.0.0/4).
	Group netip.Addr
	// Port is the UDP port this medium uses.
	Port int
	// TTL and Loop are the mcast TTL and IP_MULTICAST_LOOP.
	TTL  int
	Loop bool
}

// AutoFailback is the auto_failback setting.
type AutoFailback uint8

// auto_failback values.
const (
	FailbackLegacy AutoFailback = iota // Heartbeat's default: as nice_failback off
	FailbackOn                         // the owner takes its groups back when it returns
	FailbackOff                        // groups stay where they are
)

// String returns the ha.cf spelling: on, off or legacy.
func (a AutoFailback) String() string {
	switch a {
	case FailbackOn:
		return "on"
	case FailbackOff:
		return "off"
	}
	return "legacy"
}

// PingNode is one ping node.
type PingNode struct {
	Pos
	Host string
}

// PingGroup is a named set of ping hosts that counts as one ping node,
// reachable while any of its hosts answers.
type PingGroup struct {
	Pos
	Name  string
	Hosts []string
}

// Stonith is the fencing hook: Command is run with the name of the node to
// fence appended as its last argument, and must exit 0 only once that node is
// off.
type Stonith struct {
	Pos
	Command []string
}

// Logging says where log messages go.
type Logging struct {
	// File is a log file, "" for none.
	File string
	// DebugFile receives debug messages too, "" for none.
	DebugFile string
	// Facility is the syslog facility ("daemon", "local0", …), "" to log to
	// the journal (standard error) only.
	Facility string
	// Debug is the debug level, 0 for none.
	Debug int
}

// Auth is the heartbeat message authentication (authkeys).
type Auth struct {
	Pos
	// Active is the number of the key that signs outgoing messages.
	Active int
	// Keys are the keys incoming messages may be signed with, by number
	// order.
	Keys []AuthKey
}

// AuthMethod is an authkeys method.
type AuthMethod string

// Authentication methods.
const (
	AuthCRC  AuthMethod = "crc"  // detects corruption only; no secret
	AuthMD5  AuthMethod = "md5"  // HMAC-MD5
	AuthSHA1 AuthMethod = "sha1" // HMAC-SHA1
)

// AuthKey is one numbered key.
type AuthKey struct {
	Pos
	Num    int
	Method AuthMethod
	// Secret is the shared secret; empty for crc.
	Secret string
}

// ActiveKey returns the key that signs, and false when Active names none.
func (a Auth) ActiveKey() (AuthKey, bool) {
	for _, k := range a.Keys {
		if k.Num == a.Active {
			return k, true
		}
	}
	return AuthKey{}, false
}

// Group is a resource group: resources one node normally holds, started in
// order and stopped in reverse order.
type Group struct {
	Pos
	// Owner is the node that holds the group when it is up (and, with
	// auto_failback on, takes it back).
	Owner string
	// Resources are in start order.
	Resources []Resource
}

// Name is what names the group in messages and on the wire: its first
// resource, as Heartbeat names it.
func (g Group) Name() string {
	if len(g.Resources) == 0 {
		return ""
	}
	return g.Resources[0].String()
}

// VIPs returns the group's virtual addresses in start order.
func (g Group) VIPs() []VIP {
	var vs []VIP
	for _, r := range g.Resources {
		if r.VIP != nil {
			vs = append(vs, *r.VIP)
		}
	}
	return vs
}

// ResourceKind is the kind of a resource.
type ResourceKind uint8

// Resource kinds.
const (
	KindVIP    ResourceKind = iota + 1 // a virtual IP address (IPaddr, IPaddr2)
	KindLnoded                         // real-server checks and IPVS for an lnoded.cf
	KindScript                         // a resource script run with start/stop
)

// String names the kind as the YAML schema does.
func (k ResourceKind) String() string {
	switch k {
	case KindVIP:
		return "vip"
	case KindLnoded:
		return "lnoded"
	case KindScript:
		return "script"
	}
	return "unknown"
}

// Resource is one resource of a group: exactly one of VIP, Lnoded and Script
// is set, as Kind says.
type Resource struct {
	Pos
	Kind   ResourceKind
	VIP    *VIP
	Lnoded *Lnoded
	Script *Script
}

// String renders the resource as haresources writes it.
func (r Resource) String() string {
	switch r.Kind {
	case KindVIP:
		return r.VIP.String()
	case KindLnoded:
		return r.Lnoded.String()
	case KindScript:
		return r.Script.String()
	}
	return "?"
}

// Agent is the resource agent a VIP is written with in haresources.
type Agent string

// VIP agents. They differ in defaults: IPaddr labels the address
// (eth0:0, …) as ifconfig aliases did and sends 10 ARPs; IPaddr2 adds an
// unlabelled address and accepts IPv6.
const (
	IPaddr  Agent = "IPaddr"
	IPaddr2 Agent = "IPaddr2"
)

// VIP is a virtual IP address resource.
type VIP struct {
	Agent Agent
	Addr  netip.Addr
	// Prefix is the prefix length, -1 when not given (taken from the route
	// that chooses the interface).
	Prefix int
	// Interface is the base interface ("eth0"), "" to choose by route.
	Interface string
	// Label is the IPv4 address label after the colon ("0" for eth0:0),
	// "" for none.
	Label string
	// Broadcast is the IPv4 broadcast address; invalid for the default
	// (the highest address of the subnet).
	Broadcast netip.Addr
}

// String renders the VIP as a haresources word:
// [IPaddr2::]ip[/prefix[/interface[:label]]][/broadcast]. An IPaddr VIP is
// written without its agent, as haresources allows for IPv4.
func (v VIP) String() string {
	s := v.Addr.String()
	if v.Prefix >= 0 {
		s += "/" + strconv.Itoa(v.Prefix)
	}
	if v.Interface != "" {
		s += "/" + v.Interface
		if v.Label != "" {
			s += ":" + v.Label
		}
	}
	if v.Broadcast.IsValid() {
		s += "/" + v.Broadcast.String()
	}
	if v.Agent == IPaddr2 {
		return "IPaddr2::" + s
	}
	return s
}

// Lnoded is an lnoded (ldirectord) resource: the real-server checks and IPVS
// table of one lnoded.cf. Its virtual services are programmed on every node
// (the standby keeps its table warm); holding the group only means holding
// its VIPs.
type Lnoded struct {
	// Path is the file: absolute, or relative to the working directory
	// when the ha.d directory or YAML file was named that way.
	Path string
	// Config is the parsed file.
	Config *lnoded.Config
}

// String renders the resource as haresources writes it.
func (l Lnoded) String() string { return "lnoded::" + l.Path }

// Script is a resource script, run as "SCRIPT ARGS… start|stop|status"
// from /etc/ha.d/resource.d or /etc/init.d.
type Script struct {
	Name string
	Args []string
}

// String renders the resource as haresources writes it: name::arg::arg.
func (s Script) String() string {
	out := s.Name
	for _, a := range s.Args {
		out += "::" + a
	}
	return out
}

// Directord holds the settings that only directord has.
type Directord struct {
	// ControlSocket is the root-only Unix socket `directord status` and the
	// other subcommands talk to (default /run/directord/directord.sock).
	ControlSocket string
	// StateDir keeps the generation counter and node UUID across restarts
	// (default /var/lib/directord).
	StateDir string
	// MetricsListen is the host:port Prometheus metrics are served on, ""
	// for none (the default).
	MetricsListen string
	// Sync is the IPVS connection synchronisation between the directors.
	Sync Sync
	// GARP is how a taken-over IPv4 VIP is announced (IPv6: unsolicited
	// neighbour advertisements, same counts).
	GARP GARP
	// Pos is where the directord section was written.
	Pos Pos
}

// Sync is the IPVS connection sync daemon: the node holding a group runs it
// as master, the other as backup, so connections survive a takeover.
type Sync struct {
	Enabled bool
	// Interface is where sync messages go (multicast 224.0.0.81:8848).
	Interface string
	// SyncID tells several director pairs on one link apart (0..255).
	SyncID int
	Pos    Pos
}

// GARP is the gratuitous ARP (IPv6: unsolicited NA) announcement of a VIP.
type GARP struct {
	// Count is how many announcements follow a takeover (default 5).
	Count int
	// Interval is the time between them (default 200ms).
	Interval time.Duration
	// Refresh repeats the announcements this often while the VIP is held,
	// 0 for never (the default).
	Refresh time.Duration
	Pos     Pos
}

// Defaults of directord's own settings.
const (
	DefaultControlSocket = "/run/directord/directord.sock"
	DefaultStateDir      = "/var/lib/directord"
	DefaultGARPCount     = 5
	DefaultGARPInterval  = 200 * time.Millisecond
	DefaultUDPPort       = 694
)

// Virtuals returns the virtual services of every lnoded resource, in group
// and file order.
func (c *Config) Virtuals() []lnoded.Virtual {
	var vs []lnoded.Virtual
	for _, g := range c.Groups {
		for _, r := range g.Resources {
			if r.Lnoded != nil && r.Lnoded.Config != nil {
				vs = append(vs, r.Lnoded.Config.Virtuals...)
			}
		}
	}
	return vs
}

// IsNode reports whether name (compared lowercased, as Heartbeat does) is a
// cluster node.
func (c *Cluster) IsNode(name string) bool {
	name = lower(name)
	for _, n := range c.Nodes {
		if n == name {
			return true
		}
	}
	return false
}

// Peers returns the nodes other than ThisNode.
func (c *Cluster) Peers() []string {
	var ps []string
	for _, n := range c.Nodes {
		if n != c.ThisNode {
			ps = append(ps, n)
		}
	}
	return ps
}
