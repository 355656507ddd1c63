// Package nstest builds tiny network-namespace topologies for vip's tests:
// fresh namespaces, veth pairs between them, addresses, routes, neighbour
// entries and a frame capture. Namespaces are unnamed (never bind-mounted
// under /var/run/netns), so nothing of a run is visible to, or can collide
// with, another run, and the kernel destroys each namespace with its links
// once the test closes the last handle, even when the test fails or the
// process dies.
package nstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a network namespace owned by one test.
type NS struct {
	Handle netns.NsHandle
	NL     *netlink.Handle
}

// New returns a fresh namespace with lo up, closed at the end of the test.
// It skips the test when it cannot create one (not root, no CAP_SYS_ADMIN).
func New(t testing.TB) *NS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root")
	}
	h, err := newNS()
	if err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		_ = h.Close()
		t.Fatalf("netlink handle in namespace: %v", err)
	}
	n := &NS{Handle: h, NL: nl}
	t.Cleanup(func() {
		nl.Close()
		_ = h.Close()
	})
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatalf("lo in new namespace: %v", err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatalf("set lo up: %v", err)
	}
	return n
}

func newNS() (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), err}
			return
		}
		defer orig.Close()
		ns, err := netns.New() // unshares: this thread is now in ns
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), err}
			return
		}
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked so it exits with this goroutine.
			ch <- result{ns, fmt.Errorf("return to original namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ns, nil}
	}()
	r := <-ch
	if r.err != nil && r.ns.IsOpen() {
		_ = r.ns.Close()
		return netns.None(), r.err
	}
	return r.ns, r.err
}

// Do runs fn on a thread switched into n.
func (n *NS) Do(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(n.Handle); err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			ch <- errors.Join(ferr, err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		ch <- ferr
	}()
	return <-ch
}

// Sysctl writes value to /proc/sys/<path> inside n, e.g.
// "net/ipv4/neigh/vb/locktime".
func (n *NS) Sysctl(t testing.TB, path, value string) {
	t.Helper()
	err := n.Do(func() error {
		return os.WriteFile("/proc/sys/"+strings.TrimPrefix(path, "/"), []byte(value), 0)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

// Veth joins a and b with a veth pair named aName (in a) and bName (in b),
// both up, and returns the two links.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) (netlink.Link, netlink.Link) {
	t.Helper()
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.Handle)),
	}
	if err := a.NL.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s/%s: %v", aName, bName, err)
	}
	return a.Up(t, aName), b.Up(t, bName)
}

// Up sets link name up and returns it.
func (n *NS) Up(t testing.TB, name string) netlink.Link {
	t.Helper()
	l := n.Link(t, name)
	if err := n.NL.LinkSetUp(l); err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
	return n.Link(t, name)
}

// Link returns link name.
func (n *NS) Link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := n.NL.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

// Addr adds prefix (e.g. "192.0.2.1/24") to link name; IPv6 addresses skip
// DAD so that tests need not wait for it.
func (n *NS) Addr(t testing.TB, name, prefix string) {
	t.Helper()
	n.addr(t, name, prefix, false)
}

// AddrDAD adds an IPv6 prefix to link name with duplicate address detection.
func (n *NS) AddrDAD(t testing.TB, name, prefix string) {
	t.Helper()
	n.addr(t, name, prefix, true)
}

func (n *NS) addr(t testing.TB, name, prefix string, dad bool) {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() && !dad {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.NL.AddrAdd(n.Link(t, name), a); err != nil {
		t.Fatalf("add %s to %s: %v", prefix, name, err)
	}
}

// Route adds an on-link route dst dev name [metric]; with via set, a route
// through that gateway instead.
func (n *NS) Route(t testing.TB, name, dst, via string, metric int) {
	t.Helper()
	p := netip.MustParsePrefix(dst)
	r := &netlink.Route{
		LinkIndex: n.Link(t, name).Attrs().Index,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Priority:  metric,
	}
	if via != "" {
		r.Gw = netip.MustParseAddr(via).AsSlice()
	} else if p.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK
	}
	if err := n.NL.RouteAdd(r); err != nil {
		t.Fatalf("add route %s dev %s via %q metric %d: %v", dst, name, via, metric, err)
	}
}

// Neigh sets a neighbour entry ip → mac on link name in state NUD_STALE, as
// a cache that still points at the previous owner of a VIP.
func (n *NS) Neigh(t testing.TB, name, ip string, mac net.HardwareAddr) {
	t.Helper()
	a := netip.MustParseAddr(ip)
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	err := n.NL.NeighSet(&netlink.Neigh{
		LinkIndex:    n.Link(t, name).Attrs().Index,
		Family:       fam,
		State:        netlink.NUD_STALE,
		IP:           a.AsSlice(),
		HardwareAddr: mac,
	})
	if err != nil {
		t.Fatalf("set neighbour %s → %s on %s: %v", ip, mac, name, err)
	}
}

// NeighMAC returns the link-layer address n's neighbour table holds for ip
// on link name, nil when none.
func (n *NS) NeighMAC(t testing.TB, name, ip string) net.HardwareAddr {
	t.Helper()
	a := netip.MustParseAddr(ip)
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	neighs, err := n.NL.NeighList(n.Link(t, name).Attrs().Index, fam)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		t.Fatalf("list neighbours on %s: %v", name, err)
	}
	for _, ne := range neighs {
		if got, ok := netip.AddrFromSlice(ne.IP); ok && got.Unmap() == a {
			return ne.HardwareAddr
		}
	}
	return nil
}

// Frame is one captured frame.
type Frame struct {
	Data []byte
	At   time.Time
}

// Capture records every frame seen on one link until Stop.
type Capture struct {
	conn   *packet.Conn
	mu     sync.Mutex
	frames []Frame
	done   chan struct{}
	stop   sync.Once
	wg     sync.WaitGroup
}

// Capture starts recording the frames on link name in n. Stop it (the test
// cleanup does too).
func (n *NS) Capture(t testing.TB, name string) *Capture {
	t.Helper()
	l := n.Link(t, name)
	ifi := &net.Interface{Index: l.Attrs().Index, Name: name, HardwareAddr: l.Attrs().HardwareAddr}
	var conn *packet.Conn
	err := n.Do(func() error {
		var err error
		conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", name, err)
	}
	c := &Capture{conn: conn, done: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	t.Cleanup(func() { c.Stop() })
	return c
}

func (c *Capture) run() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			continue // deadline: look at done again
		}
		f := Frame{Data: append([]byte(nil), buf[:n]...), At: time.Now()}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
	}
}

// Frames returns what has been captured so far.
func (c *Capture) Frames() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// Stop ends the capture and returns every frame captured. It may be called
// more than once.
func (c *Capture) Stop() []Frame {
	c.stop.Do(func() {
		close(c.done)
		c.wg.Wait()
		_ = c.conn.Close()
	})
	return c.Frames()
}
