// Package rstguard holds back, for a moment after a director takes a VIP
// over, the TCP resets its own stack would send from the VIP.
//
// A connection the previous director forwarded reaches the new one before
// the connection sync has told its IPVS about it; IPVS passes the segment to
// the local stack, which owns the VIP and answers with a reset: the client's
// request is lost. Dropped instead, the segment is retransmitted by the
// client after its retransmission timeout (200 ms at least), by when the
// sync has arrived and IPVS forwards it: a delay, not a loss. The guard is a
// tc u32 filter on the egress of every interface (clsact) that drops TCP
// segments with the RST flag from the VIP; it lasts only a moment, because
// resets for ports without a service are how clients learn to give up.
package rstguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// prio4 and prio6 are the tc priorities of the guard's filters, which tell
// them from anyone else's (Sweep removes every filter at them). One priority
// holds filters of one protocol only.
const (
	prio4 = 0xd1d
	prio6 = 0xd1e
)

// Guard is the filters that drop the resets of one VIP.
type Guard struct {
	vip     netip.Addr
	filters []*netlink.U32
}

// Hold installs the guard for vip on every interface that is up, except
// loopback: a reset leaves by the route to the client, which need not be
// the VIP's interface. An interface without clsact gets one (it is left in
// place afterwards: an empty clsact costs nothing).
func Hold(vip netip.Addr) (*Guard, error) {
	vip = vip.Unmap()
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("reset guard for %s: listing interfaces: %w", vip, err)
	}
	g := &Guard{vip: vip}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagUp == 0 || a.Flags&net.FlagLoopback != 0 {
			continue
		}
		f, err := add(a.Index, vip)
		if err != nil {
			g.Release()
			return nil, fmt.Errorf("reset guard for %s on %s: %w", vip, a.Name, err)
		}
		g.filters = append(g.filters, f)
	}
	return g, nil
}

func add(ifindex int, vip netip.Addr) (*netlink.U32, error) {
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := netlink.QdiscAdd(q); err != nil && !errors.Is(err, syscall.EEXIST) {
		return nil, fmt.Errorf("adding the clsact qdisc: %w", err)
	}
	f := filter(ifindex, vip)
	if err := netlink.FilterAdd(f); err != nil {
		return nil, fmt.Errorf("adding the u32 filter: %w", err)
	}
	return f, nil
}

// filter matches TCP with RST from vip, in a packet without IP options or
// IPv6 extension headers (the stack's own resets have none). Keys are in
// host order; the library converts them.
func filter(ifindex int, vip netip.Addr) *netlink.U32 {
	var keys []netlink.TcU32Key
	proto, prio := uint16(unix.ETH_P_IP), uint16(prio4)
	if vip.Is4() {
		a := vip.As4()
		keys = []netlink.TcU32Key{
			{Mask: 0x0f000000, Val: 0x05000000, Off: 0},  // header length 20
			{Mask: 0x00ff0000, Val: 0x00060000, Off: 8},  // protocol TCP
			{Mask: 0xffffffff, Val: be32(a[:]), Off: 12}, // source
			{Mask: 0x00040000, Val: 0x00040000, Off: 32}, // TCP flags: RST
		}
	} else {
		proto, prio = unix.ETH_P_IPV6, prio6
		a := vip.As16()
		keys = []netlink.TcU32Key{{Mask: 0x0000ff00, Val: 0x00000600, Off: 4}} // next header TCP
		for i := 0; i < 4; i++ {
			keys = append(keys, netlink.TcU32Key{Mask: 0xffffffff, Val: be32(a[4*i:]), Off: int32(8 + 4*i)})
		}
		keys = append(keys, netlink.TcU32Key{Mask: 0x00040000, Val: 0x00040000, Off: 52})
	}
	return &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_EGRESS, Priority: prio, Protocol: proto},
		Sel:         &netlink.TcU32Sel{Flags: netlink.TC_U32_TERMINAL, Keys: keys},
		Actions:     []netlink.Action{&netlink.GenericAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_SHOT}}},
	}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Release removes the guard's filters and returns how many resets they
// dropped; an interface gone meanwhile took its filter with it.
func (g *Guard) Release() (dropped int, err error) {
	if g == nil {
		return 0, nil
	}
	var errs []error
	for _, f := range g.filters {
		n, err := delVIP(f.LinkIndex, g.vip)
		dropped += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	g.filters = nil
	return dropped, errors.Join(errs...)
}

// delVIP deletes the guard filters of vip on one interface. The kernel
// numbers u32 filters itself, so they are found by listing.
func delVIP(ifindex int, vip netip.Addr) (int, error) {
	return sweep(ifindex, func(f *netlink.U32) bool { return sameKeys(f, filter(ifindex, vip)) })
}

// sameKeys compares the match keys of two filters. A listed filter may
// carry trailing all-zero keys (netlink pads the selector), which match
// anything and are ignored.
func sameKeys(a, b *netlink.U32) bool {
	if a.Sel == nil || b.Sel == nil {
		return false
	}
	ka, kb := realKeys(a.Sel.Keys), realKeys(b.Sel.Keys)
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if ka[i].Mask != kb[i].Mask || ka[i].Val != kb[i].Val || ka[i].Off != kb[i].Off {
			return false
		}
	}
	return true
}

func realKeys(ks []netlink.TcU32Key) []netlink.TcU32Key {
	for len(ks) > 0 && ks[len(ks)-1] == (netlink.TcU32Key{}) {
		ks = ks[:len(ks)-1]
	}
	return ks
}

// sweep deletes the guard filters on one interface that match, and returns
// how many packets they dropped.
func sweep(ifindex int, match func(*netlink.U32) bool) (int, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		var le netlink.LinkNotFoundError
		if errors.As(err, &le) || errors.Is(err, syscall.ENODEV) {
			return 0, nil
		}
		return 0, err
	}
	fs, err := netlink.FilterList(l, netlink.HANDLE_MIN_EGRESS)
	if err != nil {
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) || os.IsNotExist(err) {
			return 0, nil // no clsact: nothing of ours
		}
		return 0, fmt.Errorf("listing the filters of %s: %w", l.Attrs().Name, err)
	}
	dropped := 0
	var errs []error
	for _, f := range fs {
		u, ok := f.(*netlink.U32)
		if !ok || (u.Priority != prio4 && u.Priority != prio6) || !match(u) {
			continue
		}
		for _, a := range u.Actions {
			if st := a.Attrs().Statistics; st != nil && st.Basic != nil {
				dropped += int(st.Basic.Packets)
			}
		}
		if err := netlink.FilterDel(u); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("removing a reset guard from %s: %w", l.Attrs().Name, err))
		}
	}
	return dropped, errors.Join(errs...)
}

// Sweep removes every guard filter of every interface, for a daemon that
// starts after one that died holding a guard.
func Sweep() error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		_, err := sweep(l.Attrs().Index, func(*netlink.U32) bool { return true })
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
