// Package netns builds small network topologies out of Linux network
// namespaces for tests: named hosts (one namespace each), switches (Linux
// bridges in a shared "switch" namespace), veth cables between them,
// addresses, routes and sysctls, and ways to run Go code or processes inside
// a host. It works the same on a developer's machine and inside the
// testbed/vm guest. It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
//
// Every namespace is created with a name unique to the topology (prefix
// "dtb-<pid>-<random>-"), bind-mounted under /run/netns like `ip netns add`
// makes it, so `ip -n NAME …` and `ip netns exec NAME …` work for debugging
// while a test runs. Close removes all of it; Sweep removes what a crashed
// test process left behind.
//
// Use only the documentation address ranges (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32) in topologies.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// namePrefix starts every namespace this package creates; Sweep relies on it.
const namePrefix = "dtb-"

// runNetns is where named namespaces are bind-mounted (iproute2's location).
const runNetns = "/run/netns"

// Topology is a set of hosts and switches. Its methods are safe for
// concurrent use. Close tears everything down.
type Topology struct {
	prefix string

	mu       sync.Mutex
	closed   bool
	hosts    map[string]*Host
	order    []*Host // creation order, for teardown
	switchNS *Host   // namespace holding every switch's bridge; nil until the first switch
	switches map[string]*Switch
	ports    int // counter for bridge port names
}

// New returns an empty topology with a fresh, unique name prefix.
func New() (*Topology, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("netns: random prefix: %w", err)
	}
	return &Topology{
		prefix:   fmt.Sprintf("%s%d-%s-", namePrefix, os.Getpid(), hex.EncodeToString(b[:])),
		hosts:    make(map[string]*Host),
		switches: make(map[string]*Switch),
	}, nil
}

// Prefix returns the prefix of the names of this topology's namespaces.
func (t *Topology) Prefix() string { return t.prefix }

// Host is one network namespace playing a machine.
type Host struct {
	name   string // the test's name for it
	nsName string // name under /run/netns
	ns     netns.NsHandle
	nl     *netlink.Handle

	mu    sync.Mutex
	procs []*os.Process // started by Start, killed by destroy
}

// Name returns the host's name in the topology.
func (h *Host) Name() string { return h.name }

// NetnsName returns the namespace's name under /run/netns, for
// `ip -n NAME` or `ip netns exec NAME`.
func (h *Host) NetnsName() string { return h.nsName }

// Path returns the path of the namespace's bind mount, which setns(2) and
// tools like nsenter --net= accept.
func (h *Host) Path() string { return filepath.Join(runNetns, h.nsName) }

// NS returns the namespace handle. It stays owned by the Host: do not close it.
func (h *Host) NS() netns.NsHandle { return h.ns }

// Netlink returns a NETLINK_ROUTE handle bound to the host's namespace, for link,
// address, route and neighbour operations this package does not wrap. It is
// owned by the Host: do not close it.
func (h *Host) Netlink() *netlink.Handle { return h.nl }

// Host creates a host named name (letters, digits, '-' and '_', at most 32
// characters) with its loopback up.
func (t *Topology) Host(name string) (*Host, error) {
	if !validName(name) {
		return nil, fmt.Errorf("netns: invalid host name %q", name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("netns: topology is closed")
	}
	if _, ok := t.hosts[name]; ok {
		return nil, fmt.Errorf("netns: host %q already exists", name)
	}
	h, err := newHost(name, t.prefix+name)
	if err != nil {
		return nil, err
	}
	t.hosts[name] = h
	t.order = append(t.order, h)
	return h, nil
}

// HostByName returns the host called name, or nil.
func (t *Topology) HostByName(name string) *Host {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hosts[name]
}

func validName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// newHost creates and names a namespace and brings its loopback up. The
// creating goroutine's thread enters the new namespace (unshare), so it runs
// on its own locked thread, which is discarded if it cannot return to the
// original namespace.
func newHost(name, nsName string) (*Host, error) {
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
			ch <- result{err: fmt.Errorf("netns: current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := os.MkdirAll(runNetns, 0o755); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("netns: %w", err)}
			return
		}
		ns, err := netns.NewNamed(nsName)
		if rerr := netns.Set(orig); rerr != nil {
			// Leave the thread locked: the runtime ends it with this
			// goroutine instead of reusing a thread in the wrong namespace.
			if err == nil {
				ns.Close()
				netns.DeleteNamed(nsName)
			}
			ch <- result{err: fmt.Errorf("netns: return to the original namespace: %w", rerr)}
			return
		}
		runtime.UnlockOSThread()
		if err != nil {
			// NewNamed may have created the file before failing to mount.
			os.Remove(filepath.Join(runNetns, nsName))
			ch <- result{err: fmt.Errorf("netns: create namespace %s: %w", nsName, err)}
			return
		}
		ch <- result{ns: ns}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	h := &Host{name: name, nsName: nsName, ns: r.ns}
	var err error
	if h.nl, err = netlink.NewHandleAt(r.ns, unix.NETLINK_ROUTE); err != nil {
		h.destroy()
		return nil, fmt.Errorf("netns: netlink handle in %s: %w", nsName, err)
	}
	if err := h.setUp("lo"); err != nil {
		h.destroy()
		return nil, err
	}
	return h, nil
}

// destroy kills the host's processes and removes its namespace; the kernel
// then deletes the namespace's interfaces (and their veth peers).
func (h *Host) destroy() error {
	h.mu.Lock()
	procs := h.procs
	h.procs = nil
	h.mu.Unlock()
	for _, p := range procs {
		// A process inside would keep the namespace alive. Its owner
		// waits for it; a process that already ended makes Kill fail
		// harmlessly.
		p.Kill()
	}
	if h.nl != nil {
		h.nl.Close()
	}
	h.ns.Close()
	if err := netns.DeleteNamed(h.nsName); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("netns: delete %s: %w", h.nsName, err)
	}
	return nil
}

// Close tears the topology down: it kills processes started with Start and
// deletes every namespace, which removes their links too. It is idempotent
// and tries everything even when a step fails, returning all errors joined.
func (t *Topology) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for i := len(t.order) - 1; i >= 0; i-- {
		errs = append(errs, t.order[i].destroy())
	}
	if t.switchNS != nil {
		errs = append(errs, t.switchNS.destroy())
	}
	t.order, t.hosts, t.switches, t.switchNS = nil, nil, nil, nil
	return errors.Join(errs...)
}

// Sweep removes namespaces under /run/netns that this package created in
// processes that no longer run, as a test run killed before Close leaves them.
func Sweep() error {
	ents, err := os.ReadDir(runNetns)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netns: sweep: %w", err)
	}
	var errs []error
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // still running
		}
		if err := netns.DeleteNamed(e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("netns: sweep %s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// setUp brings the named interface in the host up.
func (h *Host) setUp(ifname string) error {
	l, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netns: %s: link %s: %w", h.name, ifname, err)
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("netns: %s: set %s up: %w", h.name, ifname, err)
	}
	return nil
}

// AddAddr adds an address with its prefix length (e.g. 192.0.2.10/24 or
// 2001:db8::10/64) to an interface of the host. IPv6 addresses skip
// duplicate address detection so they are usable at once.
func (h *Host) AddAddr(ifname string, p netip.Prefix) error {
	l, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netns: %s: link %s: %w", h.name, ifname, err)
	}
	addr := &netlink.Addr{IPNet: prefixIPNet(p)}
	if p.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := h.nl.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("netns: %s: add %s to %s: %w", h.name, p, ifname, err)
	}
	return nil
}

// Addrs returns the addresses on interface ifname of the host (both
// families), or an error when the interface is missing.
func (h *Host) Addrs(ifname string) ([]netip.Addr, error) {
	return h.addrs(ifname, netlink.FAMILY_ALL)
}

func (h *Host) addrs(ifname string, family int) ([]netip.Addr, error) {
	l, err := h.nl.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netns: %s: link %s: %w", h.name, ifname, err)
	}
	var as []netlink.Addr
	// A dump that an address change interrupts (IPv6 DAD finishing, say)
	// is incomplete: read again rather than report an address missing.
	for try := 0; ; try++ {
		as, err = h.nl.AddrList(l, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 9 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("netns: %s: addresses of %s: %w", h.name, ifname, err)
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// HasAddr reports whether addr is on interface ifname of the host (false
// when the interface is missing).
func (h *Host) HasAddr(ifname string, addr netip.Addr) bool {
	family := netlink.FAMILY_V6
	if addr.Unmap().Is4() {
		family = netlink.FAMILY_V4
	}
	as, err := h.addrs(ifname, family)
	if err != nil {
		return false
	}
	for _, a := range as {
		if a == addr.Unmap() {
			return true
		}
	}
	return false
}

// AddRoute adds a route to dst via gateway gw (which must be reachable on a
// connected network). A zero dst (netip.Prefix{}) is not valid: use
// 0.0.0.0/0 or ::/0 for a default route.
func (h *Host) AddRoute(dst netip.Prefix, gw netip.Addr) error {
	if !dst.IsValid() || !gw.IsValid() || dst.Addr().Is4() != gw.Is4() {
		return fmt.Errorf("netns: %s: bad route %v via %v", h.name, dst, gw)
	}
	r := &netlink.Route{Dst: prefixIPNet(dst.Masked()), Gw: gw.AsSlice()}
	if err := h.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("netns: %s: route %s via %s: %w", h.name, dst, gw, err)
	}
	return nil
}

// AddDeviceRoute adds a route to dst straight out of interface ifname (no
// gateway), as for addresses reached on-link.
func (h *Host) AddDeviceRoute(dst netip.Prefix, ifname string) error {
	l, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netns: %s: link %s: %w", h.name, ifname, err)
	}
	r := &netlink.Route{Dst: prefixIPNet(dst.Masked()), LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK}
	if err := h.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("netns: %s: route %s dev %s: %w", h.name, dst, ifname, err)
	}
	return nil
}

// Sysctl sets a sysctl in the host's namespace; key is in sysctl(8) form
// ("net.ipv4.conf.lo.arp_ignore") or a path below /proc/sys
// ("net/ipv4/conf/eth0.100/arp_ignore", for names with dots). Only
// namespaced sysctls (net.*) make sense here; others change the machine.
func (h *Host) Sysctl(key, value string) error {
	p := key
	if !strings.Contains(p, "/") {
		p = strings.ReplaceAll(p, ".", "/")
	}
	p = filepath.Join("/proc/sys", filepath.Clean("/"+p))
	// /proc/sys/net is resolved against the opening thread's namespace.
	return h.Do(func() error {
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("netns: %s: sysctl %s=%s: %w", h.name, key, value, err)
		}
		return nil
	})
}

// Do runs fn on an OS thread that is in the host's namespace, and returns
// fn's error. Sockets fn opens stay in the namespace after it returns and may
// be used from any goroutine. Goroutines fn starts do NOT run in the
// namespace.
func (h *Host) Do(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(h.ns); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("netns: enter %s: %w", h.nsName, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked so the runtime discards it.
			ch <- errors.Join(ferr, fmt.Errorf("netns: leave %s: %w", h.nsName, err))
			return
		}
		runtime.UnlockOSThread()
		ch <- ferr
	}()
	return <-ch
}

// prefixIPNet converts a prefix to the net.IPNet netlink wants, keeping the
// host bits (an address with its prefix length).
func prefixIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}
