// Package hacf parses Heartbeat's /etc/ha.d/ha.cf into a typed model.
//
// Syntax follows Heartbeat 3.0.6's config.c: one directive per line,
// '#' starts a comment anywhere on a line, and a directive's values are
// separated by blanks or commas ("node a, b" declares two nodes). Media
// and whole-line directives (ucast, mcast, ping_group, respawn, apiauth,
// stonith, stonith_host, failfast) take the rest of the line. Unknown
// directives are errors naming file:line, and so is any value Heartbeat
// would refuse. Defaults are those Heartbeat applies.
package hacf

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultUDPPort is the port of bcast and ucast heartbeats when udpport
// is not set (IANA's ha-cluster).
const DefaultUDPPort = 694

// AutoFailback is the auto_failback setting.
type AutoFailback uint8

// auto_failback values. Heartbeat's default is Legacy.
const (
	FailbackLegacy AutoFailback = iota // nice_failback off semantics
	FailbackOn                         // the primary takes its resources back
	FailbackOff                        // resources stay where they are
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

// MediaType names a heartbeat medium directive.
type MediaType string

// Media types of ha.cf.
const (
	Bcast  MediaType = "bcast"
	Mcast  MediaType = "mcast"
	Ucast  MediaType = "ucast"
	Serial MediaType = "serial"
)

// Medium is one heartbeat path, in file order.
type Medium struct {
	Line      int
	Type      MediaType
	Interface string     // bcast, mcast, ucast: network interface; serial: tty
	Peer      string     // ucast: peer address or host name
	Group     netip.Addr // mcast: multicast group
	Port      int        // UDP port (bcast/ucast: see Config.UDPPort; mcast: its own)
	TTL       int        // mcast
	Loop      bool       // mcast: IP_MULTICAST_LOOP
}

// PingGroup is a ping_group: reachable while any of its hosts answers.
type PingGroup struct {
	Line  int
	Name  string
	Hosts []string
}

// Respawn is a respawn or failfast directive: a client Heartbeat runs
// as User and restarts when it exits (exit code 100 excepted).
type Respawn struct {
	Line     int
	User     string
	Command  string // full command line; the program is its first word
	Failfast bool   // failfast: reboot the node if it dies
}

// APIAuth is an apiauth directive.
type APIAuth struct {
	Line   int
	Client string
	UIDs   []string
	GIDs   []string
}

// Stonith is a stonith or stonith_host directive.
type Stonith struct {
	Line       int
	Host       string // stonith_host: the node this applies to, or "*"
	Type       string
	ConfigFile string // stonith
	Params     string // stonith_host
}

// Note records a directive that was accepted but that directord does not
// act on, or a legal but suspicious configuration.
type Note struct {
	Line int
	Text string
}

// Config is the content of ha.cf after Heartbeat's defaults are applied.
type Config struct {
	File string

	LogFile      string // "" unless set
	DebugFile    string
	LogFacility  string // syslog facility name, "" unless set; "none" disables
	UseLogd      *bool  // nil unless set
	ConnLogdTime time.Duration

	Keepalive time.Duration // default 1s
	WarnTime  time.Duration // default DeadTime/2
	DeadTime  time.Duration // default 30s
	InitDead  time.Duration // default from DeadTime (see Parse)
	DeadPing  time.Duration // default DeadTime

	UDPPort int // the last udpport given, default 694; see Medium.Port
	Media   []Medium
	Baud    int // serial speed; default 19200

	Nodes      []string // lowercased, as on the wire
	PingNodes  []string
	PingGroups []PingGroup

	AutoFailback AutoFailback
	HopFudge     int // default 1
	Cluster      string
	AutoJoin     string // none (default), other, any
	UUIDFrom     string // file (default) or nodename

	MsgFmt                 string // classic (default) or netstring
	Compression            string // default zlib
	CompressionThreshold   int    // KiB, default 2
	TraditionalCompression bool

	Respawn  []Respawn
	APIAuth  []APIAuth
	Stonith  []Stonith
	Watchdog string

	Realtime       bool // default true
	RTPrio         int  // 0 unless set
	Debug          int
	MaxRexmitDelay time.Duration // default 250ms
	GenMethod      string        // hbgenmethod: file (default) or time
	Coredumps      bool          // default true
	CoreRoot       string
	LogBadPack     bool // default true
	SyslogMsgFmt   bool // default true
	MemReserve     int  // KiB, default 6500
	Env            []string
	QuorumServer   string

	// Unsupported lists directives accepted for compatibility that this
	// directord cannot honour (serial links, for one).
	Unsupported []Note
	// Warnings lists legal settings that probably do not do what was meant.
	Warnings []Note
}

// HasNode reports whether name (compared as Heartbeat does, lowercased)
// is a declared node.
func (c *Config) HasNode(name string) bool {
	name = lower(name)
	for _, n := range c.Nodes {
		if n == name {
			return true
		}
	}
	return false
}

// Load reads and parses the ha.cf file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ha.cf: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// maxLine bounds one line; Heartbeat's own buffer is smaller.
const maxLine = 64 * 1024

type parser struct {
	c    *Config
	line int
	// set records which single-valued directives were given, to apply
	// defaults afterwards and to refuse repeats Heartbeat refuses.
	set map[string]int
	// frozen holds the port each of the bcast and ucast plugins fixed
	// when its first medium was declared: each reads udpport once.
	frozen map[MediaType]int
}

// port returns the UDP port a new medium of type t uses.
func (p *parser) port(t MediaType) int {
	if port, ok := p.frozen[t]; ok {
		return port
	}
	p.frozen[t] = p.c.UDPPort
	return p.c.UDPPort
}

// Parse parses ha.cf text; name appears in errors as "name:line: …".
func Parse(r io.Reader, name string) (*Config, error) {
	p := &parser{c: &Config{File: name, UDPPort: DefaultUDPPort}, set: map[string]int{}, frozen: map[MediaType]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	for sc.Scan() {
		p.line++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.Trim(line, " \t\r\f\v")
		if line == "" {
			continue
		}
		directive, rest := line, ""
		if i := strings.IndexAny(line, " \t\f\v"); i >= 0 {
			directive, rest = line[:i], strings.TrimLeft(line[i:], ", \t\f\v")
		}
		if err := p.directive(directive, rest); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", name, p.line, directive, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, p.line+1, err)
	}
	if err := p.finish(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p.c, nil
}

// values splits option values on blanks and commas (Heartbeat's DELIMS).
func values(rest string) []string {
	return strings.FieldsFunc(rest, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\f' || r == '\v' || r == '\r'
	})
}

func one(rest string) (string, error) {
	v := values(rest)
	if len(v) != 1 {
		return "", fmt.Errorf("want exactly one value, got %d", len(v))
	}
	return v[0], nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// parseBool accepts what cl_str_to_boolean accepts.
func parseBool(s string) (bool, error) {
	switch lower(s) {
	case "true", "on", "yes", "y", "1":
		return true, nil
	case "false", "off", "no", "n", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (on/off, yes/no, true/false, 1/0)", s)
}

func atoi(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not an integer in %d..%d", s, lo, hi)
	}
	return n, nil
}

// validFacility reports whether s is a syslog facility name that
// cl_syslogfac_str2int knows, or "none".
func validFacility(s string) bool {
	switch s {
	case "none", "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news",
		"security", "syslog", "user", "uucp",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7":
		return true
	}
	return false
}

func (p *parser) directive(d, rest string) error {
	c := p.c
	// Single-valued directives: one value, given once.
	scalar := func() (string, error) {
		if prev, ok := p.set[d]; ok {
			return "", fmt.Errorf("already set on line %d", prev)
		}
		v, err := one(rest)
		if err != nil {
			return "", err
		}
		p.set[d] = p.line
		return v, nil
	}
	timeVal := func(dst *time.Duration, positive bool) error {
		v, err := scalar()
		if err != nil {
			return err
		}
		t, err := ParseTime(v)
		if err != nil {
			return err
		}
		if positive && t <= 0 {
			return fmt.Errorf("%q must be more than 0", v)
		}
		*dst = t
		return nil
	}
	boolVal := func(dst *bool) error {
		v, err := scalar()
		if err != nil {
			return err
		}
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*dst = b
		return nil
	}
	strVal := func(dst *string) error {
		v, err := scalar()
		*dst = v
		return err
	}
	switch d {
	case "logfile":
		return strVal(&c.LogFile)
	case "debugfile":
		return strVal(&c.DebugFile)
	case "logfacility":
		v, err := scalar()
		if err != nil {
			return err
		}
		if !validFacility(v) {
			return fmt.Errorf("unknown syslog facility %q (want e.g. daemon, local0..local7, none)", v)
		}
		c.LogFacility = v
	case "use_logd":
		var b bool
		if err := boolVal(&b); err != nil {
			return err
		}
		c.UseLogd = &b
	case "conn_logd_time":
		return timeVal(&c.ConnLogdTime, true)
	case "keepalive":
		return timeVal(&c.Keepalive, true)
	case "warntime":
		return timeVal(&c.WarnTime, true)
	case "deadtime":
		return timeVal(&c.DeadTime, false)
	case "initdead":
		return timeVal(&c.InitDead, false)
	case "deadping":
		return timeVal(&c.DeadPing, false)
	case "udpport":
		// May repeat: Heartbeat records the last value, but media
		// already declared keep the port they were given.
		v, err := one(rest)
		if err != nil {
			return err
		}
		port, err := atoi(v, 1, 65535)
		if err != nil {
			return err
		}
		for _, t := range []MediaType{Bcast, Ucast} {
			if old, ok := p.frozen[t]; ok && old != port {
				c.Warnings = append(c.Warnings, Note{p.line, fmt.Sprintf("udpport %d comes after %s statements, which keep port %d (Heartbeat reads udpport once per media type); move udpport above the media", port, t, old)})
			}
		}
		c.UDPPort = port
	case "bcast", "udp":
		if d == "udp" {
			c.Warnings = append(c.Warnings, Note{p.line, "directive 'udp' is the old name of 'bcast'"})
		}
		ifs := values(rest)
		if len(ifs) == 0 {
			return fmt.Errorf("want one or more interfaces")
		}
		for _, i := range ifs {
			c.Media = append(c.Media, Medium{Line: p.line, Type: Bcast, Interface: i, Port: p.port(Bcast)})
		}
	case "ucast":
		f := strings.Fields(rest)
		if len(f) < 2 {
			return fmt.Errorf("want \"ucast INTERFACE PEER\"")
		}
		if len(f) > 2 {
			return fmt.Errorf("one peer per ucast line (Heartbeat ignores %q); add another ucast line", strings.Join(f[2:], " "))
		}
		c.Media = append(c.Media, Medium{Line: p.line, Type: Ucast, Interface: f[0], Peer: f[1], Port: p.port(Ucast)})
	case "mcast":
		f := strings.Fields(rest)
		if len(f) != 5 {
			return fmt.Errorf("want \"mcast INTERFACE GROUP PORT TTL LOOP\"")
		}
		g, err := netip.ParseAddr(f[1])
		if err != nil || !g.Is4() || !g.IsMulticast() {
			return fmt.Errorf("%q is not an IPv4 multicast group (224.0.0.0/4)", f[1])
		}
		port, err := atoi(f[2], 1, 65535)
		if err != nil {
			return fmt.Errorf("port: %w", err)
		}
		ttl, err := atoi(f[3], 0, 255)
		if err != nil {
			return fmt.Errorf("ttl: %w", err)
		}
		loop, err := atoi(f[4], 0, 1)
		if err != nil {
			return fmt.Errorf("loop: %w", err)
		}
		c.Media = append(c.Media, Medium{Line: p.line, Type: Mcast, Interface: f[0], Group: g, Port: port, TTL: ttl, Loop: loop == 1})
	case "serial":
		ttys := values(rest)
		if len(ttys) == 0 {
			return fmt.Errorf("want one or more serial devices")
		}
		for _, t := range ttys {
			c.Media = append(c.Media, Medium{Line: p.line, Type: Serial, Interface: t})
		}
		c.Unsupported = append(c.Unsupported, Note{p.line, "serial heartbeats are not supported on this hardware; the serial media are ignored, use ucast, bcast or mcast"})
	case "baud":
		v, err := scalar()
		if err != nil {
			return fmt.Errorf("%w (Heartbeat: baudrate multiply specified)", err)
		}
		switch v {
		case "9600", "19200", "38400", "57600", "115200", "230400", "460800":
		default:
			return fmt.Errorf("invalid baud rate %q", v)
		}
		c.Baud, _ = strconv.Atoi(v)
		c.Unsupported = append(c.Unsupported, Note{p.line, "baud applies to serial heartbeats, which are not supported on this hardware"})
	case "auto_failback":
		v, err := scalar()
		if err != nil {
			return err
		}
		if lower(v) == "legacy" {
			c.AutoFailback = FailbackLegacy
			break
		}
		b, err := parseBool(v)
		if err != nil {
			return fmt.Errorf("want on, off or legacy: %w", err)
		}
		c.AutoFailback = FailbackOff
		if b {
			c.AutoFailback = FailbackOn
		}
	case "nice_failback":
		// Obsolete: on means auto_failback off, off means legacy.
		v, err := one(rest)
		if err != nil {
			return err
		}
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		if _, ok := p.set["auto_failback"]; ok {
			return fmt.Errorf("both nice_failback and auto_failback given")
		}
		p.set["auto_failback"] = p.line
		c.AutoFailback = FailbackLegacy
		if b {
			c.AutoFailback = FailbackOff
		}
		c.Warnings = append(c.Warnings, Note{p.line, fmt.Sprintf("nice_failback is obsolete; it means auto_failback %s", c.AutoFailback)})
	case "node":
		nodes := values(rest)
		if len(nodes) == 0 {
			return fmt.Errorf("want one or more node names")
		}
		for _, n := range nodes {
			n = lower(n)
			if c.HasNode(n) {
				return fmt.Errorf("node %q declared twice", n)
			}
			c.Nodes = append(c.Nodes, n)
		}
	case "ping":
		hosts := values(rest)
		if len(hosts) == 0 {
			return fmt.Errorf("want one or more ping nodes")
		}
		c.PingNodes = append(c.PingNodes, hosts...)
	case "ping_group":
		f := strings.Fields(rest)
		if len(f) < 2 {
			return fmt.Errorf("want \"ping_group NAME HOST...\"")
		}
		for _, g := range c.PingGroups {
			if g.Name == f[0] {
				return fmt.Errorf("ping group %q declared twice (line %d)", f[0], g.Line)
			}
		}
		c.PingGroups = append(c.PingGroups, PingGroup{Line: p.line, Name: f[0], Hosts: f[1:]})
	case "respawn", "failfast":
		user, cmd := strings.TrimSpace(rest), ""
		if i := strings.IndexAny(user, " \t"); i >= 0 {
			user, cmd = user[:i], strings.TrimSpace(user[i:])
		}
		if user == "" || cmd == "" {
			return fmt.Errorf("want \"%s USER /full/path/to/command [args]\"", d)
		}
		if cmd[0] != '/' {
			return fmt.Errorf("command %q is not a full pathname", cmd)
		}
		c.Respawn = append(c.Respawn, Respawn{Line: p.line, User: user, Command: cmd, Failfast: d == "failfast"})
	case "apiauth":
		f := strings.Fields(rest)
		if len(f) < 2 {
			return fmt.Errorf("want \"apiauth CLIENT [uid=LIST] [gid=LIST]\"")
		}
		a := APIAuth{Line: p.line, Client: f[0]}
		for _, kv := range f[1:] {
			switch {
			case strings.HasPrefix(kv, "uid=") && a.UIDs == nil:
				a.UIDs = strings.Split(kv[4:], ",")
			case strings.HasPrefix(kv, "gid=") && a.GIDs == nil:
				a.GIDs = strings.Split(kv[4:], ",")
			default:
				return fmt.Errorf("%q is not uid=LIST or gid=LIST, or repeats one", kv)
			}
		}
		for _, prev := range c.APIAuth {
			if prev.Client == a.Client {
				return fmt.Errorf("client %q already has apiauth on line %d", a.Client, prev.Line)
			}
		}
		c.APIAuth = append(c.APIAuth, a)
	case "watchdog":
		if err := strVal(&c.Watchdog); err != nil {
			return fmt.Errorf("%w (Heartbeat: watchdog device multiply specified)", err)
		}
	case "hopfudge":
		v, err := scalar()
		if err != nil {
			return err
		}
		c.HopFudge, err = atoi(v, 0, 255)
		return err
	case "crm", "pacemaker":
		if prev, ok := p.set["pacemaker"]; ok {
			return fmt.Errorf("crm/pacemaker already given on line %d", prev)
		}
		v, err := one(rest)
		if err != nil {
			return err
		}
		p.set["pacemaker"] = p.line
		if b, err := parseBool(v); err != nil || b {
			return fmt.Errorf("%s %s: Pacemaker (CRM) resource management is not supported; use haresources with \"%s off\"", d, v, d)
		}
	case "msgfmt":
		v, err := scalar()
		if err != nil {
			return err
		}
		if v != "classic" && v != "netstring" {
			return fmt.Errorf("want classic or netstring, got %q", v)
		}
		c.MsgFmt = v
	case "traditional_compression":
		return boolVal(&c.TraditionalCompression)
	case "compression":
		v, err := scalar()
		if err != nil {
			return err
		}
		c.Compression = v
	case "compression_threshold":
		v, err := scalar()
		if err != nil {
			return err
		}
		c.CompressionThreshold, err = atoi(v, 1, 256)
		return err
	case "autojoin":
		v, err := scalar()
		if err != nil {
			return err
		}
		switch lower(v) {
		case "none", "other", "any":
			c.AutoJoin = lower(v)
		default:
			return fmt.Errorf("want none, other or any, got %q", v)
		}
	case "uuidfrom":
		v, err := scalar()
		if err != nil {
			return err
		}
		if v != "file" && v != "nodename" {
			return fmt.Errorf("want file or nodename, got %q", v)
		}
		c.UUIDFrom = v
	case "stonith":
		f := strings.Fields(rest)
		if len(f) < 1 {
			return fmt.Errorf("want \"stonith TYPE CONFIGFILE\"")
		}
		c.Stonith = append(c.Stonith, Stonith{Line: p.line, Type: f[0], ConfigFile: strings.Join(f[1:], " ")})
	case "stonith_host":
		f := strings.Fields(rest)
		if len(f) < 2 {
			return fmt.Errorf("want \"stonith_host HOST|* TYPE PARAMS...\"")
		}
		c.Stonith = append(c.Stonith, Stonith{Line: p.line, Host: lower(f[0]), Type: f[1], Params: strings.Join(f[2:], " ")})
	case "realtime":
		return boolVal(&c.Realtime)
	case "rtprio":
		v, err := scalar()
		if err != nil {
			return err
		}
		c.RTPrio, err = atoi(v, 1, 99)
		return err
	case "debug":
		v, err := scalar()
		if err != nil {
			return err
		}
		c.Debug, err = atoi(v, 0, 255)
		return err
	case "max_rexmit_delay":
		v, err := scalar()
		if err != nil {
			return err
		}
		ms, err := atoi(v, 1, 1<<30)
		c.MaxRexmitDelay = time.Duration(ms) * time.Millisecond
		return err
	case "hbgenmethod":
		v, err := scalar()
		if err != nil {
			return err
		}
		if v != "file" && v != "time" {
			return fmt.Errorf("want file or time, got %q", v)
		}
		c.GenMethod = v
	case "coredumps":
		return boolVal(&c.Coredumps)
	case "coreroot":
		return strVal(&c.CoreRoot)
	case "log_badpack":
		return boolVal(&c.LogBadPack)
	case "syslogmsgfmt":
		return boolVal(&c.SyslogMsgFmt)
	case "memreserve":
		v, err := scalar()
		if err != nil {
			return err
		}
		c.MemReserve, err = atoi(v, 1, 1<<30)
		return err
	case "cluster":
		return strVal(&c.Cluster)
	case "quorum_server":
		return strVal(&c.QuorumServer)
	case "env":
		kv := strings.TrimSpace(rest)
		if i := strings.IndexByte(kv, '='); i <= 0 {
			return fmt.Errorf("want \"env NAME=VALUE\"")
		}
		c.Env = append(c.Env, kv)
	case "use_apphbd", "record_config_changes", "record_pengine_inputs", "enable_config_writes", "crmd_spawns_pengine":
		var b bool
		if err := boolVal(&b); err != nil {
			return err
		}
		c.Unsupported = append(c.Unsupported, Note{p.line, d + " has no effect without Pacemaker/apphbd; ignored"})
	case "crm_daemon_dir":
		var s string
		if err := strVal(&s); err != nil {
			return err
		}
		c.Unsupported = append(c.Unsupported, Note{p.line, d + " has no effect without Pacemaker; ignored"})
	default:
		return fmt.Errorf("unknown directive")
	}
	return nil
}

// finish applies Heartbeat's defaults and the checks of its init_config.
func (p *parser) finish() error {
	c := p.c
	if _, ok := p.set["keepalive"]; !ok {
		c.Keepalive = time.Second
	}
	if _, ok := p.set["deadtime"]; !ok {
		c.DeadTime = 30 * time.Second
	}
	if _, ok := p.set["warntime"]; !ok {
		c.WarnTime = c.DeadTime / 2
	}
	if _, ok := p.set["initdead"]; !ok {
		switch {
		case c.DeadTime > 10*time.Second:
			c.InitDead = c.DeadTime
		case c.DeadTime < 6*time.Second:
			c.InitDead = 12 * time.Second
		default:
			c.InitDead = 2 * c.DeadTime
		}
	}
	deadping, pingSet := p.set["deadping"]
	if !pingSet {
		c.DeadPing = c.DeadTime
	}
	defaults := []struct {
		key string
		set func()
	}{
		{"hopfudge", func() { c.HopFudge = 1 }},
		{"baud", func() { c.Baud = 19200 }},
		{"msgfmt", func() { c.MsgFmt = "classic" }},
		{"compression", func() { c.Compression = "zlib" }},
		{"compression_threshold", func() { c.CompressionThreshold = 2 }},
		{"max_rexmit_delay", func() { c.MaxRexmitDelay = 250 * time.Millisecond }},
		{"conn_logd_time", func() { c.ConnLogdTime = 60 * time.Second }},
		{"realtime", func() { c.Realtime = true }},
		{"hbgenmethod", func() { c.GenMethod = "file" }},
		{"autojoin", func() { c.AutoJoin = "none" }},
		{"uuidfrom", func() { c.UUIDFrom = "file" }},
		{"coredumps", func() { c.Coredumps = true }},
		{"log_badpack", func() { c.LogBadPack = true }},
		{"syslogmsgfmt", func() { c.SyslogMsgFmt = true }},
		{"memreserve", func() { c.MemReserve = 6500 }},
		{"cluster", func() { c.Cluster = "linux-ha" }},
	}
	for _, d := range defaults {
		if _, ok := p.set[d.key]; !ok {
			d.set()
		}
	}

	if c.DeadTime <= 2*c.Keepalive {
		return fmt.Errorf("deadtime %v is too small compared to keepalive %v (must be more than twice it)", c.DeadTime, c.Keepalive)
	}
	if c.InitDead < c.DeadTime {
		return fmt.Errorf("initdead %v is smaller than deadtime %v", c.InitDead, c.DeadTime)
	}
	if c.InitDead < 10*time.Second {
		c.Warnings = append(c.Warnings, Note{p.set["initdead"], fmt.Sprintf("initdead %v may be too small: it should be >= deadtime and >= 10s for slow network start-up", c.InitDead)})
	}
	if pingSet && c.DeadPing <= 2*c.Keepalive {
		return fmt.Errorf("line %d: deadping %v is too small compared to keepalive %v", deadping, c.DeadPing, c.Keepalive)
	}
	if c.WarnTime >= c.DeadTime {
		c.Warnings = append(c.Warnings, Note{p.set["warntime"], fmt.Sprintf("warntime %v is not below deadtime %v: no late-heartbeat warning will come before a node is declared dead", c.WarnTime, c.DeadTime)})
	}
	usable := 0
	for _, m := range c.Media {
		if m.Type != Serial {
			usable++
		}
	}
	if usable == 0 {
		return fmt.Errorf("no heartbeat media: add a ucast, bcast or mcast line")
	}
	if len(c.Nodes) == 0 && c.AutoJoin != "any" {
		return fmt.Errorf("no nodes defined: add \"node NAME\" for each cluster member (uname -n)")
	}
	if c.AutoFailback == FailbackLegacy {
		c.Warnings = append(c.Warnings, Note{p.set["auto_failback"], "auto_failback is legacy (Heartbeat's default); auto_failback on or off is recommended"})
	}
	return nil
}
