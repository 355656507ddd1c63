// Package media opens Heartbeat's UDP heartbeat paths (ucast, bcast,
// mcast from ha.cf) the way its HBcomm plugins do: a write socket and a
// read socket per medium, both bound to the interface (SO_BINDTODEVICE)
// and with SO_REUSEPORT, the write socket marked IPTOS_LOWDELAY, the read
// socket bound to the medium's port on all addresses with SO_REUSEADDR.
package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/directord/directord/heartbeat/hacf"
)

// TOSLowDelay is IPTOS_LOWDELAY, the ToS Heartbeat sets on what it sends.
const TOSLowDelay = 0x10

// MaxDatagram is the largest UDP payload over IPv4; Heartbeat's own limit
// (MAXMSG, 256 KiB) is larger, so this is the real bound on the wire.
const MaxDatagram = 65507

// ErrUnsupported is returned for media this package cannot open.
var ErrUnsupported = errors.New("unsupported heartbeat medium")

// Medium is one open heartbeat path.
type Medium struct {
	cfg  hacf.Medium
	dst  *net.UDPAddr
	w, r *net.UDPConn
}

// Open opens m; ctx bounds the peer name lookup of ucast. The caller
// must Close the result.
func Open(ctx context.Context, m hacf.Medium) (*Medium, error) {
	if m.Port <= 0 || m.Port > 65535 {
		return nil, fmt.Errorf("%s: bad port %d", describe(m), m.Port)
	}
	if m.Interface == "" {
		return nil, fmt.Errorf("%s: no interface", describe(m))
	}
	md := &Medium{cfg: m}
	var err error
	switch m.Type {
	case hacf.Ucast:
		err = md.openUcast(ctx)
	case hacf.Bcast:
		err = md.openBcast(ctx)
	case hacf.Mcast:
		err = md.openMcast(ctx)
	default:
		err = fmt.Errorf("%w: %s", ErrUnsupported, m.Type)
	}
	if err != nil {
		md.Close()
		return nil, fmt.Errorf("%s: %w", describe(m), err)
	}
	return md, nil
}

func describe(m hacf.Medium) string {
	switch m.Type {
	case hacf.Ucast:
		return fmt.Sprintf("ucast %s %s", m.Interface, m.Peer)
	case hacf.Mcast:
		return fmt.Sprintf("mcast %s %s %d %d %v", m.Interface, m.Group, m.Port, m.TTL, m.Loop)
	}
	return fmt.Sprintf("%s %s", m.Type, m.Interface)
}

// String names the medium as ha.cf writes it, e.g. "ucast hb0 192.0.2.2".
func (md *Medium) String() string { return describe(md.cfg) }

// Interface returns the interface the medium is bound to.
func (md *Medium) Interface() string { return md.cfg.Interface }

// sockopts returns a Control function setting the options Heartbeat sets
// on its sockets, for ListenConfig.
func sockopts(iface string, reuse, broadcast bool) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			set := func(level, opt, v int, what string) {
				if serr == nil {
					if e := syscall.SetsockoptInt(int(fd), level, opt, v); e != nil {
						serr = fmt.Errorf("%s: %w", what, e)
					}
				}
			}
			// Both sockets get SO_REUSEPORT ("set SO_REUSEPORT(w)" in
			// Heartbeat's log); the read socket also SO_REUSEADDR, the
			// write socket the low-delay ToS.
			set(syscall.SOL_SOCKET, soReusePort, 1, "SO_REUSEPORT")
			if reuse {
				set(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1, "SO_REUSEADDR")
			} else {
				set(syscall.IPPROTO_IP, syscall.IP_TOS, TOSLowDelay, "IP_TOS")
			}
			if broadcast {
				set(syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1, "SO_BROADCAST")
			}
			if serr == nil {
				if e := syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, iface); e != nil {
					serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", iface, e)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// soReusePort is SO_REUSEPORT on Linux, which the syscall package lacks.
const soReusePort = 0xf

func listen(ctx context.Context, iface, addr string, reuse, broadcast bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: sockopts(iface, reuse, broadcast)}
	pc, err := lc.ListenPacket(ctx, "udp4", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func (md *Medium) openReadSocket(ctx context.Context, addr string) error {
	var err error
	md.r, err = listen(ctx, md.cfg.Interface, net.JoinHostPort(addr, strconv.Itoa(md.cfg.Port)), true, false)
	if err != nil {
		return fmt.Errorf("read socket: %w", err)
	}
	return nil
}

func (md *Medium) openWriteSocket(ctx context.Context, broadcast bool) error {
	var err error
	md.w, err = listen(ctx, md.cfg.Interface, "0.0.0.0:0", false, broadcast)
	if err != nil {
		return fmt.Errorf("write socket: %w", err)
	}
	return nil
}

func (md *Medium) openUcast(ctx context.Context) error {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", md.cfg.Peer)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("cannot resolve peer %q: %v", md.cfg.Peer, err)
	}
	md.dst = net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(md.cfg.Port)))
	if err := md.openWriteSocket(ctx, false); err != nil {
		return err
	}
	return md.openReadSocket(ctx, "0.0.0.0")
}

// broadcastAddr returns the IPv4 broadcast address of iface's first IPv4
// network, as the bcast plugin gets it with SIOCGIFBRDADDR.
func broadcastAddr(iface string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() == nil {
			continue
		}
		ip, mask := n.IP.To4(), net.IP(n.Mask).To4()
		if mask == nil {
			continue
		}
		var b [4]byte
		for i := range b {
			b[i] = ip[i] | ^mask[i]
		}
		return netip.AddrFrom4(b), nil
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address", iface)
}

func (md *Medium) openBcast(ctx context.Context) error {
	b, err := broadcastAddr(md.cfg.Interface)
	if err != nil {
		return err
	}
	md.dst = net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, uint16(md.cfg.Port)))
	if err := md.openWriteSocket(ctx, true); err != nil {
		return err
	}
	return md.openReadSocket(ctx, "0.0.0.0")
}

func (md *Medium) openMcast(ctx context.Context) error {
	g := md.cfg.Group
	if !g.Is4() || !g.IsMulticast() {
		return fmt.Errorf("%s is not an IPv4 multicast group", g)
	}
	ifi, err := net.InterfaceByName(md.cfg.Interface)
	if err != nil {
		return err
	}
	md.dst = net.UDPAddrFromAddrPort(netip.AddrPortFrom(g, uint16(md.cfg.Port)))
	if err := md.openWriteSocket(ctx, false); err != nil {
		return err
	}
	wp := ipv4.NewPacketConn(md.w)
	if err := wp.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF: %w", err)
	}
	if err := wp.SetMulticastTTL(md.cfg.TTL); err != nil {
		return fmt.Errorf("IP_MULTICAST_TTL: %w", err)
	}
	if err := wp.SetMulticastLoopback(md.cfg.Loop); err != nil {
		return fmt.Errorf("IP_MULTICAST_LOOP: %w", err)
	}
	// Bound to the group, the read socket sees only that group's traffic.
	if err := md.openReadSocket(ctx, g.String()); err != nil {
		return err
	}
	if err := ipv4.NewPacketConn(md.r).JoinGroup(ifi, &net.UDPAddr{IP: g.AsSlice()}); err != nil {
		return fmt.Errorf("join %s on %s: %w", g, md.cfg.Interface, err)
	}
	return nil
}

// Send writes one datagram to the medium's destination.
func (md *Medium) Send(b []byte) error {
	if len(b) > MaxDatagram {
		return fmt.Errorf("%s: %d-byte message exceeds the %d-byte UDP limit", md, len(b), MaxDatagram)
	}
	n, err := md.w.WriteToUDP(b, md.dst)
	if err != nil {
		return fmt.Errorf("%s: send: %w", md, err)
	}
	if n != len(b) {
		return fmt.Errorf("%s: short send %d of %d", md, n, len(b))
	}
	return nil
}

// ReadFrom reads one datagram into b, which should hold MaxDatagram
// bytes. It returns the sender's address.
func (md *Medium) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := md.r.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("%s: receive: %w", md, err)
	}
	return n, from, nil
}

// SetReadDeadline bounds the next ReadFrom calls.
func (md *Medium) SetReadDeadline(t time.Time) error { return md.r.SetReadDeadline(t) }

// LocalSendAddr returns the address the write socket sends from.
func (md *Medium) LocalSendAddr() netip.AddrPort {
	return md.w.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes both sockets; a blocked ReadFrom returns an error.
func (md *Medium) Close() error {
	var errs []error
	for _, c := range []*net.UDPConn{md.w, md.r} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
