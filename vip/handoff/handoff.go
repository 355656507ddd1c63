// Package handoff keeps a VIP's TCP connections whole while the VIP moves
// from one director to the other in a graceful handover.
//
// The previous director's connections reach the new one by the connection
// sync (ipvs/connsync, the kernel's sync daemon), which cannot win every
// race: a connection whose SYN reached the previous director a moment
// before the move sends its next segment to the new one before its sync
// entry arrives. The new director's IPVS does not know it and passes it up
// to the local stack, which would answer with a reset. For the moment of the
// move both directors cooperate instead:
//
//   - the new one (Forward) sends every TCP segment for the VIP that IPVS
//     passed up and that does not open a connection on to the previous
//     director, unchanged, over the LAN: an nftables rule on the input hook
//     after IPVS's (priority 101 > IPVS's 99) that duplicates the segment
//     to the previous director's address and drops the original;
//   - the previous one (Receive) still takes TCP for the VIP as local after
//     removing the address (a policy rule for TCP to the VIP into a table
//     with one local route), so its IPVS still forwards its connections to
//     their real servers. ARP and neighbour solicitations do not match the
//     rule (they are not TCP), so only the new director answers for the VIP.
//
// A connection neither knows (a stray segment) is reset by the previous
// director: the answer it would have got anyway.
package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// tablePrefix names the nftables tables of forwarders (one per VIP):
	// Sweep removes every table so named.
	tablePrefix = "directord-handoff-"
	// inputPriority runs the forwarder after IPVS on the input hook
	// (NF_IP_PRI_NAT_SRC - 1 = 99): what reaches it, IPVS did not take.
	inputPriority = 101
	// routeTable and rulePriority are the receiver's policy routing: the
	// table holds one local route per VIP received; the rule sends TCP for
	// the VIP there before the main table (32766) is looked at.
	routeTable   = 0xd1d
	rulePriority = 0xd1d
)

// Forwarder passes one VIP's unknown TCP segments to the previous director.
type Forwarder struct {
	vip   netip.Addr
	table *nftables.Table
}

// Forward installs the forwarder of vip to peer, the previous director's
// address on the LAN of interface ifindex (the VIP's interface), in the
// calling thread's network namespace, for the TCP ports of the VIP's
// virtual services (0: every port, a persistent service's): a local
// service on another port of the VIP keeps its connections here.
func Forward(vip, peer netip.Addr, ifindex int, ports []uint16) (*Forwarder, error) {
	vip, peer = vip.Unmap(), peer.Unmap()
	if vip.Is4() != peer.Is4() || !vip.IsValid() || !peer.IsValid() {
		return nil, fmt.Errorf("handoff of %s: the previous director's address %s is not of the VIP's family", vip, peer)
	}
	if ifindex <= 0 {
		return nil, fmt.Errorf("handoff of %s: no interface", vip)
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("handoff of %s: no TCP service on it", vip)
	}
	if slices.Contains(ports, 0) {
		ports = []uint16{0}
	}
	ports = slices.Clone(ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	c, err := conn()
	if err != nil {
		return nil, fmt.Errorf("handoff of %s: %w", vip, err)
	}
	defer c.CloseLasting()
	fam, daddr := nftables.TableFamilyIPv4, uint32(16)
	if vip.Is6() {
		fam, daddr = nftables.TableFamilyIPv6, 24
	}
	t := &nftables.Table{Name: tableName(vip), Family: fam}
	// A table left by a daemon that died mid-handover goes first: the
	// batch replaces it whole.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	policy := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{
		Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(inputPriority), Policy: &policy,
	})
	dev := make([]byte, 4)
	binary.NativeEndian.PutUint32(dev, uint32(ifindex))
	for _, port := range ports {
		var dport []expr.Any
		if port != 0 {
			// tcp dport PORT
			dport = []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
			}
		}
		exprs := []expr.Any{
			// ip daddr VIP
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddr, Len: uint32(vip.BitLen() / 8)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: vip.AsSlice()},
			// meta l4proto tcp
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		}
		exprs = append(exprs, dport...)
		exprs = append(exprs,
			// tcp flags & syn == 0: a SYN opens a connection here, as it should.
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x02}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
			&expr.Counter{},
			// dup to PEER device IFACE; drop
			&expr.Immediate{Register: 1, Data: peer.AsSlice()},
			&expr.Immediate{Register: 2, Data: dev},
			&expr.Dup{RegAddr: 1, RegDev: 2, IsRegDevSet: true},
			&expr.Verdict{Kind: expr.VerdictDrop},
		)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("handoff of %s: adding the nftables rule (nf_tables, nft_dup_ipv4/6): %w", vip, err)
	}
	return &Forwarder{vip: vip, table: t}, nil
}

func tableName(vip netip.Addr) string {
	// nftables names are free text, but ':' reads badly in `nft list`.
	return tablePrefix + strings.ReplaceAll(vip.String(), ":", "-")
}

// conn opens nftables in the calling thread's namespace: the netlink
// socket is otherwise made on whatever thread runs the dial.
func conn() (*nftables.Conn, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("reading the network namespace: %w", err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return c, nil
}

// Forwarded returns how many segments the forwarder has passed on so far.
func (f *Forwarder) Forwarded() (uint64, error) {
	c, err := conn()
	if err != nil {
		return 0, err
	}
	defer c.CloseLasting()
	return forwarded(c, f.table)
}

func forwarded(c *nftables.Conn, t *nftables.Table) (uint64, error) {
	rs, err := c.GetRules(t, &nftables.Chain{Name: "input", Table: t})
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, r := range rs {
		for _, e := range r.Exprs {
			if ct, ok := e.(*expr.Counter); ok {
				n += ct.Packets
			}
		}
	}
	return n, nil
}

// Release removes the forwarder and returns how many segments it passed
// on. Releasing a nil or released forwarder does nothing.
func (f *Forwarder) Release() (uint64, error) {
	if f == nil || f.table == nil {
		return 0, nil
	}
	c, err := conn()
	if err != nil {
		return 0, fmt.Errorf("handoff of %s: %w", f.vip, err)
	}
	defer c.CloseLasting()
	n, cerr := forwarded(c, f.table)
	c.DelTable(f.table)
	err = c.Flush()
	f.table = nil
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return n, fmt.Errorf("handoff of %s: removing the nftables table: %w", f.vip, err)
	}
	return n, cerr
}

// Receiver keeps one VIP's TCP local after the address is gone.
type Receiver struct {
	rule  *netlink.Rule
	route *netlink.Route
}

// Receive makes TCP for vip local in the calling thread's network
// namespace, whether or not the address is configured: call it before
// removing the VIP, Release it when the handover is over.
func Receive(vip netip.Addr) (*Receiver, error) {
	vip = vip.Unmap()
	if !vip.IsValid() {
		return nil, errors.New("handoff: no VIP")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("handoff of %s: %w", vip, err)
	}
	fam := unix.AF_INET
	if vip.Is6() {
		fam = unix.AF_INET6
	}
	dst := prefixNet(netip.PrefixFrom(vip, vip.BitLen()))
	r := &Receiver{
		route: &netlink.Route{Family: fam, Dst: dst, Table: routeTable, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, LinkIndex: lo.Attrs().Index},
	}
	rule := netlink.NewRule()
	rule.Family, rule.Dst, rule.IPProto, rule.Table, rule.Priority = fam, dst, unix.IPPROTO_TCP, routeTable, rulePriority
	r.rule = rule
	if err := netlink.RouteReplace(r.route); err != nil {
		return nil, fmt.Errorf("handoff of %s: adding the local route to table %d: %w", vip, routeTable, err)
	}
	if err := netlink.RuleAdd(rule); err != nil && !errors.Is(err, syscall.EEXIST) {
		netlink.RouteDel(r.route)
		return nil, fmt.Errorf("handoff of %s: adding the policy rule: %w", vip, err)
	}
	return r, nil
}

// Release removes the receiver's rule and route. Releasing a nil or
// released receiver does nothing.
func (r *Receiver) Release() error {
	if r == nil || r.rule == nil {
		return nil
	}
	var errs []error
	if err := netlink.RuleDel(r.rule); err != nil && !errors.Is(err, syscall.ENOENT) {
		errs = append(errs, err)
	}
	if err := netlink.RouteDel(r.route); err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.ENOENT) {
		errs = append(errs, err)
	}
	r.rule, r.route = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("handoff: removing the receiver: %w", err)
	}
	return nil
}

// Sweep removes every forwarder and receiver in the calling thread's
// network namespace, for a daemon that starts after one that died in a
// handover.
func Sweep() error {
	var errs []error
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := netlink.RuleList(fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rules {
			if r.Table == routeTable && r.Priority == rulePriority {
				if err := netlink.RuleDel(&r); err != nil && !errors.Is(err, syscall.ENOENT) {
					errs = append(errs, err)
				}
			}
		}
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: routeTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rt := range routes {
			if err := netlink.RouteDel(&rt); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, err)
			}
		}
	}
	c, err := conn()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer c.CloseLasting()
	tables, err := c.ListTables()
	if err != nil {
		errs = append(errs, fmt.Errorf("listing nftables tables: %w", err))
	}
	n := 0
	for _, t := range tables {
		if strings.HasPrefix(t.Name, tablePrefix) {
			c.DelTable(t)
			n++
		}
	}
	if n > 0 {
		if err := c.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("removing nftables tables: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("handoff: sweeping: %w", err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// PeerOnLink picks, from the addresses the previous director said it has,
// the one on the LAN of interface ifname (in a subnet of one of its
// addresses of vip's family, vip itself excluded), and returns it with the
// interface's index. ok is false when none is: the peer cannot be reached
// there without a router, and the handover goes on without forwarding.
func PeerOnLink(ifname string, vip netip.Addr, peer []netip.Addr) (addr netip.Addr, ifindex int, ok bool, err error) {
	vip = vip.Unmap()
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, 0, false, fmt.Errorf("handoff of %s: %w", vip, err)
	}
	fam := netlink.FAMILY_V4
	if vip.Is6() {
		fam = netlink.FAMILY_V6
	}
	as, err := netlink.AddrList(l, fam)
	if err != nil {
		return netip.Addr{}, 0, false, fmt.Errorf("handoff of %s: addresses of %s: %w", vip, ifname, err)
	}
	for _, a := range as {
		ip, okIP := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if !okIP || ip.Unmap() == vip || ones == 0 {
			continue
		}
		subnet := netip.PrefixFrom(ip.Unmap(), ones).Masked()
		if subnet.IsSingleIP() {
			continue
		}
		for _, p := range peer {
			if p = p.Unmap(); p != vip && p.Is4() == vip.Is4() && subnet.Contains(p) && !p.IsLinkLocalUnicast() {
				return p, l.Attrs().Index, true, nil
			}
		}
	}
	return netip.Addr{}, 0, false, nil
}

// LocalAddrs lists the addresses a peer can reach this node at for
// forwarding: the global unicast addresses of every interface that is up,
// except loopback and those skip says no to (the VIPs, which move).
func LocalAddrs(skip func(netip.Addr) bool) ([]netip.Addr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var out []netip.Addr
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagUp == 0 || a.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		for _, x := range as {
			ip, ok := netip.AddrFromSlice(x.IP)
			if ip = ip.Unmap(); ok && ip.IsGlobalUnicast() && (skip == nil || !skip(ip)) {
				out = append(out, ip)
			}
		}
	}
	return out, nil
}
