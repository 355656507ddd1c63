package vip

import (
	"cmp"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// candidate is a route that could carry a VIP, reduced to what findif looks at.
type candidate struct {
	Dst       netip.Prefix
	LinkIndex int
	Metric    int
}

// candidateFrom converts a main-table route, reporting false for routes that
// cannot carry a VIP: through a gateway, multipath, not unicast, the default
// route, and (IPv4) not scope link, the filter findif applies.
func candidateFrom(r netlink.Route) (candidate, bool) {
	if r.Dst == nil || r.Gw != nil || r.Via != nil || len(r.MultiPath) > 0 || r.LinkIndex <= 0 {
		return candidate{}, false
	}
	if r.Type != 0 && r.Type != unix.RTN_UNICAST {
		return candidate{}, false
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		return candidate{}, false
	}
	dst, ok := prefixFromIPNet(r.Dst)
	if !ok || dst.Bits() == 0 {
		return candidate{}, false
	}
	if dst.Addr().Is4() && r.Scope != netlink.SCOPE_LINK {
		return candidate{}, false
	}
	return candidate{Dst: dst, LinkIndex: r.LinkIndex, Metric: r.Priority}, true
}

// chooseRoute picks the route findif would: of those covering addr/bits
// (bits 0 meaning the address alone) and, when linkIndex > 0, on that link,
// the most specific; ties go to the lowest metric, then to the first listed.
func chooseRoute(cands []candidate, addr netip.Addr, bits, linkIndex int) (candidate, bool) {
	if bits == 0 {
		bits = addr.BitLen()
	}
	var best candidate
	found := false
	for _, c := range cands {
		if c.Dst.Addr().Is4() != addr.Is4() || c.Dst.Bits() > bits || !c.Dst.Contains(addr) {
			continue
		}
		if linkIndex > 0 && c.LinkIndex != linkIndex {
			continue
		}
		if !found || better(c, best) {
			best, found = c, true
		}
	}
	return best, found
}

// better reports whether c beats b: longer prefix, then lower metric. Equal
// routes keep the earlier one, the kernel's own order.
func better(c, b candidate) bool {
	if d := cmp.Compare(c.Dst.Bits(), b.Dst.Bits()); d != 0 {
		return d > 0
	}
	return c.Metric < b.Metric
}

func prefixFromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}
