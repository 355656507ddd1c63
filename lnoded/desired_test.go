package lnoded

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// These tests exercise Desired, the pure function above the kernel
// boundary: configurations are parsed by the real parser, check results
// and kernel tables are given as data.

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), &config.Options{Services: []byte("http 80/tcp\ndomain 53/tcp\ndomain 53/udp\n"), Hostname: "test"})
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	return cfg
}

var (
	vip = netip.MustParseAddr("192.0.2.100")
	rs1 = netip.MustParseAddr("192.0.2.11")
	rs2 = netip.MustParseAddr("192.0.2.12")
	fb  = netip.MustParseAddr("127.0.0.1")
	web = ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.TCP, Addr: vip, Port: 80}
)

func rk(sk ipvs.ServiceKey, a netip.Addr, port uint16) RealKey {
	return RealKey{sk, ipvs.DestKey{Addr: a, Port: port}}
}

// render writes a table as "SERVICE sched | dest weight, ..." lines, sorted,
// so expectations read like ipvsadm -Ln.
func render(t ipvs.Table) string {
	var lines []string
	for _, vs := range t {
		l := vs.Key().String() + " " + vs.Scheduler
		if vs.Flags&ipvs.FlagPersistent != 0 {
			l += " persistent"
		}
		var ds []string
		for _, d := range vs.Destinations {
			s := netip.AddrPortFrom(d.Addr, d.Port).String() + " " + d.Forward.String() + " w" + itoa(int(d.Weight))
			if d.UpperThreshold != 0 || d.LowerThreshold != 0 {
				s += " u" + itoa(int(d.UpperThreshold)) + " l" + itoa(int(d.LowerThreshold))
			}
			ds = append(ds, s)
		}
		slices.Sort(ds)
		lines = append(lines, l+" | "+strings.Join(ds, ", "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func itoa(i int) string { return strconv.Itoa(i) }

const seed003 = `
checkinterval=1
quiescent=%Q%
virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	real=192.0.2.12:80 gate
	service=http
	request=".test.html"
	receive="ok"
	virtualhost=www.a.com
	scheduler=rr
	protocol=tcp
`

func seed(q string) string { return strings.ReplaceAll(seed003, "%Q%", q) }

func kernel(dests ...ipvs.Destination) ipvs.Table {
	return ipvs.Table{{Service: ipvs.Service{Protocol: ipvs.TCP, Addr: vip, Port: 80, Scheduler: "rr"}, Destinations: dests}}
}

func dest(a netip.Addr, w int32) ipvs.Destination {
	return ipvs.Destination{Addr: a, Port: 80, Forward: ipvs.Route, Weight: w}
}

func TestDesired(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		in   Input
		want string
	}{
		{"quiescent=yes, not yet checked", seed("yes"), Input{ReAdd: true},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w0, 192.0.2.12:80 Route w0"},
		{"quiescent=no, not yet checked", seed("no"), Input{ReAdd: true},
			"-t 192.0.2.100:80 rr | "},
		{"quiescent=yes, both down", seed("yes"), Input{ReAdd: true, Health: map[RealKey]Health{rk(web, rs1, 80): Down, rk(web, rs2, 80): Down}},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w0, 192.0.2.12:80 Route w0"},
		{"quiescent=yes, one up", seed("yes"), Input{Health: map[RealKey]Health{rk(web, rs1, 80): Up, rk(web, rs2, 80): Down}, Actual: kernel(dest(rs1, 0), dest(rs2, 0))},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w1, 192.0.2.12:80 Route w0"},
		{"quiescent=no, one up", seed("no"), Input{Health: map[RealKey]Health{rk(web, rs1, 80): Up, rk(web, rs2, 80): Down}},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w1"},
		{"both up", seed("no"), Input{Health: map[RealKey]Health{rk(web, rs1, 80): Up, rk(web, rs2, 80): Up}},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w1, 192.0.2.12:80 Route w1"},
		{"maintenance is down", seed("yes"), Input{Health: map[RealKey]Health{rk(web, rs1, 80): Maintenance, rk(web, rs2, 80): Up}, Actual: kernel(dest(rs1, 1), dest(rs2, 1))},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w0, 192.0.2.12:80 Route w1"},
		{"unknown keeps a working server in the kernel (restart with cleanstop=no)", seed("yes"), Input{ReAdd: true, Actual: kernel(dest(rs1, 5), dest(rs2, 0))},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w1, 192.0.2.12:80 Route w0"},
		{"quiescent down server removed by someone else stays out without readd", seed("yes"), Input{Health: map[RealKey]Health{rk(web, rs1, 80): Down, rk(web, rs2, 80): Up}, Actual: kernel(dest(rs2, 1))},
			"-t 192.0.2.100:80 rr | 192.0.2.12:80 Route w1"},
		{"... and comes back at weight 0 with readd", seed("yes"), Input{ReAdd: true, Health: map[RealKey]Health{rk(web, rs1, 80): Down, rk(web, rs2, 80): Up}, Actual: kernel(dest(rs2, 1))},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w0, 192.0.2.12:80 Route w1"},
		{"fallback when all are down", seed("yes") + "\tfallback=127.0.0.1:80 gate\n", Input{ReAdd: true},
			"-t 192.0.2.100:80 rr | 127.0.0.1:80 Route w1, 192.0.2.11:80 Route w0, 192.0.2.12:80 Route w0"},
		{"no fallback when one is up", seed("no") + "\tfallback=127.0.0.1:80 gate\n", Input{Health: map[RealKey]Health{rk(web, rs1, 80): Up}},
			"-t 192.0.2.100:80 rr | 192.0.2.11:80 Route w1"},
		{"global fallback without a port takes the virtual's", "fallback=127.0.0.1\n" + seed("no"), Input{},
			"-t 192.0.2.100:80 rr | 127.0.0.1:80 Route w1"},
		{"weights, thresholds, masq, real without port", `
virtual=192.0.2.100:80
	real=192.0.2.11 masq 3 l:10 u:20
	real=192.0.2.12:8080 masq 2
	checktype=on
	scheduler=wlc
`, Input{Health: map[RealKey]Health{rk(web, rs1, 80): Up, rk(web, rs2, 8080): Up}},
			"-t 192.0.2.100:80 wlc | 192.0.2.11:80 Masq w3 u20 l10, 192.0.2.12:8080 Masq w2"},
		{"default scheduler wrr, persistent", `
virtual=192.0.2.100:80
	real=192.0.2.11:80 ipip
	persistent=300
`, Input{Health: map[RealKey]Health{rk(web, rs1, 80): Up}},
			"-t 192.0.2.100:80 wrr persistent | 192.0.2.11:80 Tunnel w1"},
		{"udp and tcp dns", `
quiescent=no
virtual=192.0.2.100:53
	real=192.0.2.11:53 gate
	service=dns
	request="www.a.com"
	receive="192.0.2.100"
	protocol=udp
virtual=192.0.2.100:53
	real=192.0.2.11:53 gate
	service=dns
	request="www.a.com"
	receive="192.0.2.100"
	protocol=tcp
`, Input{Health: map[RealKey]Health{
			rk(ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.UDP, Addr: vip, Port: 53}, rs1, 53): Up,
			rk(ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.TCP, Addr: vip, Port: 53}, rs1, 53): Down}},
			"-t 192.0.2.100:53 wrr | \n-u 192.0.2.100:53 wrr | 192.0.2.11:53 Route w1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := Desired(parse(t, tc.cfg), tc.in)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if s := render(got); s != tc.want {
				t.Errorf("got\n%s\nwant\n%s", s, tc.want)
			}
		})
	}
}

func TestDesiredServiceOptions(t *testing.T) {
	cfg := parse(t, `
virtual=192.0.2.100:53
	real=192.0.2.11:53 gate
	protocol=udp
	ops=yes
	persistent=60
	netmask=255.255.255.0
	scheduler=sh
	schedflags=sh-fallback,sh-port
virtual6=[2001:db8::100]:80
	real6=[2001:db8::11]:80 gate
virtual=7
	real=192.0.2.11 gate
`)
	got, errs := Desired(cfg, Input{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(got) != 3 {
		t.Fatalf("%d services", len(got))
	}
	u := got[0].Service
	if u.Flags != ipvs.FlagOnePacket|ipvs.FlagPersistent|ipvs.FlagSHFallback|ipvs.FlagSHPort || u.Timeout != 60 || u.Netmask != 0xffffff00 || u.Scheduler != "sh" {
		t.Errorf("udp service: %+v", u)
	}
	if s := got[1].Service; s.Family != ipvs.IPv6 || s.Netmask != 128 {
		t.Errorf("IPv6 service: %+v", s)
	}
	if s := got[2].Service; s.FWMark != 7 || s.Family != ipvs.IPv4 || s.Protocol != 0 {
		t.Errorf("fwmark service: %+v", s)
	}
	for _, vs := range got {
		if err := vs.Validate(); err != nil {
			t.Errorf("%s: %v", vs.Key(), err)
		}
	}
}

func TestSchedFlagsRejectsUnknown(t *testing.T) {
	if _, err := schedFlags("sh-port,bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("err = %v", err)
	}
}

func TestMaintenanceNames(t *testing.T) {
	got := maintenanceNames(netip.MustParseAddr("172.16.1.2"), []uint16{4444}, []string{"realserver2.example.com."})
	want := []string{"172.16.1.2:4444", "172.16.1.2", "realserver2.example.com:4444", "realserver2.example.com", "realserver2:4444", "realserver2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
