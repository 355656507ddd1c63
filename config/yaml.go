package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/directord/directord/heartbeat/haresources"
	lnoded "github.com/directord/directord/lnoded/config"
)

// maxYAML bounds the size of a YAML configuration; a real one is a few KiB.
const maxYAML = 1 << 20

// LoadYAML reads a directord YAML configuration file (see
// docs/configuration.md for the schema) and the lnoded.cf files it names,
// relative to the YAML file's directory unless absolute. A file that holds a
// md5 or sha1 secret must not be readable by group or others, as Heartbeat
// requires of authkeys. On any error it returns no Config and an ErrorList
// with every error.
func LoadYAML(ctx context.Context, path string, opts *Options) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrorList{{Pos: Pos{File: path}, Msg: "missing: no such file (directord import --ha-dir /etc/ha.d -o FILE writes one)"}}
	}
	if err != nil {
		return nil, ErrorList{{Pos: Pos{File: path}, Err: err}}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, ErrorList{{Pos: Pos{File: path}, Err: err}}
	}
	src, err := io.ReadAll(io.LimitReader(f, maxYAML+1))
	if err != nil {
		return nil, ErrorList{{Pos: Pos{File: path}, Err: err}}
	}
	c, err := ParseYAML(ctx, path, src, opts)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && hasSecret(c.Auth) {
		return nil, ErrorList{{Pos: c.Auth.Pos, Msg: fmt.Sprintf("the file holds authentication secrets but its mode %04o gives group/others access; run: chmod 600 %s", perm, path)}}
	}
	return c, nil
}

func hasSecret(a Auth) bool {
	for _, k := range a.Keys {
		if k.Secret != "" {
			return true
		}
	}
	return false
}

// ParseYAML parses the text of a directord YAML configuration named name
// (used in errors, and whose directory relative lnoded paths are taken in).
// Unknown keys, values of the wrong type, anchors and aliases, and more than
// one document are errors. Every error found is returned, in an ErrorList.
func ParseYAML(ctx context.Context, name string, src []byte, opts *Options) (*Config, error) {
	var p problems
	d := &ydec{file: name, dir: filepath.Dir(name), p: &p, ctx: ctx, opts: opts, parsed: map[string]*lnoded.Config{}, unreadable: map[Pos]bool{}}
	if len(src) > maxYAML {
		p.errorf(Pos{File: name}, "larger than %d bytes", maxYAML)
		return nil, p.result()
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(Pos{File: name}, "empty configuration: at least cluster, auth and groups are needed")
		} else {
			p.errs = append(p.errs, yamlError(name, err))
		}
		return nil, p.result()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errorf(Pos{File: name, Line: extra.Line}, "a second YAML document; a configuration is one document")
	} else if !errors.Is(err, io.EOF) {
		p.errs = append(p.errs, yamlError(name, err))
	}
	c := d.config(&doc)
	c.Sources = append([]string{name}, c.Sources...)
	// Validate even after errors, so that one run reports everything. A
	// value that could not be read keeps its default, so it adds no second
	// error; a section that is missing altogether is not validated.
	if d.haveCluster {
		c.Cluster.validate(&p)
		c.validateGroups(&p, d.unreadable)
	}
	if d.haveAuth {
		c.Auth.validate(&p)
	}
	c.Directord.validate(&p)
	if err := p.result(); err != nil {
		return nil, err
	}
	c.Warnings = append(c.Warnings, p.warnings()...)
	return c, nil
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: …") into an Error
// at that line.
func yamlError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	at := Pos{File: file}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, found := strings.Cut(rest, ": "); found {
			if n, err := strconv.Atoi(num); err == nil {
				at.Line, msg = n, after
			}
		}
	}
	return &Error{Pos: at, Msg: "YAML syntax: " + msg}
}

// ydec walks the YAML node tree; every problem goes to p with its line, and
// decoding goes on so that all problems are reported at once.
type ydec struct {
	file   string
	dir    string
	p      *problems
	ctx    context.Context
	opts   *Options
	parsed map[string]*lnoded.Config
	c      *Config

	haveCluster, haveAuth bool
	// syncEnabled: sync.enabled was written (else it defaults to on when a
	// group has an lnoded resource).
	syncEnabled bool
	// unreadable holds the groups with a resource that could not be read,
	// which validation must not call empty.
	unreadable map[Pos]bool
}

func (d *ydec) at(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line} }

func (d *ydec) errorf(n *yaml.Node, format string, a ...any) {
	d.p.errorf(d.at(n), format, a...)
}

// usable reports whether n can be read at all: aliases are refused (they
// make a configuration hard to read and can blow up in size).
func (d *ydec) usable(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.errorf(n, "anchors and aliases (&, *) are not supported; write the value out")
		return false
	}
	return true
}

type field struct {
	name string
	fn   func(k, v *yaml.Node)
}

// fields reads a mapping whose keys must be among fs; what names the
// mapping in messages. It returns false when n is not a mapping.
func (d *ydec) fields(n *yaml.Node, what string, fs ...field) bool {
	if !d.usable(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping (key: value lines), got %s", what, kind(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: keys are plain words", what)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			d.errorf(k, "%s: %s given twice (first on line %d)", what, k.Value, prev)
			continue
		}
		seen[k.Value] = k.Line
		found := false
		for _, f := range fs {
			if f.name == k.Value {
				found = true
				if d.usable(v) {
					f.fn(k, v)
				}
				break
			}
		}
		if !found {
			names := make([]string, len(fs))
			for i, f := range fs {
				names[i] = f.name
			}
			d.errorf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(names, ", "))
		}
	}
	return true
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// scalar returns n's text; it fails for lists, mappings and null.
func (d *ydec) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s: want a single value, got %s", what, kind(n))
		return "", false
	}
	return n.Value, true
}

func (d *ydec) str(n *yaml.Node, what string, dst *string) {
	if s, ok := d.scalar(n, what); ok {
		*dst = s
	}
}

func (d *ydec) integer(n *yaml.Node, what string, lo, hi int, dst *int) {
	s, ok := d.scalar(n, what)
	if !ok {
		return
	}
	v, err := strconv.Atoi(s)
	if err != nil || n.Tag != "!!int" || v < lo || v > hi {
		d.errorf(n, "%s: want an integer in %d..%d, got %q", what, lo, hi, s)
		return
	}
	*dst = v
}

func (d *ydec) boolean(n *yaml.Node, what string, dst *bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		*dst = true
	case "false", "no", "off":
		*dst = false
	default:
		d.errorf(n, "%s: want true or false, got %q", what, s)
	}
}

func (d *ydec) duration(n *yaml.Node, what string, dst *time.Duration) bool {
	s, ok := d.scalar(n, what)
	if !ok {
		return false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if n.Tag == "!!int" || n.Tag == "!!float" {
			hint = fmt.Sprintf(" (write %ss for seconds)", s)
		}
		d.errorf(n, "%s: want a duration such as 2s or 500ms, got %q%s", what, s, hint)
		return false
	}
	if v < 0 {
		d.errorf(n, "%s: %v is negative", what, v)
		return false
	}
	*dst = v
	return true
}

func (d *ydec) addr(n *yaml.Node, what string, dst *netip.Addr) {
	s, ok := d.scalar(n, what)
	if !ok {
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		d.errorf(n, "%s: %q is not an IP address", what, s)
		return
	}
	*dst = a
}

// list calls fn for each item of a sequence; a single scalar is taken as a
// list of one when one is true.
func (d *ydec) list(n *yaml.Node, what string, one bool, fn func(item *yaml.Node)) {
	if n.Kind == yaml.ScalarNode && one && n.Tag != "!!null" {
		fn(n)
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list, got %s", what, kind(n))
		return
	}
	for _, it := range n.Content {
		if d.usable(it) {
			fn(it)
		}
	}
}

func (d *ydec) strings(n *yaml.Node, what string, dst *[]string) {
	d.list(n, what, true, func(it *yaml.Node) {
		var s string
		d.str(it, what, &s)
		*dst = append(*dst, s)
	})
}

func (d *ydec) config(doc *yaml.Node) *Config {
	c := &Config{Directord: DefaultDirectord()}
	d.c = c
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	d.fields(root, "configuration",
		field{"cluster", func(k, v *yaml.Node) { d.haveCluster = true; d.cluster(k, v) }},
		field{"auth", func(k, v *yaml.Node) { d.haveAuth = true; d.auth(k, v) }},
		field{"groups", func(k, v *yaml.Node) { d.groups(v) }},
		field{"directord", func(k, v *yaml.Node) { d.directord(k, v) }},
	)
	c.resolveSync(d.syncEnabled)
	if !d.haveCluster {
		d.errorf(root, "no cluster section: nodes and heartbeat media are needed")
	}
	if !d.haveAuth {
		d.errorf(root, "no auth section: a key is needed (sha1 with a long random secret)")
	}
	return c
}

func (d *ydec) cluster(k, n *yaml.Node) {
	cl := &d.c.Cluster
	cl.NodesPos = d.at(k)
	cl.UDPPort = DefaultUDPPort
	cl.MsgFmt = "classic"
	cl.TimingPos = map[string]Pos{}
	cl.AutoFailbackPos = d.at(k)
	var media *yaml.Node
	var thisNode string
	timing := func(name string, dst *time.Duration) field {
		return field{name, func(k, v *yaml.Node) {
			// A timing that cannot be read keeps its default.
			if d.duration(v, "cluster."+name, dst) {
				cl.TimingPos[name] = d.at(k)
			}
		}}
	}
	d.fields(n, "cluster",
		field{"nodes", func(k, v *yaml.Node) {
			cl.NodesPos = d.at(k)
			d.strings(v, "cluster.nodes", &cl.Nodes)
		}},
		field{"this_node", func(k, v *yaml.Node) {
			cl.ThisNodePos = d.at(k)
			d.str(v, "cluster.this_node", &thisNode)
		}},
		field{"udpport", func(k, v *yaml.Node) { d.integer(v, "cluster.udpport", 1, 65535, &cl.UDPPort) }},
		field{"media", func(k, v *yaml.Node) { media = v }},
		timing("keepalive", &cl.Keepalive),
		timing("warntime", &cl.WarnTime),
		timing("deadtime", &cl.DeadTime),
		timing("initdead", &cl.InitDead),
		timing("deadping", &cl.DeadPing),
		field{"auto_failback", func(k, v *yaml.Node) {
			cl.AutoFailbackPos = d.at(k)
			s, ok := d.scalar(v, "cluster.auto_failback")
			switch {
			case !ok:
			case s == "on" || s == "true":
				cl.AutoFailback = FailbackOn
			case s == "off" || s == "false":
				cl.AutoFailback = FailbackOff
			case s == "legacy":
				cl.AutoFailback = FailbackLegacy
			default:
				d.errorf(v, "cluster.auto_failback: want on, off or legacy, got %q", s)
			}
		}},
		field{"ping", func(k, v *yaml.Node) {
			d.list(v, "cluster.ping", true, func(it *yaml.Node) {
				pn := PingNode{Pos: d.at(it)}
				d.str(it, "cluster.ping", &pn.Host)
				cl.PingNodes = append(cl.PingNodes, pn)
			})
		}},
		field{"ping_groups", func(k, v *yaml.Node) {
			d.list(v, "cluster.ping_groups", false, func(it *yaml.Node) {
				g := PingGroup{Pos: d.at(it)}
				d.fields(it, "ping group",
					field{"name", func(k, v *yaml.Node) { d.str(v, "ping group name", &g.Name) }},
					field{"hosts", func(k, v *yaml.Node) { d.strings(v, "ping group hosts", &g.Hosts) }},
				)
				cl.PingGroups = append(cl.PingGroups, g)
			})
		}},
		field{"ipfail", func(k, v *yaml.Node) { d.boolean(v, "cluster.ipfail", &cl.IPFail) }},
		field{"watchdog", func(k, v *yaml.Node) { d.str(v, "cluster.watchdog", &cl.Watchdog) }},
		field{"stonith", func(k, v *yaml.Node) {
			s := &Stonith{Pos: d.at(k)}
			d.strings(v, "cluster.stonith", &s.Command)
			cl.Stonith = s
		}},
		field{"msgfmt", func(k, v *yaml.Node) { d.str(v, "cluster.msgfmt", &cl.MsgFmt) }},
		field{"logging", func(k, v *yaml.Node) {
			l := &cl.Logging
			d.fields(v, "cluster.logging",
				field{"file", func(k, v *yaml.Node) { d.str(v, "logging.file", &l.File) }},
				field{"debug_file", func(k, v *yaml.Node) { d.str(v, "logging.debug_file", &l.DebugFile) }},
				field{"facility", func(k, v *yaml.Node) { d.str(v, "logging.facility", &l.Facility) }},
				field{"debug", func(k, v *yaml.Node) { d.integer(v, "logging.debug", 0, 255, &l.Debug) }},
			)
		}},
	)
	for i, name := range cl.Nodes {
		cl.Nodes[i] = lower(name)
	}
	cl.ThisNode = lower(thisNode)
	if d.opts != nil && (d.opts.NodeName != "" || d.opts.AnyNode) || thisNode == "" {
		name, err := d.opts.nodeName()
		if err != nil {
			d.p.errorf(cl.NodesPos, "%v", err)
		}
		cl.ThisNode, cl.ThisNodePos = name, Pos{}
	}
	// Media come after udpport, whatever the order of the keys: unlike
	// ha.cf, YAML has no "before".
	if media != nil {
		d.list(media, "cluster.media", false, func(it *yaml.Node) { d.medium(it) })
	}
	applyTimingDefaults(cl, k, d)
}

// applyTimingDefaults fills the timings not written as Heartbeat does
// (config.c), so that a YAML file and an ha.cf that leave out the same
// settings mean the same.
func applyTimingDefaults(cl *Cluster, k *yaml.Node, d *ydec) {
	set := func(name string) bool { _, ok := cl.TimingPos[name]; return ok }
	for _, name := range []string{"keepalive", "warntime", "deadtime", "initdead", "deadping"} {
		if !set(name) {
			defer func(name string) { cl.TimingPos[name] = d.at(k) }(name)
		}
	}
	if !set("keepalive") {
		cl.Keepalive = time.Second
	}
	if !set("deadtime") {
		cl.DeadTime = 30 * time.Second
	}
	if !set("warntime") {
		cl.WarnTime = cl.DeadTime / 2
	}
	if !set("initdead") {
		switch {
		case cl.DeadTime > 10*time.Second:
			cl.InitDead = cl.DeadTime
		case cl.DeadTime < 6*time.Second:
			cl.InitDead = 12 * time.Second
		default:
			cl.InitDead = 2 * cl.DeadTime
		}
	}
	if !set("deadping") {
		cl.DeadPing = cl.DeadTime
	}
}

func (d *ydec) medium(n *yaml.Node) {
	m := Medium{Pos: d.at(n), Port: -1, TTL: -1}
	types := 0
	typ := func(t MediaType) field {
		return field{string(t), func(k, v *yaml.Node) {
			types++
			m.Type = t
			d.str(v, "media "+string(t)+" (the interface)", &m.Interface)
		}}
	}
	if !d.fields(n, "media entry", typ(Ucast), typ(Bcast), typ(Mcast),
		field{"peer", func(k, v *yaml.Node) { d.str(v, "media peer", &m.Peer) }},
		field{"group", func(k, v *yaml.Node) { d.addr(v, "media group", &m.Group) }},
		field{"port", func(k, v *yaml.Node) { d.integer(v, "media port", 1, 65535, &m.Port) }},
		field{"ttl", func(k, v *yaml.Node) { d.integer(v, "media ttl", 0, 255, &m.TTL) }},
		field{"loop", func(k, v *yaml.Node) { d.boolean(v, "media loop", &m.Loop) }},
	) {
		return
	}
	if types != 1 {
		d.errorf(n, "media entry: want exactly one of ucast, bcast or mcast (naming the interface), got %d", types)
		return
	}
	if m.Port < 0 {
		m.Port = d.c.Cluster.UDPPort
	}
	bad := func(key string) { d.errorf(n, "media entry: %s does not apply to %s", key, m.Type) }
	if m.Type != Ucast && m.Peer != "" {
		bad("peer")
	}
	if m.Type != Mcast && (m.Group.IsValid() || m.TTL >= 0 || m.Loop) {
		bad("group, ttl and loop")
	}
	if m.Type == Mcast && !m.Group.IsValid() {
		d.errorf(n, "media entry: mcast needs a group")
	}
	switch {
	case m.Type != Mcast:
		m.TTL = 0
	case m.TTL < 0:
		m.TTL = 1 // one hop, the usual
	}
	d.c.Cluster.Media = append(d.c.Cluster.Media, m)
}

func (d *ydec) auth(k, n *yaml.Node) {
	a := &d.c.Auth
	a.Pos = d.at(k)
	a.Active = -1
	short := AuthKey{Pos: d.at(k), Num: 1}
	var haveShort, haveKeys bool
	d.fields(n, "auth",
		field{"active", func(k, v *yaml.Node) { d.integer(v, "auth.active", 0, maxKeys-1, &a.Active) }},
		field{"method", func(k, v *yaml.Node) {
			haveShort = true
			var s string
			d.str(v, "auth.method", &s)
			short.Method = AuthMethod(s)
		}},
		field{"secret", func(k, v *yaml.Node) { haveShort = true; d.str(v, "auth.secret", &short.Secret) }},
		field{"keys", func(k, v *yaml.Node) {
			haveKeys = true
			d.list(v, "auth.keys", false, func(it *yaml.Node) {
				key := AuthKey{Pos: d.at(it), Num: -1}
				d.fields(it, "auth key",
					field{"num", func(k, v *yaml.Node) { d.integer(v, "key num", 0, maxKeys-1, &key.Num) }},
					field{"method", func(k, v *yaml.Node) {
						var s string
						d.str(v, "key method", &s)
						key.Method = AuthMethod(s)
					}},
					field{"secret", func(k, v *yaml.Node) { d.str(v, "key secret", &key.Secret) }},
				)
				if key.Num < 0 {
					d.errorf(it, "auth key: num is required (0..15)")
				}
				a.Keys = append(a.Keys, key)
			})
		}},
	)
	switch {
	case haveShort && haveKeys:
		d.errorf(n, "auth: write either method and secret (one key) or keys, not both")
	case haveShort:
		a.Keys = []AuthKey{short}
	}
	switch {
	case a.Active >= 0:
	case len(a.Keys) == 1:
		a.Active = a.Keys[0].Num
	case len(a.Keys) > 1:
		d.errorf(n, "auth: with several keys, active says which one signs")
	}
	sort.SliceStable(a.Keys, func(i, j int) bool { return a.Keys[i].Num < a.Keys[j].Num })
}

func (d *ydec) groups(n *yaml.Node) {
	d.list(n, "groups", false, func(it *yaml.Node) {
		g := Group{Pos: d.at(it)}
		d.fields(it, "group",
			field{"owner", func(k, v *yaml.Node) {
				d.str(v, "group owner", &g.Owner)
				g.Owner = lower(g.Owner)
			}},
			field{"resources", func(k, v *yaml.Node) {
				d.list(v, "group resources", false, func(r *yaml.Node) {
					if res, ok := d.resource(r); ok {
						g.Resources = append(g.Resources, res)
					} else {
						d.unreadable[g.Pos] = true
					}
				})
			}},
		)
		if g.Owner == "" {
			d.errorf(it, "group: owner is required (the node that normally holds the group)")
		}
		d.c.Groups = append(d.c.Groups, g)
	})
}

func (d *ydec) resource(n *yaml.Node) (Resource, bool) {
	r := Resource{Pos: d.at(n)}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		d.errorf(n, "resource: want one of \"vip: …\", \"lnoded: FILE\" or \"script: …\", got %s", kind(n))
		return r, false
	}
	ok := false
	d.fields(n, "resource",
		field{"vip", func(k, v *yaml.Node) { r.Kind, r.VIP, ok = KindVIP, d.vip(v), true }},
		field{"lnoded", func(k, v *yaml.Node) {
			var path string
			d.str(v, "lnoded (the lnoded.cf file)", &path)
			if path == "" {
				return
			}
			r.Kind, r.Lnoded, ok = KindLnoded, d.lnoded(v, path), true
		}},
		field{"script", func(k, v *yaml.Node) { r.Kind, r.Script, ok = KindScript, d.script(v), true }},
	)
	return r, ok && (r.VIP != nil || r.Lnoded != nil || r.Script != nil)
}

func (d *ydec) vip(n *yaml.Node) *VIP {
	if n.Kind == yaml.ScalarNode {
		s, ok := d.scalar(n, "vip")
		if !ok {
			return nil
		}
		ip, err := haresources.ParseIPAddr(s, true)
		if err != nil {
			d.errorf(n, "vip: %v (want ip[/prefix[/interface[/broadcast]]])", err)
			return nil
		}
		v := &VIP{Addr: ip.Addr, Prefix: ip.PrefixLen, Broadcast: ip.Broadcast}
		v.Interface, v.Label, _ = strings.Cut(ip.Interface, ":")
		v.Agent = defaultAgent(v.Addr)
		return v
	}
	v := &VIP{Prefix: -1}
	var agent string
	d.fields(n, "vip",
		field{"address", func(k, v2 *yaml.Node) { d.addr(v2, "vip address", &v.Addr) }},
		field{"prefix", func(k, v2 *yaml.Node) { d.integer(v2, "vip prefix", 0, 128, &v.Prefix) }},
		field{"interface", func(k, v2 *yaml.Node) {
			var s string
			d.str(v2, "vip interface", &s)
			if i, l, ok := strings.Cut(s, ":"); ok {
				v.Interface, v.Label = i, l
			} else {
				v.Interface = s
			}
		}},
		field{"label", func(k, v2 *yaml.Node) { d.str(v2, "vip label", &v.Label) }},
		field{"broadcast", func(k, v2 *yaml.Node) { d.addr(v2, "vip broadcast", &v.Broadcast) }},
		field{"agent", func(k, v2 *yaml.Node) { d.str(v2, "vip agent", &agent) }},
	)
	if !v.Addr.IsValid() {
		d.errorf(n, "vip: address is required")
		return nil
	}
	v.Agent = Agent(agent)
	if agent == "" {
		v.Agent = defaultAgent(v.Addr)
	}
	return v
}

// defaultAgent is IPaddr for IPv4, as a bare address in haresources means,
// and IPaddr2 for IPv6, the only agent that takes it.
func defaultAgent(a netip.Addr) Agent {
	if a.Is6() && !a.Is4In6() {
		return IPaddr2
	}
	return IPaddr
}

func (d *ydec) script(n *yaml.Node) *Script {
	s := &Script{}
	if n.Kind == yaml.ScalarNode {
		d.str(n, "script", &s.Name)
		return s
	}
	d.fields(n, "script",
		field{"name", func(k, v *yaml.Node) { d.str(v, "script name", &s.Name) }},
		field{"args", func(k, v *yaml.Node) { d.strings(v, "script args", &s.Args) }},
	)
	if s.Name == "" {
		d.errorf(n, "script: name is required")
	}
	return s
}

func (d *ydec) lnoded(n *yaml.Node, written string) *Lnoded {
	path := written
	if !filepath.IsAbs(path) {
		path = filepath.Join(d.dir, path)
	}
	l := &Lnoded{Path: path}
	if cfg, ok := d.parsed[path]; ok {
		l.Config = cfg
		return l
	}
	d.parsed[path] = nil
	d.c.Sources = append(d.c.Sources, path)
	src, err := readRegular(path)
	if err != nil {
		d.p.errs = append(d.p.errs, &Error{Pos: d.at(n), Msg: "lnoded " + written, Err: err})
		return l
	}
	l.Config = parseLnoded(d.ctx, path, src, d.opts, d.p)
	d.parsed[path] = l.Config
	return l
}

func (d *ydec) directord(k, n *yaml.Node) {
	dd := &d.c.Directord
	dd.Pos = d.at(k)
	dd.Sync.Pos, dd.GARP.Pos = dd.Pos, dd.Pos
	d.fields(n, "directord",
		field{"control_socket", func(k, v *yaml.Node) { d.str(v, "directord.control_socket", &dd.ControlSocket) }},
		field{"state_dir", func(k, v *yaml.Node) { d.str(v, "directord.state_dir", &dd.StateDir) }},
		field{"metrics_listen", func(k, v *yaml.Node) { d.str(v, "directord.metrics_listen", &dd.MetricsListen) }},
		field{"sync", func(k, v *yaml.Node) {
			s := &dd.Sync
			s.Pos = d.at(k)
			d.fields(v, "directord.sync",
				field{"enabled", func(k, v *yaml.Node) { d.syncEnabled = true; d.boolean(v, "sync.enabled", &s.Enabled) }},
				field{"interface", func(k, v *yaml.Node) { d.str(v, "sync.interface", &s.Interface) }},
				field{"syncid", func(k, v *yaml.Node) { d.integer(v, "sync.syncid", 0, 255, &s.SyncID) }},
			)
		}},
		field{"garp", func(k, v *yaml.Node) {
			g := &dd.GARP
			g.Pos = d.at(k)
			d.fields(v, "directord.garp",
				field{"count", func(k, v *yaml.Node) { d.integer(v, "garp.count", 0, 1000, &g.Count) }},
				field{"interval", func(k, v *yaml.Node) { d.duration(v, "garp.interval", &g.Interval) }},
				field{"refresh", func(k, v *yaml.Node) { d.duration(v, "garp.refresh", &g.Refresh) }},
			)
		}},
	)
}
