package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/directord/directord/internal/ctxsleep"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// naOverride is the override flag of a neighbour advertisement (RFC 4861 4.4).
const naOverride = 0x20

func broadcastMAC() net.HardwareAddr { return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }

// allNodesMAC is the Ethernet group of ff02::1 (RFC 2464 7).
func allNodesMAC() net.HardwareAddr { return net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1} }

// arpFrame encodes a gratuitous ARP as Heartbeat's send_arp does: sender and
// target protocol address both the VIP, broadcast; the target hardware
// address is zero in a request and our own in a reply.
func arpFrame(op uint16, mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if !ip.Is4() || len(mac) != 6 {
		return nil, fmt.Errorf("gratuitous ARP needs an IPv4 address and a 6-byte MAC, have %s and %s", ip, mac)
	}
	target := make(net.HardwareAddr, 6)
	if op == layers.ARPReply {
		copy(target, mac)
	}
	ip4 := ip.As4()
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: broadcastMAC(), EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType:          layers.LinkTypeEthernet,
		Protocol:          layers.EthernetTypeIPv4,
		HwAddressSize:     6,
		ProtAddressSize:   4,
		Operation:         op,
		SourceHwAddress:   mac,
		SourceProtAddress: ip4[:],
		DstHwAddress:      target,
		DstProtAddress:    ip4[:],
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, arp); err != nil {
		return nil, fmt.Errorf("encode ARP: %w", err)
	}
	return buf.Bytes(), nil
}

// naFrame encodes an unsolicited neighbour advertisement for ip (RFC 4861
// 7.2.6): from ip to all nodes, hop limit 255, override set, solicited
// clear, with the target link-layer address option.
func naFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if !ip.Is6() || ip.Is4In6() || len(mac) != 6 {
		return nil, fmt.Errorf("neighbour advertisement needs an IPv6 address and a 6-byte MAC, have %s and %s", ip, mac)
	}
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: allNodesMAC(), EthernetType: layers.EthernetTypeIPv6}
	ip6 := &layers.IPv6{
		Version:    6,
		NextHeader: layers.IPProtocolICMPv6,
		HopLimit:   255,
		SrcIP:      net.IP(ip.AsSlice()),
		DstIP:      net.IP(netip.IPv6LinkLocalAllNodes().AsSlice()),
	}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		return nil, fmt.Errorf("encode neighbour advertisement: %w", err)
	}
	na := &layers.ICMPv6NeighborAdvertisement{
		Flags:         naOverride,
		TargetAddress: net.IP(ip.AsSlice()),
		Options:       layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: mac}},
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip6, icmp, na); err != nil {
		return nil, fmt.Errorf("encode neighbour advertisement: %w", err)
	}
	return buf.Bytes(), nil
}

// announcement is the frames of one round and the gap after each frame.
type announcement struct {
	frames [][]byte
	gap    time.Duration
	proto  int
	kind   string
}

func newAnnouncement(mac net.HardwareAddr, ip netip.Addr, interval time.Duration) (announcement, error) {
	if ip.Is4() {
		req, err := arpFrame(layers.ARPRequest, mac, ip)
		if err != nil {
			return announcement{}, err
		}
		rep, err := arpFrame(layers.ARPReply, mac, ip)
		if err != nil {
			return announcement{}, err
		}
		// send_arp sleeps half the interval after the request and after the reply.
		return announcement{frames: [][]byte{req, rep}, gap: interval / 2, proto: unix.ETH_P_ARP, kind: "gratuitous ARP"}, nil
	}
	na, err := naFrame(mac, ip)
	if err != nil {
		return announcement{}, err
	}
	return announcement{frames: [][]byte{na}, gap: interval, proto: unix.ETH_P_IPV6, kind: "unsolicited neighbour advertisement"}, nil
}

// announce sends count rounds for ip on link. Links that do not do ARP
// (loopback, NOARP, non-Ethernet) are skipped, as IPaddr2 skips lo.
func (m *Manager) announce(ctx context.Context, link netlink.Link, ip netip.Addr, count int, interval time.Duration) error {
	attrs := link.Attrs()
	if count <= 0 || attrs.Flags&net.FlagLoopback != 0 || attrs.RawFlags&unix.IFF_NOARP != 0 || len(attrs.HardwareAddr) != 6 {
		return nil
	}
	an, err := newAnnouncement(attrs.HardwareAddr, ip, interval)
	if err != nil {
		return err
	}
	ifi := &net.Interface{Index: attrs.Index, Name: attrs.Name, HardwareAddr: attrs.HardwareAddr, MTU: attrs.MTU, Flags: attrs.Flags}
	conn, err := m.listen(ifi, an.proto)
	if err != nil {
		return fmt.Errorf("open packet socket on %s for %s: %w", attrs.Name, an.kind, hint(err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	dst := &packet.Addr{HardwareAddr: broadcastMAC()}
	if ip.Is6() {
		dst.HardwareAddr = allNodesMAC()
	}
	n := count * len(an.frames)
	for i := range n {
		if _, err := conn.WriteTo(an.frames[i%len(an.frames)], dst); err != nil {
			return fmt.Errorf("send %s on %s: %w", an.kind, attrs.Name, err)
		}
		if i < n-1 {
			if err := ctxsleep.Sleep(ctx, an.gap); err != nil {
				return fmt.Errorf("%s on %s stopped after %d of %d frames: %w", an.kind, attrs.Name, i+1, n, err)
			}
		}
	}
	return nil
}

// listen opens a send-only packet socket on ifi in the Manager's namespace.
// A socket belongs to the namespace it was created in, so when the Manager
// is for another namespace the socket is made on a thread switched into it.
func (m *Manager) listen(ifi *net.Interface, proto int) (*packet.Conn, error) {
	// Drop everything received: this socket only sends, and should not
	// queue the link's traffic.
	filter, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return nil, err
	}
	cfg := &packet.Config{Filter: filter}
	if !m.ns.IsOpen() {
		return packet.Listen(ifi, packet.Raw, proto, cfg)
	}
	type result struct {
		c   *packet.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, restored, err := inNetNS(m.ns, func() (*packet.Conn, error) {
			return packet.Listen(ifi, packet.Raw, proto, cfg)
		})
		if restored {
			// Otherwise the thread stays locked and dies with this goroutine,
			// so no other goroutine runs in the wrong namespace.
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// inNetNS runs f with the calling (locked) thread in ns and switches back,
// reporting whether the switch back worked.
func inNetNS[T any](ns netns.NsHandle, f func() (T, error)) (T, bool, error) {
	var zero T
	orig, err := netns.Get()
	if err != nil {
		return zero, true, fmt.Errorf("read current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return zero, true, fmt.Errorf("enter network namespace: %w", err)
	}
	v, ferr := f()
	if err := netns.Set(orig); err != nil {
		return v, false, errors.Join(ferr, fmt.Errorf("return to network namespace: %w", err))
	}
	return v, true, ferr
}

// placed finds the interface v is on, as Acquire would have put it.
func (m *Manager) placed(ctx context.Context, v VIP) (netlink.Link, Binding, bool, error) {
	p, err := m.resolve(ctx, v)
	if err != nil {
		return nil, Binding{}, false, err
	}
	st, err := m.Status(ctx, v.Addr)
	if err != nil {
		return nil, Binding{}, false, err
	}
	b, ok := st.On(p.Interface)
	if !ok {
		return nil, Binding{}, false, nil
	}
	link, err := m.nl.LinkByIndex(b.Index)
	if err != nil {
		return nil, Binding{}, false, fmt.Errorf("vip %s: read interface %s: %w", v.Addr, b.Interface, err)
	}
	return link, b, true, nil
}

// Announce sends v's announcements now (ARPCount rounds, ARPInterval apart)
// from the interface v is on. It fails when v is not configured there:
// announcing an address we do not hold would steal it.
func (m *Manager) Announce(ctx context.Context, v VIP) error {
	v, err := v.normalize()
	if err != nil {
		return err
	}
	link, _, ok, err := m.placed(ctx, v)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("vip %s: not configured on this host: acquire it before announcing it", v.Addr)
	}
	if err := m.announce(ctx, link, v.Addr, v.count(), v.interval()); err != nil {
		return fmt.Errorf("vip %s: %w", v.Addr, err)
	}
	return nil
}

// Refresh announces v again every period until ctx is done, as IPaddr2's
// arp_count_refresh does on each monitor, so that neighbours that missed the
// takeover (a switch that restarted, a host that was down) learn it. Each
// round sends v.ARPCount announcements, and only while v is on its
// interface, so a released VIP is never announced. The first round comes
// one period after the call (Acquire has just announced). The error of a round
// goes to onError (nil drops it) and does not stop the refresh. Refresh
// returns nil when ctx is done; run it on a goroutine owned by whoever owns
// the VIP and cancel ctx before releasing.
func (m *Manager) Refresh(ctx context.Context, v VIP, period time.Duration, onError func(error)) error {
	v, err := v.normalize()
	if err != nil {
		return err
	}
	if period <= 0 {
		return fmt.Errorf("vip %s: refresh period %v: must be positive", v.Addr, period)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		link, _, ok, err := m.placed(ctx, v)
		if err == nil && ok {
			err = m.announce(ctx, link, v.Addr, v.count(), v.interval())
		}
		if err != nil && ctx.Err() == nil && onError != nil {
			onError(fmt.Errorf("vip %s: refresh: %w", v.Addr, err))
		}
	}
}
