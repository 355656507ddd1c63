package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/directord/directord/heartbeat/hacf"
)

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func sockInt(t *testing.T, c *net.UDPConn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

func boundDevice(t *testing.T, c *net.UDPConn) string {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dev string
	var serr error
	if err := rc.Control(func(fd uintptr) {
		dev, serr = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return dev
}

// recv reads one datagram within a second.
func recv(t *testing.T, m *Medium) ([]byte, netip.AddrPort) {
	t.Helper()
	if err := m.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxDatagram)
	n, from, err := m.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n], from
}

func TestUcastLoopback(t *testing.T) {
	port := freeUDPPort(t)
	m, err := Open(context.Background(), hacf.Medium{Type: hacf.Ucast, Interface: "lo", Peer: "127.0.0.1", Port: port})
	if err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skip("SO_BINDTODEVICE needs CAP_NET_RAW:", err)
		}
		t.Fatal(err)
	}
	defer m.Close()
	if m.String() != "ucast lo 127.0.0.1" || m.Interface() != "lo" {
		t.Errorf("String = %q", m)
	}
	// The options Heartbeat's ucast plugin sets.
	if tos := sockInt(t, m.w, syscall.IPPROTO_IP, syscall.IP_TOS); tos != TOSLowDelay {
		t.Errorf("write socket IP_TOS = %#x", tos)
	}
	if d := boundDevice(t, m.w); d != "lo" {
		t.Errorf("write socket bound to %q", d)
	}
	if d := boundDevice(t, m.r); d != "lo" {
		t.Errorf("read socket bound to %q", d)
	}
	if v := sockInt(t, m.r, syscall.SOL_SOCKET, syscall.SO_REUSEADDR); v != 1 {
		t.Errorf("SO_REUSEADDR = %d", v)
	}
	if v := sockInt(t, m.r, syscall.SOL_SOCKET, soReusePort); v != 1 {
		t.Errorf("read socket SO_REUSEPORT = %d", v)
	}
	if v := sockInt(t, m.w, syscall.SOL_SOCKET, soReusePort); v != 1 {
		t.Errorf("write socket SO_REUSEPORT = %d", v)
	}
	if got := m.r.LocalAddr().(*net.UDPAddr).Port; got != port {
		t.Errorf("read socket port %d, want %d", got, port)
	}

	msg := []byte("###\n11:(0)t=status,%%%\n")
	if err := m.Send(msg); err != nil {
		t.Fatal(err)
	}
	got, from := recv(t, m)
	if !bytes.Equal(got, msg) {
		t.Errorf("received %q", got)
	}
	if from != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), m.LocalSendAddr().Port()) {
		t.Errorf("from %v, send socket %v", from, m.LocalSendAddr())
	}
	if err := m.Send(make([]byte, MaxDatagram+1)); err == nil {
		t.Error("oversized send succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, m := range []hacf.Medium{
		{Type: hacf.Ucast, Interface: "lo", Peer: "127.0.0.1", Port: 0},
		{Type: hacf.Ucast, Interface: "", Peer: "127.0.0.1", Port: 694},
		{Type: hacf.Ucast, Interface: "lo", Peer: "no-such-host.invalid", Port: 694},
		{Type: hacf.Ucast, Interface: "nosuchif0", Peer: "127.0.0.1", Port: freeUDPPort(t)},
		{Type: hacf.Bcast, Interface: "nosuchif0", Port: 694},
		{Type: hacf.Mcast, Interface: "lo", Group: netip.MustParseAddr("192.0.2.1"), Port: 694},
		{Type: hacf.Serial, Interface: "/dev/ttyS0", Port: 694},
	} {
		if md, err := Open(ctx, m); err == nil {
			md.Close()
			t.Errorf("Open(%+v) succeeded", m)
		}
	}
	if _, err := Open(ctx, hacf.Medium{Type: hacf.Serial, Interface: "/dev/ttyS0", Port: 1}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("serial: %v", err)
	}
}

func TestBroadcastAddr(t *testing.T) {
	b, err := broadcastAddr("lo")
	if err != nil {
		t.Skip("lo has no IPv4 address:", err)
	}
	if b != netip.MustParseAddr("127.255.255.255") {
		t.Errorf("broadcast of lo = %v", b)
	}
}
