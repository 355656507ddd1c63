package checks

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/testbed/netns"
)

// TestDRPath builds a director and four real servers on one LAN in network
// namespaces (no IPVS needed: the check sends what IPVS would) and checks
// each: prepared as for LVS-DR; without the VIP on lo; with the VIP on lo
// but answering ARP for it; with the VIP but the service listening on the
// real address only. Each real server passes a plain connect check to its
// own address, so only the DR path tells them apart.
func TestDRPath(t *testing.T) {
	topo := netns.ForTest(t)
	lan, err := topo.Switch("lan")
	must(t, err)
	director, err := topo.Host("director")
	must(t, err)
	_, err = topo.Plug(director, "eth0", lan)
	must(t, err)
	must(t, director.AddAddr("eth0", netip.MustParsePrefix("192.0.2.1/24")))

	vip := netip.MustParseAddrPort("192.0.2.100:80")
	type server struct {
		name      string
		rip       string
		vipOnLo   bool
		arpIgnore bool
		listen    string // where the service listens
		wantUp    bool
		wantMsg   string
	}
	servers := []server{
		{"good", "192.0.2.11", true, true, ":80", true, "192.0.2.100:80 answered through real server 192.0.2.11"},
		{"novip", "192.0.2.12", false, true, ":80", false, "the VIP is not on its loopback"},
		{"arp", "192.0.2.13", true, false, ":80", false, "answers ARP for the VIP 192.0.2.100"},
		{"ripOnly", "192.0.2.14", true, true, "192.0.2.14:80", false, "nothing listens on it"},
	}
	for _, s := range servers {
		h, err := topo.Host(s.name)
		must(t, err)
		_, err = topo.Plug(h, "eth0", lan)
		must(t, err)
		must(t, h.AddAddr("eth0", netip.MustParsePrefix(s.rip+"/24")))
		if s.vipOnLo {
			must(t, h.AddAddr("lo", netip.PrefixFrom(vip.Addr(), 32)))
		}
		if s.arpIgnore {
			for _, ifn := range []string{"all", "eth0"} {
				must(t, h.Sysctl("net.ipv4.conf."+ifn+".arp_ignore", "1"))
				must(t, h.Sysctl("net.ipv4.conf."+ifn+".arp_announce", "2"))
			}
		}
		ln, err := h.Listen("tcp4", s.listen)
		must(t, err)
		t.Cleanup(func() { ln.Close() })
		go acceptAndClose(ln)
	}

	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			cfg := Config{
				CheckType:    "connect",
				Addr:         netip.AddrPortFrom(netip.MustParseAddr(s.rip), 80),
				CheckTimeout: 2 * time.Second,
				DRPath:       vip,
			}
			c, err := New(cfg)
			must(t, err)
			if _, ok := c.(*DRPathChecker); !ok {
				t.Fatalf("New with DRPath gave %T", c)
			}
			var r Result
			must(t, director.Do(func() error {
				r = c.Check(context.Background())
				return nil
			}))
			t.Logf("%s: %v", c, r)
			if r.Up != s.wantUp {
				t.Errorf("up = %v, want %v: %v", r.Up, s.wantUp, r)
			}
			if got := r.Message + " " + errString(r.Err); !strings.Contains(got, s.wantMsg) {
				t.Errorf("result %q does not say %q", got, s.wantMsg)
			}
			// The real server's own check passes in every case: the
			// DR-path probe is what finds the fault.
			base, err := newBase(cfg)
			must(t, err)
			var br Result
			must(t, director.Do(func() error { br = base.Check(context.Background()); return nil }))
			if !br.Up {
				t.Errorf("plain connect check of %s failed: %v", s.rip, br)
			}
		})
	}
}

// TestDRPathUnreachable: a real server that does not answer ARP, and one
// behind a gateway (which direct routing cannot reach), are down with
// that reason and within checktimeout.
func TestDRPathUnreachable(t *testing.T) {
	topo := netns.ForTest(t)
	lan, err := topo.Switch("lan")
	must(t, err)
	director, err := topo.Host("director")
	must(t, err)
	_, err = topo.Plug(director, "eth0", lan)
	must(t, err)
	must(t, director.AddAddr("eth0", netip.MustParsePrefix("192.0.2.1/24")))
	must(t, director.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), netip.MustParseAddr("192.0.2.254")))
	for rip, want := range map[string]string{
		"192.0.2.50":   "no ARP reply from real server 192.0.2.50 on eth0",
		"198.51.100.5": "reached through gateway 192.0.2.254; direct routing needs it on a directly connected network",
	} {
		c, err := New(Config{CheckType: "connect", Addr: netip.AddrPortFrom(netip.MustParseAddr(rip), 80),
			CheckTimeout: 500 * time.Millisecond, DRPath: netip.MustParseAddrPort("192.0.2.100:80")})
		must(t, err)
		var r Result
		must(t, director.Do(func() error { r = c.Check(context.Background()); return nil }))
		if r.Up || !strings.Contains(errString(r.Err), want) {
			t.Errorf("%s: %v; want down with %q", rip, r, want)
		}
		if r.Latency > 2*time.Second {
			t.Errorf("%s: took %v with a 500ms checktimeout", rip, r.Latency)
		}
	}
}

func TestDRPathConfig(t *testing.T) {
	base := Config{CheckType: "connect", Addr: netip.MustParseAddrPort("192.0.2.11:80"), DRPath: netip.MustParseAddrPort("192.0.2.100:80")}
	bad := map[string]func(c *Config){
		"udp":       func(c *Config) { c.Protocol = "udp" },
		"ipv6 vip":  func(c *Config) { c.DRPath = netip.MustParseAddrPort("[2001:db8::1]:80") },
		"ipv6 real": func(c *Config) { c.Addr = netip.MustParseAddrPort("[2001:db8::11]:80") },
		"port 0":    func(c *Config) { c.DRPath = netip.MustParseAddrPort("192.0.2.100:0") },
	}
	for name, f := range bad {
		c := base
		f(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
	plain := base
	plain.DRPath = netip.AddrPort{}
	if base.Key() == plain.Key() {
		t.Error("DRPath does not change the Key: a DR-path job would share a plain check's probe")
	}
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
