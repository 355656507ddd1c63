package vip

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func c(dst string, link, metric int) candidate {
	return candidate{Dst: netip.MustParsePrefix(dst), LinkIndex: link, Metric: metric}
}

func TestChooseRoute(t *testing.T) {
	cands := []candidate{
		c("192.0.2.0/24", 1, 0),
		c("192.0.2.128/25", 2, 0),
		c("198.51.100.0/24", 3, 100),
		c("198.51.100.0/24", 4, 50),
		c("198.51.100.0/24", 5, 50), // same metric as 4, listed later: loses
		c("203.0.113.0/24", 6, 0),
		c("203.0.113.7/32", 7, 0),
		c("2001:db8::/32", 8, 1024),
		c("2001:db8:1::/64", 9, 256),
	}
	for _, tc := range []struct {
		addr      string
		bits      int
		link      int
		wantLink  int
		wantFound bool
	}{
		{"192.0.2.1", 0, 0, 1, true},
		{"192.0.2.200", 0, 0, 2, true},       // longest prefix
		{"192.0.2.200", 0, 1, 1, true},       // restricted to link 1
		{"192.0.2.200", 25, 0, 2, true},      // /25 route covers VIP/25
		{"192.0.2.200", 24, 0, 1, true},      // /25 does not cover VIP/24
		{"192.0.2.200", 16, 0, 0, false},     // nothing covers VIP/16
		{"198.51.100.9", 0, 0, 4, true},      // lowest metric, first of equals
		{"198.51.100.9", 0, 3, 3, true},      // only link 3's route
		{"203.0.113.7", 0, 0, 7, true},       // host route
		{"203.0.113.8", 0, 0, 6, true},       //
		{"2001:db8:1::5", 0, 0, 9, true},     // IPv6 longest prefix
		{"2001:db8:2::5", 0, 0, 8, true},     //
		{"2001:db9::5", 0, 0, 0, false},      //
		{"192.0.2.1", 0, 9, 0, false},        // link without a covering route
		{"::ffff:192.0.2.1", 0, 0, 0, false}, // families never mix (callers unmap)
	} {
		got, ok := chooseRoute(cands, netip.MustParseAddr(tc.addr), tc.bits, tc.link)
		if ok != tc.wantFound || (ok && got.LinkIndex != tc.wantLink) {
			t.Errorf("chooseRoute(%s/%d, link %d) = %+v, %v; want link %d, %v", tc.addr, tc.bits, tc.link, got, ok, tc.wantLink, tc.wantFound)
		}
	}
}

func ipnet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestCandidateFrom(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    netlink.Route
		ok   bool
	}{
		{"connected v4", netlink.Route{Dst: ipnet("192.0.2.0/24"), LinkIndex: 2, Scope: netlink.SCOPE_LINK, Type: unix.RTN_UNICAST, Table: unix.RT_TABLE_MAIN}, true},
		{"v4 scope global", netlink.Route{Dst: ipnet("192.0.2.0/24"), LinkIndex: 2, Scope: netlink.SCOPE_UNIVERSE}, false},
		{"v4 via gateway", netlink.Route{Dst: ipnet("192.0.2.0/24"), LinkIndex: 2, Scope: netlink.SCOPE_LINK, Gw: net.ParseIP("192.0.2.1")}, false},
		{"default", netlink.Route{LinkIndex: 2, Scope: netlink.SCOPE_LINK}, false},
		{"zero prefix", netlink.Route{Dst: ipnet("0.0.0.0/0"), LinkIndex: 2, Scope: netlink.SCOPE_LINK}, false},
		{"blackhole", netlink.Route{Dst: ipnet("192.0.2.0/24"), Scope: netlink.SCOPE_LINK, Type: unix.RTN_BLACKHOLE}, false},
		{"local table", netlink.Route{Dst: ipnet("192.0.2.0/24"), LinkIndex: 2, Scope: netlink.SCOPE_LINK, Table: unix.RT_TABLE_LOCAL}, false},
		{"multipath", netlink.Route{Dst: ipnet("192.0.2.0/24"), Scope: netlink.SCOPE_LINK, MultiPath: []*netlink.NexthopInfo{{LinkIndex: 2}}}, false},
		{"connected v6", netlink.Route{Dst: ipnet("2001:db8::/64"), LinkIndex: 2, Priority: 256}, true},
		{"v6 via gateway", netlink.Route{Dst: ipnet("2001:db8::/64"), LinkIndex: 2, Gw: net.ParseIP("fe80::1")}, false},
	} {
		if _, ok := candidateFrom(tc.r); ok != tc.ok {
			t.Errorf("%s: candidate %v, want %v", tc.name, ok, tc.ok)
		}
	}
}

func TestNormalize(t *testing.T) {
	a4 := netip.MustParseAddr("192.0.2.10")
	a6 := netip.MustParseAddr("2001:db8::10")
	for _, tc := range []struct {
		v         VIP
		iface     string
		label     string
		fullLabel string
		err       string
	}{
		{v: VIP{Addr: a4, Interface: "eth0:0"}, iface: "eth0", label: "0", fullLabel: "eth0:0"},
		{v: VIP{Addr: a4, Interface: "eth0", Label: "vip"}, iface: "eth0", label: "vip", fullLabel: "eth0:vip"},
		{v: VIP{Addr: a4, Interface: "eth0", Label: "eth0:1"}, iface: "eth0", label: "eth0:1", fullLabel: "eth0:1"},
		{v: VIP{Addr: a4, Interface: "eth0", Label: "eth1:1"}, err: "does not start with the chosen interface"},
		{v: VIP{Addr: a4, Interface: "eth0", Label: "waytoolonglabel"}, err: "at most 15"},
		{v: VIP{Addr: a4, Interface: "eth0:0", Label: "1"}, err: "disagree"},
		{v: VIP{Addr: a6, Label: "0"}, err: "IPv4-only"},
		{v: VIP{}, err: "no address"},
		{v: VIP{Addr: netip.MustParseAddr("224.0.0.1")}, err: "not a unicast"},
		{v: VIP{Addr: netip.IPv4Unspecified()}, err: "not a unicast"},
		{v: VIP{Addr: a4, Prefix: 33}, err: "invalid prefix"},
		{v: VIP{Addr: a4, Interface: "a-very-long-interface"}, err: "invalid interface name"},
		{v: VIP{Addr: a4, Broadcast: a6}, err: "not an IPv4"},
		{v: VIP{Addr: netip.MustParseAddr("fe80::1%eth0")}, err: "zones"},
	} {
		n, err := tc.v.normalize()
		var full string
		if err == nil {
			full, err = n.label(n.Interface)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || n.Interface != tc.iface || n.Label != tc.label || full != tc.fullLabel {
			t.Errorf("%+v: got %q %q %q %v, want %q %q %q", tc.v, n.Interface, n.Label, full, err, tc.iface, tc.label, tc.fullLabel)
		}
	}
	n, err := VIP{Addr: netip.MustParseAddr("::ffff:192.0.2.1")}.normalize()
	if err != nil || !n.Addr.Is4() {
		t.Errorf("mapped address not unmapped: %v %v", n.Addr, err)
	}
}

func TestBroadcastFor(t *testing.T) {
	for _, tc := range []struct {
		addr, bc string
		bits     int
		want     string
	}{
		{"192.0.2.10", "", 24, "192.0.2.255"},
		{"192.0.2.10", "", 27, "192.0.2.31"},
		{"192.0.2.10", "", 30, "192.0.2.11"},
		{"192.0.2.10", "", 31, ""},
		{"192.0.2.10", "", 32, ""},
		{"192.0.2.10", "192.0.2.16", 27, "192.0.2.16"}, // the guide's 192.168.85.3/27/192.168.85.16 form
		{"2001:db8::1", "", 64, ""},
	} {
		v := VIP{Addr: netip.MustParseAddr(tc.addr)}
		if tc.bc != "" {
			v.Broadcast = netip.MustParseAddr(tc.bc)
		}
		got := v.broadcastFor(tc.bits)
		if (tc.want == "" && got.IsValid()) || (tc.want != "" && got != netip.MustParseAddr(tc.want)) {
			t.Errorf("broadcastFor(%s/%d, %q) = %v, want %q", tc.addr, tc.bits, tc.bc, got, tc.want)
		}
	}
}

func TestCountInterval(t *testing.T) {
	if (VIP{}).count() != 5 || (VIP{ARPCount: -1}).count() != 0 || (VIP{ARPCount: 3}).count() != 3 {
		t.Error("ARPCount defaults wrong")
	}
	if (VIP{}).interval() != DefaultARPInterval || (VIP{ARPInterval: 1}).interval() != 1 {
		t.Error("ARPInterval default wrong")
	}
}

func TestStrings(t *testing.T) {
	v := VIP{Addr: netip.MustParseAddr("192.168.85.3"), Prefix: 27, Interface: "eth0", Broadcast: netip.MustParseAddr("192.168.85.16")}
	if got := v.String(); got != "192.168.85.3/27/eth0/192.168.85.16" {
		t.Errorf("VIP.String = %q", got)
	}
	p := Placement{Addr: netip.MustParsePrefix("192.0.2.10/24"), Interface: "eth0", Broadcast: netip.MustParseAddr("192.0.2.255"), Label: "eth0:0", Route: netip.MustParsePrefix("192.0.2.0/24")}
	if got := p.String(); got != "192.0.2.10/24 brd 192.0.2.255 on eth0 (label eth0:0) via route 192.0.2.0/24" {
		t.Errorf("Placement.String = %q", got)
	}
}

var testMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}

func TestARPFrame(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	for _, op := range []uint16{layers.ARPRequest, layers.ARPReply} {
		b, err := arpFrame(op, testMAC, ip)
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("decode: %v", el.Error())
		}
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		arp := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		wantTHA := make(net.HardwareAddr, 6)
		if op == layers.ARPReply {
			wantTHA = testMAC
		}
		if !bytes.Equal(eth.DstMAC, broadcastMAC()) || !bytes.Equal(eth.SrcMAC, testMAC) || eth.EthernetType != layers.EthernetTypeARP {
			t.Errorf("op %d: ethernet %s → %s type %v", op, eth.SrcMAC, eth.DstMAC, eth.EthernetType)
		}
		if arp.Operation != op || arp.AddrType != layers.LinkTypeEthernet || arp.Protocol != layers.EthernetTypeIPv4 ||
			!bytes.Equal(arp.SourceHwAddress, testMAC) || !bytes.Equal(arp.DstHwAddress, wantTHA) ||
			!bytes.Equal(arp.SourceProtAddress, ip.AsSlice()) || !bytes.Equal(arp.DstProtAddress, ip.AsSlice()) {
			t.Errorf("op %d: ARP %+v", op, arp)
		}
	}
	if _, err := arpFrame(layers.ARPRequest, testMAC, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("ARP for IPv6 accepted")
	}
	if _, err := arpFrame(layers.ARPRequest, net.HardwareAddr{1, 2}, ip); err == nil {
		t.Error("short MAC accepted")
	}
}

func TestNAFrame(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::10")
	b, err := naFrame(testMAC, ip)
	if err != nil {
		t.Fatal(err)
	}
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	icmp := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	na := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !bytes.Equal(eth.DstMAC, allNodesMAC()) || !bytes.Equal(eth.SrcMAC, testMAC) {
		t.Errorf("ethernet %s → %s", eth.SrcMAC, eth.DstMAC)
	}
	if ip6.HopLimit != 255 || !ip6.SrcIP.Equal(ip.AsSlice()) || !ip6.DstIP.Equal(net.ParseIP("ff02::1")) {
		t.Errorf("IPv6 %s → %s hop limit %d", ip6.SrcIP, ip6.DstIP, ip6.HopLimit)
	}
	if !na.Override() || na.Solicited() || na.Router() || !na.TargetAddress.Equal(ip.AsSlice()) {
		t.Errorf("NA flags %#x target %s", na.Flags, na.TargetAddress)
	}
	if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, testMAC) {
		t.Errorf("NA options %v", na.Options)
	}
	// Verify the checksum independently: recompute over the pseudo-header.
	if got, want := icmp.Checksum, icmpv6Checksum(ip6.SrcIP, ip6.DstIP, ip6.Payload); got != want {
		t.Errorf("ICMPv6 checksum %#04x, want %#04x", got, want)
	}
	if _, err := naFrame(testMAC, netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("NA for IPv4 accepted")
	}
}

// icmpv6Checksum computes the RFC 4443 checksum of msg (with its checksum
// field zeroed) from src to dst, independently of gopacket.
func icmpv6Checksum(src, dst net.IP, msg []byte) uint16 {
	m := append([]byte(nil), msg...)
	m[2], m[3] = 0, 0
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.To16())
	add(dst.To16())
	l := len(m)
	add([]byte{byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l), 0, 0, 0, 58})
	add(m)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// FuzzNormalize: configuration strings never panic, and an accepted label
// always fits the kernel's 15 bytes and starts with its interface.
func FuzzNormalize(f *testing.F) {
	f.Add("192.0.2.10", "eth0:0", "", 24)
	f.Add("2001:db8::1", "eth0", "", 64)
	f.Add("192.0.2.10", "eth0", "eth0:vip", 0)
	f.Fuzz(func(t *testing.T, addr, iface, label string, prefix int) {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		v, err := VIP{Addr: a, Interface: iface, Label: label, Prefix: prefix}.normalize()
		if err != nil {
			return
		}
		name := v.Interface
		if name == "" {
			name = "eth0"
		}
		full, err := v.label(name)
		if err != nil || full == "" {
			return
		}
		if len(full) > 15 || !strings.HasPrefix(full, name+":") {
			t.Errorf("label %q for interface %q", full, name)
		}
	})
}
