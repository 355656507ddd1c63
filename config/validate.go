package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	lnoded "github.com/directord/directord/lnoded/config"
)

// Validate checks the model as a whole: what no single file can check
// (a group's owner is a node, VIPs are unique across groups, a virtual service
// is in one lnoded.cf only) and what makes a legal configuration dangerous.
// Both loaders call it; it is exported for configurations built in code. It
// returns an ErrorList with every error, and appends warnings to c.Warnings.
func (c *Config) Validate() error {
	var p problems
	c.validate(&p)
	c.Warnings = append(c.Warnings, p.warnings()...)
	return p.result()
}

func (c *Config) validate(p *problems) {
	c.Cluster.validate(p)
	c.Auth.validate(p)
	c.validateGroups(p, nil)
	c.Directord.validate(p)
}

func (cl *Cluster) validate(p *problems) {
	seen := map[string]bool{}
	for _, n := range cl.Nodes {
		switch {
		case n == "":
			p.errorf(cl.NodesPos, "empty node name")
		case n != lower(n):
			p.errorf(cl.NodesPos, "node %q: node names are lowercase, as Heartbeat compares them; write %q", n, lower(n))
		case seen[n]:
			p.errorf(cl.NodesPos, "node %q listed twice", n)
		}
		seen[n] = true
	}
	switch len(cl.Nodes) {
	case 0:
		p.errorf(cl.NodesPos, "no nodes: list every cluster member by the name `uname -n` prints on it")
	case 1:
		p.warnf(cl.NodesPos, "only one node (%s): there is nothing to fail over to", cl.Nodes[0])
	}
	if len(cl.Nodes) > 0 && cl.ThisNode != "" && !cl.IsNode(cl.ThisNode) {
		at := cl.ThisNodePos
		if at.File == "" {
			at = cl.NodesPos
		}
		p.errorf(at, "this node %q is not one of the nodes (%s): add it, or name this node with this_node (directord check --node NAME) if `uname -n` is not its cluster name",
			cl.ThisNode, strings.Join(cl.Nodes, ", "))
	}

	if len(cl.Media) == 0 {
		p.errorf(cl.NodesPos, "no heartbeat media: add at least one ucast, bcast or mcast link (two on separate networks are better)")
	}
	for _, m := range cl.Media {
		if m.Interface == "" {
			p.errorf(m.Pos, "%s: no interface", m.Type)
		}
		if m.Port < 1 || m.Port > 65535 {
			p.errorf(m.Pos, "%s %s: port %d is not 1..65535", m.Type, m.Interface, m.Port)
		}
		switch m.Type {
		case Ucast:
			if m.Peer == "" {
				p.errorf(m.Pos, "ucast %s: no peer address", m.Interface)
			}
		case Mcast:
			if !m.Group.Is4() || !m.Group.IsMulticast() {
				p.errorf(m.Pos, "mcast %s: group %v is not an IPv4 multicast address (224.0.0.0/4)", m.Interface, m.Group)
			}
			if m.TTL < 0 || m.TTL > 255 {
				p.errorf(m.Pos, "mcast %s: ttl %d is not 0..255", m.Interface, m.TTL)
			}
		case Bcast:
		default:
			p.errorf(m.Pos, "medium %q is not ucast, bcast or mcast", m.Type)
		}
	}
	if len(cl.Media) == 1 {
		p.warnf(cl.Media[0].Pos, "only one heartbeat link: when it fails both nodes take the resources (split brain); add a second link on another network")
	}

	tp := func(name string) Pos { return cl.TimingPos[name] }
	if cl.Keepalive <= 0 {
		p.errorf(tp("keepalive"), "keepalive %v must be more than 0", cl.Keepalive)
	}
	if cl.DeadTime <= 2*cl.Keepalive {
		p.errorf(tp("deadtime"), "deadtime %v must be more than twice keepalive %v, or one lost heartbeat declares a node dead; raise deadtime", cl.DeadTime, cl.Keepalive)
	}
	if cl.InitDead < cl.DeadTime {
		p.errorf(tp("initdead"), "initdead %v is less than deadtime %v; raise initdead to at least twice deadtime", cl.InitDead, cl.DeadTime)
	} else if cl.InitDead < 2*cl.DeadTime {
		p.warnf(tp("initdead"), "initdead %v is less than twice deadtime %v: after a reboot the network may not be up in time, and the peer is declared dead", cl.InitDead, cl.DeadTime)
	}
	if cl.WarnTime <= cl.Keepalive || cl.WarnTime >= cl.DeadTime {
		p.warnf(tp("warntime"), "warntime %v is not between keepalive %v and deadtime %v: late heartbeats will not be warned about before a node is declared dead", cl.WarnTime, cl.Keepalive, cl.DeadTime)
	}
	if len(cl.PingNodes)+len(cl.PingGroups) > 0 && cl.DeadPing <= 2*cl.Keepalive {
		p.errorf(tp("deadping"), "deadping %v must be more than twice keepalive %v", cl.DeadPing, cl.Keepalive)
	}

	if cl.AutoFailback == FailbackLegacy {
		p.warnf(cl.AutoFailbackPos, "auto_failback is legacy (Heartbeat's default): write auto_failback on or off")
	}
	if cl.IPFail {
		if cl.AutoFailback == FailbackLegacy {
			p.errorf(cl.AutoFailbackPos, "ipfail needs auto_failback on or off, not legacy")
		}
		if len(cl.PingNodes)+len(cl.PingGroups) == 0 {
			p.errorf(cl.NodesPos, "ipfail needs ping nodes to compare: add ping or ping_group")
		}
	}
	for _, n := range cl.PingNodes {
		if n.Host == "" {
			p.errorf(n.Pos, "empty ping node")
		}
	}
	groups := map[string]Pos{}
	for _, g := range cl.PingGroups {
		if prev, dup := groups[g.Name]; dup {
			p.errorf(g.Pos, "ping group %q already defined at %v", g.Name, prev)
		}
		groups[g.Name] = g.Pos
		if g.Name == "" || len(g.Hosts) == 0 {
			p.errorf(g.Pos, "ping group %q needs a name and at least one host", g.Name)
		}
	}
	if cl.Watchdog != "" && !filepath.IsAbs(cl.Watchdog) {
		p.errorf(cl.NodesPos, "watchdog %q is not an absolute device path such as /dev/watchdog", cl.Watchdog)
	}
	if s := cl.Stonith; s != nil {
		if len(s.Command) == 0 || s.Command[0] == "" {
			p.errorf(s.Pos, "stonith: empty command")
		} else if !filepath.IsAbs(s.Command[0]) {
			p.errorf(s.Pos, "stonith: command %q is not an absolute path", s.Command[0])
		}
	}
	switch cl.MsgFmt {
	case "classic", "netstring":
	default:
		p.errorf(cl.NodesPos, "msgfmt %q is not classic or netstring", cl.MsgFmt)
	}
	if f := cl.Logging.Facility; f != "" && !validFacility(f) {
		p.errorf(cl.NodesPos, "log facility %q is not a syslog facility (daemon, local0..local7, …)", f)
	}
	if cl.Logging.Debug < 0 || cl.Logging.Debug > 255 {
		p.errorf(cl.NodesPos, "debug level %d is not 0..255", cl.Logging.Debug)
	}
}

func validFacility(s string) bool {
	switch s {
	case "none", "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news",
		"security", "syslog", "user", "uucp",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7":
		return true
	}
	return false
}

// maxKeys is Heartbeat's MAXAUTH: key numbers are 0..15.
const maxKeys = 16

func (a *Auth) validate(p *problems) {
	if len(a.Keys) == 0 {
		p.errorf(a.Pos, "no authentication keys: add one (sha1 with a long random secret)")
		return
	}
	seen := map[int]bool{}
	for _, k := range a.Keys {
		if k.Num < 0 || k.Num >= maxKeys {
			p.errorf(k.Pos, "key number %d is not 0..%d", k.Num, maxKeys-1)
		}
		if seen[k.Num] {
			p.errorf(k.Pos, "key %d defined twice", k.Num)
		}
		seen[k.Num] = true
		switch k.Method {
		case AuthCRC:
			if k.Secret != "" {
				p.errorf(k.Pos, "key %d: crc takes no secret", k.Num)
			}
		case AuthMD5, AuthSHA1:
			if k.Secret == "" {
				p.errorf(k.Pos, "key %d: %s needs a secret", k.Num, k.Method)
			} else if strings.ContainsAny(k.Secret, " \t\r\n") {
				p.errorf(k.Pos, "key %d: the secret may not contain blanks (Heartbeat would use only its first word)", k.Num)
			}
		default:
			p.errorf(k.Pos, "key %d: method %q is not crc, md5 or sha1", k.Num, k.Method)
		}
	}
	k, ok := a.ActiveKey()
	if !ok {
		p.errorf(a.Pos, "active key %d is not defined", a.Active)
	} else if k.Method == AuthCRC {
		p.warnf(k.Pos, "key %d is crc, which authenticates nothing: anyone on the heartbeat links can take the resources; use sha1 unless the links are private cables", k.Num)
	}
}

// vsKey identifies a virtual service across lnoded files.
type vsKey struct {
	proto lnoded.Protocol
	addr  netip.Addr
	port  uint16
	mark  uint32
	ipv6  bool
}

// String names the service as lnoded.cf does: "tcp 192.0.2.1:80", "fwmark 7".
func (k vsKey) String() string {
	if k.proto == lnoded.FWM {
		return fmt.Sprintf("fwmark %d", k.mark)
	}
	return fmt.Sprintf("%s %s", k.proto, netip.AddrPortFrom(k.addr, k.port))
}

// validateGroups checks the groups; skipEmpty names groups not to call
// empty because their resources could not be read.
func (c *Config) validateGroups(p *problems, skipEmpty map[Pos]bool) {
	names := map[string]Pos{}
	vips := map[netip.Addr]Pos{}
	files := map[string]Pos{}
	services := map[vsKey]string{}
	for _, g := range c.Groups {
		if !c.Cluster.IsNode(g.Owner) {
			p.errorf(g.Pos, "group owner %q is not a node; the owner must be one of %s (as `uname -n` prints it)", g.Owner, strings.Join(c.Cluster.Nodes, ", "))
		}
		if len(g.Resources) == 0 {
			if !skipEmpty[g.Pos] {
				p.errorf(g.Pos, "group of %s has no resources", g.Owner)
			}
			continue
		}
		if prev, dup := names[g.Name()]; dup {
			p.errorf(g.Pos, "group %q already starts the group at %v; the first resource names a group and must be unique", g.Name(), prev)
		}
		names[g.Name()] = g.Pos
		own := map[netip.Addr]bool{}
		for _, r := range g.Resources {
			switch {
			case r.Kind == KindVIP && r.VIP != nil:
				v := r.VIP
				validateVIP(p, r.Pos, v)
				if prev, dup := vips[v.Addr]; dup {
					p.errorf(r.Pos, "VIP %v is already a resource at %v; each VIP belongs to one group", v.Addr, prev)
				}
				vips[v.Addr] = r.Pos
				own[v.Addr] = true
			case r.Kind == KindLnoded && r.Lnoded != nil:
				if prev, dup := files[r.Lnoded.Path]; dup {
					p.errorf(r.Pos, "%s is already a resource at %v; one lnoded.cf belongs to one group", r.Lnoded.Path, prev)
				}
				files[r.Lnoded.Path] = r.Pos
			case r.Kind == KindScript && r.Script != nil:
				if r.Script.Name == "" || strings.ContainsAny(r.Script.Name, "/:") {
					p.errorf(r.Pos, "script name %q must be a plain file name (found in /etc/ha.d/resource.d or /etc/init.d)", r.Script.Name)
				}
				for _, a := range r.Script.Args {
					if a == "" || strings.Contains(a, "::") {
						p.errorf(r.Pos, "script %s: argument %q is empty or holds \"::\"", r.Script.Name, a)
					}
				}
			default:
				p.errorf(r.Pos, "resource of unknown kind")
			}
		}
		// A virtual service whose address no node holds receives nothing.
		for _, r := range g.Resources {
			if r.Kind != KindLnoded || r.Lnoded == nil || r.Lnoded.Config == nil {
				continue
			}
			for _, v := range r.Lnoded.Config.Virtuals {
				k := vsKey{v.Protocol, v.Addr, v.Port, v.FWMark, v.IPv6}
				at := Pos{r.Lnoded.Path, v.Line}
				if prev, dup := services[k]; dup {
					p.errorf(at, "virtual service %v is also defined in %s; define each virtual service once", k, prev)
				}
				services[k] = at.String()
				if v.Protocol != lnoded.FWM && !own[v.Addr] {
					p.warnf(at, "virtual service %v: %v is not a VIP of this group (%s), so no director holds it; add it before the lnoded resource", k, v.Addr, g.Name())
				}
			}
		}
	}
}

func validateVIP(p *problems, at Pos, v *VIP) {
	if !v.Addr.IsValid() {
		p.errorf(at, "VIP has no address")
		return
	}
	if v.Addr.Is4In6() {
		p.errorf(at, "VIP %v: write the IPv4 address without ::ffff:", v.Addr)
	}
	switch v.Agent {
	case IPaddr:
		if v.Addr.Is6() {
			p.errorf(at, "VIP %v: IPv6 needs agent IPaddr2", v.Addr)
		}
	case IPaddr2:
	default:
		p.errorf(at, "VIP %v: agent %q is not IPaddr or IPaddr2", v.Addr, v.Agent)
	}
	if v.Addr.IsUnspecified() || v.Addr.IsMulticast() || v.Addr.IsLoopback() {
		p.errorf(at, "VIP %v is not a unicast address", v.Addr)
	}
	if v.Prefix < -1 || v.Prefix > v.Addr.BitLen() {
		p.errorf(at, "VIP %v: prefix length %d is not 0..%d", v.Addr, v.Prefix, v.Addr.BitLen())
	}
	if v.Broadcast.IsValid() && (!v.Addr.Is4() || !v.Broadcast.Is4()) {
		p.errorf(at, "VIP %v: a broadcast address is IPv4 only", v.Addr)
	}
	if v.Label != "" {
		if !v.Addr.Is4() {
			p.errorf(at, "VIP %v: labels are IPv4 only", v.Addr)
		}
		if v.Interface == "" {
			p.errorf(at, "VIP %v: a label needs an interface", v.Addr)
		}
		if len(v.Interface)+1+len(v.Label) > 15 {
			p.errorf(at, "VIP %v: label %s:%s is longer than 15 bytes", v.Addr, v.Interface, v.Label)
		}
	}
	if strings.ContainsAny(v.Interface, ":/ \t") || len(v.Interface) > 15 {
		p.errorf(at, "VIP %v: %q is not an interface name", v.Addr, v.Interface)
	}
}

func (d *Directord) validate(p *problems) {
	if !filepath.IsAbs(d.ControlSocket) {
		p.errorf(d.Pos, "control_socket %q is not an absolute path", d.ControlSocket)
	}
	if !filepath.IsAbs(d.StateDir) {
		p.errorf(d.Pos, "state_dir %q is not an absolute path", d.StateDir)
	}
	if d.MetricsListen != "" {
		_, port, err := net.SplitHostPort(d.MetricsListen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			p.errorf(d.Pos, "metrics_listen %q is not HOST:PORT (e.g. 127.0.0.1:9469)", d.MetricsListen)
		}
	}
	s := d.Sync
	if s.Enabled && s.Interface == "" {
		p.errorf(s.Pos, "sync: enabled without an interface: name the interface the directors share")
	}
	if s.SyncID < 0 || s.SyncID > 255 {
		p.errorf(s.Pos, "sync: syncid %d is not 0..255", s.SyncID)
	}
	g := d.GARP
	if g.Count < 0 || g.Count > 1000 {
		p.errorf(g.Pos, "garp: count %d is not 0..1000", g.Count)
	}
	if g.Interval <= 0 {
		p.errorf(g.Pos, "garp: interval %v must be more than 0", g.Interval)
	}
	if g.Refresh < 0 {
		p.errorf(g.Pos, "garp: refresh %v is negative", g.Refresh)
	} else if g.Refresh > 0 && g.Refresh < time.Duration(g.Count)*g.Interval {
		p.warnf(g.Pos, "garp: refresh %v is shorter than one round of %d announcements %v apart", g.Refresh, g.Count, g.Interval)
	}
}
