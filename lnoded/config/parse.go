package config

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxRange bounds how many real servers one "A->B" range may expand to.
// ldirectord has no bound (and would build a 2^32-element list); a /16's
// worth is more than any director serves.
const maxRange = 1 << 16

// ParseFile reads and parses an lnoded.cf file. Errors are reported under
// the file's base name, as ldirectord users know it ("lnoded.cf:12: …").
func ParseFile(ctx context.Context, path string, opts *Options) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lnoded config: %w", err)
	}
	return Parse(ctx, filepath.Base(path), src, opts)
}

// Parse parses the text of an lnoded.cf (ldirectord.cf syntax) named name.
//
// It accepts exactly the files ldirectord 4.12 accepts, apart from the
// differences listed in docs/lnoded-differences.md, and resolves every
// default the way ldirectord's code does. Host names and service names are
// resolved as ldirectord resolves them (see Options); ctx bounds those
// lookups. On any error it returns a nil Config and an ErrorList with every
// error found, each naming the line and what was expected.
func Parse(ctx context.Context, name string, src []byte, opts *Options) (*Config, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	p := &parser{
		file: name,
		res:  newResolver(ctx, o),
		cfg:  &Config{File: name, Global: defaultGlobal()},
		seen: map[string]int{},
	}
	p.hostname = o.Hostname
	if p.hostname == "" {
		p.hostname = os.Getenv("HOSTNAME")
	}
	if p.hostname == "" {
		p.hostname, _ = os.Hostname()
	}
	p.parse(splitLines(src))
	if len(p.errs) > 0 {
		// Real servers are checked when their block ends; report in line
		// order all the same.
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
		return nil, p.errs
	}
	p.resolveDefaults()
	return p.cfg, nil
}

// splitLines splits like Perl's <FH>: on "\n", the last line may lack one.
func splitLines(src []byte) []string {
	s := string(src)
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func defaultGlobal() Global {
	return Global{
		CheckInterval:    10 * time.Second,
		CheckCount:       1,
		FailureCount:     1,
		LogFile:          "/var/log/ldirectord.log",
		EmailAlertStatus: AlertAll,
		CleanStop:        true,
	}
}

type parser struct {
	file     string
	res      *resolver
	cfg      *Config
	hostname string
	errs     ErrorList
	// seen maps ldirectord's virtual id string to the line that defined it.
	seen map[string]int
	// virtuals are the blocks parsed so far, resolved against the globals
	// once the whole file is read (globals may follow the blocks).
	virtuals []*vblock
}

func (p *parser) errorf(line int, directive, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Directive: directive, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) wrapErr(line int, directive string, err error, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Directive: directive, Msg: fmt.Sprintf(format, args...), Err: err})
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, Diagnostic{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// vblock is a virtual block while it is read: what was written, before the
// globals are applied.
type vblock struct {
	v      Virtual
	failed bool // the virtual= line itself was bad

	checkTimeout, negotiateTimeout int64 // -1: not written
	checkCount, failureCount       int64 // -1: not written
	checkInterval                  int64 // 0: not written
	checkPortSet                   bool
	serviceSet                     bool
	quiescent, cleanStop           *bool
	emailAlert, smtp, fallbackCmd  *string
	emailAlertFreq                 *int64
	emailAlertStatus               *AlertStatus
	fallback                       *Fallback
	netmask                        string
	// hostText and portText are the address and port as written; portText
	// becomes the port as ldirectord keeps it once resolved.
	hostText, portText string
	// fallbackText is a fallback= value, read at fallbackLine.
	fallbackText, fallbackDir string
	fallbackLine              int
	reals                     []rawReal
	drPathLine                int // the line of drpathcheck=yes, 0 if none
	// realOwn says, for each of v.Reals, what its line gave of its own.
	realOwn []realOwn
}

// realOwn records whether a real= line set its own request and receive.
type realOwn struct{ request, receive bool }

// parse walks the lines the way read_config does: a virtual= line opens a
// block that takes every following line indented by at least four columns
// (a tab counts four); comment lines inside do not end it, an empty line
// does.
func (p *parser) parse(lines []string) {
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		for {
			m := reVirtual.FindStringSubmatch(line)
			if m == nil {
				break
			}
			b := p.startVirtual(i+1, m[1] == "6", m[2])
			// ldirectord reads a virtual= on the last line twice (its inner
			// loop leaves the line in place at end of file) and rejects the
			// second reading as a duplicate.
			lastLine := i+1 == len(lines)
			var pending *string
			for i+1 < len(lines) {
				i++
				raw := lines[i]
				if reCommentLine.MatchString(raw) {
					continue
				}
				s := raw
				if j := strings.IndexByte(s, '#'); j >= 0 {
					s = s[:j]
				}
				s = strings.ReplaceAll(s, "\t", "    ")
				im := reIndented.FindStringSubmatch(s)
				if im == nil {
					pending = &lines[i]
					break
				}
				p.virtualDirective(b, i+1, im[1])
			}
			p.endVirtual(b)
			if lastLine && !b.failed {
				p.errorf(b.v.Line, directiveName(line), "a virtual service needs at least one line after it (ldirectord rejects one on the last line of the file as a duplicate)")
			}
			if pending == nil {
				line = ""
				break
			}
			line = *pending
		}
		if reBlankLine.MatchString(line) || reCommentLine.MatchString(line) {
			continue
		}
		p.globalDirective(i+1, line)
	}
}

// startVirtual parses the value of a virtual= or virtual6= line.
func (p *parser) startVirtual(line int, ipv6 bool, val string) *vblock {
	b := &vblock{
		checkTimeout: -1, negotiateTimeout: -1, checkCount: -1, failureCount: -1,
	}
	v := &b.v
	v.Line = line
	v.IPv6 = ipv6
	v.CheckType = CheckNegotiate
	v.Protocol = TCP
	v.Scheduler = "wrr"
	v.CheckCommand = "/bin/true"
	v.Request = "/"
	v.HTTPMethod = "GET"
	dir := "virtual"
	if ipv6 {
		dir = "virtual6"
	}
	var host string
	switch {
	case !ipv6 && reVirtualIPv4.MatchString(val):
		m := reVirtualIPv4.FindStringSubmatch(val)
		host, b.portText = m[1], m[2]
	case reVirtualHost.MatchString(val):
		m := reVirtualHost.FindStringSubmatch(val)
		host, b.portText = m[1], m[2]
	case reVirtualFWM.MatchString(val):
		fwm := reVirtualFWM.FindStringSubmatch(val)[1]
		n, err := strconv.ParseUint(fwm, 10, 32)
		if err != nil || n == 0 {
			p.errorf(line, dir, "firewall mark must be between 1 and %d, got %q", uint32(math.MaxUint32), fwm)
			b.failed = true
		}
		v.FWMark = uint32(n)
		v.Protocol = FWM
		v.Service = ServiceNone
		b.serviceSet = true
		b.portText = fwm // the id ldirectord dedups on
		if strings.ContainsAny(val, ".:") {
			// "virtual=192.0.2.1" (no port) is firewall mark 192 to ldirectord.
			p.warnf(line, "%s: %q taken as firewall mark %s, as ldirectord does; write ADDRESS:PORT for an address", dir, val, fwm)
		}
		return b
	case reVirtualIPv6.MatchString(val):
		m := reVirtualIPv6.FindStringSubmatch(val)
		if !ipv6 {
			p.errorf(line, dir, "cannot specify an IPv6 address here, use virtual6 (got %q)", val)
			b.failed = true
			return b
		}
		if a, err := netip.ParseAddr(m[1]); err != nil || !a.Is6() {
			p.errorf(line, dir, "invalid IPv6 address %q", m[1])
			b.failed = true
			return b
		}
		host, b.portText = "["+m[1]+"]", m[2]
	default:
		p.errorf(line, dir, "expected ADDRESS:PORT, HOST:SERVICE, [IPV6]:PORT or a firewall mark, got %q", val)
		b.failed = true
		return b
	}
	// The address is resolved when the block ends, when the protocol (and so
	// the port name's meaning) is known; keep the text until then.
	v.Addr = netip.Addr{}
	b.hostText = host
	if reUDPPort.MatchString(host + ":" + b.portText) {
		v.Protocol = UDP
	}
	return b
}

// virtualDirective handles one indented line of a virtual block (comment
// already cut, tabs already expanded, indentation removed).
func (p *parser) virtualDirective(b *vblock, line int, cmd string) {
	v := &b.v
	name := directiveName(cmd)
	if m := vReal.FindStringSubmatch(cmd); m != nil {
		is6 := m[2] == "6"
		if is6 != v.IPv6 {
			want := "real"
			if v.IPv6 {
				want = "real6"
			}
			p.errorf(line, m[1], "cannot specify %q in this virtual block, use %q", m[1], want)
			return
		}
		b.reals = append(b.reals, rawReal{text: m[3], line: line})
		return
	}
	if val, ok := vRequest.match(cmd); ok {
		if val == "" {
			p.errorf(line, "request", `expected request="NON-EMPTY", got an empty string`)
			return
		}
		if !strings.HasPrefix(val, "/") {
			val = "/" + val
		}
		v.Request = val
		return
	}
	if val, ok := vReceive.match(cmd); ok {
		if val == "" {
			p.errorf(line, "receive", `expected receive="NON-EMPTY REGEXP", got an empty string`)
			return
		}
		v.Receive = val
		return
	}
	if val, ok := vChecktype.match(cmd); ok {
		if d, ok := firstMatch(reDigits, val); ok {
			n, ok := boundedInt(d, math.MaxInt32)
			if !ok {
				p.errorf(line, "checktype", "number of connect checks %s is larger than %d", d, math.MaxInt32)
				return
			}
			v.CheckType, v.NumConnects = CheckCombined, int(n)
			return
		}
		w, _ := firstMatch(reWordDash, val)
		ct, ok := map[string]CheckType{
			"connect": CheckConnect, "negotiate": CheckNegotiate, "ping": CheckPing,
			"off": CheckOff, "on": CheckOn, "external": CheckExternal, "external-perl": CheckExternalPerl,
		}[w]
		if !ok {
			p.errorf(line, "checktype", "expected connect, negotiate, on, off, ping, external, external-perl or a number, got %q", val)
			return
		}
		v.CheckType, v.NumConnects = ct, 0
		return
	}
	if val, ok := matchEither(cmd, vCheckcommandQ, vCheckcommand); ok {
		if val == "" {
			p.errorf(line, "checkcommand", "expected a command, got nothing")
			return
		}
		v.CheckCommand = val
		return
	}
	if val, ok := vChecktimeout.match(cmd); ok {
		if n, ok := p.positive(line, "checktimeout", val); ok {
			b.checkTimeout = n
		}
		return
	}
	if _, ok := vConnecttimeout.match(cmd); ok {
		p.errorf(line, "connecttimeout", "deprecated in favour of negotiatetimeout")
		return
	}
	if val, ok := vNegotiate.match(cmd); ok {
		if n, ok := p.positive(line, "negotiatetimeout", val); ok {
			b.negotiateTimeout = n
		}
		return
	}
	if val, ok := vCheckcount.match(cmd); ok {
		if n, ok := p.positive(line, "checkcount", val); ok {
			b.checkCount = n
			p.warnf(line, "checkcount is deprecated and slated for removal, see failurecount")
		}
		return
	}
	if val, ok := vFailurecount.match(cmd); ok {
		if n, ok := p.positive(line, "failurecount", val); ok {
			b.failureCount = n
		}
		return
	}
	if val, ok := vCheckinterval.match(cmd); ok {
		if n, ok := p.positive(line, "checkinterval", val); ok {
			b.checkInterval = n
		}
		return
	}
	if val, ok := vCheckport.match(cmd); ok {
		d, ok := firstMatch(reDigits, val)
		n, inRange := boundedInt(d, 65535)
		if !ok || !inRange || n == 0 {
			// ldirectord rejects these too (1..65535), so no "larger than".
			p.errorf(line, "checkport", "expected a port from 1 to 65535, got %q", val)
			return
		}
		v.CheckPort, b.checkPortSet = uint16(n), true
		return
	}
	for _, q := range []struct {
		d    directive
		name string
		dst  *string
	}{{vLogin, "login", &v.Login}, {vPasswd, "passwd", &v.Passwd}, {vDatabase, "database", &v.Database}, {vSecret, "secret", &v.Secret}} {
		if val, ok := q.d.match(cmd); ok {
			if val == "" {
				p.errorf(line, q.name, `expected %s="NON-EMPTY", got an empty string`, q.name)
				return
			}
			*q.dst = val
			return
		}
	}
	if val, ok := vLoad.match(cmd); ok {
		w, ok := firstMatch(reWord, val)
		if !ok {
			p.errorf(line, "load", `expected load="WORD", got %q`, val)
			return
		}
		v.Load = w
		return
	}
	if val, ok := vScheduler.match(cmd); ok {
		// ldirectord takes the first run of lowercase letters and leaves the
		// rest to ipvsadm, so new kernel schedulers need no update here.
		s, ok := firstMatch(reLower, val)
		if !ok {
			p.errorf(line, "scheduler", "expected a scheduler name (lowercase letters), got %q", val)
			return
		}
		v.Scheduler = s
		return
	}
	if val, ok := vPersistent.match(cmd); ok {
		d, ok := firstMatch(reDigits, val)
		if !ok {
			p.errorf(line, "persistent", "expected a timeout in seconds, got %q", val)
			return
		}
		n, inRange := boundedInt(d, math.MaxInt32)
		if !inRange {
			p.errorf(line, "persistent", "timeout %s is larger than %d", d, math.MaxInt32)
			return
		}
		v.Persistent, v.PersistentTimeout = true, time.Duration(n)*time.Second
		return
	}
	if val, ok := vSchedflags.match(cmd); ok {
		f, ok := firstMatch(reNonBlank, val)
		if !ok {
			p.errorf(line, "schedflags", "expected scheduler flags, got nothing")
			return
		}
		v.SchedFlags = f
		return
	}
	if val, ok := vNetmask.match(cmd); ok {
		p.netmask(b, line, val)
		return
	}
	if val, ok := vProtocol.match(cmd); ok {
		w, ok := firstMatch(reWord, val)
		switch {
		case !ok:
			p.errorf(line, "protocol", "expected tcp, udp or fwm, got %q", val)
		case v.Protocol == FWM && w != "fwm":
			p.errorf(line, "protocol", "must be fwm for a firewall-mark virtual service, got %q", w)
		case v.Protocol != FWM && w == "tcp":
			v.Protocol = TCP
		case v.Protocol != FWM && w == "udp":
			v.Protocol = UDP
		case v.Protocol != FWM:
			p.errorf(line, "protocol", "must be tcp or udp for an ADDRESS:PORT virtual service, got %q", w)
		}
		return
	}
	if val, ok := vOps.match(cmd); ok {
		if y, ok := p.yesNo(line, "ops", val); ok {
			v.OPS = y
		}
		return
	}
	if val, ok := vService.match(cmd); ok {
		w, _ := firstMatch(reWord, val)
		s := Service(w)
		known := false
		for _, k := range knownServices {
			known = known || k == s
		}
		if !known {
			p.errorf(line, "service", "expected one of dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission, got %q", val)
			return
		}
		v.Service, b.serviceSet = s, true
		// ldirectord fills these in when it reads service=, only if they are
		// still empty at that point in the block.
		switch {
		case s == ServiceFTP && v.Login == "":
			v.Login = "anonymous"
		case s == ServiceSIP && v.Login == "":
			v.Login = "ldirectord@" + p.hostname
		}
		if s == ServiceFTP && v.Passwd == "" {
			v.Passwd = "ldirectord@" + p.hostname
		}
		return
	}
	if val, ok := vHTTPMethod.match(cmd); ok {
		w, _ := firstMatch(reWord, val)
		w = strings.ToUpper(w)
		if w != "GET" && w != "HEAD" {
			p.errorf(line, "httpmethod", "expected GET or HEAD, got %q", val)
			return
		}
		v.HTTPMethod = w
		return
	}
	if val, ok := vVirtualhost.match(cmd); ok {
		v.VirtualHost = reVHost.FindStringSubmatch(val)[1]
		return
	}
	if m := vFallback.FindStringSubmatch(cmd); m != nil {
		if (m[2] == "6") != v.IPv6 {
			want := "fallback"
			if v.IPv6 {
				want = "fallback6"
			}
			p.errorf(line, m[1], "cannot specify %q in this virtual block, use %q", m[1], want)
			return
		}
		b.fallbackText, b.fallbackLine, b.fallbackDir = m[3], line, m[1]
		return
	}
	if val, ok := matchEither(cmd, vFallbackcmdQ, vFallbackcmd); ok {
		if val == "" {
			p.errorf(line, "fallbackcommand", "expected a command, got nothing")
			return
		}
		b.fallbackCmd = &val
		return
	}
	if val, ok := vQuiescent.match(cmd); ok {
		if y, ok := p.yesNo(line, "quiescent", val); ok {
			b.quiescent = &y
		}
		return
	}
	if val, ok := vEmailalert.match(cmd); ok {
		if a, ok := p.emailAlert(line, val); ok {
			b.emailAlert = &a
		}
		return
	}
	if val, ok := vEmailalertfreq.match(cmd); ok {
		if n, ok := p.alertFreq(line, val); ok {
			b.emailAlertFreq = &n
		}
		return
	}
	if val, ok := vEmailalertstat.match(cmd); ok {
		if st, ok := p.alertStatus(line, val); ok {
			b.emailAlertStatus = &st
		}
		return
	}
	if val, ok := matchEither(cmd, vMonitorfileQ, vMonitorfile); ok {
		// ldirectord test-opens the file here (creating it); lnoded opens it
		// when the service starts and reports a failure then.
		if val == "" {
			p.errorf(line, "monitorfile", "expected a file name, got nothing")
			return
		}
		v.MonitorFile = val
		return
	}
	if val, ok := vCleanstop.match(cmd); ok {
		if y, ok := p.yesNo(line, "cleanstop", val); ok {
			b.cleanStop = &y
		}
		return
	}
	if val, ok := vSMTP.match(cmd); ok {
		if s, ok := p.smtp(line, val); ok {
			b.smtp = &s
		}
		return
	}
	if val, ok := vServicename.match(cmd); ok {
		v.ServiceName = val
		return
	}
	if val, ok := vComment.match(cmd); ok {
		v.Comment = val
		return
	}
	if val, ok := vDRPathCheck.match(cmd); ok && !p.res.opts.NoExtensions {
		if y, ok := p.yesNo(line, "drpathcheck", val); ok {
			v.DRPathCheck = y
			b.drPathLine = line
		}
		return
	}
	if name != "" && isQuotedDirective(name) {
		p.errorf(line, name, `expected %s="VALUE" (double quotes required), got %q`, name, strings.TrimSpace(cmd))
		return
	}
	p.errorf(line, "", "unknown directive in a virtual block: %q", strings.TrimSpace(cmd))
}

// isQuotedDirective names the virtual directives whose value must be quoted,
// for a better message than "unknown".
func isQuotedDirective(name string) bool {
	switch name {
	case "request", "receive", "login", "passwd", "database", "secret", "load":
		return true
	}
	return false
}

func directiveName(s string) string {
	m := reDirectiveName.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// netmask checks netmask= as ldirectord does (dotted quad for IPv4, a prefix
// length for IPv6) and, beyond it, that the dotted quad is a real netmask:
// ldirectord passes any four numbers on to ipvsadm, which then fails.
func (p *parser) netmask(b *vblock, line int, val string) {
	if b.v.IPv6 {
		n, ok := boundedInt(val, 128)
		if !reAllDigits.MatchString(val) || !ok || n < 1 {
			p.errorf(line, "netmask", "expected a prefix length between 1 and 128, got %q", val)
			return
		}
		b.v.PersistenceBits = int(n)
		b.netmask = val
		return
	}
	if !reDotQuad.MatchString(val) {
		p.errorf(line, "netmask", "expected a dotted-quad netmask such as 255.255.255.0, got %q", val)
		return
	}
	a, err := netip.ParseAddr(val)
	if err != nil {
		p.errorf(line, "netmask", "%q is not a netmask: an octet is above 255", val)
		return
	}
	bits := -1
	if a.Is4() {
		m := a.As4()
		u := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
		ones := 0
		for u&(1<<31) != 0 {
			ones++
			u <<= 1
		}
		if u == 0 {
			bits = ones
		}
	}
	if bits < 0 {
		p.errorf(line, "netmask", "%q is not a contiguous IPv4 netmask", val)
		return
	}
	b.v.PersistenceBits = bits
	b.netmask = val
}

// endVirtual resolves what could not be resolved before the block's protocol
// was known: the address and port, the fallback, and the real servers.
func (p *parser) endVirtual(b *vblock) {
	v := &b.v
	dir := "virtual"
	if v.IPv6 {
		dir = "virtual6"
	}
	if b.fallbackDir != "" {
		defPort := b.portText
		if v.Protocol == FWM {
			defPort = "0" // ldirectord's port of a firewall-mark service
		}
		f, ok := p.parseFallback(b.fallbackLine, b.fallbackDir, b.fallbackText, defPort, v.IPv6, v.Protocol)
		if ok {
			b.fallback = &f
		}
	}
	if b.failed {
		p.resolveReals(b) // still report errors in the real= lines
		return
	}
	if v.Protocol != FWM {
		a, err := p.res.host(b.hostText, v.IPv6)
		if err != nil {
			p.wrapErr(v.Line, dir, err, "cannot resolve %q", b.hostText)
			b.failed = true
		}
		v.Addr = a
		text, port, ok := p.res.port(b.portText, v.Protocol.String())
		if !ok {
			p.errorf(v.Line, dir, "unknown port or %s service name %q", v.Protocol, b.portText)
			b.failed = true
		}
		b.portText = text
		v.Port = port
		if !b.serviceSet {
			// ldirectord compares the port's text: "080" guesses nothing.
			v.Service = ServiceNone
			for _, e := range servicePorts {
				if strconv.Itoa(int(e.port)) == text {
					v.Service = e.service
				}
			}
		}
	}
	p.resolveReals(b)
	if b.failed {
		return
	}
	p.checkDRPath(b)
	id := v.Protocol.String() + ":"
	if v.Protocol == FWM {
		if v.IPv6 {
			id = "fwm6:"
		}
		id += b.portText
	} else {
		id += v.Addr.String() + ":" + b.portText
	}
	if first, dup := p.seen[id]; dup {
		p.errorf(v.Line, dir, "duplicate virtual service (also at line %d)", first)
		return
	}
	p.seen[id] = v.Line
	p.virtuals = append(p.virtuals, b)
}

// checkDRPath rejects drpathcheck=yes where the DR-path probe cannot run:
// it speaks TCP over IPv4 to a VIP and port, through direct routing.
func (p *parser) checkDRPath(b *vblock) {
	v := &b.v
	if !v.DRPathCheck {
		return
	}
	switch {
	case v.IPv6:
		p.errorf(b.drPathLine, "drpathcheck", "only for IPv4 virtual services (virtual=), not virtual6")
	case v.Protocol != TCP:
		p.errorf(b.drPathLine, "drpathcheck", "only for TCP virtual services, not protocol %s", v.Protocol)
	case v.Port == 0:
		p.errorf(b.drPathLine, "drpathcheck", "needs the virtual service's port, got port 0")
	}
	for _, r := range v.Reals {
		if r.Method != MethodGate {
			p.errorf(r.Line, "drpathcheck", "real server %s uses %s; drpathcheck probes direct routing (gate) only", r.Addr, r.Method)
		}
	}
}

// rawReal is a real= value waiting for its virtual's protocol.
type rawReal struct {
	text string
	line int
}

func (p *parser) resolveReals(b *vblock) {
	for _, rr := range b.reals {
		p.realLine(b, rr)
	}
}

// realLine parses one real= value as _ld_read_config_real_resolve and
// add_real_server do.
func (p *parser) realLine(b *vblock, rr rawReal) {
	const usage = `expected ADDRESS[->END][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"] [l:LOWER] [u:UPPER]`
	dir := "real"
	if b.v.IPv6 {
		dir = "real6"
	}
	m := reReal.FindStringSubmatch(rr.text)
	if m == nil {
		p.errorf(rr.line, dir, "%s, got %q", usage, rr.text)
		return
	}
	first, last, portText, flags := m[1], m[3], m[5], m[6]
	if m[4] == "" {
		portText = "0"
	}
	a1, err := p.res.host(first, b.v.IPv6)
	if err != nil {
		p.wrapErr(rr.line, dir, err, "cannot resolve real server %q", first)
		return
	}
	_, port, ok := p.res.port(portText, "")
	if !ok {
		p.errorf(rr.line, dir, "unknown port or service name %q", portText)
		return
	}
	r := Real{Line: rr.line, Port: port, Weight: 1}

	mm := reRealMethod.FindStringSubmatch(flags)
	if mm == nil {
		p.errorf(rr.line, dir, "%s: forwarding method missing, got %q", usage, rr.text)
		return
	}
	meth, ok := parseMethod(mm[1])
	if !ok {
		p.errorf(rr.line, dir, "forwarding method must be gate, masq or ipip, got %q", mm[1])
		return
	}
	r.Method = meth
	rest := mm[2]
	if wm := reRealWeight.FindStringSubmatch(rest); wm != nil {
		n, ok := boundedInt(wm[1], math.MaxInt32)
		if !ok {
			p.errorf(rr.line, dir, "weight %s is larger than %d", wm[1], math.MaxInt32)
			return
		}
		r.Weight, rest = int(n), wm[2]
	}
	own := realOwn{}
	if cm := reRealCheck.FindStringSubmatch(rest); cm != nil {
		if strings.HasPrefix(cm[1], "/") {
			// ldirectord's add_real_server reads $2 and $3 after a
			// successful /^\// match has reset them: a request that starts
			// with "/" loses its receive string and everything after it on
			// the line (thresholds, junk), and the check URL is then built
			// from the virtual's request. lnoded does the same, and says so.
			r.Request, own.request, rest = cm[1], true, ""
			p.warnf(rr.line, "%s: ldirectord ignores the receive string and anything after it when the request starts with \"/\" (%q), and so does lnoded; write %q to have them used", dir, cm[1], strings.TrimLeft(cm[1], "/"))
		} else {
			r.Request, r.Receive, rest = "/"+cm[1], cm[2], cm[3]
			own.request, own.receive = true, true
		}
	}
	if lm := reRealLower.FindStringSubmatch(rest); lm != nil {
		n, ok := boundedInt(lm[1], math.MaxUint32)
		if !ok {
			p.errorf(rr.line, dir, "lower threshold %s is larger than %d", lm[1], uint32(math.MaxUint32))
			return
		}
		r.LowerThreshold, rest = uint32(n), lm[2]
	}
	if um := reRealUpper.FindStringSubmatch(rest); um != nil {
		n, ok := boundedInt(um[1], math.MaxUint32)
		if !ok {
			p.errorf(rr.line, dir, "upper threshold %s is larger than %d", um[1], uint32(math.MaxUint32))
			return
		}
		r.UpperThreshold, rest = uint32(n), um[2]
	}
	if reNonSpace.MatchString(rest) {
		p.errorf(rr.line, dir, "%s: unexpected %q", usage, rest)
		return
	}
	add := func(a netip.Addr) {
		r := r
		r.Addr = a
		b.realOwn = append(b.realOwn, own)
		b.v.Reals = append(b.v.Reals, r)
	}
	if m[2] == "" {
		add(a1)
		return
	}
	if b.v.IPv6 {
		p.errorf(rr.line, dir, "address ranges are IPv4 only")
		return
	}
	a2, err := p.res.host(last, false)
	if err != nil {
		p.wrapErr(rr.line, dir, err, "cannot resolve end of range %q", last)
		return
	}
	lo, hi := ipv4Int(a1), ipv4Int(a2)
	if lo > hi {
		p.errorf(rr.line, dir, "range %s->%s: the first address must not be greater than the last", a1, a2)
		return
	}
	if hi-lo >= maxRange {
		p.errorf(rr.line, dir, "range %s->%s holds more than %d addresses", a1, a2, maxRange)
		return
	}
	if len(strconv.FormatUint(lo, 10)) != len(strconv.FormatUint(hi, 10)) {
		// ldirectord's loop compares the integers as strings ("le") and so
		// stops early, often before the first address, on such a range.
		p.warnf(rr.line, "%s: range %s->%s crosses a decimal-digit boundary: ldirectord adds only part of it (or none), lnoded adds all %d addresses", dir, a1, a2, hi-lo+1)
	}
	for n := lo; n <= hi; n++ {
		add(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}))
	}
}

func ipv4Int(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// parseFallback parses a fallback value as parse_fallback and
// _ld_read_config_fallback_resolve do. defPort is the virtual's port text
// ("" for the global fallback, which then takes each virtual's port).
func (p *parser) parseFallback(line int, dir, val, defPort string, ipv6 bool, proto Protocol) (Fallback, bool) {
	server, fwd := val, ""
	if m := reFallbackSplit.FindStringSubmatch(val); m != nil {
		server, fwd = m[1], m[3]
	}
	pm := rePortSuffix.FindStringSubmatchIndex(server)
	portText := ""
	if pm[4] >= 0 {
		portText = server[pm[4]:pm[5]]
	}
	server = server[:pm[0]]
	if pm[4] < 0 {
		portText = defPort
	}
	f := Fallback{Method: MethodGate, Weight: 1}
	if fwd != "" {
		m, ok := parseMethod(fwd)
		if !ok {
			p.errorf(line, dir, "forwarding method must be gate, masq or ipip, got %q", fwd)
			return f, false
		}
		f.Method = m
	}
	a, err := p.res.host(server, ipv6)
	if err != nil {
		p.wrapErr(line, dir, err, "expected ADDRESS[:PORT] [gate|masq|ipip], cannot resolve %q", server)
		return f, false
	}
	f.Addr = a
	if portText == "" || portText == "0" {
		return f, true
	}
	_, port, ok := p.res.port(portText, proto.String())
	if !ok || port == 0 {
		p.errorf(line, dir, "unknown port or %s service name %q", proto, portText)
		return f, false
	}
	f.Port = port
	return f, true
}

// globalDirective handles an unindented line outside a virtual block. Unlike
// inside a block, nothing is cut at '#' and trailing blanks are part of the
// value, as in ldirectord.
func (p *parser) globalDirective(line int, s string) {
	g := &p.cfg.Global
	if val, ok := gChecktimeout.match(s); ok {
		if n, ok := p.positive(line, "checktimeout", val); ok {
			g.CheckTimeout = time.Duration(n) * time.Second
		}
		return
	}
	if _, ok := gConnecttimeout.match(s); ok {
		p.errorf(line, "connecttimeout", "deprecated in favour of negotiatetimeout")
		return
	}
	if val, ok := gNegotiate.match(s); ok {
		if n, ok := p.positive(line, "negotiatetimeout", val); ok {
			g.NegotiateTimeout = time.Duration(n) * time.Second
		}
		return
	}
	if val, ok := gCheckinterval.match(s); ok {
		if n, ok := p.positive(line, "checkinterval", val); ok {
			g.CheckInterval = time.Duration(n) * time.Second
		}
		return
	}
	if val, ok := gCheckcount.match(s); ok {
		if n, ok := p.positive(line, "checkcount", val); ok {
			g.CheckCount = int(n)
			p.warnf(line, "checkcount is deprecated and slated for removal, see failurecount")
		}
		return
	}
	if val, ok := gFailurecount.match(s); ok {
		if n, ok := p.positive(line, "failurecount", val); ok {
			g.FailureCount = int(n)
		}
		return
	}
	if m := gFallback.FindStringSubmatch(s); m != nil {
		ipv6 := m[1] == "6"
		dir := "fallback"
		if ipv6 {
			dir = "fallback6"
		}
		tcp, ok1 := p.parseFallback(line, dir, m[2], "", ipv6, TCP)
		if !ok1 {
			return
		}
		udp, ok2 := p.parseFallback(line, dir, m[2], "", ipv6, UDP)
		if !ok2 {
			return
		}
		gf := &GlobalFallback{Line: line, TCP: tcp, UDP: udp}
		if ipv6 {
			g.Fallback6 = gf
		} else {
			g.Fallback = gf
		}
		return
	}
	if val, ok := gFallbackcmd.match(s); ok {
		if val == "" {
			p.errorf(line, "fallbackcommand", "expected a command, got nothing")
			return
		}
		g.FallbackCommand = val
		return
	}
	if val, ok := gAutoreload.match(s); ok {
		if y, ok := p.yesNo(line, "autoreload", val); ok {
			g.AutoReload = y
		}
		return
	}
	if val, ok := gCallback.match(s); ok {
		g.Callback = val
		return
	}
	if val, ok := gLogfile.match(s); ok {
		if !strings.HasPrefix(val, "/") && !syslogFacility(val) {
			p.errorf(line, "logfile", `expected "/ABSOLUTE/PATH" or a syslog facility, got %q`, val)
			return
		}
		g.LogFile = val
		return
	}
	if val, ok := gExecute.match(s); ok {
		for _, e := range g.Execute {
			if e == val {
				return
			}
		}
		g.Execute = append(g.Execute, val)
		return
	}
	if val, ok := gFork.match(s); ok {
		if y, ok := p.yesNo(line, "fork", val); ok {
			g.Fork = y
		}
		return
	}
	if gSupervisedAny.MatchString(s) {
		if val, ok := gSupervised.match(s); ok && (val == "yes" || val == "no") {
			g.Supervised = val == "yes"
		} else if gSupervisedBare.MatchString(s) {
			g.Supervised = true
			p.warnf(line, "a bare supervised directive is deprecated, write supervised = yes")
		} else {
			p.errorf(line, "supervised", "expected yes or no, got %q", s)
		}
		return
	}
	if val, ok := gQuiescent.match(s); ok {
		if y, ok := p.yesNo(line, "quiescent", val); ok {
			g.Quiescent = y
		}
		return
	}
	if val, ok := gReaddquiescent.match(s); ok {
		if y, ok := p.yesNo(line, "readdquiescent", val); ok {
			g.ReaddQuiescent = y
		}
		return
	}
	if val, ok := gEmailalert.match(s); ok {
		if a, ok := p.emailAlert(line, val); ok {
			g.EmailAlert = a
		}
		return
	}
	if val, ok := gEmailalertfreq.match(s); ok {
		if n, ok := p.alertFreq(line, val); ok {
			g.EmailAlertFreq = time.Duration(n) * time.Second
		}
		return
	}
	if val, ok := gEmailalertstat.match(s); ok {
		if st, ok := p.alertStatus(line, val); ok {
			g.EmailAlertStatus = st
		}
		return
	}
	if val, ok := gEmailalertfrom.match(s); ok {
		if val == "" {
			p.errorf(line, "emailalertfrom", "expected an e-mail address, got nothing")
			return
		}
		g.EmailAlertFrom = val
		return
	}
	if val, ok := gCleanstop.match(s); ok {
		if y, ok := p.yesNo(line, "cleanstop", val); ok {
			g.CleanStop = y
		}
		return
	}
	if val, ok := gSMTP.match(s); ok {
		if v, ok := p.smtp(line, val); ok {
			g.SMTP = v
		}
		return
	}
	if val, ok := gMaintenancedir.match(s); ok {
		if val == "" {
			p.errorf(line, "maintenancedir", "expected a directory, got nothing")
			return
		}
		g.MaintenanceDir = val
		if fi, err := os.Stat(val); err != nil || !fi.IsDir() {
			p.warnf(line, "maintenance directory %q does not exist", val)
		}
		return
	}
	if _, ok := gTimeout.match(s); ok {
		p.errorf(line, "timeout", "deprecated in favour of checktimeout and negotiatetimeout")
		return
	}
	name := directiveName(s)
	switch {
	case s != "" && (s[0] == ' ' || s[0] == '\t'):
		p.errorf(line, "", "indented line outside a virtual block (a blank line ends a block): %q", strings.TrimSpace(s))
	case name == "callback" || name == "logfile":
		p.errorf(line, name, `expected %s="VALUE" (double quotes required), got %q`, name, s)
	default:
		p.errorf(line, "", "unknown directive %q", s)
	}
}

// syslogFacility lists the facility names Sys::Syslog knows. It takes them
// in any case and with or without "LOG_". ldirectord accepts any name here
// and then dies at its first log line when the name is unknown; lnoded
// rejects it at parse time.
func syslogFacility(s string) bool {
	s = strings.ToLower(s)
	s = strings.TrimPrefix(s, "log_")
	switch s {
	case "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news",
		"syslog", "user", "uucp", "local0", "local1", "local2", "local3", "local4",
		"local5", "local6", "local7", "audit", "console", "install", "launchd",
		"lfmt", "netinfo", "ntp", "ras", "remoteauth", "security":
		return true
	}
	return false
}

// positive parses a count or a number of seconds as ldirectord does: the
// first run of digits in the value, which must not be zero. ldirectord lets
// "00" through by a Perl truthiness accident (and then uses 0); lnoded
// rejects every zero.
func (p *parser) positive(line int, dir, val string) (int64, bool) {
	d, ok := firstMatch(reDigits, val)
	if !ok {
		p.errorf(line, dir, "expected a positive number, got %q", val)
		return 0, false
	}
	n, ok := boundedInt(d, math.MaxInt32)
	if !ok || n == 0 {
		p.errorf(line, dir, "expected a number between 1 and %d, got %q", math.MaxInt32, val)
		return 0, false
	}
	return int64(n), true
}

func (p *parser) yesNo(line int, dir, val string) (bool, bool) {
	switch val {
	case "yes":
		return true, true
	case "no":
		return false, true
	}
	p.errorf(line, dir, "expected yes or no, got %q", val)
	return false, false
}

func (p *parser) emailAlert(line int, val string) (string, bool) {
	if m := reEmailQuot.FindStringSubmatch(val); m != nil {
		val = m[1]
	}
	if val == "" {
		p.errorf(line, "emailalert", "expected an e-mail address, got nothing")
		return "", false
	}
	return val, true
}

func (p *parser) alertFreq(line int, val string) (int64, bool) {
	if val == "" {
		p.errorf(line, "emailalertfreq", "expected a number of seconds, got nothing")
		return 0, false
	}
	n, ok := boundedInt(val, math.MaxInt32)
	if !ok {
		p.errorf(line, "emailalertfreq", "%s is larger than %d", val, math.MaxInt32)
		return 0, false
	}
	return int64(n), true
}

// alertStatus parses emailalertstatus: a comma list of starting, running,
// stopping, reloading, all, or none alone.
func (p *parser) alertStatus(line int, val string) (AlertStatus, bool) {
	parts := reAlertSep.Split(val, -1)
	// Perl's split drops trailing empty fields.
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	none := false
	for _, s := range parts {
		none = none || s == "none"
	}
	var st AlertStatus
	for _, s := range parts {
		switch s {
		case "none":
			continue
		case "all":
			st = AlertAll
		case "starting":
			st |= AlertStarting
		case "running":
			st |= AlertRunning
		case "stopping":
			st |= AlertStopping
		case "reloading":
			st |= AlertReloading
		default:
			p.errorf(line, "emailalertstatus", "expected all, none or a comma list of starting, running, stopping, reloading, got %q", s)
			return 0, false
		}
		if none {
			p.errorf(line, "emailalertstatus", "%q given together with none", s)
			return 0, false
		}
	}
	return st, true
}

func (p *parser) smtp(line int, val string) (string, bool) {
	m := reSMTP.FindStringSubmatch(val)
	if m == nil {
		p.errorf(line, "smtp", "expected a mail server host name or address, got %q", val)
		return "", false
	}
	return m[1], true
}

func firstMatch(re interface{ FindStringSubmatch(string) []string }, s string) (string, bool) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func matchEither(s string, a, b directive) (string, bool) {
	if v, ok := a.match(s); ok {
		return v, true
	}
	return b.match(s)
}

// boundedInt parses decimal digits (leading zeros allowed) no larger than max.
func boundedInt(d string, max uint64) (uint64, bool) {
	if !isDigits(d) {
		return 0, false
	}
	n, err := strconv.ParseUint(d, 10, 64)
	if err != nil || n > max {
		return 0, false
	}
	return n, true
}
