package vip_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/directord/directord/vip"
	"github.com/directord/directord/vip/internal/nstest"
)

// staleMAC is the previous owner's MAC that the peer's cache starts with
// (00:00:5e:00:53:xx is the documentation range, RFC 7042).
var staleMAC = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x53, 0x99}

// pair is a director namespace (a, link "va") and a neighbour (b, link
// "vb") on one veth, with 192.0.2.0/24 and 2001:db8:1::/64 between them.
type pair struct {
	a, b *nstest.NS
	aMAC net.HardwareAddr
	m    *vip.Manager
}

func newPair(t *testing.T) pair {
	t.Helper()
	a, b := nstest.New(t), nstest.New(t)
	la, _ := nstest.Veth(t, a, "va", b, "vb")
	a.Addr(t, "va", "192.0.2.1/24")
	b.Addr(t, "vb", "192.0.2.2/24")
	a.Addr(t, "va", "2001:db8:1::1/64")
	b.Addr(t, "vb", "2001:db8:1::2/64")
	// New namespaces inherit IPv4 settings from the host's; pin the ones
	// that decide whether the peer heeds announcements.
	for _, k := range []string{"all", "vb"} {
		b.Sysctl(t, "net/ipv4/conf/"+k+"/drop_gratuitous_arp", "0")
		b.Sysctl(t, "net/ipv6/conf/"+k+"/drop_unsolicited_na", "0")
	}
	m, err := vip.NewAt(a.Handle)
	if err != nil {
		t.Fatalf("NewAt: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return pair{a: a, b: b, aMAC: la.Attrs().HardwareAddr, m: m}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// garp is a decoded gratuitous ARP.
type garp struct {
	op       uint16
	ethDst   net.HardwareAddr
	sha, tha net.HardwareAddr
	spa, tpa netip.Addr
	at       time.Time
}

// garps decodes the ARP frames from mac whose sender address is ip.
func garps(frames []nstest.Frame, mac net.HardwareAddr, ip netip.Addr) []garp {
	var out []garp
	for _, f := range frames {
		p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		arp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if eth == nil || arp == nil || !bytes.Equal(eth.SrcMAC, mac) {
			continue
		}
		spa, _ := netip.AddrFromSlice(arp.SourceProtAddress)
		tpa, _ := netip.AddrFromSlice(arp.DstProtAddress)
		if spa != ip {
			continue
		}
		out = append(out, garp{
			op: arp.Operation, ethDst: eth.DstMAC,
			sha: arp.SourceHwAddress, tha: arp.DstHwAddress,
			spa: spa, tpa: tpa, at: f.At,
		})
	}
	return out
}

// checkGARPs asserts count request/reply pairs as send_arp sends them.
func checkGARPs(t *testing.T, got []garp, mac net.HardwareAddr, ip netip.Addr, count int, interval time.Duration) {
	t.Helper()
	if len(got) != 2*count {
		t.Fatalf("peer saw %d gratuitous ARPs for %s, want %d (%d request/reply pairs)", len(got), ip, 2*count, count)
	}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zero := make(net.HardwareAddr, 6)
	for i, g := range got {
		wantOp, wantTHA := uint16(layers.ARPRequest), zero
		if i%2 == 1 {
			wantOp, wantTHA = layers.ARPReply, mac
		}
		if g.op != wantOp || !bytes.Equal(g.tha, wantTHA) || !bytes.Equal(g.sha, mac) ||
			g.spa != ip || g.tpa != ip || !bytes.Equal(g.ethDst, bcast) {
			t.Errorf("ARP %d: op %d sha %s spa %s tha %s tpa %s eth dst %s; want op %d sha %s spa/tpa %s tha %s dst %s",
				i, g.op, g.sha, g.spa, g.tha, g.tpa, g.ethDst, wantOp, mac, ip, wantTHA, bcast)
		}
	}
	// 2*count-1 gaps of interval/2. Capture times are taken when the
	// capture goroutine reads, which a loaded machine delays, so only a
	// burst (no spacing at all) fails here; callers check the sender's time.
	span := got[len(got)-1].at.Sub(got[0].at)
	want := time.Duration(2*count-1) * interval / 2
	if span < want/4 {
		t.Errorf("ARPs spread over %v, want about %v (%d × %v)", span, want, count, interval)
	}
}

func waitNeigh(t *testing.T, ns *nstest.NS, link, ip string, want net.HardwareAddr) {
	t.Helper()
	var got net.HardwareAddr
	for range 150 {
		if got = ns.NeighMAC(t, link, ip); bytes.Equal(got, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("peer's neighbour entry for %s is %s, want %s (the announcement did not update it)", ip, got, want)
}

func TestAcquireReleaseIPv4(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	ip := netip.MustParseAddr("192.0.2.10")
	v := vip.VIP{Addr: ip, Label: "0"}

	// The peer's cache still points at the old director, as after a failover.
	p.b.Neigh(t, "vb", ip.String(), staleMAC)
	capture := p.b.Capture(t, "vb")

	start := time.Now()
	pl, err := p.m.Acquire(ctx, v)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	took := time.Since(start)
	if pl.Interface != "va" || pl.Addr != netip.MustParsePrefix("192.0.2.10/24") ||
		pl.Broadcast != netip.MustParseAddr("192.0.2.255") || pl.Label != "va:0" || pl.Existing {
		t.Errorf("Acquire placed %+v, want 192.0.2.10/24 brd 192.0.2.255 on va label va:0, new", pl)
	}
	if pl.Route != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("chosen by route %s, want 192.0.2.0/24", pl.Route)
	}
	// Defaults: 5 pairs, 200 ms: Acquire blocks about 900 ms.
	if took < 800*time.Millisecond || took > 5*time.Second {
		t.Errorf("Acquire took %v, want about 900ms of announcing", took)
	}

	// The kernel holds it with the label and broadcast address.
	addrs, err := p.a.NL.AddrList(p.a.Link(t, "va"), netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range addrs {
		if a.IP.Equal(ip.AsSlice()) {
			found = true
			ones, _ := a.Mask.Size()
			if a.Label != "va:0" || ones != 24 || !a.Broadcast.Equal(net.ParseIP("192.0.2.255")) {
				t.Errorf("kernel has %s label %q brd %s, want /24 label va:0 brd 192.0.2.255", a.IPNet, a.Label, a.Broadcast)
			}
		}
	}
	if !found {
		t.Fatalf("192.0.2.10 not on va after Acquire: %v", addrs)
	}

	waitNeigh(t, p.b, "vb", ip.String(), p.aMAC)
	time.Sleep(50 * time.Millisecond)
	checkGARPs(t, garps(capture.Stop(), p.aMAC, ip), p.aMAC, ip, vip.DefaultARPCount, vip.DefaultARPInterval)

	st, err := p.m.Status(ctx, ip)
	if err != nil || !slices.Equal(st.Interfaces(), []string{"va"}) {
		t.Errorf("Status = %v, %v; want on va", st.Interfaces(), err)
	}
	if b, _ := st.On("va"); b.Label != "va:0" || !b.Secondary {
		t.Errorf("binding %+v, want label va:0, secondary", b)
	}

	// Adopting the running VIP (a daemon restart): a no-op that still announces.
	p.b.Neigh(t, "vb", ip.String(), staleMAC)
	capture = p.b.Capture(t, "vb")
	v2 := v
	v2.ARPCount, v2.ARPInterval = 2, 40*time.Millisecond
	start = time.Now()
	pl2, err := p.m.Acquire(ctx, v2)
	if err != nil {
		t.Fatalf("second Acquire: %v", err)
	}
	if took := time.Since(start); took < 3*20*time.Millisecond {
		t.Errorf("second Acquire took %v, want at least 3 half-intervals of 20ms", took)
	}
	if !pl2.Existing || pl2.Addr != pl.Addr || pl2.Label != "va:0" {
		t.Errorf("second Acquire = %+v, want Existing with the same address", pl2)
	}
	waitNeigh(t, p.b, "vb", ip.String(), p.aMAC)
	time.Sleep(50 * time.Millisecond)
	checkGARPs(t, garps(capture.Stop(), p.aMAC, ip), p.aMAC, ip, 2, 40*time.Millisecond)
	addrs, _ = p.a.NL.AddrList(p.a.Link(t, "va"), netlink.FAMILY_V4)
	if len(addrs) != 2 {
		t.Errorf("va has %d IPv4 addresses after re-acquire, want 2 (static + VIP): %v", len(addrs), addrs)
	}

	removed, err := p.m.Release(ctx, v)
	if err != nil || !removed {
		t.Fatalf("Release = %v, %v; want true, nil", removed, err)
	}
	if has, err := p.m.Has(ctx, ip); err != nil || has {
		t.Errorf("Has after Release = %v, %v; want false", has, err)
	}
	// Nothing else went: the static address stays.
	if has, _ := p.m.Has(ctx, netip.MustParseAddr("192.0.2.1")); !has {
		t.Error("Release removed the interface's static address")
	}
	removed, err = p.m.Release(ctx, v)
	if err != nil || removed {
		t.Errorf("second Release = %v, %v; want false, nil", removed, err)
	}
}

// na is a decoded neighbour advertisement.
type na struct {
	ethDst   net.HardwareAddr
	src, dst netip.Addr
	hopLimit uint8
	flags    uint8
	target   netip.Addr
	tlla     net.HardwareAddr
}

func nas(frames []nstest.Frame, mac net.HardwareAddr, target netip.Addr) []na {
	var out []na
	for _, f := range frames {
		p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		adv, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if eth == nil || ip6 == nil || adv == nil || !bytes.Equal(eth.SrcMAC, mac) {
			continue
		}
		tgt, _ := netip.AddrFromSlice(adv.TargetAddress)
		if tgt != target {
			continue
		}
		src, _ := netip.AddrFromSlice(ip6.SrcIP)
		dst, _ := netip.AddrFromSlice(ip6.DstIP)
		n := na{ethDst: eth.DstMAC, src: src, dst: dst, hopLimit: ip6.HopLimit, flags: adv.Flags, target: tgt}
		for _, o := range adv.Options {
			if o.Type == layers.ICMPv6OptTargetAddress {
				n.tlla = net.HardwareAddr(o.Data)
			}
		}
		out = append(out, n)
	}
	return out
}

func TestAcquireReleaseIPv6(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	ip := netip.MustParseAddr("2001:db8:1::10")
	v := vip.VIP{Addr: ip, ARPCount: 3, ARPInterval: 50 * time.Millisecond}

	p.b.Neigh(t, "vb", ip.String(), staleMAC)
	capture := p.b.Capture(t, "vb")
	pl, err := p.m.Acquire(ctx, v)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if pl.Interface != "va" || pl.Addr != netip.MustParsePrefix("2001:db8:1::10/64") || pl.Broadcast.IsValid() {
		t.Errorf("Acquire placed %+v, want 2001:db8:1::10/64 on va", pl)
	}
	// Added with NODAD: usable at once, never tentative.
	st, err := p.m.Status(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := st.On("va"); !ok || b.Tentative || b.DADFailed {
		t.Errorf("binding %+v (present %v), want present and not tentative", b, ok)
	}
	waitNeigh(t, p.b, "vb", ip.String(), p.aMAC)
	time.Sleep(50 * time.Millisecond)
	got := nas(capture.Stop(), p.aMAC, ip)
	if len(got) != 3 {
		t.Fatalf("peer saw %d neighbour advertisements for %s, want 3", len(got), ip)
	}
	allNodes := netip.MustParseAddr("ff02::1")
	for i, n := range got {
		if n.flags&0x20 == 0 || n.flags&0x40 != 0 || n.flags&0x80 != 0 {
			t.Errorf("NA %d flags %#x, want override only", i, n.flags)
		}
		if n.dst != allNodes || n.src != ip || n.hopLimit != 255 || !bytes.Equal(n.tlla, p.aMAC) ||
			n.ethDst.String() != "33:33:00:00:00:01" {
			t.Errorf("NA %d: %+v, want %s → ff02::1 hop limit 255 with target LL %s", i, n, ip, p.aMAC)
		}
	}

	// Idempotent both ways.
	if pl, err := p.m.Acquire(ctx, v); err != nil || !pl.Existing {
		t.Errorf("second Acquire = %+v, %v; want Existing", pl, err)
	}
	if removed, err := p.m.Release(ctx, v); err != nil || !removed {
		t.Errorf("Release = %v, %v", removed, err)
	}
	if removed, err := p.m.Release(ctx, v); err != nil || removed {
		t.Errorf("second Release = %v, %v; want no-op", removed, err)
	}
	if has, _ := p.m.Has(ctx, netip.MustParseAddr("2001:db8:1::1")); !has {
		t.Error("Release removed the static IPv6 address")
	}
	// The subnet's prefix route survives too.
	if pl, err := p.m.Resolve(ctx, v); err != nil || pl.Route != netip.MustParsePrefix("2001:db8:1::/64") {
		t.Errorf("after Release, Resolve = %v, %v; want the 2001:db8:1::/64 route still there", pl, err)
	}
}

func TestIPv6DAD(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)

	// The peer already holds ::99: with DAD on, Acquire must fail and
	// leave nothing behind.
	p.b.Addr(t, "vb", "2001:db8:1::99/64")
	dup := vip.VIP{Addr: netip.MustParseAddr("2001:db8:1::99"), DAD: true, ARPCount: 1}
	_, err := p.m.Acquire(ctx, dup)
	if err == nil || !strings.Contains(err.Error(), "duplicate address detection failed") {
		t.Fatalf("Acquire of a duplicate with DAD = %v, want a DAD failure", err)
	}
	if has, _ := p.m.Has(ctx, dup.Addr); has {
		t.Error("dadfailed address left on the interface")
	}

	// A dadfailed leftover (say from an IPaddr2 that ran before us) is
	// replaced, not adopted: it would never receive traffic.
	p.a.AddrDAD(t, "va", "2001:db8:1::99/64")
	for i := 0; ; i++ {
		st, _ := p.m.Status(ctx, dup.Addr)
		if b, ok := st.On("va"); ok && b.DADFailed {
			break
		}
		if i == 100 {
			t.Fatal("address on va never failed DAD; test is void")
		}
		time.Sleep(50 * time.Millisecond)
	}
	noDAD := dup
	noDAD.DAD = false
	pl, err := p.m.Acquire(ctx, noDAD)
	if err != nil || pl.Existing {
		t.Fatalf("Acquire over a dadfailed leftover = %+v, %v; want a fresh address", pl, err)
	}
	st, _ := p.m.Status(ctx, dup.Addr)
	if b, ok := st.On("va"); !ok || b.DADFailed || b.Tentative {
		t.Errorf("after Acquire the address is %+v (present %v), want usable", b, ok)
	}

	// A free address passes DAD and is usable when Acquire returns.
	free := vip.VIP{Addr: netip.MustParseAddr("2001:db8:1::77"), DAD: true, ARPCount: 1}
	if _, err := p.m.Acquire(ctx, free); err != nil {
		t.Fatalf("Acquire with DAD: %v", err)
	}
	st, _ = p.m.Status(ctx, free.Addr)
	if b, ok := st.On("va"); !ok || b.Tentative {
		t.Errorf("after DAD binding %+v present %v, want present, not tentative", b, ok)
	}
}

func TestResolveByRoute(t *testing.T) {
	a := nstest.New(t)
	b := nstest.New(t)
	nstest.Veth(t, a, "va1", b, "vb1")
	nstest.Veth(t, a, "va2", b, "vb2")
	a.Addr(t, "va1", "192.0.2.1/24")
	a.Addr(t, "va2", "198.51.100.1/24")
	a.Addr(t, "va1", "2001:db8:1::1/64")
	a.Addr(t, "va2", "2001:db8:2::1/64")
	// Longest prefix wins over the order of routes.
	a.Route(t, "va1", "203.0.113.64/26", "", 0)
	a.Route(t, "va2", "203.0.113.64/27", "", 0)
	// Same prefix: the lower metric wins.
	a.Route(t, "va1", "203.0.113.0/26", "", 100)
	a.Route(t, "va2", "203.0.113.0/26", "", 50)
	// Routes through a gateway never choose an interface.
	a.Route(t, "va1", "203.0.113.128/25", "192.0.2.254", 0)
	a.Route(t, "va1", "2001:db8:3::/48", "2001:db8:1::fe", 0)
	a.Route(t, "va2", "2001:db8:4::/64", "", 0)

	m, err := vip.NewAt(a.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := ctxT(t)

	for _, tc := range []struct {
		v         vip.VIP
		iface     string
		prefix    string
		broadcast string
		err       string
	}{
		{v: vip.VIP{Addr: netip.MustParseAddr("192.0.2.20")}, iface: "va1", prefix: "192.0.2.20/24", broadcast: "192.0.2.255"},
		{v: vip.VIP{Addr: netip.MustParseAddr("198.51.100.20")}, iface: "va2", prefix: "198.51.100.20/24", broadcast: "198.51.100.255"},
		{v: vip.VIP{Addr: netip.MustParseAddr("203.0.113.70")}, iface: "va2", prefix: "203.0.113.70/27", broadcast: "203.0.113.95"},
		{v: vip.VIP{Addr: netip.MustParseAddr("203.0.113.100")}, iface: "va1", prefix: "203.0.113.100/26", broadcast: "203.0.113.127"},
		{v: vip.VIP{Addr: netip.MustParseAddr("203.0.113.10")}, iface: "va2", prefix: "203.0.113.10/26", broadcast: "203.0.113.63"},
		// A given prefix narrower than the route: the route still covers it.
		{v: vip.VIP{Addr: netip.MustParseAddr("192.0.2.40"), Prefix: 32}, iface: "va1", prefix: "192.0.2.40/32"},
		// A given prefix wider than every route: nothing covers it.
		{v: vip.VIP{Addr: netip.MustParseAddr("192.0.2.40"), Prefix: 16}, err: "no on-link route covers 192.0.2.40/16"},
		// An explicit broadcast is kept.
		{v: vip.VIP{Addr: netip.MustParseAddr("192.0.2.41"), Broadcast: netip.MustParseAddr("192.0.2.128")}, iface: "va1", prefix: "192.0.2.41/24", broadcast: "192.0.2.128"},
		{v: vip.VIP{Addr: netip.MustParseAddr("203.0.113.130")}, err: "no on-link route covers 203.0.113.130"},
		{v: vip.VIP{Addr: netip.MustParseAddr("203.0.113.250")}, err: "name the interface and prefix"},
		// Interface given: only its routes count.
		{v: vip.VIP{Addr: netip.MustParseAddr("192.0.2.30"), Interface: "va2"}, err: "no on-link route on va2 covers 192.0.2.30"},
		{v: vip.VIP{Addr: netip.MustParseAddr("192.0.2.30"), Interface: "va1"}, iface: "va1", prefix: "192.0.2.30/24", broadcast: "192.0.2.255"},
		// Interface and prefix given: no route needed.
		{v: vip.VIP{Addr: netip.MustParseAddr("203.0.113.250"), Prefix: 28, Interface: "va2"}, iface: "va2", prefix: "203.0.113.250/28", broadcast: "203.0.113.255"},
		{v: vip.VIP{Addr: netip.MustParseAddr("192.0.2.30"), Interface: "eth9"}, err: "interface eth9 not found: check the IPaddr resource's interface"},
		// IPv6.
		{v: vip.VIP{Addr: netip.MustParseAddr("2001:db8:2::20")}, iface: "va2", prefix: "2001:db8:2::20/64"},
		{v: vip.VIP{Addr: netip.MustParseAddr("2001:db8:4::20")}, iface: "va2", prefix: "2001:db8:4::20/64"},
		{v: vip.VIP{Addr: netip.MustParseAddr("2001:db8:3::20")}, err: "no on-link route covers 2001:db8:3::20"},
		{v: vip.VIP{Addr: netip.MustParseAddr("fe80::20")}, err: "link-local VIP needs its interface"},
		{v: vip.VIP{Addr: netip.MustParseAddr("fe80::20"), Interface: "va1"}, iface: "va1", prefix: "fe80::20/64"},
	} {
		t.Run(tc.v.String(), func(t *testing.T) {
			pl, err := m.Resolve(ctx, tc.v)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Resolve = %v, %v; want error containing %q", pl, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			var bc netip.Addr
			if tc.broadcast != "" {
				bc = netip.MustParseAddr(tc.broadcast)
			}
			if pl.Interface != tc.iface || pl.Addr.String() != tc.prefix || pl.Broadcast != bc {
				t.Errorf("Resolve = %s, want %s brd %s on %s", pl, tc.prefix, tc.broadcast, tc.iface)
			}
		})
	}

	// And Acquire really puts it there.
	if _, err := m.Acquire(ctx, vip.VIP{Addr: netip.MustParseAddr("203.0.113.70"), ARPCount: -1}); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Status(ctx, netip.MustParseAddr("203.0.113.70"))
	if !slices.Equal(st.Interfaces(), []string{"va2"}) {
		t.Errorf("203.0.113.70 on %v, want va2", st.Interfaces())
	}
}

func TestAcquireInterfaceDown(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	// Keep a route so that the interface is still chosen, then take it down.
	if err := p.a.NL.LinkSetDown(p.a.Link(t, "va")); err != nil {
		t.Fatal(err)
	}
	_, err := p.m.Acquire(ctx, vip.VIP{Addr: netip.MustParseAddr("192.0.2.10"), Prefix: 24, Interface: "va"})
	if err == nil || !strings.Contains(err.Error(), "interface va is down") {
		t.Fatalf("Acquire on a down interface = %v, want 'interface va is down'", err)
	}
	if has, _ := p.m.Has(ctx, netip.MustParseAddr("192.0.2.10")); has {
		t.Error("address added to a down interface")
	}
}

func TestReleaseWithoutRoute(t *testing.T) {
	// Releasing must work when the routes that chose the interface are
	// gone, or a failed link would leave the VIP configured.
	p := newPair(t)
	ctx := ctxT(t)
	v := vip.VIP{Addr: netip.MustParseAddr("192.0.2.10"), ARPCount: -1}
	if _, err := p.m.Acquire(ctx, v); err != nil {
		t.Fatal(err)
	}
	// The same address on lo (the real-server configuration) is not ours.
	p.a.Addr(t, "lo", "192.0.2.10/32")
	if err := p.a.NL.LinkSetDown(p.a.Link(t, "va")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.m.Resolve(ctx, v); err == nil {
		t.Fatal("Resolve still finds a route with the link down; test is void")
	}
	removed, err := p.m.Release(ctx, v)
	if err != nil || !removed {
		t.Fatalf("Release with link down = %v, %v; want removed", removed, err)
	}
	st, _ := p.m.Status(ctx, v.Addr)
	if !slices.Equal(st.Interfaces(), []string{"lo"}) {
		t.Errorf("after Release the VIP is on %v, want only lo", st.Interfaces())
	}
}

func TestRefresh(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	v := vip.VIP{Addr: netip.MustParseAddr("192.0.2.10"), ARPCount: 1, ARPInterval: 10 * time.Millisecond}
	if _, err := p.m.Acquire(ctx, v); err != nil {
		t.Fatal(err)
	}
	capture := p.b.Capture(t, "vb")
	rctx, cancel := context.WithCancel(ctx)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		result error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		result = p.m.Refresh(rctx, v, 100*time.Millisecond, func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}()
	time.Sleep(550 * time.Millisecond)
	n := len(garps(capture.Frames(), p.aMAC, v.Addr))
	if n < 4 || n > 12 {
		t.Errorf("refresh sent %d ARPs in 550ms at 100ms, want about 10", n)
	}
	// Once released, a running refresh announces nothing.
	if _, err := p.m.Release(ctx, v); err != nil {
		t.Fatal(err)
	}
	before := len(garps(capture.Frames(), p.aMAC, v.Addr))
	time.Sleep(350 * time.Millisecond)
	after := len(garps(capture.Stop(), p.aMAC, v.Addr))
	if after > before+2 { // at most one round already under way
		t.Errorf("refresh announced a released VIP: %d ARPs after release", after-before)
	}
	cancel()
	wg.Wait()
	if result != nil {
		t.Errorf("Refresh returned %v after cancel, want nil", result)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("refresh reported errors: %v", errs)
	}
}

func TestAnnounceRequiresVIP(t *testing.T) {
	p := newPair(t)
	err := p.m.Announce(ctxT(t), vip.VIP{Addr: netip.MustParseAddr("192.0.2.10")})
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Announce of an absent VIP = %v, want refusal", err)
	}
}

func TestAcquireCancelled(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithTimeout(ctxT(t), 150*time.Millisecond)
	defer cancel()
	v := vip.VIP{Addr: netip.MustParseAddr("192.0.2.10"), ARPCount: 50, ARPInterval: 100 * time.Millisecond}
	start := time.Now()
	_, err := p.m.Acquire(ctx, v)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Acquire with a 150ms context = %v after %v, want a prompt context error", err, time.Since(start))
	}
	// The address was added before the announcements were cut short.
	if has, _ := p.m.Has(context.Background(), v.Addr); !has {
		t.Error("VIP not added")
	}
}

// TestNoAnnouncementNoUpdate is the control for the neighbour-cache checks:
// without announcements the peer's stale entry keeps the old MAC, so it is
// the announcements that update it.
func TestNoAnnouncementNoUpdate(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	for _, ip := range []string{"192.0.2.10", "2001:db8:1::10"} {
		p.b.Neigh(t, "vb", ip, staleMAC)
		if _, err := p.m.Acquire(ctx, vip.VIP{Addr: netip.MustParseAddr(ip), ARPCount: -1}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, ip := range []string{"192.0.2.10", "2001:db8:1::10"} {
		if got := p.b.NeighMAC(t, "vb", ip); !bytes.Equal(got, staleMAC) {
			t.Errorf("%s: peer entry changed to %s without announcements", ip, got)
		}
	}
}

// TestReleasePrimaryKeepsSecondaries: with promote_secondaries off, deleting
// a primary IPv4 address flushes the secondaries of its subnet. Releasing a
// VIP that happens to be primary must leave the other VIPs in place.
func TestReleasePrimaryKeepsSecondaries(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	p.a.Sysctl(t, "net/ipv4/conf/va/promote_secondaries", "0")
	first := vip.VIP{Addr: netip.MustParseAddr("203.0.113.10"), Prefix: 24, Interface: "va", ARPCount: -1}
	second := vip.VIP{Addr: netip.MustParseAddr("203.0.113.11"), Prefix: 24, Interface: "va", Label: "1", ARPCount: -1}
	for _, v := range []vip.VIP{first, second} {
		if _, err := p.m.Acquire(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := p.m.Status(ctx, second.Addr)
	if b, _ := st.On("va"); !b.Secondary {
		t.Fatalf("second VIP is not secondary (%+v); test is void", b)
	}
	if removed, err := p.m.Release(ctx, first); err != nil || !removed {
		t.Fatalf("Release = %v, %v", removed, err)
	}
	st, _ = p.m.Status(ctx, second.Addr)
	b, ok := st.On("va")
	if !ok {
		t.Fatal("releasing the primary VIP removed the other VIP of its subnet")
	}
	if b.Label != "va:1" || b.Addr.Bits() != 24 || b.Broadcast != netip.MustParseAddr("203.0.113.255") {
		t.Errorf("other VIP restored as %+v, want label va:1 /24 brd 203.0.113.255", b)
	}
	if has, _ := p.m.Has(ctx, first.Addr); has {
		t.Error("released VIP still present")
	}
}

func TestAutoLabel(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	auto := func(ip string) vip.VIP {
		return vip.VIP{Addr: netip.MustParseAddr(ip), AutoLabel: true, ARPCount: -1}
	}
	acquire := func(v vip.VIP, want string) {
		t.Helper()
		pl, err := p.m.Acquire(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if pl.Label != want {
			t.Errorf("%s labelled %q, want %q", v.Addr, pl.Label, want)
		}
	}
	acquire(auto("192.0.2.10"), "va:0")
	acquire(vip.VIP{Addr: netip.MustParseAddr("192.0.2.11"), Label: "1", ARPCount: -1}, "va:1")
	acquire(auto("192.0.2.12"), "va:2")
	acquire(auto("192.0.2.12"), "va:2") // adopted with its label
	if _, err := p.m.Release(ctx, auto("192.0.2.10")); err != nil {
		t.Fatal(err)
	}
	acquire(auto("192.0.2.13"), "va:0") // the freed label is reused
	// IPv6 has no labels; AutoLabel is ignored there.
	acquire(vip.VIP{Addr: netip.MustParseAddr("2001:db8:1::10"), AutoLabel: true, ARPCount: -1}, "")
}

func TestConcurrentAcquire(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	labels := make([]string, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := vip.VIP{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(20 + i)}), AutoLabel: true, ARPCount: 1, ARPInterval: time.Millisecond}
			pl, err := p.m.Acquire(ctx, v)
			labels[i], errs[i] = pl.Label, err
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, l := range labels {
		if errs[i] != nil {
			t.Fatalf("Acquire %d: %v", i, errs[i])
		}
		if seen[l] {
			t.Errorf("label %s given twice: %v", l, labels)
		}
		seen[l] = true
	}
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.m.Release(ctx, vip.VIP{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(20 + i)})})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Release %d: %v", i, err)
		}
	}
	addrs, _ := p.a.NL.AddrList(p.a.Link(t, "va"), netlink.FAMILY_V4)
	if len(addrs) != 1 {
		t.Errorf("after releasing all, va has %v, want only the static address", addrs)
	}
}

func TestNoARPInterface(t *testing.T) {
	// On a NOARP link (ip link set va arp off) the VIP is added and nothing
	// is announced, as IPaddr2 sends nothing on lo.
	p := newPair(t)
	if err := p.a.NL.LinkSetARPOff(p.a.Link(t, "va")); err != nil {
		t.Fatal(err)
	}
	capture := p.b.Capture(t, "vb")
	ip := netip.MustParseAddr("192.0.2.10")
	pl, err := p.m.Acquire(ctxT(t), vip.VIP{Addr: ip, ARPInterval: time.Millisecond})
	if err != nil || pl.Interface != "va" {
		t.Fatalf("Acquire on a NOARP link = %v, %v", pl, err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(garps(capture.Stop(), p.aMAC, ip)); n != 0 {
		t.Errorf("%d ARPs sent on a NOARP link", n)
	}
}

func TestIPv6Disabled(t *testing.T) {
	p := newPair(t)
	p.a.Sysctl(t, "net/ipv6/conf/va/disable_ipv6", "1")
	_, err := p.m.Acquire(ctxT(t), vip.VIP{Addr: netip.MustParseAddr("2001:db8:1::10"), Prefix: 64, Interface: "va"})
	if err == nil || !strings.Contains(err.Error(), "disable_ipv6") {
		t.Errorf("Acquire with IPv6 disabled = %v, want a hint about disable_ipv6", err)
	}
}

// TestAdoptAfterRestart: a new Manager (a restarted daemon) adopts the VIP
// the old one left running, changes nothing, and announces it again.
func TestAdoptAfterRestart(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	v := vip.VIP{Addr: netip.MustParseAddr("192.0.2.10"), Prefix: 32, Label: "vip", ARPCount: -1}
	if _, err := p.m.Acquire(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := p.m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := vip.NewAt(p.a.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	p.b.Neigh(t, "vb", "192.0.2.10", staleMAC)
	capture := p.b.Capture(t, "vb")
	// The restarted daemon's config may lack the prefix and label: the
	// running address is adopted as it is.
	pl, err := m2.Acquire(ctx, vip.VIP{Addr: v.Addr, ARPCount: 1, ARPInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !pl.Existing || pl.Addr.Bits() != 32 || pl.Label != "va:vip" {
		t.Errorf("adopted %+v, want the running /32 labelled va:vip", pl)
	}
	waitNeigh(t, p.b, "vb", "192.0.2.10", p.aMAC)
	time.Sleep(30 * time.Millisecond)
	if n := len(garps(capture.Stop(), p.aMAC, v.Addr)); n != 2 {
		t.Errorf("adoption sent %d ARPs, want 2", n)
	}
	st, _ := m2.Status(ctx, v.Addr)
	if len(st.Bindings) != 1 {
		t.Errorf("VIP bindings after adoption: %+v, want one", st.Bindings)
	}
}
