package handoff

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/testbed/netns"
	"github.com/directord/directord/testbed/vm"
	"github.com/vishvananda/netlink"
)

// The handoff needs IPVS (to test what it is for) and nf_tables with
// nft_dup: the tests run in the testbed VM, which loads them.
func TestMain(m *testing.M) { vm.Main(m) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// echo writes a line on c and reads it back.
func echo(c net.Conn, line string) error { return echoWithin(c, line, 3*time.Second) }

func echoWithin(c net.Conn, line string, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	b := make([]byte, len(line)+1)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != line+"\n" {
		return fmt.Errorf("echo of %q: %q", line, b)
	}
	return nil
}

// TestHandoff moves a VIP between two LVS-DR directors in the real kernel
// with no connection sync at all, so that the new director's IPVS knows
// none of the old one's connections: a connection opened through d1 keeps
// working through d2 while d2 forwards and d1 receives (its segments go
// d2 → d1 → real server), a new connection is d2's own (its SYN is not
// forwarded), and once the forwarder is gone d2's stack resets the old
// connection, as it would have done without the handoff. IPv4 and IPv6.
func TestHandoff(t *testing.T) {
	for _, f := range []struct{ vip, d1, d2, rs, cl, bits string }{
		{"198.51.100.80", "198.51.100.1", "198.51.100.2", "198.51.100.20", "198.51.100.10", "24"},
		{"2001:db8::80", "2001:db8::1", "2001:db8::2", "2001:db8::20", "2001:db8::10", "64"},
	} {
		t.Run(f.vip, func(t *testing.T) {
			vip := netip.MustParseAddr(f.vip)
			host := netip.PrefixFrom(vip, vip.BitLen())
			on := func(a string) netip.Prefix { return netip.MustParsePrefix(a + "/" + f.bits) }
			topo := netns.ForTest(t)
			lan, err := topo.Switch("lan")
			must(t, err)
			node := func(name, a string) (*netns.Host, net.HardwareAddr) {
				h, err := topo.Host(name)
				must(t, err)
				mac, err := topo.Plug(h, "eth0", lan)
				must(t, err)
				must(t, h.AddAddr("eth0", on(a)))
				if vip.Is6() {
					must(t, h.Sysctl("net/ipv6/conf/eth0/accept_dad", "0"))
				}
				return h, mac
			}
			d1, _ := node("d1", f.d1)
			d2, d2mac := node("d2", f.d2)
			rs, _ := node("rs", f.rs)
			cl, _ := node("cl", f.cl)

			// The real server as seed 003 prepares it: the VIP on lo, no
			// ARP answers for it; an echo service on it.
			must(t, rs.AddAddr("lo", host))
			must(t, rs.Sysctl("net/ipv4/conf/all/arp_ignore", "1"))
			must(t, rs.Sysctl("net/ipv4/conf/all/arp_announce", "2"))
			ln, err := rs.Listen("tcp", netip.AddrPortFrom(vip, 80).String())
			must(t, err)
			t.Cleanup(netns.Serve(ln, netns.Echo))

			// Both directors have the service (the standby's table is warm);
			// only d1 has the VIP.
			for _, d := range []*netns.Host{d1, d2} {
				must(t, d.Do(func() error {
					h, err := ipvs.Open()
					if err != nil {
						return err
					}
					defer h.Close()
					_, err = ipvs.Reconcile(ctx(t), h, ipvs.Table{{
						Service:      ipvs.Service{Protocol: ipvs.TCP, Addr: vip, Port: 80, Scheduler: "rr"},
						Destinations: []ipvs.Destination{{Addr: netip.MustParseAddr(f.rs), Port: 80, Forward: ipvs.Route, Weight: 1}},
					}}, nil)
					return err
				}))
			}
			must(t, d1.AddAddr("eth0", host))

			dial := func() net.Conn {
				t.Helper()
				dctx, cancel := context.WithTimeout(ctx(t), 5*time.Second)
				defer cancel()
				c, err := cl.Dial(dctx, "tcp", netip.AddrPortFrom(vip, 80).String())
				must(t, err)
				t.Cleanup(func() { c.Close() })
				return c
			}
			old := dial()
			if err := echo(old, "through d1"); err != nil {
				t.Fatalf("through d1: %v", err)
			}

			// The move: d1 receives, then drops the VIP; d2 forwards, then
			// adds it; the client's neighbour entry follows d2 (the
			// gratuitous ARP or unsolicited NA a takeover sends).
			var rcv *Receiver
			must(t, d1.Do(func() (err error) { rcv, err = Receive(vip); return err }))
			defer d1.Do(rcv.Release)
			must(t, d1.Do(func() error {
				return netlink.AddrDel(mustLink(t, "eth0"), &netlink.Addr{IPNet: prefixNet(host)})
			}))
			// What d1 says of itself (the standby request's dd_addrs), d2
			// reads for the address on the VIP's LAN.
			var d1addrs []netip.Addr
			must(t, d1.Do(func() (err error) {
				d1addrs, err = LocalAddrs(func(a netip.Addr) bool { return a == vip })
				return err
			}))
			if fmt.Sprint(d1addrs) != "["+f.d1+"]" {
				t.Errorf("d1's LocalAddrs (VIP skipped) = %v, want [%s]", d1addrs, f.d1)
			}
			offer := append([]netip.Addr{vip, netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8:ff::5")}, d1addrs...)
			var fwd *Forwarder
			must(t, d2.Do(func() error {
				peer, idx, ok, err := PeerOnLink("eth0", vip, offer)
				if err != nil {
					return err
				}
				if !ok || peer.String() != f.d1 {
					return fmt.Errorf("PeerOnLink(%v) = %v, %v; want %s", offer, peer, ok, f.d1)
				}
				fwd, err = Forward(vip, peer, idx, []uint16{80})
				return err
			}))
			defer d2.Do(func() error { _, err := fwd.Release(); return err })
			must(t, d2.AddAddr("eth0", host))
			must(t, cl.Do(func() error {
				return netlink.NeighSet(&netlink.Neigh{LinkIndex: mustLink(t, "eth0").Attrs().Index, IP: vip.AsSlice(), HardwareAddr: d2mac, State: netlink.NUD_REACHABLE})
			}))

			// The first segment after the move may be lost (d2's IPv6
			// local route for the new address is installed by a work
			// queue, after AddAddr returns): the client's retransmission
			// must then get through, hence the longer deadline.
			if err := echoWithin(old, "through d2 and d1", 10*time.Second); err != nil {
				var n uint64
				d2.Do(func() (err error) { n, err = fwd.Forwarded(); return err })
				t.Logf("d2 forwarded %d segments to d1", n)
				for _, h := range []*netns.Host{cl, d1, d2, rs} {
					for _, args := range [][]string{{"-6", "neigh"}, {"neigh"}, {"rule"}, {"-6", "rule"}, {"-6", "route", "show", "table", "all"}, {"route", "show", "table", "all"}} {
						out, err := h.CombinedOutput(exec.Command("ip", args...))
						t.Logf("%s: ip %s: %v\n%s", h.Name(), strings.Join(args, " "), err, out)
					}
				}
				for _, h := range []*netns.Host{d1, d2} {
					out, err := h.CombinedOutput(exec.Command("ipvsadm", "-Lnc"))
					t.Logf("%s: ipvsadm -Lnc: %v\n%s", h.Name(), err, out)
				}
				t.Fatalf("d1's connection after the move, with the handoff: %v", err)
			}
			var n uint64
			must(t, d2.Do(func() (err error) { n, err = fwd.Forwarded(); return err }))
			if n == 0 {
				t.Fatal("the echo worked but d2 forwarded nothing: the test did not send the segment through d2")
			}
			// A local service on another port of the VIP is d2's own: not
			// forwarded.
			lln, err := d2.Listen("tcp", netip.AddrPortFrom(vip, 22).String())
			must(t, err)
			t.Cleanup(netns.Serve(lln, netns.Echo))
			lctx, lcancel := context.WithTimeout(ctx(t), 5*time.Second)
			local, err := cl.Dial(lctx, "tcp", netip.AddrPortFrom(vip, 22).String())
			lcancel()
			must(t, err)
			t.Cleanup(func() { local.Close() })
			if err := echo(local, "d2's local service"); err != nil {
				t.Errorf("a local service on port 22 of the VIP during the handoff: %v", err)
			}
			fresh := dial()
			if err := echo(fresh, "d2's own"); err != nil {
				t.Fatalf("a new connection through d2: %v", err)
			}
			var n2 uint64
			must(t, d2.Do(func() (err error) { n2, err = fwd.Release(); return err }))
			if n2 != n {
				t.Errorf("d2 forwarded %d segments after a new connection, was %d: a connection it owns must stay with it", n2, n)
			}
			if err := echo(fresh, "d2's own, after"); err != nil {
				t.Errorf("d2's connection after the forwarder went: %v", err)
			}
			// Without the forwarder, d2 knows nothing of d1's connection.
			if err := echo(old, "no handoff"); err == nil {
				t.Error("d1's connection still works through d2 without the forwarder: the test proves nothing")
			}
			must(t, d1.Do(rcv.Release))
		})
	}
}

func mustLink(t testing.TB, name string) netlink.Link {
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Error(err)
	}
	return l
}

// TestSweep: what a daemon that died in a handover left, Sweep removes.
func TestSweep(t *testing.T) {
	topo := netns.ForTest(t)
	h, err := topo.Host("d")
	must(t, err)
	must(t, h.AddDummy("eth0"))
	must(t, h.AddAddr("eth0", netip.MustParsePrefix("192.0.2.1/24")))
	must(t, h.Do(func() error {
		idx := mustLink(t, "eth0").Attrs().Index
		for _, v := range []string{"192.0.2.80", "2001:db8::80"} {
			peer := "192.0.2.2"
			if netip.MustParseAddr(v).Is6() {
				peer = "2001:db8::2"
			}
			if _, err := Forward(netip.MustParseAddr(v), netip.MustParseAddr(peer), idx, []uint16{80, 443}); err != nil {
				return err
			}
			if _, err := Receive(netip.MustParseAddr(v)); err != nil {
				return err
			}
		}
		if got := left(t); got != "2 tables, 2 rules, 2 routes" {
			return fmt.Errorf("installed: %s", got)
		}
		if err := Sweep(); err != nil {
			return err
		}
		if got := left(t); got != "0 tables, 0 rules, 0 routes" {
			return fmt.Errorf("after Sweep: %s", got)
		}
		return nil
	}))
}

func left(t testing.TB) string {
	c, err := conn()
	must(t, err)
	defer c.CloseLasting()
	ts, err := c.ListTables()
	must(t, err)
	nt := 0
	for _, x := range ts {
		if len(x.Name) > len(tablePrefix) && x.Name[:len(tablePrefix)] == tablePrefix {
			nt++
		}
	}
	nr, nrt := 0, 0
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := netlink.RuleList(fam)
		must(t, err)
		for _, r := range rules {
			if r.Table == routeTable {
				nr++
			}
		}
		rts, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: routeTable}, netlink.RT_FILTER_TABLE)
		must(t, err)
		nrt += len(rts)
	}
	return fmt.Sprintf("%d tables, %d rules, %d routes", nt, nr, nrt)
}
