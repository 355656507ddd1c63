package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
}

// busybox finds a busybox binary for ping (the host's or the guest's).
func busybox(t *testing.T) string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("busybox not found (apt-get install busybox-static)")
	return ""
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// lan builds client, s1 and s2 plugged into one switch, dual stack.
func lan(t *testing.T, topo *Topology) (client, s1, s2 *Host) {
	t.Helper()
	sw, err := topo.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*Host
	for i, name := range []string{"client", "s1", "s2"} {
		h, err := topo.Host(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := topo.Plug(h, "eth0", sw); err != nil {
			t.Fatal(err)
		}
		if err := h.AddAddr("eth0", mustPrefix(fmt.Sprintf("192.0.2.%d/24", 10+i))); err != nil {
			t.Fatal(err)
		}
		if err := h.AddAddr("eth0", mustPrefix(fmt.Sprintf("2001:db8::%d/64", 10+i))); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	return hosts[0], hosts[1], hosts[2]
}

// serve listens on addr inside h and answers each connection with h's name.
// The listener is closed when the test ends.
func serve(t *testing.T, h *Host, addr string) {
	t.Helper()
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop := Serve(ln, func(c net.Conn) {
		fmt.Fprintln(c, h.Name())
		c.Close()
	})
	t.Cleanup(stop)
}

// dial connects from h to addr and returns the first line the server sends.
func dial(h *Host, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func rootLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir(runNetns)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			left = append(left, e.Name())
		}
	}
	return left
}

func TestLAN(t *testing.T) {
	needRoot(t)
	before := rootLinks(t)
	topo, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	client, s1, s2 := lan(t, topo)
	if got := leftovers(t, topo.Prefix()); len(got) != 4 {
		t.Errorf("namespaces %v, want client, s1, s2 and switch", got)
	}

	bb := busybox(t)
	for _, dst := range []string{"192.0.2.11", "192.0.2.12", "2001:db8::11", "2001:db8::12"} {
		out, err := client.CombinedOutput(exec.Command(bb, "ping", "-c", "1", "-W", "3", dst))
		if err != nil {
			t.Errorf("ping %s from client: %v\n%s", dst, err, out)
		}
	}

	serve(t, s1, "192.0.2.11:8080")
	serve(t, s2, "[2001:db8::12]:8080")
	if got, err := dial(client, "192.0.2.11:8080"); err != nil || got != "s1" {
		t.Errorf("dial s1: %q, %v", got, err)
	}
	if got, err := dial(client, "[2001:db8::12]:8080"); err != nil || got != "s2" {
		t.Errorf("dial s2: %q, %v", got, err)
	}
	pc, err := s2.ListenPacket("udp", "192.0.2.12:5353")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc, err := client.Dial(context.Background(), "udp", "192.0.2.12:5353")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 16)
	if n, from, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "ping" || !strings.HasPrefix(from.String(), "192.0.2.10:") {
		t.Errorf("UDP to s2: %q from %v, %v", buf[:n], from, err)
	}
	// The caller's namespace does not reach the LAN.
	if c, err := net.DialTimeout("tcp", "192.0.2.11:8080", 300*time.Millisecond); err == nil {
		c.Close()
		t.Error("dial from the root namespace reached s1")
	}

	// A VIP on s1's loopback, ARP kept quiet as on an LVS-DR real server,
	// reached through a host route on the client.
	vip := netip.MustParseAddr("203.0.113.1")
	if err := s1.AddAddr("lo", netip.PrefixFrom(vip, 32)); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"} {
		if err := s1.Sysctl(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var got string
	if err := s1.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/arp_ignore")
		got = strings.TrimSpace(string(b))
		return err
	}); err != nil || got != "1" {
		t.Errorf("arp_ignore in s1 = %q, %v", got, err)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/conf/all/arp_ignore"); strings.TrimSpace(string(b)) == "1" && got == "1" {
		t.Log("note: the root namespace also has arp_ignore=1")
	}
	serve(t, s1, "203.0.113.1:80")
	if err := client.AddRoute(netip.PrefixFrom(vip, 32), netip.MustParseAddr("192.0.2.11")); err != nil {
		t.Fatal(err)
	}
	if got, err := dial(client, "203.0.113.1:80"); err != nil || got != "s1" {
		t.Errorf("dial VIP via route: %q, %v", got, err)
	}
	_ = s2

	if err := topo.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := topo.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if left := leftovers(t, topo.Prefix()); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if after := rootLinks(t); !slices.Equal(before, after) {
		t.Errorf("root namespace links changed: before %v, after %v", before, after)
	}
	if _, err := topo.Host("late"); err == nil {
		t.Error("Host after Close succeeded")
	}
}

func TestCableAndRouter(t *testing.T) {
	needRoot(t)
	topo := ForTest(t)
	a, err := topo.Host("a")
	if err != nil {
		t.Fatal(err)
	}
	r, err := topo.Host("router")
	if err != nil {
		t.Fatal(err)
	}
	b, err := topo.Host("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Cable(a, "eth0", r, "left"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Cable(r, "right", b, "eth0"); err != nil {
		t.Fatal(err)
	}
	steps := []error{
		a.AddAddr("eth0", mustPrefix("198.51.100.2/30")),
		r.AddAddr("left", mustPrefix("198.51.100.1/30")),
		r.AddAddr("right", mustPrefix("203.0.113.1/30")),
		b.AddAddr("eth0", mustPrefix("203.0.113.2/30")),
		a.AddRoute(mustPrefix("0.0.0.0/0"), netip.MustParseAddr("198.51.100.1")),
		b.AddRoute(mustPrefix("0.0.0.0/0"), netip.MustParseAddr("203.0.113.1")),
		r.Sysctl("net.ipv4.ip_forward", "1"),
		r.AddRoute(mustPrefix("192.0.2.80/32"), netip.MustParseAddr("203.0.113.2")),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	vipDev := "vip0"
	if err := b.AddDummy(vipDev); errors.Is(err, syscall.EOPNOTSUPP) {
		t.Log("kernel has no dummy links; the VIP goes on lo")
		vipDev = "lo"
	} else if err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr(vipDev, mustPrefix("192.0.2.80/32")); err != nil {
		t.Fatal(err)
	}
	serve(t, b, "192.0.2.80:80")
	if got, err := dial(a, "192.0.2.80:80"); err != nil || got != "b" {
		t.Fatalf("dial through router: %q, %v", got, err)
	}
	// Processes started in a host live there until the test ends.
	cmd := exec.CommandContext(context.Background(), busybox(t), "sleep", "60")
	if err := b.Start(cmd); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("process in b survived Close")
	}
}

func TestParallelTopologies(t *testing.T) {
	needRoot(t)
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			topo := ForTest(t)
			client, s1, _ := lan(t, topo)
			serve(t, s1, "192.0.2.11:9000")
			if got, err := dial(client, "192.0.2.11:9000"); err != nil || got != "s1" {
				t.Errorf("dial: %q, %v", got, err)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	needRoot(t)
	// A pid that has just exited stands in for a crashed test process.
	cmd := exec.Command(busybox(t), "true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s%d-0000-stale", namePrefix, cmd.Process.Pid)
	h, err := newHost("stale", name)
	if err != nil {
		t.Fatal(err)
	}
	h.nl.Close()
	h.ns.Close()
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Sweep left %s: %v", h.Path(), err)
	}
}

func TestBadNames(t *testing.T) {
	topo, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	if _, err := topo.Host("a/b"); err == nil {
		t.Error("host name with a slash accepted")
	}
	if _, err := topo.Switch("a-very-long-bridge-name"); err == nil {
		t.Error("switch name longer than 15 characters accepted")
	}
}

// cabledHost returns host "h" with one veth cable to host "o" per name in
// devs, each end named the same on both sides.
func cabledHost(t *testing.T, devs ...string) *Host {
	t.Helper()
	topo := ForTest(t)
	h, err := topo.Host("h")
	if err != nil {
		t.Fatal(err)
	}
	o, err := topo.Host("o")
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range devs {
		if err := topo.Cable(h, dev, o, dev); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func TestHasAddr(t *testing.T) {
	h := cabledHost(t, "d0")
	v4, v6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	if h.HasAddr("d0", v4) {
		t.Error("an address before it was added")
	}
	for _, p := range []string{"192.0.2.7/24", "2001:db8::7/64"} {
		if err := h.AddAddr("d0", netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	if !h.HasAddr("d0", v4) || !h.HasAddr("d0", v6) || h.HasAddr("d0", netip.MustParseAddr("192.0.2.8")) || h.HasAddr("nope", v4) {
		t.Errorf("HasAddr: addresses %v", must2(h.Addrs("d0")))
	}
}

func must2[T any](v T, _ error) T { return v }

func TestWatchAddr(t *testing.T) {
	h := cabledHost(t, "d0", "d1")
	vip := netip.MustParsePrefix("192.0.2.9/32")
	// Another address on the same interface and the same one elsewhere
	// must not count.
	done := make(chan struct{})
	defer close(done)
	changes, err := h.WatchAddr("d0", vip.Addr(), done)
	if err != nil {
		t.Fatal(err)
	}
	next := func(want bool) {
		t.Helper()
		select {
		case c := <-changes:
			if c.Present != want {
				t.Fatalf("change %+v, want present %v", c, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no change in 5 s, want present %v", want)
		}
	}
	next(false) // the state when it started
	for _, p := range []struct{ dev, addr string }{{"d1", "192.0.2.9/32"}, {"d0", "192.0.2.10/32"}} {
		if err := h.AddAddr(p.dev, netip.MustParsePrefix(p.addr)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.AddAddr("d0", vip); err != nil {
		t.Fatal(err)
	}
	next(true)
	l, err := h.Netlink().LinkByName("d0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Netlink().AddrDel(l, &netlink.Addr{IPNet: &net.IPNet{IP: vip.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	next(false)
	select {
	case c := <-changes:
		t.Errorf("a change nobody made: %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}
