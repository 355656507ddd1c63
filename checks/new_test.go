package checks

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestNewMapsCheckTypeServiceProtocol(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.7:80")
	tests := []struct {
		checktype, service, protocol string
		want                         string // the checker's type
	}{
		{"", "", "", "*checks.StaticChecker"},
		{"negotiate", "none", "tcp", "*checks.StaticChecker"},
		{"negotiate", "http", "tcp", "*checks.HTTPChecker"},
		{"", "https", "", "*checks.HTTPChecker"},
		{"negotiate", "http_proxy", "tcp", "*checks.HTTPChecker"},
		{"negotiate", "dns", "udp", "*checks.DNSChecker"},
		{"negotiate", "ftp", "tcp", "*checks.FTPChecker"},
		{"negotiate", "smtp", "tcp", "*checks.SMTPChecker"},
		{"negotiate", "submission", "tcp", "*checks.SMTPChecker"},
		{"negotiate", "pop", "tcp", "*checks.POPChecker"},
		{"negotiate", "pops", "tcp", "*checks.POPChecker"},
		{"negotiate", "imap", "tcp", "*checks.IMAPChecker"},
		{"negotiate", "imaps", "tcp", "*checks.IMAPChecker"},
		{"negotiate", "nntp", "tcp", "*checks.NNTPChecker"},
		{"negotiate", "simpletcp", "tcp", "*checks.SimpleTCPChecker"},
		{"negotiate", "sip", "udp", "*checks.SIPChecker"},
		{"negotiate", "radius", "udp", "*checks.RADIUSChecker"},
		{"negotiate", "pgsql", "tcp", "*checks.PgSQLChecker"},
		{"negotiate", "mysql", "tcp", "*checks.MySQLChecker"},
		{"negotiate", "ldap", "tcp", "*checks.LDAPChecker"},
		{"negotiate", "ldaps", "tcp", "*checks.LDAPChecker"},
		{"connect", "http", "tcp", "*checks.ConnectChecker"},
		{"connect", "dns", "udp", "*checks.PingChecker"},
		{"connect", "none", "fwm", "*checks.ConnectChecker"},
		{"ping", "http", "tcp", "*checks.PingChecker"},
		{"external", "http", "tcp", "*checks.ExternalChecker"},
		{"on", "mysql", "tcp", "*checks.StaticChecker"},
		{"off", "http", "tcp", "*checks.StaticChecker"},
		{"5", "http", "tcp", "*checks.CombinedChecker"},
		{"0", "dns", "udp", "*checks.CombinedChecker"},
	}
	for _, tt := range tests {
		c, err := New(Config{CheckType: tt.checktype, Service: tt.service, Protocol: tt.protocol, Addr: addr, Request: "www.example.org", Receive: "x", Login: "u"})
		if err != nil {
			t.Errorf("(%q, %q, %q): %v", tt.checktype, tt.service, tt.protocol, err)
			continue
		}
		if got := typeName(c); got != tt.want {
			t.Errorf("(%q, %q, %q) = %s, want %s", tt.checktype, tt.service, tt.protocol, got, tt.want)
		}
		if c.String() == "" {
			t.Errorf("(%q, %q, %q): empty String()", tt.checktype, tt.service, tt.protocol)
		}
	}
}

func typeName(c Checker) string {
	switch c.(type) {
	case *StaticChecker:
		return "*checks.StaticChecker"
	case *HTTPChecker:
		return "*checks.HTTPChecker"
	case *DNSChecker:
		return "*checks.DNSChecker"
	case *FTPChecker:
		return "*checks.FTPChecker"
	case *SMTPChecker:
		return "*checks.SMTPChecker"
	case *POPChecker:
		return "*checks.POPChecker"
	case *IMAPChecker:
		return "*checks.IMAPChecker"
	case *NNTPChecker:
		return "*checks.NNTPChecker"
	case *SimpleTCPChecker:
		return "*checks.SimpleTCPChecker"
	case *SIPChecker:
		return "*checks.SIPChecker"
	case *ConnectChecker:
		return "*checks.ConnectChecker"
	case *PingChecker:
		return "*checks.PingChecker"
	case *ExternalChecker:
		return "*checks.ExternalChecker"
	case *CombinedChecker:
		return "*checks.CombinedChecker"
	case *RADIUSChecker:
		return "*checks.RADIUSChecker"
	case *PgSQLChecker:
		return "*checks.PgSQLChecker"
	case *MySQLChecker:
		return "*checks.MySQLChecker"
	case *LDAPChecker:
		return "*checks.LDAPChecker"
	}
	return "unknown"
}

func TestNewStaticVerdicts(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.7:80")
	// Configurations ldirectord loads but whose checks can never pass.
	expect(t, mustNew(t, Config{Service: "dns", Addr: addr}), false)
	expect(t, mustNew(t, Config{Service: "mysql", Addr: addr, Request: "SELECT 1"}), false)
	for ct, want := range map[string]bool{"on": true, "off": false} {
		expect(t, mustNew(t, Config{CheckType: ct, Service: "http", Addr: addr}), want)
	}
	expect(t, mustNew(t, Config{Service: "none", Addr: addr}), true)
}

func TestNewRejects(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.7:80")
	unsupported := []Config{
		{CheckType: "external-perl", Addr: addr},
		{Service: "oracle", Addr: addr},
		{Service: "gopher", Addr: addr},
		{Service: "gopher", Addr: addr},
		{CheckType: "3", Service: "oracle", Addr: addr},
	}
	for _, cfg := range unsupported {
		c, err := New(cfg)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("New(%+v) = %v, %v; want an ErrUnsupported error", cfg, c, err)
			continue
		}
		if svc := cfg.Service; svc != "" && !strings.Contains(err.Error(), svc) {
			t.Errorf("error %q does not name the service", err)
		}
	}
	invalid := []Config{
		{CheckType: "sometimes", Addr: addr},
		{CheckType: "-1", Addr: addr},
		{Protocol: "sctp", Addr: addr},
		{Service: "http", Addr: addr, Receive: "(unclosed"},
		{Service: "http", Addr: addr, Receive: `(?<=look)behind`},
		{Service: "http", Addr: addr, HTTPMethod: "POST"},
		{Service: "http"},
		{Service: "pop", Addr: addr, Login: "a\r\nDELE 1"},
		{Service: "ftp", Addr: addr, Request: "/x\r\nDELE y"},
	}
	for _, cfg := range invalid {
		if c, err := New(cfg); err == nil || errors.Is(err, ErrUnsupported) {
			t.Errorf("New(%+v) = %v, %v; want a configuration error", cfg, c, err)
		}
	}
}

func TestCheckPortAndKey(t *testing.T) {
	if p := CheckPort(0, 0, "https"); p != 443 {
		t.Errorf("CheckPort for https = %d", p)
	}
	if p := CheckPort(8443, 443, "https"); p != 8443 {
		t.Errorf("checkport wins: %d", p)
	}
	if p := CheckPort(0, 8080, "http"); p != 8080 {
		t.Errorf("real port next: %d", p)
	}
	a := Config{Service: "http", Addr: netip.MustParseAddrPort("192.0.2.7:80"), Receive: "ok"}
	b := a
	if a.Key() != b.Key() {
		t.Error("equal configs, different keys")
	}
	b.Request = "/" // the defaults, spelled out
	b.CheckType, b.Protocol = "negotiate", "tcp"
	if a.Key() != b.Key() {
		t.Error("default request changes the key")
	}
	b.Virtual, b.VirtualPort = "192.0.2.100", "80"
	if a.Key() != b.Key() {
		t.Error("another virtual service checking the same way has another key")
	}
	b.Receive = "ok2"
	if a.Key() == b.Key() {
		t.Error("different receive, same key")
	}
	ext := Config{CheckType: "external", CheckCommand: "/bin/check", Addr: a.Addr, Virtual: "192.0.2.1"}
	ext2 := ext
	ext2.Virtual = "192.0.2.2"
	if ext.Key() == ext2.Key() {
		t.Error("external commands for two virtual services share a key")
	}
}

// scripted is a Checker returning preset verdicts and counting its calls.
type scripted struct {
	name  string
	verds []bool
	calls int
}

func (s *scripted) Check(context.Context) Result {
	v := s.verds[s.calls%len(s.verds)]
	s.calls++
	return Result{Up: v, Message: s.name}
}

func (s *scripted) String() string { return s.name }

func TestCombinedSchedule(t *testing.T) {
	conn := &scripted{name: "connect", verds: []bool{true, true, true, false, true, true, true}}
	neg := &scripted{name: "negotiate", verds: []bool{true}}
	c := NewCombined(2, conn, neg)
	var seq []string
	for i := 0; i < 9; i++ {
		seq = append(seq, c.Check(context.Background()).Message)
	}
	// negotiate first; then 2 connects and a negotiate; a failed connect
	// (the 6th check) forces a negotiate.
	want := "negotiate connect connect negotiate connect connect negotiate connect connect"
	if got := strings.Join(seq, " "); got != want {
		t.Errorf("sequence\n got %s\nwant %s", got, want)
	}
	// A failed negotiate is retried as a negotiate.
	neg2 := &scripted{name: "negotiate", verds: []bool{false, false, true}}
	c = NewCombined(1, &scripted{name: "connect", verds: []bool{true}}, neg2)
	seq = nil
	for i := 0; i < 5; i++ {
		seq = append(seq, c.Check(context.Background()).Message)
	}
	if got := strings.Join(seq, " "); got != "negotiate negotiate negotiate connect negotiate" {
		t.Errorf("after failed negotiate: %s", got)
	}
}
