package connsync

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultGroup and DefaultPort are the kernel's sync group and port
// (IP_VS_SYNC_GROUP, IP_VS_SYNC_PORT).
var DefaultGroup = netip.MustParseAddr("224.0.0.81")

const DefaultPort = 8848

// Send sends msgs to group:port (the defaults when zero) out of the
// interface ifname, TTL 1, without looping them back: this node's own
// backup daemon listens on the same group and must not take its own
// connections for the peer's.
func Send(ctx context.Context, ifname string, group netip.Addr, port uint16, msgs [][]byte) error {
	if len(msgs) == 0 {
		return nil
	}
	if !group.IsValid() {
		group = DefaultGroup
	}
	if port == 0 {
		port = DefaultPort
	}
	if !group.Is4() {
		return fmt.Errorf("connection handover: sync group %s: only IPv4 groups are supported", group)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("connection handover: sync interface %q: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("connection handover: %w", os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), "connsync")
	defer f.Close()
	mreq := &unix.IPMreqn{Ifindex: int32(ifi.Index)}
	for _, o := range []struct {
		name string
		err  error
	}{
		{"IP_MULTICAST_IF", unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq)},
		{"IP_MULTICAST_TTL", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1)},
		{"IP_MULTICAST_LOOP", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)},
	} {
		if o.err != nil {
			return fmt.Errorf("connection handover: %w", os.NewSyscallError("setsockopt "+o.name, o.err))
		}
	}
	dst := &unix.SockaddrInet4{Port: int(port), Addr: group.As4()}
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("connection handover: %d of %d messages sent: %w", i, len(msgs), err)
		}
		for {
			err = unix.Sendto(fd, m, 0, dst)
			if err != syscall.ENOBUFS && err != syscall.EAGAIN || ctx.Err() != nil {
				break
			}
			// A full queue on a large table: let it drain.
			time.Sleep(time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("connection handover: %d of %d messages sent: %w", i, len(msgs), os.NewSyscallError("sendto", err))
		}
	}
	return nil
}
