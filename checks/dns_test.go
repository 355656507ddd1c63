package checks

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer serves a tiny zone on loopback over UDP and TCP on the same
// port, and records which transports its queries came over.
type dnsServer struct {
	addr netip.AddrPort
	mu   sync.Mutex
	nets []string
}

func (s *dnsServer) transports() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.nets...)
}

func startDNS(t *testing.T, udp, tcp bool) *dnsServer {
	t.Helper()
	ds := &dnsServer{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		ds.mu.Lock()
		ds.nets = append(ds.nets, w.RemoteAddr().Network())
		ds.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(q)
		name := q.Question[0].Name
		switch {
		case name == "www.example.org." && q.Question[0].Qtype == dns.TypeA:
			m.Answer = append(m.Answer,
				&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "web.example.org."},
				&dns.A{Hdr: dns.RR_Header{Name: "web.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 10)},
				&dns.A{Hdr: dns.RR_Header{Name: "web.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 11)})
		case name == "10.2.0.192.in-addr.arpa." && q.Question[0].Qtype == dns.TypePTR:
			m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "web.example.org."})
		case name == "big.example.org.":
			if w.RemoteAddr().Network() == "udp" {
				m.Truncated = true
			} else {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 99)})
			}
		case name == "empty.example.org.":
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	// Bind TCP first, then UDP on the same port number.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ds.addr = netip.MustParseAddrPort(ln.Addr().String())
	var servers []*dns.Server
	if tcp {
		servers = append(servers, &dns.Server{Listener: ln, Handler: h})
	} else {
		defer ln.Close()
	}
	if udp {
		pc, err := net.ListenPacket("udp", ds.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: h})
	}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return ds
}

func TestDNS(t *testing.T) {
	ds := startDNS(t, true, true)
	tests := []struct {
		name, request, receive, protocol string
		want                             bool
	}{
		{"A answer matches", "www.example.org", `192\.0\.2\.11`, "udp", true},
		{"leading slash stripped", "/www.example.org", `^192\.0\.2\.10$`, "udp", true},
		{"A answer does not match", "www.example.org", `198\.51`, "udp", false},
		{"CNAME targets are not matched", "www.example.org", `web`, "udp", false},
		{"empty receive fails", "www.example.org", "", "udp", false},
		{"PTR for an address request", "192.0.2.10", `^web\.example\.org$`, "udp", true},
		{"NXDOMAIN", "nope.example.org", `.`, "udp", false},
		{"NOERROR without answers", "empty.example.org", `.`, "udp", false},
		{"truncated udp answer retried over tcp", "big.example.org", `99`, "udp", true},
		{"tcp virtual service queries over tcp", "www.example.org", `192`, "tcp", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, Config{Service: "dns", Protocol: tt.protocol, Addr: ds.addr, Request: tt.request, Receive: tt.receive, NegotiateTimeout: 3 * time.Second})
			expect(t, c, tt.want)
		})
	}
	nets := strings.Join(ds.transports(), ",")
	if !strings.Contains(nets, "udp") || !strings.Contains(nets, "tcp") {
		t.Errorf("transports used: %s", nets)
	}
}

func TestDNSTransportFollowsProtocol(t *testing.T) {
	udpOnly := startDNS(t, true, false)
	expect(t, mustNew(t, Config{Service: "dns", Protocol: "udp", Addr: udpOnly.addr, Request: "www.example.org", Receive: "192"}), true)
	expect(t, mustNew(t, Config{Service: "dns", Protocol: "tcp", Addr: udpOnly.addr, Request: "www.example.org", Receive: "192", NegotiateTimeout: time.Second}), false)
	tcpOnly := startDNS(t, false, true)
	expect(t, mustNew(t, Config{Service: "dns", Protocol: "tcp", Addr: tcpOnly.addr, Request: "www.example.org", Receive: "192"}), true)
}

func TestDNSSilentServerTimesOut(t *testing.T) {
	noLeaks(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := mustNew(t, Config{Service: "dns", Addr: netip.MustParseAddrPort(pc.LocalAddr().String()), Request: "www.example.org", Receive: ".", NegotiateTimeout: 300 * time.Millisecond})
	start := time.Now()
	expect(t, c, false)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("silent server held the check %v", el)
	}
	// The hung TCP server too.
	c = mustNew(t, Config{Service: "dns", Protocol: "tcp", Addr: hungServer(t), Request: "www.example.org", Receive: ".", NegotiateTimeout: 300 * time.Millisecond})
	start = time.Now()
	expect(t, c, false)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("hung server held the check %v", el)
	}
}
