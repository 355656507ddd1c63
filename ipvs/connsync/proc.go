package connsync

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"

	"github.com/directord/directord/ipvs"
)

// Conn is one IPVS connection as the sync protocol carries it.
type Conn struct {
	Protocol ipvs.Protocol
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Dest     netip.AddrPort
	// State is the kernel's state number (ip_vs.h: IP_VS_TCP_S_*, UDP 0).
	State uint16
	// Flags are the kernel's IP_VS_CONN_F_* bits the backup takes over
	// (forwarding method, inactive).
	Flags uint32
	// Fwmark is the service's firewall mark, 0 for address services.
	Fwmark uint32
	// Timeout in seconds; 0 lets the backup use its state's default.
	Timeout uint32
	// Expires is what /proc said was left, in seconds (not sent).
	Expires uint32
}

// TCP state numbers (enum in include/net/ip_vs.h), by the names
// /proc/net/ip_vs_conn prints.
var tcpStates = map[string]uint16{
	"NONE": 0, "ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECV": 3, "FIN_WAIT": 4, "TIME_WAIT": 5,
	"CLOSE": 6, "CLOSE_WAIT": 7, "LAST_ACK": 8, "LISTEN": 9, "SYNACK": 10,
}

// TCP states the kernel numbers; a higher one in a message is refused.
const tcpStateCount = 11

const (
	tcpEstablished = 1
	tcpSynRecv     = 3
	tcpFinWait     = 4
	tcpCloseWait   = 7
	tcpLastAck     = 8
	tcpSynAck      = 10
)

// Connection flags (IP_VS_CONN_F_*).
const (
	flagFwdMask  = 0x0007
	flagInactive = 0x0100
	flagTemplate = 0x1000
)

// maxProcLine bounds a line of /proc/net/ip_vs_conn (an IPv6 line with
// persistence-engine data is about 200 bytes).
const maxProcLine = 4096

// ParseProc reads /proc/net/ip_vs_conn. Lines of protocols other than TCP
// and UDP (SCTP, the "IP" of fwmark templates) are skipped; State is the
// kernel's number for the printed name.
func ParseProc(r io.Reader) ([]Conn, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxProcLine)
	var conns []Conn
	var f [12][]byte // reused: a table of a million lines must not allocate per line
	line := 0
	for sc.Scan() {
		line++
		n := fields(sc.Bytes(), &f)
		if line == 1 {
			if n < 9 || string(f[0]) != "Pro" {
				return nil, fmt.Errorf("ip_vs_conn line 1: not the connection table's header: %q", sc.Text())
			}
			continue
		}
		if n == 0 {
			continue
		}
		c, ok, err := parseProcLine(f[:n])
		if err != nil {
			return nil, fmt.Errorf("ip_vs_conn line %d: %w", line, err)
		}
		if ok {
			conns = append(conns, c)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ip_vs_conn: %w", err)
	}
	return conns, nil
}

// fields splits b at spaces into f and returns how many it found (at most
// len(f); the rest of a longer line is ignored).
func fields(b []byte, f *[12][]byte) int {
	n := 0
	for i := 0; i < len(b) && n < len(f); {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\t' {
			j++
		}
		if j > i {
			f[n] = b[i:j]
			n++
		}
		i = j
	}
	return n
}

func parseProcLine(f [][]byte) (Conn, bool, error) {
	if len(f) < 9 {
		return Conn{}, false, fmt.Errorf("%d fields, want at least 9", len(f))
	}
	var c Conn
	switch string(f[0]) {
	case "TCP":
		c.Protocol = ipvs.TCP
		st, ok := tcpStates[string(f[7])]
		if !ok {
			return Conn{}, false, fmt.Errorf("unknown TCP state %q", f[7])
		}
		c.State = st
	case "UDP":
		c.Protocol = ipvs.UDP
	default:
		return Conn{}, false, nil
	}
	var err error
	if c.Client, err = procAddrPort(f[1], f[2]); err != nil {
		return Conn{}, false, fmt.Errorf("client: %w", err)
	}
	if c.Virtual, err = procAddrPort(f[3], f[4]); err != nil {
		return Conn{}, false, fmt.Errorf("virtual: %w", err)
	}
	if c.Dest, err = procAddrPort(f[5], f[6]); err != nil {
		return Conn{}, false, fmt.Errorf("destination: %w", err)
	}
	exp, ok := decimal(f[8])
	if !ok {
		return Conn{}, false, fmt.Errorf("expires %q is not a number", f[8])
	}
	c.Expires = exp
	return c, true, nil
}

func decimal(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var v uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + uint64(ch-'0')
	}
	return uint32(v), v <= 1<<32-1
}

// hex parses exactly len(b) hex digits (at most 8).
func hex(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var v uint32
	for _, ch := range b {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'f':
			d = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

// procAddrPort parses the kernel's "%08X" IPv4 or "%pI6" IPv6 address and
// "%04X" port.
func procAddrPort(a, p []byte) (netip.AddrPort, error) {
	port, ok := hex(p)
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, fmt.Errorf("port %q is not 4 hex digits", p)
	}
	if len(a) == 8 {
		v, ok := hex(a)
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("address %q is not 8 hex digits", a)
		}
		ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		return netip.AddrPortFrom(ip, uint16(port)), nil
	}
	ip, err := netip.ParseAddr(string(a))
	if err != nil || !ip.Is6() || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("address %q is neither hex IPv4 nor IPv6", a)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// Handover picks the connections worth handing over from a table read by
// ParseProc and sets their flags from this node's IPVS table: live TCP
// states (from the handshake to the last ACK) and UDP flows, of address
// services that are in tbl with the connection's destination. The
// forwarding method comes from that destination, as the backup's kernel
// would bind it; a connection whose service or destination is gone is
// left out rather than sent unbound. The result reuses conns' storage.
func Handover(conns []Conn, tbl ipvs.Table) []Conn {
	type key struct {
		proto ipvs.Protocol
		vip   netip.AddrPort
		dest  netip.AddrPort
	}
	fwd := map[key]ipvs.ForwardMethod{}
	for _, e := range tbl {
		s := e.Service
		if s.FWMark != 0 {
			continue
		}
		for _, d := range e.Destinations {
			fwd[key{s.Protocol, netip.AddrPortFrom(s.Addr.Unmap(), s.Port), netip.AddrPortFrom(d.Addr.Unmap(), d.Port)}] = d.Forward
		}
	}
	out := conns[:0]
	for _, c := range conns {
		switch {
		case c.Protocol == ipvs.TCP:
			switch c.State {
			case tcpEstablished, tcpSynRecv, tcpFinWait, tcpCloseWait, tcpLastAck, tcpSynAck:
			default:
				continue
			}
		case c.Protocol == ipvs.UDP:
			if c.Client.Port() == 0 { // a persistence template
				continue
			}
		default:
			continue
		}
		m, ok := fwd[key{c.Protocol, unmapAP(c.Virtual), unmapAP(c.Dest)}]
		if !ok { // a persistent service of all ports is port 0 in the table
			m, ok = fwd[key{c.Protocol, netip.AddrPortFrom(c.Virtual.Addr().Unmap(), 0), unmapAP(c.Dest)}]
		}
		if !ok {
			continue
		}
		c.Flags = uint32(m) & flagFwdMask
		if c.Protocol == ipvs.TCP && c.State != tcpEstablished {
			c.Flags |= flagInactive
		}
		out = append(out, c)
	}
	return out
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
