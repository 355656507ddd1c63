package rstguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/directord/directord/testbed/netns"
	"github.com/directord/directord/testbed/vm"
)

// The guard is tc (clsact, u32, gact): Debian's kernel has them as modules,
// which the testbed VM loads; this host's kernel lacks act_gact, so the
// tests run in the VM.
func TestMain(m *testing.M) { vm.Main(m) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dial connects from the client to addr and says what came back: a reset
// ("refused"), nothing ("silence", within the wait), or a connection.
func dial(t *testing.T, cl *netns.Host, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	c, err := cl.Dial(ctx, "tcp", addr)
	switch {
	case err == nil:
		c.Close()
		return "connected"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err):
		return "silence"
	}
	t.Fatalf("dial %s: %v", addr, err)
	return ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestGuard: a director with a VIP answers a connection to a port without
// a listener with a reset; while the guard holds, that reset is dropped
// (the client hears nothing) and connections to a listening port still
// work; released or swept, the reset comes back. IPv4 and IPv6.
func TestGuard(t *testing.T) {
	topo := netns.ForTest(t)
	dir, err := topo.Host("dir")
	must(t, err)
	cl, err := topo.Host("cl")
	must(t, err)
	must(t, topo.Cable(dir, "eth0", cl, "eth0"))
	must(t, dir.AddDummy("vip0"))
	for _, a := range []string{"192.0.2.1/24", "2001:db8:1::1/64"} {
		must(t, dir.AddAddr("eth0", netip.MustParsePrefix(a)))
	}
	for _, a := range []string{"192.0.2.10/24", "2001:db8:1::10/64"} {
		must(t, cl.AddAddr("eth0", netip.MustParsePrefix(a)))
	}
	for _, v := range []struct{ vip, gw string }{{"198.51.100.1", "192.0.2.1"}, {"2001:db8::1", "2001:db8:1::1"}} {
		vip := netip.MustParseAddr(v.vip)
		t.Run(v.vip, func(t *testing.T) {
			must(t, dir.AddAddr("vip0", netip.PrefixFrom(vip, vip.BitLen())))
			must(t, cl.AddRoute(netip.PrefixFrom(vip, vip.BitLen()), netip.MustParseAddr(v.gw)))
			ln, err := dir.Listen("tcp", netip.AddrPortFrom(vip, 80).String())
			must(t, err)
			defer netns.Serve(ln, func(c net.Conn) { c.Close() })()
			closed := netip.AddrPortFrom(vip, 9).String()
			open := netip.AddrPortFrom(vip, 80).String()
			// Neighbour discovery may take a moment on a new link.
			deadline := time.Now().Add(10 * time.Second)
			for dial(t, cl, closed) != "refused" {
				if time.Now().After(deadline) {
					t.Fatal("the director never refused a closed port: the check below would prove nothing")
				}
			}

			var g *Guard
			must(t, dir.Do(func() (err error) { g, err = Hold(vip); return err }))
			if got := dial(t, cl, closed); got != "silence" {
				t.Errorf("closed port with the guard: %s, want silence (reset dropped)", got)
			}
			if got := dial(t, cl, open); got != "connected" {
				t.Errorf("open port with the guard: %s", got)
			}
			var dropped int
			must(t, dir.Do(func() (err error) { dropped, err = g.Release(); return err }))
			// The kernel's SYN retransmissions may add resets to drop.
			if dropped < 1 {
				t.Errorf("the guard dropped %d resets, want at least the one the closed port caused", dropped)
			}
			if got := dial(t, cl, closed); got != "refused" {
				t.Errorf("closed port after Release: %s", got)
			}

			// A guard left behind by a dead daemon goes with Sweep; one of
			// another address does not drop this one's resets.
			other := netip.MustParseAddr("203.0.113.9")
			if vip.Is6() {
				other = netip.MustParseAddr("2001:db8::9")
			}
			must(t, dir.Do(func() error { _, err := Hold(other); return err }))
			if got := dial(t, cl, closed); got != "refused" {
				t.Errorf("closed port with another VIP's guard: %s", got)
			}
			must(t, dir.Do(func() error { _, err := Hold(vip); return err }))
			if got := dial(t, cl, closed); got != "silence" {
				t.Errorf("closed port with the second guard: %s", got)
			}
			must(t, dir.Do(Sweep))
			if got := dial(t, cl, closed); got != "refused" {
				t.Errorf("closed port after Sweep: %s", got)
			}
		})
	}
}
