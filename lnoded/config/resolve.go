package config

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Options tunes how a file is parsed. The zero value (or nil) resolves names
// as ldirectord does on the host: /etc/services for service names, the
// system resolver for host names, os.Hostname for the FTP/SIP login default.
type Options struct {
	// LookupHost resolves a host name to one address of the family asked for
	// (ldirectord takes the first address getaddrinfo returns). It is only
	// called for names that are not numeric addresses. Nil uses
	// net.DefaultResolver, bounded by LookupTimeout.
	LookupHost func(ctx context.Context, host string, ipv6 bool) (netip.Addr, error)
	// LookupTimeout bounds each LookupHost call (default 5s).
	LookupTimeout time.Duration
	// ServicesFile is the services(5) database used for port names
	// (default /etc/services). A missing file leaves no name resolvable.
	ServicesFile string
	// Services, when not nil, is used instead of reading ServicesFile.
	Services []byte
	// Hostname is the name in the "ldirectord@HOSTNAME" FTP/SIP login
	// default; empty uses $HOSTNAME, then os.Hostname as ldirectord does.
	Hostname string
	// NoExtensions rejects directord's own directives, which ldirectord does
	// not know (drpathcheck), as ldirectord rejects them: for a file that
	// must also run under ldirectord.
	NoExtensions bool
}

// errNoAddress is returned when a name has no address of the family asked for.
var errNoAddress = errors.New("no address of that family")

// resolver holds one parse's name lookups.
type resolver struct {
	ctx      context.Context
	opts     Options
	services *servicesDB
}

func newResolver(ctx context.Context, opts Options) *resolver {
	r := &resolver{ctx: ctx, opts: opts}
	data := opts.Services
	if data == nil {
		name := opts.ServicesFile
		if name == "" {
			name = "/etc/services"
		}
		// A missing or unreadable services file is not an error here, as it
		// is not for getservbyname: every name lookup simply fails.
		data, _ = os.ReadFile(name)
	}
	r.services = parseServices(data)
	return r
}

// host resolves an address the way ldirectord's ld_gethostbyname does:
// brackets stripped, numeric forms as getaddrinfo takes them (inet_aton's
// for IPv4), else a name lookup restricted to the family.
func (r *resolver) host(name string, ipv6 bool) (netip.Addr, error) {
	if i := strings.IndexByte(name, '['); i >= 0 {
		if j := strings.LastIndexByte(name, ']'); j > i {
			name = name[i+1 : j]
		}
	}
	if name == "" {
		// getaddrinfo with no node name and no AI_PASSIVE gives loopback.
		if ipv6 {
			return netip.IPv6Loopback(), nil
		}
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	if ipv6 {
		if a, err := netip.ParseAddr(name); err == nil {
			if a.Zone() != "" {
				return netip.Addr{}, fmt.Errorf("%q: an interface zone is not allowed", name)
			}
			if a.Is4() {
				return netip.Addr{}, fmt.Errorf("%q: %w", name, errNoAddress)
			}
			return a, nil
		}
		if _, ok := inetAton(name); ok {
			return netip.Addr{}, fmt.Errorf("%q: %w", name, errNoAddress)
		}
	} else {
		if a, ok := inetAton(name); ok {
			return a, nil
		}
		if strings.Contains(name, ":") {
			return netip.Addr{}, fmt.Errorf("%q: %w", name, errNoAddress)
		}
	}
	if !validHostName(name) {
		return netip.Addr{}, fmt.Errorf("%q: not a host name", name)
	}
	lookup := r.opts.LookupHost
	if lookup == nil {
		lookup = defaultLookupHost
	}
	timeout := r.opts.LookupTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	a, err := lookup(ctx, name, ipv6)
	if err != nil {
		return netip.Addr{}, err
	}
	a = a.Unmap()
	if !a.IsValid() || a.Is4() == ipv6 {
		return netip.Addr{}, fmt.Errorf("%q: %w", name, errNoAddress)
	}
	return a.WithZone(""), nil
}

func defaultLookupHost(ctx context.Context, host string, ipv6 bool) (netip.Addr, error) {
	network := "ip4"
	if ipv6 {
		network = "ip6"
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("%q: %w", host, errNoAddress)
	}
	return addrs[0], nil
}

// validHostName keeps byte soup away from the system resolver: the grammar
// only lets letters, digits, '.', '-', '_' and '+' reach here.
func validHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '+') {
			return false
		}
	}
	return true
}

// inetAton parses an IPv4 address as glibc's inet_aton does (and so
// getaddrinfo): one to four parts, each decimal, octal (leading 0) or hex
// (leading 0x), the last part filling the remaining bytes. "127.1" is
// 127.0.0.1 and "010.0.0.1" is 8.0.0.1, as ldirectord takes them.
func inetAton(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		digits := p
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
			if digits == "" {
				// glibc takes a bare "0x" as 0.
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i := 0; i < last; i++ {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
		n |= vals[i] << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// port resolves a port as ldirectord's ld_getservbyname does: digits are a
// number below 65536 (kept as written, leading zeros and all, because
// ldirectord compares the text when it guesses the service), anything else
// a services(5) name for proto ("" for any protocol).
func (r *resolver) port(name, proto string) (text string, port uint16, ok bool) {
	if isDigits(name) {
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || n >= 65536 {
			return "", 0, false
		}
		return name, uint16(n), true
	}
	p, ok := r.services.lookup(name, proto)
	if !ok {
		return "", 0, false
	}
	return strconv.Itoa(int(p)), p, true
}

// servicesDB is a parsed services(5) file.
type servicesDB struct {
	entries []serviceEntry
}

type serviceEntry struct {
	names []string
	port  uint16
	proto string
}

func parseServices(data []byte) *servicesDB {
	db := &servicesDB{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		portProto := strings.SplitN(f[1], "/", 2)
		if len(portProto) != 2 {
			continue
		}
		p, err := strconv.ParseUint(portProto[0], 10, 16)
		if err != nil {
			continue
		}
		names := append([]string{f[0]}, f[2:]...)
		db.entries = append(db.entries, serviceEntry{names: names, port: uint16(p), proto: portProto[1]})
	}
	return db
}

// lookup is getservbyname: the first entry in file order that has the name
// (case-sensitive) and, when proto is not empty, the protocol.
func (db *servicesDB) lookup(name, proto string) (uint16, bool) {
	for _, e := range db.entries {
		if proto != "" && e.proto != proto {
			continue
		}
		for _, n := range e.names {
			if n == name {
				return e.port, true
			}
		}
	}
	return 0, false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
