package checks

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// SupportedServices returns the service= values New can check.
func SupportedServices() []string {
	return []string{
		"dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "ldaps", "nntp",
		"mysql", "none", "pgsql", "pop", "pops", "radius", "simpletcp", "sip", "smtp", "submission",
	}
}

// UnsupportedServices returns the ldirectord services directord does not
// check. service=oracle: a pure-Go driver exists (github.com/sijms/go-ora),
// but its TNS protocol cannot be exercised without an Oracle server, so the
// service is refused rather than shipped untested. New rejects them.
func UnsupportedServices() []string {
	return []string{"oracle"}
}

// New returns the checker ldirectord would run for cfg's checktype, service
// and protocol:
//
//   - negotiate (the default): the service's own check; service=none is
//     always up;
//   - connect: a TCP connect, or an ICMP echo when the protocol is udp;
//   - N (a number): connect checks with a negotiate check after N
//     successful connects (see CombinedChecker);
//   - ping: an ICMP echo; external: the check command;
//   - on: always up; off: never up (ldirectord adds no real server).
//
// A service or checktype that directord does not implement (external-perl,
// ldap, mysql, …) is an error wrapping ErrUnsupported, never a checker that
// reports up.
//
// With cfg.DRPath set the checker is a DRPathChecker around that one.
func New(cfg Config) (Checker, error) {
	c, err := newBase(cfg)
	if err != nil || !cfg.DRPath.IsValid() {
		return c, err
	}
	return NewDRPath(cfg, c)
}

func newBase(cfg Config) (Checker, error) {
	if cfg.Addr.IsValid() {
		// An IPv4 address in IPv6 form is the IPv4 server.
		cfg.Addr = netip.AddrPortFrom(cfg.Addr.Addr().Unmap(), cfg.Addr.Port())
	}
	switch p := cfg.protocol(); p {
	case "tcp", "udp", "fwm":
	default:
		return nil, fmt.Errorf("protocol %q: must be tcp, udp or fwm", p)
	}
	ct := cfg.CheckType
	if ct == "" {
		ct = "negotiate"
	}
	switch ct {
	case "negotiate":
		return NewNegotiate(cfg)
	case "connect":
		return newConnectFor(cfg)
	case "ping":
		return NewPing(cfg)
	case "external":
		return NewExternal(cfg)
	case "on":
		return NewStatic(true, "checktype=on"), nil
	case "off":
		return NewStatic(false, "checktype=off"), nil
	case "external-perl":
		return nil, fmt.Errorf("checktype external-perl (a Perl script run inside ldirectord): %w; use checktype=external", ErrUnsupported)
	}
	n, err := strconv.Atoi(ct)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("checktype %q: must be connect, negotiate, on, off, ping, external, external-perl or a number", cfg.CheckType)
	}
	conn, err := newConnectFor(cfg)
	if err != nil {
		return nil, err
	}
	neg, err := NewNegotiate(cfg)
	if err != nil {
		return nil, err
	}
	return NewCombined(n, conn, neg), nil
}

// newConnectFor is ldirectord's connect check: TCP connect, or ICMP echo for
// a UDP virtual service (a UDP "connect" sends nothing, so ldirectord pings).
// For checktype=N on a UDP service ldirectord's code uses a UDP connect()
// that always succeeds; directord pings there too.
func newConnectFor(cfg Config) (Checker, error) {
	if cfg.protocol() == "udp" {
		return NewPing(cfg)
	}
	return NewConnect(cfg)
}

// NewNegotiate returns the negotiate check for cfg.Service.
func NewNegotiate(cfg Config) (Checker, error) {
	switch svc := cfg.service(); svc {
	case "http", "https", "http_proxy":
		return NewHTTP(cfg)
	case "dns":
		if strings.TrimPrefix(cfg.request(), "/") == "" {
			// ldirectord's default request "/" looks up nothing and
			// fails every time.
			return NewStatic(false, "service=dns needs request, the name to look up"), nil
		}
		return NewDNS(cfg)
	case "ftp":
		return NewFTP(cfg)
	case "smtp", "submission":
		return NewSMTP(cfg)
	case "pop":
		return NewPOP(cfg, false)
	case "pops":
		return NewPOP(cfg, true)
	case "imap":
		return NewIMAP(cfg, false)
	case "imaps":
		return NewIMAP(cfg, true)
	case "nntp":
		return NewNNTP(cfg)
	case "simpletcp":
		return NewSimpleTCP(cfg)
	case "sip":
		return NewSIP(cfg)
	case "radius":
		return NewRADIUS(cfg)
	case "pgsql", "mysql":
		// ldirectord loads such a file and keeps the real server down,
		// logging why at every check; so does directord.
		if cfg.Login == "" || strings.TrimPrefix(cfg.request(), "/") == "" {
			return NewStatic(false, "service="+svc+" needs login and request (an SQL query such as \"SELECT 1\"), as in ldirectord"), nil
		}
		if svc == "pgsql" {
			return NewPgSQL(cfg)
		}
		return NewMySQL(cfg)
	case "ldap":
		return NewLDAP(cfg, false)
	case "ldaps":
		return NewLDAP(cfg, true)
	case "none":
		return NewStatic(true, "service=none"), nil
	default:
		supported := strings.Join(SupportedServices(), ", ")
		if slices.Contains(UnsupportedServices(), svc) {
			return nil, fmt.Errorf("service %q: %w by directord (supported: %s)", svc, ErrUnsupported, supported)
		}
		return nil, fmt.Errorf("service %q: %w, not an ldirectord service (supported: %s)", svc, ErrUnsupported, supported)
	}
}

// ServicePort is ldirectord's well-known port for a service, used as the
// check port when neither checkport nor the real server gives one; 0 when
// the service has none.
func ServicePort(service string) uint16 {
	switch service {
	case "ftp":
		return 21
	case "smtp":
		return 25
	case "dns":
		return 53
	case "http":
		return 80
	case "pop":
		return 110
	case "nntp":
		return 119
	case "imap":
		return 143
	case "ldap":
		return 389
	case "https":
		return 443
	case "submission":
		return 587
	case "ldaps":
		return 636
	case "imaps":
		return 993
	case "pops":
		return 995
	case "oracle":
		return 1521
	case "radius":
		return 1812
	case "http_proxy":
		return 3128
	case "mysql":
		return 3306
	case "pgsql":
		return 5432
	case "sip":
		return 5060
	}
	return 0
}

// CheckPort is ldirectord's ld_checkport: checkport when set, else the real
// server's port when non-zero, else the service's well-known port.
func CheckPort(checkport, realPort uint16, service string) uint16 {
	if checkport != 0 {
		return checkport
	}
	if realPort != 0 {
		return realPort
	}
	return ServicePort(service)
}
