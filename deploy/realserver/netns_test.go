package realserver

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/directord/directord/testbed/netns"
)

// lab is a real server ("rs") and a client on its LAN ("cl"), which reaches
// the VIP on-link as a router or the director would.
type lab struct {
	rs, cl *netns.Host
	rsMAC  net.HardwareAddr
	state  string
}

var (
	vip4 = netip.MustParseAddr("203.0.113.10")
	vip6 = netip.MustParseAddr("2001:db8::10")
)

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	topo := netns.ForTest(t)
	rs, err := topo.Host("rs")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := topo.Host("cl")
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Cable(rs, "eth0", cl, "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		rs.AddAddr("eth0", netip.MustParsePrefix("198.51.100.2/24")),
		cl.AddAddr("eth0", netip.MustParsePrefix("198.51.100.1/24")),
		rs.AddAddr("eth0", netip.MustParsePrefix("2001:db8:1::2/64")),
		cl.AddAddr("eth0", netip.MustParsePrefix("2001:db8:1::1/64")),
		cl.AddDeviceRoute(netip.PrefixFrom(vip4, 32), "eth0"),
		cl.AddDeviceRoute(netip.PrefixFrom(vip6, 128), "eth0"),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	link, err := rs.Netlink().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	return &lab{rs: rs, cl: cl, rsMAC: link.Attrs().HardwareAddr, state: t.TempDir()}
}

// preparer runs Up or Down inside the real server's namespace, as
// `directord realserver` run there would.
func (l *lab) run(t *testing.T, up bool, vips ...netip.Addr) string {
	t.Helper()
	var report bytes.Buffer
	err := l.rs.Do(func() error {
		p, err := New(Options{StateDir: l.state, Report: &report})
		if err != nil {
			return err
		}
		defer p.Close()
		if up {
			return p.Up(context.Background(), vips)
		}
		return p.Down(context.Background(), vips)
	})
	if err != nil {
		t.Fatalf("up=%v %v: %v\n%s", up, vips, err, report.String())
	}
	return report.String()
}

func (l *lab) sysctl(t *testing.T, name string) string {
	t.Helper()
	var v string
	err := l.rs.Do(func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// onLo returns the prefixes of a on the real server's lo.
func (l *lab) onLo(t *testing.T, a netip.Addr) []int {
	t.Helper()
	lo, err := l.rs.Netlink().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := l.rs.Netlink().AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var bits []int
	for _, ad := range addrs {
		if got, ok := netip.AddrFromSlice(ad.IP); ok && got.Unmap() == a {
			ones, _ := ad.Mask.Size()
			bits = append(bits, ones)
		}
	}
	return bits
}

// probe makes the client resolve a on its LAN (ARP, or neighbour
// solicitation for IPv6) by sending it a datagram, and returns the MAC
// address it learnt, nil when nobody answered.
func (l *lab) probe(t *testing.T, a netip.Addr) net.HardwareAddr {
	t.Helper()
	if out, err := l.cl.CombinedOutput(exec.Command("ip", "neigh", "flush", "dev", "eth0")); err != nil {
		t.Fatalf("ip neigh flush: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := l.cl.Dial(ctx, "udp", netip.AddrPortFrom(a, 9).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("probe")); err != nil {
		t.Fatal(err)
	}
	link, err := l.cl.Netlink().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	// The kernel gives up after 3 solicitations a second apart (FAILED).
	for ctx.Err() == nil {
		neighs, err := l.cl.Netlink().NeighList(link.Attrs().Index, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range neighs {
			if got, ok := netip.AddrFromSlice(n.IP); !ok || got.Unmap() != a {
				continue
			}
			switch {
			case n.State&netlink.NUD_FAILED != 0:
				return nil
			case n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0 && len(n.HardwareAddr) == 6:
				return n.HardwareAddr
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("probing %v: the neighbour entry neither resolved nor failed in time", a)
	return nil
}

// deliver sends a datagram to a with the frame addressed to the real
// server's MAC, as the director forwards it, and reports whether a
// listener on a in the real server received it.
func (l *lab) deliver(t *testing.T, a netip.Addr) bool {
	t.Helper()
	dst := netip.AddrPortFrom(a, 9999)
	pc, err := l.rs.ListenPacket("udp", dst.String())
	if err != nil {
		t.Fatalf("listening on the VIP in the real server: %v", err)
	}
	defer pc.Close()
	link, err := l.cl.Netlink().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: family, IP: a.AsSlice(), HardwareAddr: l.rsMAC, State: netlink.NUD_PERMANENT}
	if err := l.cl.Netlink().NeighSet(n); err != nil {
		t.Fatal(err)
	}
	defer l.cl.Netlink().NeighDel(n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := l.cl.Dial(ctx, "udp", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("for the VIP")); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	nr, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Logf("receiving on %v: %v", dst, err)
		return false
	}
	return string(buf[:nr]) == "for the VIP"
}

func TestUpDownInNamespace(t *testing.T) {
	l := newLab(t)
	for _, s := range Sysctls() {
		if got := l.sysctl(t, s.Name); got != "0" {
			t.Fatalf("a fresh namespace has %s = %s, want 0", s.Name, got)
		}
	}

	// Control: the probe sees an answer where there is one.
	for _, a := range []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8:1::2")} {
		if mac := l.probe(t, a); mac.String() != l.rsMAC.String() {
			t.Fatalf("control: probing %v learnt %v, want the real server's %v", a, mac, l.rsMAC)
		}
	}
	// Control: a VIP on lo without the sysctls is answered for, which is
	// the problem realserver solves, and which the probe must see.
	if err := l.rs.AddAddr("lo", netip.PrefixFrom(vip4, 32)); err != nil {
		t.Fatal(err)
	}
	if mac := l.probe(t, vip4); mac.String() != l.rsMAC.String() {
		t.Fatalf("control: with arp_ignore=0 the real server should answer ARP for the VIP on lo; client learnt %v", mac)
	}

	// Up adopts the VIP already there and adds the IPv6 one.
	report := l.run(t, true, vip4, vip6)
	t.Logf("up:\n%s", report)
	for _, s := range Sysctls() {
		if got := l.sysctl(t, s.Name); got != s.Value {
			t.Errorf("after up, %s = %s, want %s", s.Name, got, s.Value)
		}
	}
	if got := l.onLo(t, vip4); len(got) != 1 || got[0] != 32 {
		t.Errorf("%v on lo with prefixes %v, want [32]", vip4, got)
	}
	if got := l.onLo(t, vip6); len(got) != 1 || got[0] != 128 {
		t.Errorf("%v on lo with prefixes %v, want [128]", vip6, got)
	}
	if mac := l.probe(t, vip4); mac != nil {
		t.Errorf("after up the real server answered ARP for %v with %v", vip4, mac)
	}
	if mac := l.probe(t, vip6); mac != nil {
		t.Errorf("after up the real server answered neighbour solicitation for %v with %v", vip6, mac)
	}
	if !l.deliver(t, vip4) {
		t.Errorf("the real server did not accept a packet for %v sent to its MAC", vip4)
	}
	if !l.deliver(t, vip6) {
		t.Errorf("the real server did not accept a packet for %v sent to its MAC", vip6)
	}

	// Idempotent.
	report = l.run(t, true, vip4, vip6)
	if strings.Contains(report, "add ") || strings.Contains(report, "set ") {
		t.Errorf("a second up changed something:\n%s", report)
	}

	// Removing one VIP keeps the sysctls: the other is still on lo.
	l.run(t, false, vip4)
	if got := l.onLo(t, vip4); len(got) != 0 {
		t.Errorf("%v still on lo after down", vip4)
	}
	if got := l.sysctl(t, "net.ipv4.conf.all.arp_ignore"); got != "1" {
		t.Errorf("arp_ignore restored to %s while %v remains", got, vip6)
	}

	// Down with no VIP named removes the rest and restores the sysctls.
	l.run(t, false)
	if got := l.onLo(t, vip6); len(got) != 0 {
		t.Errorf("%v still on lo after down", vip6)
	}
	for _, s := range Sysctls() {
		if got := l.sysctl(t, s.Name); got != "0" {
			t.Errorf("after down, %s = %s, want the original 0", s.Name, got)
		}
	}
	if _, err := os.Stat(filepath.Join(l.state, StateFile)); !os.IsNotExist(err) {
		t.Errorf("state file left behind: %v", err)
	}
	// And again: nothing to do is not an error.
	l.run(t, false)
}

// TestRefusesDirectorVIP checks that up refuses a VIP that is on another
// interface: that host holds it as a director, and lo would steal it.
func TestRefusesDirectorVIP(t *testing.T) {
	l := newLab(t)
	if err := l.rs.AddAddr("eth0", netip.PrefixFrom(vip4, 24)); err != nil {
		t.Fatal(err)
	}
	err := l.rs.Do(func() error {
		p, err := New(Options{StateDir: l.state})
		if err != nil {
			return err
		}
		defer p.Close()
		return p.Up(context.Background(), []netip.Addr{vip4})
	})
	if err == nil || !strings.Contains(err.Error(), "is on eth0") {
		t.Fatalf("got %v, want a refusal naming eth0", err)
	}
	if got := l.sysctl(t, "net.ipv4.conf.all.arp_ignore"); got != "0" {
		t.Errorf("a refused up changed arp_ignore to %s", got)
	}
}

// TestDryRun checks that a dry run reports and changes nothing.
func TestDryRun(t *testing.T) {
	l := newLab(t)
	var report bytes.Buffer
	err := l.rs.Do(func() error {
		p, err := New(Options{StateDir: l.state, DryRun: true, Report: &report})
		if err != nil {
			return err
		}
		defer p.Close()
		return p.Up(context.Background(), []netip.Addr{vip4})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"would set net.ipv4.conf.all.arp_ignore = 1 (was 0)", "would add 203.0.113.10/32 to lo"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("dry run report lacks %q:\n%s", want, report.String())
		}
	}
	if len(l.onLo(t, vip4)) != 0 || l.sysctl(t, "net.ipv4.conf.all.arp_ignore") != "0" {
		t.Error("the dry run changed the host")
	}
	if entries, _ := os.ReadDir(l.state); len(entries) != 0 {
		t.Errorf("the dry run wrote %v", entries)
	}
}
