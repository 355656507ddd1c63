package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/directord/directord/heartbeat/authkeys"
	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/haresources"
	"github.com/directord/directord/heartbeat/wire"
	lnoded "github.com/directord/directord/lnoded/config"
)

// Options tune how a configuration is loaded. The zero value (or nil) loads
// it as the daemon does on this host.
type Options struct {
	// NodeName is this node's cluster name; "" uses the host name
	// (`uname -n`), lowercased as Heartbeat does. A YAML this_node wins over
	// the host name but not over NodeName.
	NodeName string
	// AnyNode loads a configuration without deciding which node this is:
	// ThisNode stays empty and is not checked. Tools that run away from the
	// cluster (import, checks on a build machine) set it.
	AnyNode bool
	// Lnoded tunes how lnoded.cf files are parsed (name resolution).
	Lnoded *lnoded.Options
}

func (o *Options) nodeName() (string, error) {
	if o != nil && o.AnyNode {
		return "", nil
	}
	if o != nil && o.NodeName != "" {
		return lower(o.NodeName), nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("this node's name: %w", err)
	}
	return lower(h), nil
}

func (o *Options) lnoded() *lnoded.Options {
	if o == nil {
		return nil
	}
	return o.Lnoded
}

// Names of the files in an /etc/ha.d directory.
const (
	HACFName        = "ha.cf"
	HAResourcesName = "haresources"
	AuthkeysName    = "authkeys"
)

// LoadHADir reads a Heartbeat configuration directory (/etc/ha.d): ha.cf,
// haresources, authkeys and the lnoded.cf (or ldirectord.cf) files that
// haresources names, relative to dir unless absolute. Settings that only
// directord has take their defaults. On any error it returns no Config and an
// ErrorList with every error of every file and of Validate.
func LoadHADir(ctx context.Context, dir string, opts *Options) (*Config, error) {
	var p problems
	c := &Config{}
	hacfPath := filepath.Join(dir, HACFName)
	resPath := filepath.Join(dir, HAResourcesName)
	keyPath := filepath.Join(dir, AuthkeysName)

	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		p.errorf(Pos{File: dir}, "not a directory: give the Heartbeat configuration directory, such as /etc/ha.d")
		return nil, p.result()
	}
	// present reports whether a file is there, and says so once when not
	// (the parsers would each word it twice).
	present := func(path, what string) bool {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			p.errorf(Pos{File: path}, "missing: %s", what)
			return false
		}
		return true
	}
	var (
		cf   *hacf.Config
		res  *haresources.Config
		ring *wire.Keyring
	)
	read := func(path string) ([]byte, bool) {
		b, err := readRegular(path)
		if err != nil {
			p.errs = append(p.errs, &Error{Pos: Pos{File: path}, Err: err})
			return nil, false
		}
		return b, true
	}
	if present(hacfPath, "ha.cf names the nodes and the heartbeat links") {
		if src, ok := read(hacfPath); ok {
			cf, _ = parseCollect(&p, hacfPath, src, false, hacf.Parse)
		}
	}
	if present(resPath, "haresources names the resource groups (it may be empty)") {
		if src, ok := read(resPath); ok {
			res, _ = parseCollect(&p, resPath, src, true, haresources.Parse)
		}
	}
	if present(keyPath, "authkeys holds the heartbeat authentication key (mode 0600)") {
		// Load refuses a file others can read, as Heartbeat does; its
		// content is only looked at when the mode is right.
		if _, err := authkeys.Load(keyPath); errors.Is(err, authkeys.ErrPermissions) {
			p.foreign(keyPath, err)
		} else if src, ok := read(keyPath); ok {
			ring, _ = parseCollect(&p, keyPath, src, false, authkeys.Parse)
		}
	}
	c.Sources = []string{hacfPath, resPath, keyPath}

	this, err := opts.nodeName()
	if err != nil {
		p.errorf(Pos{}, "%v", err)
	}
	if cf != nil {
		c.Cluster = clusterFromHACF(cf, this, &p)
	}
	if ring != nil {
		c.Auth = authFromKeyring(ring, keyPath)
	}
	if res != nil {
		parsed := map[string]*lnoded.Config{}
		for _, g := range res.Groups {
			c.Groups = append(c.Groups, groupFromHAResources(ctx, g, res.File, dir, parsed, c, opts, &p))
		}
	}
	c.Directord = DefaultDirectord()
	c.resolveSync(false)
	// Validate what was read. What depends on a file that failed is left
	// out: every group owner would be "not a node" when ha.cf failed.
	if cf != nil {
		c.Cluster.validate(&p)
		if res != nil {
			c.validateGroups(&p, nil)
		}
	}
	if ring != nil {
		c.Auth.validate(&p)
	}
	c.Directord.validate(&p)
	if err := p.result(); err != nil {
		return nil, err
	}
	c.Warnings = append(c.Warnings, p.warnings()...)
	return c, nil
}

// resolveSync fills in the IPVS sync daemon's defaults. Unless enabled was
// written, sync is on exactly when a group has an lnoded resource: without
// it every takeover breaks the established connections, and a director pair
// that balances connections has no reason not to keep them. Unless written,
// the interface is that of the first heartbeat medium: it reaches the peer by
// construction, and when it is a dedicated link (the usual first medium) the
// sync multicast stays off the LAN. The syncid defaults to 0 (and the
// kernel's 0 means "accept any"), which suits one director pair per link.
func (c *Config) resolveSync(enabledWritten bool) {
	s := &c.Directord.Sync
	if !enabledWritten {
		s.Enabled = false
		for _, g := range c.Groups {
			for _, r := range g.Resources {
				s.Enabled = s.Enabled || r.Kind == KindLnoded
			}
		}
	}
	if s.Enabled && s.Interface == "" && len(c.Cluster.Media) > 0 {
		s.Interface = c.Cluster.Media[0].Interface
	}
}

// DefaultDirectord returns directord's own settings with their defaults.
func DefaultDirectord() Directord {
	return Directord{
		ControlSocket: DefaultControlSocket,
		StateDir:      DefaultStateDir,
		GARP:          GARP{Count: DefaultGARPCount, Interval: DefaultGARPInterval},
	}
}

func clusterFromHACF(cf *hacf.Config, this string, p *problems) Cluster {
	at := func(line int) Pos { return Pos{File: cf.File, Line: line} }
	file := at(0)
	cl := Cluster{
		Nodes:        append([]string(nil), cf.Nodes...),
		NodesPos:     file,
		ThisNode:     this,
		UDPPort:      cf.UDPPort,
		Keepalive:    cf.Keepalive,
		WarnTime:     cf.WarnTime,
		DeadTime:     cf.DeadTime,
		InitDead:     cf.InitDead,
		DeadPing:     cf.DeadPing,
		Watchdog:     cf.Watchdog,
		MsgFmt:       cf.MsgFmt,
		AutoFailback: FailbackLegacy,
		Logging: Logging{
			File:      cf.LogFile,
			DebugFile: cf.DebugFile,
			Facility:  cf.LogFacility,
			Debug:     cf.Debug,
		},
		TimingPos:       map[string]Pos{},
		AutoFailbackPos: file,
	}
	// ha.cf's parser does not keep the line of each timing; the file is
	// the best position we have.
	for _, d := range []string{"keepalive", "warntime", "deadtime", "initdead", "deadping"} {
		cl.TimingPos[d] = file
	}
	switch cf.AutoFailback {
	case hacf.FailbackOn:
		cl.AutoFailback = FailbackOn
	case hacf.FailbackOff:
		cl.AutoFailback = FailbackOff
	}
	for _, m := range cf.Media {
		if m.Type == hacf.Serial {
			continue // hacf reports it among Unsupported
		}
		cl.Media = append(cl.Media, Medium{
			Pos: at(m.Line), Type: MediaType(m.Type), Interface: m.Interface, Peer: m.Peer,
			Group: m.Group, Port: m.Port, TTL: m.TTL, Loop: m.Loop,
		})
	}
	for _, h := range cf.PingNodes {
		cl.PingNodes = append(cl.PingNodes, PingNode{Pos: file, Host: h})
	}
	for _, g := range cf.PingGroups {
		cl.PingGroups = append(cl.PingGroups, PingGroup{Pos: at(g.Line), Name: g.Name, Hosts: append([]string(nil), g.Hosts...)})
	}
	for _, r := range cf.Respawn {
		prog := strings.Fields(r.Command)[0]
		if filepath.Base(prog) == "ipfail" {
			cl.IPFail = true
			continue
		}
		p.warnf(at(r.Line), "respawn %s: directord runs no respawn clients; run the program as a systemd service instead", r.Command)
	}
	for _, a := range cf.APIAuth {
		if a.Client != "ipfail" { // ipfail is built in and needs no API access
			p.warnf(at(a.Line), "apiauth %s: directord has no client API; ignored", a.Client)
		}
	}
	for _, s := range cf.Stonith {
		if s.Host != "" && s.Host != "*" && s.Host != this {
			continue // a device this node cannot operate
		}
		if cl.Stonith != nil {
			p.warnf(at(s.Line), "stonith: only the first device that applies to this node is used (line %d)", cl.Stonith.Line)
			continue
		}
		cl.Stonith = &Stonith{Pos: at(s.Line), Command: stonithCommand(s)}
	}
	if cf.UseLogd != nil && *cf.UseLogd {
		p.warnf(file, "use_logd: directord logs to the journal (and logfile/logfacility when set); ha_logd is not used")
	}
	for _, n := range cf.Unsupported {
		p.warnf(at(n.Line), "%s", n.Text)
	}
	for _, n := range cf.Warnings {
		// Validate words these itself, for both front ends.
		if strings.HasPrefix(n.Text, "initdead") || strings.HasPrefix(n.Text, "warntime") || strings.HasPrefix(n.Text, "auto_failback is legacy") {
			continue
		}
		p.warnf(at(n.Line), "%s", n.Text)
	}
	return cl
}

// StonithProgram is cluster-glue's stonith(8), which Heartbeat's stonith and
// stonith_host directives drive through the same plugins.
const StonithProgram = "/usr/sbin/stonith"

// stonithCommand turns a Heartbeat STONITH device into the stonith(8)
// command that resets a node with it (the node is appended when it runs).
func stonithCommand(s hacf.Stonith) []string {
	cmd := []string{StonithProgram, "-t", s.Type}
	switch {
	case s.ConfigFile != "":
		cmd = append(cmd, "-F", s.ConfigFile)
	case s.Params != "":
		cmd = append(cmd, "-p", s.Params)
	}
	return append(cmd, "-T", "reset")
}

func authFromKeyring(r *wire.Keyring, file string) Auth {
	a := Auth{Pos: Pos{File: file}, Active: r.Active}
	for _, k := range r.Keys {
		a.Keys = append(a.Keys, AuthKey{Pos: Pos{File: file}, Num: k.Num, Method: AuthMethod(k.Method.String()), Secret: string(k.Secret)})
	}
	sort.Slice(a.Keys, func(i, j int) bool { return a.Keys[i].Num < a.Keys[j].Num })
	return a
}

func groupFromHAResources(ctx context.Context, g haresources.Group, file, dir string, parsed map[string]*lnoded.Config, c *Config, opts *Options, p *problems) Group {
	at := Pos{File: file, Line: g.Line}
	out := Group{Pos: at, Owner: g.Node}
	for _, r := range g.Resources {
		res := Resource{Pos: at}
		switch {
		case r.IP != nil:
			res.Kind = KindVIP
			ifname, label, _ := strings.Cut(r.IP.Interface, ":")
			res.VIP = &VIP{
				Agent:     Agent(r.Script),
				Addr:      r.IP.Addr,
				Prefix:    r.IP.PrefixLen,
				Interface: ifname,
				Label:     label,
				Broadcast: r.IP.Broadcast,
			}
		case r.Script == haresources.Lnoded || r.Script == haresources.Ldirectord:
			written := "ldirectord.cf" // ldirectord's default in /etc/ha.d
			if len(r.Args) > 0 {
				written = r.Args[0]
			}
			res.Kind = KindLnoded
			res.Lnoded = loadLnoded(ctx, at, written, dir, parsed, c, opts, p)
		default:
			res.Kind = KindScript
			res.Script = &Script{Name: r.Script, Args: append([]string(nil), r.Args...)}
		}
		out.Resources = append(out.Resources, res)
	}
	return out
}

// loadLnoded parses an lnoded.cf once, however many resources name it; a
// path relative to dir is taken in dir, where ldirectord looks for it.
func loadLnoded(ctx context.Context, at Pos, written, dir string, parsed map[string]*lnoded.Config, c *Config, opts *Options, p *problems) *Lnoded {
	path := written
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	l := &Lnoded{Path: path}
	if cfg, ok := parsed[path]; ok {
		l.Config = cfg
		return l
	}
	parsed[path] = nil
	c.Sources = append(c.Sources, path)
	src, err := readRegular(path)
	if err != nil {
		p.errs = append(p.errs, &Error{Pos: at, Msg: fmt.Sprintf("lnoded resource %s", written), Err: err})
		return l
	}
	cfg := parseLnoded(ctx, path, src, opts, p)
	parsed[path] = cfg
	l.Config = cfg
	return l
}

// parseLnoded parses one lnoded.cf, moving its errors and warnings to p.
func parseLnoded(ctx context.Context, path string, src []byte, opts *Options, p *problems) *lnoded.Config {
	cfg, err := lnoded.Parse(ctx, path, src, opts.lnoded())
	if err != nil {
		if list, ok := lnoded.AsErrorList(err); ok {
			for _, e := range list {
				msg := e.Msg
				if e.Directive != "" {
					msg = e.Directive + ": " + msg
				}
				p.errs = append(p.errs, &Error{Pos: Pos{File: e.File, Line: e.Line}, Msg: msg, Err: e.Err})
			}
		} else {
			p.errs = append(p.errs, &Error{Pos: Pos{File: path}, Err: err})
		}
		return nil
	}
	for _, w := range cfg.Warnings {
		p.warnf(Pos{File: w.File, Line: w.Line}, "%s", w.Msg)
	}
	return cfg
}

// maxLnoded bounds the size of an lnoded.cf.
const maxLnoded = 4 << 20

// readRegular reads a configuration file, refusing what is not a regular
// file (a device or FIFO named by mistake would block or never end) and
// what is too large to be one.
func readRegular(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > maxLnoded {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxLnoded)
	}
	return io.ReadAll(io.LimitReader(f, maxLnoded))
}
