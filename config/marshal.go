package config

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// MarshalYAML writes c in directord's YAML schema, so that ParseYAML of the
// result gives back the same model (apart from positions and warnings).
// Timings and directord's settings are written out even at their defaults,
// so that an imported file shows what is in force; this_node is left out,
// so that one file serves both nodes. lnoded paths are written as they are
// in the model (absolute when the ha.d directory was named absolutely).
func MarshalYAML(c *Config) ([]byte, error) {
	cl := c.Cluster
	cluster := mapping(
		"nodes", seqStr(cl.Nodes...),
		"udpport", intNode(cl.UDPPort),
	)
	var media []*yaml.Node
	for _, m := range cl.Media {
		n := mapping(string(m.Type), str(m.Interface))
		switch m.Type {
		case Ucast:
			add(n, "peer", str(m.Peer))
		case Mcast:
			add(n, "group", str(m.Group.String()), "ttl", intNode(m.TTL), "loop", boolNode(m.Loop))
		}
		if m.Port != cl.UDPPort || m.Type == Mcast {
			add(n, "port", intNode(m.Port))
		}
		media = append(media, n)
	}
	add(cluster, "media", seq(media...))
	add(cluster,
		"keepalive", dur(cl.Keepalive),
		"warntime", dur(cl.WarnTime),
		"deadtime", dur(cl.DeadTime),
		"initdead", dur(cl.InitDead),
		"deadping", dur(cl.DeadPing),
		"auto_failback", str(cl.AutoFailback.String()),
	)
	if len(cl.PingNodes) > 0 {
		var hosts []string
		for _, p := range cl.PingNodes {
			hosts = append(hosts, p.Host)
		}
		add(cluster, "ping", seqStr(hosts...))
	}
	if len(cl.PingGroups) > 0 {
		var gs []*yaml.Node
		for _, g := range cl.PingGroups {
			gs = append(gs, mapping("name", str(g.Name), "hosts", seqStr(g.Hosts...)))
		}
		add(cluster, "ping_groups", seq(gs...))
	}
	if cl.IPFail {
		add(cluster, "ipfail", boolNode(true))
	}
	if cl.Watchdog != "" {
		add(cluster, "watchdog", str(cl.Watchdog))
	}
	if cl.Stonith != nil {
		add(cluster, "stonith", seqStr(cl.Stonith.Command...))
	}
	add(cluster, "msgfmt", str(cl.MsgFmt))
	if l := cl.Logging; l != (Logging{}) {
		ln := mapping()
		if l.File != "" {
			add(ln, "file", str(l.File))
		}
		if l.DebugFile != "" {
			add(ln, "debug_file", str(l.DebugFile))
		}
		if l.Facility != "" {
			add(ln, "facility", str(l.Facility))
		}
		if l.Debug != 0 {
			add(ln, "debug", intNode(l.Debug))
		}
		add(cluster, "logging", ln)
	}

	var keys []*yaml.Node
	for _, k := range c.Auth.Keys {
		kn := mapping("num", intNode(k.Num), "method", str(string(k.Method)))
		if k.Secret != "" {
			add(kn, "secret", str(k.Secret))
		}
		keys = append(keys, kn)
	}
	auth := mapping("active", intNode(c.Auth.Active), "keys", seq(keys...))

	var groups []*yaml.Node
	for _, g := range c.Groups {
		var rs []*yaml.Node
		for _, r := range g.Resources {
			switch r.Kind {
			case KindVIP:
				rs = append(rs, mapping("vip", vipNode(r.VIP)))
			case KindLnoded:
				rs = append(rs, mapping("lnoded", str(r.Lnoded.Path)))
			case KindScript:
				if len(r.Script.Args) == 0 {
					rs = append(rs, mapping("script", str(r.Script.Name)))
				} else {
					rs = append(rs, mapping("script", mapping("name", str(r.Script.Name), "args", seqStr(r.Script.Args...))))
				}
			default:
				return nil, fmt.Errorf("group %s: resource of unknown kind %d", g.Name(), r.Kind)
			}
		}
		groups = append(groups, mapping("owner", str(g.Owner), "resources", seq(rs...)))
	}

	d := c.Directord
	dd := mapping(
		"control_socket", str(d.ControlSocket),
		"state_dir", str(d.StateDir),
	)
	if d.MetricsListen != "" {
		add(dd, "metrics_listen", str(d.MetricsListen))
	}
	sync := mapping("enabled", boolNode(d.Sync.Enabled))
	if d.Sync.Interface != "" {
		add(sync, "interface", str(d.Sync.Interface))
	}
	add(sync, "syncid", intNode(d.Sync.SyncID))
	add(dd, "sync", sync, "garp", mapping(
		"count", intNode(d.GARP.Count),
		"interval", dur(d.GARP.Interval),
		"refresh", dur(d.GARP.Refresh),
	))

	root := mapping("cluster", cluster, "auth", auth, "groups", seq(groups...), "directord", dd)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding YAML: %w", err)
	}
	return buf.Bytes(), nil
}

func vipNode(v *VIP) *yaml.Node {
	n := mapping("address", str(v.Addr.String()))
	if v.Prefix >= 0 {
		add(n, "prefix", intNode(v.Prefix))
	}
	if v.Interface != "" {
		add(n, "interface", str(v.Interface))
	}
	if v.Label != "" {
		add(n, "label", str(v.Label))
	}
	if v.Broadcast.IsValid() {
		add(n, "broadcast", str(v.Broadcast.String()))
	}
	if v.Agent != defaultAgent(v.Addr) {
		add(n, "agent", str(string(v.Agent)))
	}
	if len(n.Content) == 2 {
		return str(v.Addr.String())
	}
	return n
}

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func intNode(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func dur(d time.Duration) *yaml.Node { return str(d.String()) }

func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Content: items}
}

func seqStr(items ...string) *yaml.Node {
	n := seq()
	for _, s := range items {
		n.Content = append(n.Content, str(s))
	}
	if len(items) <= 4 {
		n.Style = yaml.FlowStyle
	}
	return n
}

// mapping builds a mapping from alternating keys and values.
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add(n, kv...)
	return n
}

func add(n *yaml.Node, kv ...any) {
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
}
