package checks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
)

// DRPathChecker is directord's drpathcheck (ldirectord has no such check):
// before the real server's own check it probes the virtual service the way
// the director's IPVS direct routing reaches it, and fails the real server
// when that path is broken although the server itself answers on its own
// address. From the interface that reaches the real server it
//
//  1. asks by ARP for the real server's MAC address;
//  2. asks by ARP who has the VIP, and fails when the real server's MAC
//     answers: it would steal the VIP's traffic from the director
//     (arp_ignore/arp_announce are not set on it);
//  3. sends a TCP SYN to VIP:port in an Ethernet frame addressed to the
//     real server's MAC, as IPVS forwards a client's SYN, and passes when a
//     SYN-ACK comes back from VIP:port (then resets it). A reset means the
//     VIP is there but nothing listens on it; silence means the real server
//     does not accept the VIP as its own (it is not on its loopback).
//
// The frames are raw (AF_PACKET), so no route, neighbour entry or address
// of the director is changed, and the director need not hold the VIP. It
// needs CAP_NET_RAW, an IPv4 TCP virtual service and a real server on a
// directly connected network (which direct routing requires anyway). The
// probe is bounded by checktimeout; the real server's own check follows
// with its own timeout.
type DRPathChecker struct {
	vip     netip.AddrPort
	rip     netip.Addr
	inner   Checker
	timeout time.Duration
	// arpWindow is how long replies to the ARP request for the VIP are
	// awaited: real servers on a LAN answer within milliseconds.
	arpWindow time.Duration
}

// NewDRPath wraps inner, the real server's own check, with the DR-path
// probe of cfg.DRPath (the VIP and port) through cfg.Addr's address.
func NewDRPath(cfg Config, inner Checker) (*DRPathChecker, error) {
	vip := cfg.DRPath
	if !vip.IsValid() || !vip.Addr().Unmap().Is4() || vip.Port() == 0 {
		return nil, fmt.Errorf("DR-path check: needs an IPv4 VIP and port, have %v", vip)
	}
	if cfg.protocol() != "tcp" {
		return nil, fmt.Errorf("DR-path check: only for TCP virtual services, not %s", cfg.protocol())
	}
	rip := cfg.Addr.Addr().Unmap()
	if !rip.Is4() {
		return nil, fmt.Errorf("DR-path check: needs an IPv4 real server, have %v", cfg.Addr)
	}
	if inner == nil {
		return nil, errors.New("DR-path check: no check of the real server itself")
	}
	return &DRPathChecker{
		vip:       netip.AddrPortFrom(vip.Addr().Unmap(), vip.Port()),
		rip:       rip,
		inner:     inner,
		timeout:   cfg.checkTimeout(),
		arpWindow: 250 * time.Millisecond,
	}, nil
}

// String says in words what the check does and expects.
func (c *DRPathChecker) String() string {
	return fmt.Sprintf("DR path: TCP SYN to %s through %s's MAC expecting a SYN-ACK, and no ARP answer for %s from it, within %v; then %s",
		c.vip, c.rip, c.vip.Addr(), c.timeout, c.inner)
}

// Check implements Checker.
func (c *DRPathChecker) Check(ctx context.Context) Result {
	dr := timed(ctx, c.timeout, c.probe)
	if !dr.Up {
		return dr
	}
	r := c.inner.Check(ctx)
	r.Message = dr.Message + "; " + r.Message
	r.Latency += dr.Latency
	return r
}

// probe runs the three steps. Every socket is made on the calling
// goroutine, so a caller locked into a network namespace probes from it.
func (c *DRPathChecker) probe(ctx context.Context) Result {
	ifi, src, err := c.route()
	if err != nil {
		return down("", err)
	}
	arpc, err := packet.Listen(ifi, packet.Raw, int(layers.EthernetTypeARP), &packet.Config{Filter: arpReplyFilter()})
	if err != nil {
		return down("", fmt.Errorf("DR path: open a packet socket on %s: %w", ifi.Name, err))
	}
	defer arpc.Close()
	stop := deadlineOn(ctx, arpc)
	defer stop()

	mac, err := arpResolve(ctx, arpc, ifi, src, c.rip)
	if err != nil {
		return down("", fmt.Errorf("DR path: no ARP reply from real server %s on %s: %w", c.rip, ifi.Name, err))
	}
	wctx, cancel := context.WithTimeout(ctx, c.arpWindow)
	thief, err := arpAnswers(wctx, arpc, ifi, src, c.vip.Addr(), mac)
	cancel()
	if err != nil && ctx.Err() == nil {
		return down("", fmt.Errorf("DR path: ARP for VIP %s: %w", c.vip.Addr(), err))
	}
	if thief {
		return down(fmt.Sprintf("real server %s (%s) answers ARP for the VIP %s: set arp_ignore=1 and arp_announce=2 on it", c.rip, mac, c.vip.Addr()), nil)
	}

	tcpc, err := packet.Listen(ifi, packet.Raw, int(layers.EthernetTypeIPv4), &packet.Config{Filter: tcpFromFilter(c.vip)})
	if err != nil {
		return down("", fmt.Errorf("DR path: open a packet socket on %s: %w", ifi.Name, err))
	}
	defer tcpc.Close()
	stop2 := deadlineOn(ctx, tcpc)
	defer stop2()
	return c.synProbe(ctx, tcpc, ifi, src, mac)
}

// route finds the interface and source address that reach the real server
// directly, as IPVS direct routing needs.
func (c *DRPathChecker) route() (*net.Interface, netip.Addr, error) {
	rs, err := netlink.RouteGet(c.rip.AsSlice())
	if err != nil || len(rs) == 0 {
		return nil, netip.Addr{}, fmt.Errorf("DR path: no route to real server %s: %v", c.rip, err)
	}
	r := rs[0]
	if r.Gw != nil {
		return nil, netip.Addr{}, fmt.Errorf("DR path: real server %s is reached through gateway %s; direct routing needs it on a directly connected network", c.rip, r.Gw)
	}
	ifi, err := net.InterfaceByIndex(r.LinkIndex)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("DR path: interface of the route to %s: %w", c.rip, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, netip.Addr{}, fmt.Errorf("DR path: real server %s is reached through %s, which is not Ethernet", c.rip, ifi.Name)
	}
	src, ok := netip.AddrFromSlice(r.Src)
	if !ok || !src.Unmap().Is4() {
		return nil, netip.Addr{}, fmt.Errorf("DR path: no IPv4 source address on %s towards %s", ifi.Name, c.rip)
	}
	return ifi, src.Unmap(), nil
}

// synProbe sends the SYN and reads until the VIP answers through the real
// server or ctx ends.
func (c *DRPathChecker) synProbe(ctx context.Context, conn *packet.Conn, ifi *net.Interface, src netip.Addr, mac net.HardwareAddr) Result {
	sport := uint16(32768 + rand.IntN(28232)) // the kernel's default ephemeral range
	seq := rand.Uint32()
	local := netip.AddrPortFrom(src, sport)
	syn, err := tcpFrame(ifi.HardwareAddr, mac, local, c.vip, seq, 0, true)
	if err != nil {
		return down("", err)
	}
	if _, err := conn.WriteTo(syn, &packet.Addr{HardwareAddr: mac}); err != nil {
		return down("", fmt.Errorf("DR path: send SYN to %s via %s: %w", c.vip, mac, err))
	}
	buf := make([]byte, 1600)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if timedOut(ctx, err) {
				return down("", fmt.Errorf("no answer from %s through real server %s (%s): the VIP is not on its loopback, or it does not accept packets for it: %w", c.vip, c.rip, mac, context.DeadlineExceeded))
			}
			return down("", fmt.Errorf("DR path: read: %w", err))
		}
		rep, ok := parseTCPReply(buf[:n], c.vip, local, seq)
		if !ok {
			continue
		}
		if rep.RST {
			return down(fmt.Sprintf("%s refused the connection on real server %s: the VIP is there but nothing listens on it", c.vip, c.rip), nil)
		}
		// Reset the half-open connection at once: the director's kernel
		// would too, but it sends its reset to whoever has the VIP.
		if rst, err := tcpFrame(ifi.HardwareAddr, mac, local, c.vip, seq+1, 0, false); err == nil {
			conn.WriteTo(rst, &packet.Addr{HardwareAddr: mac})
		}
		return up(fmt.Sprintf("%s answered through real server %s (%s)", c.vip, c.rip, mac))
	}
}

// timedOut tells whether a read ended because ctx did: the socket's
// deadline, set from ctx's, can fire a moment before ctx's own timer.
func timedOut(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)
}

// arpReplyFilter passes only ARP replies to the socket, so that a busy
// link's requests are not copied to it while a check waits.
func arpReplyFilter() []bpf.RawInstruction {
	return mustAssemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 20, Size: 2}, // ARP operation
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(layers.ARPReply), SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
}

// tcpFromFilter passes only IPv4 TCP segments from from, so that the
// director's own traffic is not copied to the socket while a check waits.
// parseTCPReply still checks everything.
func tcpFromFilter(from netip.AddrPort) []bpf.RawInstruction {
	a := from.Addr().As4()
	return mustAssemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 23, Size: 1}, // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(layers.IPProtocolTCP), SkipTrue: 5},
		bpf.LoadAbsolute{Off: 26, Size: 4}, // IPv4 source
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(a[:]), SkipTrue: 3},
		bpf.LoadMemShift{Off: 14},          // X = IPv4 header length
		bpf.LoadIndirect{Off: 14, Size: 2}, // TCP source port
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(from.Port()), SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
}

// mustAssemble assembles a fixed program; an error is a bug in it.
func mustAssemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic("checks: BPF program: " + err.Error())
	}
	return raw
}

// deadlineOn makes conn's reads and writes end when ctx does; stop undoes
// the hook.
func deadlineOn(ctx context.Context, conn *packet.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
}

// arpResolve asks for target's MAC and returns the first answer. Replies
// are read until ctx ends.
func arpResolve(ctx context.Context, conn *packet.Conn, ifi *net.Interface, src, target netip.Addr) (net.HardwareAddr, error) {
	if err := sendARPRequest(conn, ifi, src, target); err != nil {
		return nil, err
	}
	buf := make([]byte, 1600)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if timedOut(ctx, err) {
				return nil, context.DeadlineExceeded
			}
			return nil, err
		}
		if rep, ok := parseARPReply(buf[:n]); ok && rep.Sender == target {
			return rep.SenderMAC, nil
		}
	}
}

// arpAnswers asks who has target and reports whether mac answers before
// ctx ends. ctx ending is the normal outcome, not an error.
func arpAnswers(ctx context.Context, conn *packet.Conn, ifi *net.Interface, src, target netip.Addr, mac net.HardwareAddr) (bool, error) {
	if err := sendARPRequest(conn, ifi, src, target); err != nil {
		return false, err
	}
	stop := deadlineOn(ctx, conn)
	defer stop()
	buf := make([]byte, 1600)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if timedOut(ctx, err) {
				return false, nil
			}
			return false, err
		}
		if rep, ok := parseARPReply(buf[:n]); ok && rep.Sender == target && string(rep.SenderMAC) == string(mac) {
			return true, nil
		}
	}
}

func sendARPRequest(conn *packet.Conn, ifi *net.Interface, src, target netip.Addr) error {
	s4, t4 := src.As4(), target.As4()
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	eth := &layers.Ethernet{SrcMAC: ifi.HardwareAddr, DstMAC: bcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType:          layers.LinkTypeEthernet,
		Protocol:          layers.EthernetTypeIPv4,
		HwAddressSize:     6,
		ProtAddressSize:   4,
		Operation:         layers.ARPRequest,
		SourceHwAddress:   ifi.HardwareAddr,
		SourceProtAddress: s4[:],
		DstHwAddress:      make([]byte, 6),
		DstProtAddress:    t4[:],
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, arp); err != nil {
		return fmt.Errorf("DR path: encode ARP request: %w", err)
	}
	if _, err := conn.WriteTo(buf.Bytes(), &packet.Addr{HardwareAddr: bcast}); err != nil {
		return fmt.Errorf("DR path: send ARP request for %s on %s: %w", target, ifi.Name, err)
	}
	return nil
}

// tcpFrame encodes a SYN (syn) or a RST from local to remote in an Ethernet
// frame from srcMAC to dstMAC.
func tcpFrame(srcMAC, dstMAC net.HardwareAddr, local, remote netip.AddrPort, seq, ack uint32, syn bool) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{
		Version:  4,
		TTL:      64,
		Flags:    layers.IPv4DontFragment,
		Protocol: layers.IPProtocolTCP,
		SrcIP:    local.Addr().AsSlice(),
		DstIP:    remote.Addr().AsSlice(),
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(local.Port()),
		DstPort: layers.TCPPort(remote.Port()),
		Seq:     seq,
		Ack:     ack,
		SYN:     syn,
		RST:     !syn,
		Window:  64240,
	}
	if syn {
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, fmt.Errorf("DR path: encode TCP: %w", err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp); err != nil {
		return nil, fmt.Errorf("DR path: encode TCP: %w", err)
	}
	return buf.Bytes(), nil
}

// arpReply is what parseARPReply reads from an ARP reply.
type arpReply struct {
	Sender    netip.Addr
	SenderMAC net.HardwareAddr
}

// parseARPReply decodes an Ethernet frame holding an IPv4-over-Ethernet ARP
// reply. It is written out rather than left to gopacket's decoder because
// it runs on every ARP frame of the link while a check waits; the fuzz test
// holds it to gopacket's reading.
func parseARPReply(f []byte) (arpReply, bool) {
	const eth, arpLen = 14, 28
	if len(f) < eth+arpLen || binary.BigEndian.Uint16(f[12:14]) != uint16(layers.EthernetTypeARP) {
		return arpReply{}, false
	}
	a := f[eth:]
	if binary.BigEndian.Uint16(a[0:2]) != uint16(layers.LinkTypeEthernet) ||
		binary.BigEndian.Uint16(a[2:4]) != uint16(layers.EthernetTypeIPv4) ||
		a[4] != 6 || a[5] != 4 ||
		binary.BigEndian.Uint16(a[6:8]) != layers.ARPReply {
		return arpReply{}, false
	}
	return arpReply{
		SenderMAC: net.HardwareAddr(append([]byte(nil), a[8:14]...)),
		Sender:    netip.AddrFrom4([4]byte(a[14:18])),
	}, true
}

// tcpReply is what parseTCPReply reads from an answer to the SYN.
type tcpReply struct {
	SYN, ACK, RST bool
}

// parseTCPReply decodes an Ethernet frame holding an IPv4 TCP segment and
// reports whether it answers a SYN with sequence number seq sent from local
// to remote: a SYN-ACK or a RST from remote to local acknowledging seq+1.
// It ignores frames that are anything else (fragments included).
func parseTCPReply(f []byte, remote, local netip.AddrPort, seq uint32) (tcpReply, bool) {
	const eth = 14
	if len(f) < eth+20 || binary.BigEndian.Uint16(f[12:14]) != uint16(layers.EthernetTypeIPv4) {
		return tcpReply{}, false
	}
	ip := f[eth:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ip[0]>>4 != 4 || ihl < 20 || total < ihl+20 || total > len(ip) || ip[9] != uint8(layers.IPProtocolTCP) {
		return tcpReply{}, false
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // a fragment
		return tcpReply{}, false
	}
	src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	t := ip[ihl:total]
	if int(t[12]>>4)*4 < 20 {
		return tcpReply{}, false
	}
	sp, dp := binary.BigEndian.Uint16(t[0:2]), binary.BigEndian.Uint16(t[2:4])
	if netip.AddrPortFrom(src, sp) != remote || netip.AddrPortFrom(dst, dp) != local {
		return tcpReply{}, false
	}
	flags := t[13]
	r := tcpReply{SYN: flags&0x02 != 0, ACK: flags&0x10 != 0, RST: flags&0x04 != 0}
	if !r.ACK || binary.BigEndian.Uint32(t[8:12]) != seq+1 {
		return tcpReply{}, false
	}
	if !(r.SYN || r.RST) {
		return tcpReply{}, false
	}
	return r, true
}
