package ipvs

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ParseError is an error in a saved table, naming the line.
type ParseError struct {
	Line int    // 1-based line number
	Msg  string // what was wrong or expected
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Limits ipvsadm applies to its arguments.
const (
	maxPersistTimeout     = 86400 * 31
	defaultPersistTimeout = 300
	maxSaveLine           = 64 << 10
)

// ParseSave reads a table in the format of "ipvsadm -S" (an
// /etc/sysconfig/ipvsadm file) as "ipvsadm -R" would apply it, and returns
// the resulting table. Each line is one ipvsadm command: -A/-E/-D for
// services, -a/-e/-d for destinations and -C to clear; blank lines and lines
// starting with '#' are skipped. Addresses and ports must be numeric (as
// written by -S -n). Unlike ipvsadm, weights up to 2^31-1 are accepted.
//
// On error ParseSave returns a *ParseError naming the line and no table, so
// a caller applies all of a file or nothing.
func ParseSave(r io.Reader) (Table, error) {
	p := saveParser{idx: map[ServiceKey]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxSaveLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := p.command(strings.Fields(text)); err != nil {
			return nil, &ParseError{Line: line, Msg: err.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{Line: line + 1, Msg: err.Error()}
	}
	var t Table
	for _, vs := range p.table {
		if vs != nil {
			t = append(t, *vs)
		}
	}
	return t, nil
}

type saveParser struct {
	table []*VirtualService
	idx   map[ServiceKey]int
}

// cmdArgs is one parsed command line.
type cmdArgs struct {
	cmd       byte // A E D a e d C
	svc       Service
	haveSvc   bool
	sched     string
	persist   bool
	timeout   uint32
	netmask   string
	pe        string
	schedFlag string
	ops       bool
	ipv6      bool
	dest      string
	fwd       ForwardMethod
	haveFwd   bool
	weight    int32
	haveW     bool
	uthresh   uint32
	lthresh   uint32
	tunType   TunnelType
	tunPort   uint16
	tunFlags  TunnelFlags
	haveTun   bool
	seenOpt   map[string]bool
}

// commandOf returns the command letter of an ipvsadm command option.
func commandOf(arg string) (byte, bool) {
	switch arg {
	case "-A", "--add-service":
		return 'A', true
	case "-E", "--edit-service":
		return 'E', true
	case "-D", "--delete-service":
		return 'D', true
	case "-a", "--add-server":
		return 'a', true
	case "-e", "--edit-server":
		return 'e', true
	case "-d", "--delete-server":
		return 'd', true
	case "-C", "--clear":
		return 'C', true
	}
	return 0, false
}

// optionOf returns the canonical (short, or only) spelling of an option.
func optionOf(arg string) (string, bool) {
	switch arg {
	case "-t", "--tcp-service":
		return "-t", true
	case "-u", "--udp-service":
		return "-u", true
	case "-f", "--fwmark-service":
		return "-f", true
	case "-6", "--ipv6":
		return "-6", true
	case "-s", "--scheduler":
		return "-s", true
	case "-p", "--persistent":
		return "-p", true
	case "-M", "--netmask":
		return "-M", true
	case "-b", "--sched-flags":
		return "-b", true
	case "-o", "--ops":
		return "-o", true
	case "-r", "--real-server":
		return "-r", true
	case "-g", "--gatewaying":
		return "-g", true
	case "-i", "--ipip":
		return "-i", true
	case "-m", "--masquerading":
		return "-m", true
	case "-w", "--weight":
		return "-w", true
	case "-x", "--u-threshold":
		return "-x", true
	case "-y", "--l-threshold":
		return "-y", true
	case "--sctp-service", "--pe", "--tun-type", "--tun-port", "--tun-nocsum", "--tun-csum", "--tun-remcsum":
		return arg, true
	}
	return "", false
}

func (p *saveParser) command(f []string) error {
	cmd, ok := commandOf(f[0])
	if !ok {
		return fmt.Errorf("expected a command (-A, -E, -D, -a, -e, -d or -C), found %q", f[0])
	}
	a := cmdArgs{cmd: cmd, seenOpt: map[string]bool{}}
	for i := 1; i < len(f); i++ {
		name, ok := optionOf(f[i])
		if !ok {
			if _, isCmd := commandOf(f[i]); isCmd {
				return fmt.Errorf("more than one command on the line (%q)", f[i])
			}
			return fmt.Errorf("unknown option %q", f[i])
		}
		// The service options are one option for ipvsadm.
		key := name
		switch name {
		case "-t", "-u", "--sctp-service", "-f":
			key = "service"
		case "-g", "-i", "-m":
			key = "forward"
		case "--tun-nocsum", "--tun-csum", "--tun-remcsum":
			key = "tun-csum"
		}
		if a.seenOpt[key] {
			return fmt.Errorf("option %s given twice", f[i])
		}
		a.seenOpt[key] = true
		arg := func() (string, error) {
			if i+1 >= len(f) {
				return "", fmt.Errorf("option %s expects a value", f[i])
			}
			i++
			return f[i], nil
		}
		var v string
		var err error
		switch name {
		case "-t", "-u", "--sctp-service":
			if v, err = arg(); err != nil {
				return err
			}
			a.svc.Protocol = TCP
			switch name {
			case "-u":
				a.svc.Protocol = UDP
			case "--sctp-service":
				a.svc.Protocol = SCTP
			}
			addr, port, _, err := parseAddrPort(v)
			if err != nil {
				return fmt.Errorf("service address: %w", err)
			}
			a.svc.Addr, a.svc.Port, a.svc.Family = addr, port, FamilyOf(addr)
			a.haveSvc = true
		case "-f":
			if v, err = arg(); err != nil {
				return err
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				return fmt.Errorf("expected a firewall mark from 1 to 4294967295, found %q", v)
			}
			a.svc.FWMark, a.svc.Family = uint32(n), IPv4
			a.haveSvc = true
		case "-6":
			a.ipv6 = true
		case "-s":
			if a.sched, err = arg(); err != nil {
				return err
			}
			if len(a.sched) >= 16 {
				return fmt.Errorf("scheduler name %q is too long", a.sched)
			}
		case "-p":
			a.persist, a.timeout = true, defaultPersistTimeout
			// The timeout is optional, as in ipvsadm.
			if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") {
				i++
				n, err := strconv.ParseUint(f[i], 10, 32)
				if err != nil || n < 1 || n > maxPersistTimeout {
					return fmt.Errorf("expected a persistence timeout from 1 to %d seconds, found %q", maxPersistTimeout, f[i])
				}
				a.timeout = uint32(n)
			}
		case "-M":
			if a.netmask, err = arg(); err != nil {
				return err
			}
		case "--pe":
			if a.pe, err = arg(); err != nil {
				return err
			}
		case "-b":
			if a.schedFlag, err = arg(); err != nil {
				return err
			}
		case "-o":
			a.ops = true
		case "-r":
			if a.dest, err = arg(); err != nil {
				return err
			}
		case "-g", "-i", "-m":
			a.fwd = Route
			switch name {
			case "-i":
				a.fwd = Tunnel
			case "-m":
				a.fwd = Masq
			}
			a.haveFwd = true
		case "-w":
			if v, err = arg(); err != nil {
				return err
			}
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return fmt.Errorf("expected a weight from 0 to %d, found %q", MaxWeight, v)
			}
			a.weight, a.haveW = int32(n), true
		case "-x", "-y":
			if v, err = arg(); err != nil {
				return err
			}
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return fmt.Errorf("expected a threshold from 0 to %d, found %q", MaxWeight, v)
			}
			if name == "-x" {
				a.uthresh = uint32(n)
			} else {
				a.lthresh = uint32(n)
			}
		case "--tun-type":
			if v, err = arg(); err != nil {
				return err
			}
			switch v {
			case "ipip":
				a.tunType = TunnelIPIP
			case "gue":
				a.tunType = TunnelGUE
			case "gre":
				a.tunType = TunnelGRE
			default:
				return fmt.Errorf("expected a tunnel type (ipip, gue or gre), found %q", v)
			}
			a.haveTun = true
		case "--tun-port":
			if v, err = arg(); err != nil {
				return err
			}
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				return fmt.Errorf("expected a tunnel port from 1 to 65535, found %q", v)
			}
			a.tunPort, a.haveTun = uint16(n), true
		case "--tun-nocsum":
			a.tunFlags, a.haveTun = 0, true
		case "--tun-csum":
			a.tunFlags, a.haveTun = TunnelCsum, true
		case "--tun-remcsum":
			a.tunFlags, a.haveTun = TunnelRemCsum, true
		}
	}
	return p.apply(&a)
}

// parseAddrPort parses "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:80" or
// "2001:db8::1" the way ipvsadm's parse_service does, numerically.
func parseAddrPort(s string) (netip.Addr, uint16, bool, error) {
	host, portStr, hasPort := s, "", false
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 || end+1 >= len(s) || s[end+1] != ':' {
			return netip.Addr{}, 0, false, fmt.Errorf("expected [IPv6]:port, found %q", s)
		}
		host, portStr, hasPort = s[1:end], s[end+2:], true
	} else if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return a, 0, false, nil
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, portStr, hasPort = s[:i], s[i+1:], true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, 0, false, fmt.Errorf("expected a numeric address, found %q", host)
	}
	if strings.HasPrefix(s, "[") && !addr.Is6() {
		return netip.Addr{}, 0, false, fmt.Errorf("expected an IPv6 address in brackets, found %q", host)
	}
	addr = addr.Unmap()
	var port uint16
	if hasPort {
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return netip.Addr{}, 0, false, fmt.Errorf("expected a numeric port from 0 to 65535, found %q", portStr)
		}
		port = uint16(n)
	}
	return addr, port, hasPort, nil
}

func parseNetmask(s string, f Family) (uint32, error) {
	if f == IPv6 {
		n, err := strconv.ParseUint(s, 10, 8)
		if err != nil || n < 1 || n > 128 {
			return 0, fmt.Errorf("expected an IPv6 netmask from 1 to 128, found %q", s)
		}
		return uint32(n), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("expected an IPv4 netmask like 255.255.255.0, found %q", s)
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

func parseSchedFlags(s, sched string) (ServiceFlags, error) {
	var fl ServiceFlags
	for _, name := range strings.Split(s, ",") {
		switch {
		case name == "flag-1":
			fl |= FlagSched1
		case name == "flag-2":
			fl |= FlagSched2
		case name == "flag-3":
			fl |= FlagSched3
		case (sched == "sh" || sched == "mh") && name == sched+"-fallback":
			fl |= FlagSched1
		case (sched == "sh" || sched == "mh") && name == sched+"-port":
			fl |= FlagSched2
		default:
			return 0, fmt.Errorf("expected scheduler flags (flag-1, flag-2, flag-3, or sh-/mh-fallback and -port for sh and mh), found %q", name)
		}
	}
	return fl, nil
}

func (p *saveParser) apply(a *cmdArgs) error {
	if a.cmd == 'C' {
		if len(a.seenOpt) > 0 {
			return fmt.Errorf("-C takes no options")
		}
		p.table, p.idx = nil, map[ServiceKey]int{}
		return nil
	}
	if !a.haveSvc {
		return fmt.Errorf("expected a service (-t, -u, --sctp-service or -f)")
	}
	if a.ipv6 {
		if a.svc.FWMark == 0 {
			return fmt.Errorf("-6 is only for fwmark services")
		}
		a.svc.Family = IPv6
	}
	svcOpts := []string{"-s", "-p", "-M", "--pe", "-b", "-o"}
	destOpts := []string{"-r", "forward", "-w", "-x", "-y", "--tun-type", "--tun-port", "tun-csum"}
	onlyAllowed := func(allowed []string) error {
		ok := map[string]bool{"service": true, "-6": true}
		for _, o := range allowed {
			ok[o] = true
		}
		for o := range a.seenOpt {
			if !ok[o] {
				return fmt.Errorf("option %s is not allowed with this command", o)
			}
		}
		return nil
	}
	key := a.svc.Key()
	switch a.cmd {
	case 'A', 'E':
		if err := onlyAllowed(svcOpts); err != nil {
			return err
		}
		s := a.svc
		s.Scheduler = a.sched
		if s.Scheduler == "" {
			s.Scheduler = "wlc" // ipvsadm's default
		}
		if a.persist {
			s.Flags |= FlagPersistent
			s.Timeout = a.timeout
		}
		if a.ops {
			if s.FWMark == 0 && s.Protocol != UDP {
				return fmt.Errorf("one-packet scheduling (-o) is only for UDP and fwmark services")
			}
			s.Flags |= FlagOnePacket
		}
		if a.schedFlag != "" {
			fl, err := parseSchedFlags(a.schedFlag, s.Scheduler)
			if err != nil {
				return err
			}
			s.Flags |= fl
		}
		s.Netmask = FullNetmask(key.Family)
		if a.netmask != "" {
			m, err := parseNetmask(a.netmask, key.Family)
			if err != nil {
				return err
			}
			s.Netmask = m
		}
		s.PE = a.pe
		if s.FWMark == 0 && s.Port == 0 && !a.persist {
			return fmt.Errorf("port 0 is only allowed for persistent services")
		}
		if err := s.Validate(); err != nil {
			return err
		}
		i, exists := p.idx[key]
		if a.cmd == 'A' {
			if exists {
				return fmt.Errorf("service %s already exists", key)
			}
			p.idx[key] = len(p.table)
			p.table = append(p.table, &VirtualService{Service: s})
			return nil
		}
		if !exists {
			return fmt.Errorf("no such service %s", key)
		}
		p.table[i].Service = s
		return nil
	case 'D':
		if err := onlyAllowed(nil); err != nil {
			return err
		}
		i, exists := p.idx[key]
		if !exists {
			return fmt.Errorf("no such service %s", key)
		}
		p.table[i] = nil
		delete(p.idx, key)
		return nil
	}

	// Destination commands.
	allowed := destOpts
	if a.cmd == 'd' {
		allowed = []string{"-r"}
	}
	if err := onlyAllowed(allowed); err != nil {
		return err
	}
	if a.dest == "" {
		return fmt.Errorf("expected a real server (-r address[:port])")
	}
	addr, port, hasPort, err := parseAddrPort(a.dest)
	if err != nil {
		return fmt.Errorf("real server: %w", err)
	}
	if !hasPort {
		port = a.svc.Port
	}
	d := Destination{Addr: addr, Port: port, Forward: Route, Weight: 1,
		UpperThreshold: a.uthresh, LowerThreshold: a.lthresh}
	if a.haveFwd {
		d.Forward = a.fwd
	}
	if a.haveW {
		d.Weight = a.weight
	}
	// ipvsadm: direct routing and tunnels keep the service's port.
	if a.svc.FWMark == 0 && (d.Forward == Route || d.Forward == Tunnel) {
		d.Port = a.svc.Port
	}
	if a.haveTun {
		if d.Forward != Tunnel {
			return fmt.Errorf("tunnel options need the tunnel forwarding method (-i)")
		}
		d.TunnelType, d.TunnelPort, d.TunnelFlags = a.tunType, a.tunPort, a.tunFlags
		if d.TunnelType == TunnelGUE && d.TunnelPort == 0 {
			return fmt.Errorf("tunnel type gue expects --tun-port")
		}
		if d.TunnelType != TunnelGUE && a.seenOpt["--tun-port"] {
			return fmt.Errorf("--tun-port is only for tunnel type gue")
		}
		if d.TunnelType == TunnelIPIP && a.seenOpt["tun-csum"] {
			return fmt.Errorf("checksum options are not for tunnel type ipip")
		}
	}
	i, exists := p.idx[key]
	if !exists {
		return fmt.Errorf("service %s is not defined", key)
	}
	vs := p.table[i]
	if err := d.Validate(vs.Family); err != nil {
		return err
	}
	j := -1
	for n, have := range vs.Destinations {
		if have.Key() == d.Key() {
			j = n
			break
		}
	}
	switch a.cmd {
	case 'a':
		if j >= 0 {
			return fmt.Errorf("destination %s already exists in %s", addrPort(d.Addr, d.Port), key)
		}
		vs.Destinations = append(vs.Destinations, d)
	case 'e':
		if j < 0 {
			return fmt.Errorf("no such destination %s in %s", addrPort(d.Addr, d.Port), key)
		}
		vs.Destinations[j] = d
	case 'd':
		if j < 0 {
			return fmt.Errorf("no such destination %s in %s", addrPort(d.Addr, d.Port), key)
		}
		vs.Destinations = append(vs.Destinations[:j], vs.Destinations[j+1:]...)
	}
	return nil
}
