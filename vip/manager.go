package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netlinkTimeout bounds each netlink request; the kernel answers address and
// route requests at once, so hitting it means something is badly wrong.
const netlinkTimeout = 10 * time.Second

// Manager adds, removes, queries and announces VIPs in one network
// namespace. It is safe for concurrent use.
type Manager struct {
	nl *netlink.Handle
	ns netns.NsHandle // owned duplicate; netns.None() for the caller's namespace
	// mu serializes choosing and adding addresses within this Manager, so
	// that two AutoLabel VIPs cannot both take the same free label.
	mu        sync.Mutex
	closeOnce sync.Once
}

// New returns a Manager for the network namespace of the calling thread.
func New() (*Manager, error) {
	return NewAt(netns.None())
}

// NewAt returns a Manager for network namespace ns (netns.None() for the
// caller's own). The Manager keeps its own duplicate of ns, so the caller
// may close ns afterwards.
func NewAt(ns netns.NsHandle) (*Manager, error) {
	m := &Manager{ns: netns.None()}
	if ns.IsOpen() {
		fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("vip: duplicate network namespace handle: %w", err)
		}
		m.ns = netns.NsHandle(fd)
	}
	h, err := netlink.NewHandleAt(m.ns, unix.NETLINK_ROUTE)
	if err != nil {
		m.closeNS()
		return nil, fmt.Errorf("vip: open rtnetlink (is this running as root with CAP_NET_ADMIN?): %w", err)
	}
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		h.Close()
		m.closeNS()
		return nil, fmt.Errorf("vip: set rtnetlink timeout: %w", err)
	}
	m.nl = h
	return m, nil
}

// Close releases the Manager's netlink socket and namespace handle. It does
// not touch any address. Calls after the first do nothing; the Manager must
// not be used after Close.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.nl.Close()
		if m.ns.IsOpen() {
			err = m.ns.Close()
		}
	})
	return err
}

func (m *Manager) closeNS() {
	if m.ns.IsOpen() {
		_ = m.ns.Close()
	}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// dump runs a netlink dump, retrying when the kernel reports that the table
// changed under it (NLM_F_DUMP_INTR), as "ip" itself does.
func dump[T any](ctx context.Context, what string, f func() ([]T, error)) ([]T, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("vip: %s: %w", what, err)
		}
		r, err := f()
		if errors.Is(err, netlink.ErrDumpInterrupted) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("vip: %s: %w", what, err)
		}
		return r, nil
	}
}

func (m *Manager) linkByName(name string, v VIP) (netlink.Link, error) {
	l, err := m.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("vip %s: interface %s not found: check the IPaddr resource's interface: %w", v.Addr, name, err)
		}
		return nil, fmt.Errorf("vip %s: look up interface %s: %w", v.Addr, name, err)
	}
	return l, nil
}

// Resolve works out where v would go, without changing anything: the
// interface (v's, or the one findif would choose by route), the prefix
// length, the broadcast address and the label.
func (m *Manager) Resolve(ctx context.Context, v VIP) (Placement, error) {
	v, err := v.normalize()
	if err != nil {
		return Placement{}, err
	}
	return m.resolve(ctx, v)
}

func (m *Manager) resolve(ctx context.Context, v VIP) (Placement, error) {
	var link netlink.Link
	if v.Interface != "" {
		l, err := m.linkByName(v.Interface, v)
		if err != nil {
			return Placement{}, err
		}
		link = l
	} else if v.Addr.Is6() && v.Addr.IsLinkLocalUnicast() {
		return Placement{}, fmt.Errorf("vip %s: a link-local VIP needs its interface: name it (IPaddr2's nic)", v.Addr)
	}

	bits := v.Prefix
	var route netip.Prefix
	if link == nil || bits == 0 {
		routes, err := dump(ctx, "list routes", func() ([]netlink.Route, error) {
			return m.nl.RouteListFiltered(family(v.Addr), &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return Placement{}, fmt.Errorf("vip %s: %w", v.Addr, err)
		}
		cands := make([]candidate, 0, len(routes))
		for _, r := range routes {
			if c, ok := candidateFrom(r); ok {
				cands = append(cands, c)
			}
		}
		idx := 0
		if link != nil {
			idx = link.Attrs().Index
		}
		c, ok := chooseRoute(cands, v.Addr, v.Prefix, idx)
		if !ok {
			return Placement{}, noRouteError(v)
		}
		route = c.Dst
		if bits == 0 {
			bits = c.Dst.Bits()
		}
		if link == nil {
			l, err := m.nl.LinkByIndex(c.LinkIndex)
			if err != nil {
				return Placement{}, fmt.Errorf("vip %s: route %s names interface index %d, which cannot be read: %w", v.Addr, c.Dst, c.LinkIndex, err)
			}
			link = l
		}
	}

	attrs := link.Attrs()
	label, err := v.label(attrs.Name)
	if err != nil {
		return Placement{}, err
	}
	if label == "" && v.AutoLabel && v.Addr.Is4() {
		if label, err = m.freeLabel(ctx, link, v); err != nil {
			return Placement{}, err
		}
	}
	return Placement{
		Addr:         netip.PrefixFrom(v.Addr, bits),
		Interface:    attrs.Name,
		Index:        attrs.Index,
		HardwareAddr: attrs.HardwareAddr,
		Broadcast:    v.broadcastFor(bits),
		Label:        label,
		Route:        route,
	}, nil
}

// freeLabel returns link's label for v: the one it has if v is already on
// link, else "name:N" with the lowest N that no address on link uses.
func (m *Manager) freeLabel(ctx context.Context, link netlink.Link, v VIP) (string, error) {
	name := link.Attrs().Name
	addrs, err := dump(ctx, "list addresses", func() ([]netlink.Addr, error) {
		return m.nl.AddrList(link, netlink.FAMILY_V4)
	})
	if err != nil {
		return "", fmt.Errorf("vip %s: %w", v.Addr, err)
	}
	used := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if p, ok := prefixFromIPNet(a.IPNet); ok && p.Addr() == v.Addr {
			if a.Label == name {
				return "", nil
			}
			return a.Label, nil
		}
		used[a.Label] = true
	}
	for n := 0; ; n++ {
		l := name + ":" + strconv.Itoa(n)
		if len(l) >= unix.IFNAMSIZ {
			return "", fmt.Errorf("vip %s: no free label on %s (%s:0 up to %s:%d are taken): give the VIP a label", v.Addr, name, name, name, n-1)
		}
		if !used[l] {
			return l, nil
		}
	}
}

func noRouteError(v VIP) error {
	what := v.Addr.String()
	if v.Prefix > 0 {
		what = netip.PrefixFrom(v.Addr, v.Prefix).String()
	}
	if v.Interface != "" {
		return fmt.Errorf("vip %s: no on-link route on %s covers %s: give the VIP a prefix (IPaddr::ip/prefix/%s) or configure a static address of its subnet on %s",
			v.Addr, v.Interface, what, v.Interface, v.Interface)
	}
	return fmt.Errorf("vip %s: no on-link route covers %s, so no interface can be chosen: name the interface and prefix (IPaddr::ip/prefix/interface) or configure a static address of its subnet on the interface that should carry it",
		v.Addr, what)
}

// Status reports whether addr is configured on this host and on which
// interfaces.
func (m *Manager) Status(ctx context.Context, addr netip.Addr) (Status, error) {
	addr = addr.Unmap()
	st := Status{Addr: addr}
	if !addr.IsValid() {
		return st, errors.New("vip: status of an invalid address")
	}
	addrs, err := dump(ctx, "list addresses", func() ([]netlink.Addr, error) {
		return m.nl.AddrList(nil, family(addr))
	})
	if err != nil {
		return st, fmt.Errorf("vip %s: %w", addr, err)
	}
	for _, a := range addrs {
		if b, ok := m.binding(a, addr); ok {
			st.Bindings = append(st.Bindings, b)
		}
	}
	return st, nil
}

// Has reports whether addr is configured on any interface of this host.
func (m *Manager) Has(ctx context.Context, addr netip.Addr) (bool, error) {
	st, err := m.Status(ctx, addr)
	return st.Present(), err
}

// binding converts a as a Binding when it is addr.
func (m *Manager) binding(a netlink.Addr, addr netip.Addr) (Binding, bool) {
	if a.IPNet == nil {
		return Binding{}, false
	}
	p, ok := prefixFromIPNet(a.IPNet)
	if !ok || p.Addr() != addr {
		return Binding{}, false
	}
	b := Binding{
		Index:     a.LinkIndex,
		Addr:      p,
		Secondary: a.Flags&unix.IFA_F_SECONDARY != 0 && addr.Is4(),
		Tentative: a.Flags&unix.IFA_F_TENTATIVE != 0,
		DADFailed: a.Flags&unix.IFA_F_DADFAILED != 0,
	}
	if a.Broadcast != nil {
		if bc, ok := netip.AddrFromSlice(a.Broadcast); ok {
			b.Broadcast = bc.Unmap()
		}
	}
	if l, err := m.nl.LinkByIndex(a.LinkIndex); err == nil {
		b.Interface = l.Attrs().Name
		b.Loopback = l.Attrs().Flags&net.FlagLoopback != 0
	} else {
		b.Interface = fmt.Sprintf("if%d", a.LinkIndex)
	}
	if a.Label != "" && a.Label != b.Interface {
		b.Label = a.Label
	}
	return b, true
}

// Acquire puts v on its interface and announces it. When the address is
// already on that interface (a restarted daemon adopting its running VIP) it
// is left as it is (with whatever prefix and label it has), Placement
// describes it with Existing set, and it is announced all the same. Acquire
// blocks while announcing, about ARPCount × ARPInterval; when ctx ends first
// the address stays and the error says so. An IPv6 VIP with DAD set is
// announced once DAD has passed.
func (m *Manager) Acquire(ctx context.Context, v VIP) (Placement, error) {
	v, err := v.normalize()
	if err != nil {
		return Placement{}, err
	}
	p, link, err := m.place(ctx, v)
	if err != nil {
		return p, err
	}
	if v.Addr.Is6() && v.DAD {
		if err := m.waitDAD(ctx, v, p); err != nil {
			return p, err
		}
	}
	if err := m.announce(ctx, link, p.Addr.Addr(), v.count(), v.interval()); err != nil {
		return p, fmt.Errorf("vip %s: added to %s but not announced: %w", v.Addr, p.Interface, err)
	}
	return p, nil
}

// place resolves v and adds it unless it is there already, under m.mu.
func (m *Manager) place(ctx context.Context, v VIP) (Placement, netlink.Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.resolve(ctx, v)
	if err != nil {
		return Placement{}, nil, err
	}
	link, err := m.nl.LinkByIndex(p.Index)
	if err != nil {
		return p, nil, fmt.Errorf("vip %s: read interface %s: %w", v.Addr, p.Interface, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return p, nil, fmt.Errorf("vip %s: interface %s is down: bring it up (ip link set %s up) or name another interface", v.Addr, p.Interface, p.Interface)
	}
	if err := m.ensure(ctx, v, &p); err != nil {
		return p, nil, err
	}
	return p, link, nil
}

// ensure adds p unless the address is already on p's interface, in which case
// it fills p from what is there.
func (m *Manager) ensure(ctx context.Context, v VIP, p *Placement) error {
	st, err := m.Status(ctx, v.Addr)
	if err != nil {
		return err
	}
	if b, ok := st.On(p.Interface); ok {
		if !b.DADFailed {
			p.adopt(b)
			return nil
		}
		// A leftover that failed DAD never receives traffic: replace it.
		if err := m.delete(b, v); err != nil {
			return err
		}
	}
	a := &netlink.Addr{
		IPNet:     &net.IPNet{IP: net.IP(v.Addr.AsSlice()), Mask: net.CIDRMask(p.Addr.Bits(), v.Addr.BitLen())},
		Label:     p.Label,
		LinkIndex: p.Index,
	}
	if v.Addr.Is4() {
		// netlink would compute a broadcast address itself when given none;
		// 0.0.0.0 tells it to send none.
		a.Broadcast = net.IPv4zero
		if p.Broadcast.IsValid() {
			a.Broadcast = net.IP(p.Broadcast.AsSlice())
		}
	} else if !v.DAD {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vip %s: %w", v.Addr, err)
	}
	err = m.nl.AddrAdd(nil, a)
	if errors.Is(err, unix.EEXIST) {
		// Added by someone else since we looked: adopt it.
		st, serr := m.Status(ctx, v.Addr)
		if b, ok := st.On(p.Interface); serr == nil && ok {
			p.adopt(b)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("vip %s: add %s to %s: %w", v.Addr, p.Addr, p.Interface, hint(err))
	}
	return nil
}

func (p *Placement) adopt(b Binding) {
	p.Existing = true
	p.Addr = b.Addr
	p.Broadcast = b.Broadcast
	p.Label = b.Label
}

// hint adds advice to the kernel errors an operator can do something about.
func hint(err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (run as root or with CAP_NET_ADMIN)", err)
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w (run as root; for IPv6 check that net.ipv6.conf.<interface>.disable_ipv6 is 0)", err)
	}
	return err
}

// waitDAD polls until the kernel's duplicate address detection for p is
// over. A duplicate removes the address again and fails.
func (m *Manager) waitDAD(ctx context.Context, v VIP, p Placement) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := m.Status(ctx, v.Addr)
		if err != nil {
			return err
		}
		b, ok := st.On(p.Interface)
		switch {
		case !ok:
			return fmt.Errorf("vip %s: vanished from %s during duplicate address detection", v.Addr, p.Interface)
		case b.DADFailed:
			_ = m.delete(b, v)
			return fmt.Errorf("vip %s: duplicate address detection failed on %s: another host answers for it; removed it again: find the other holder, or leave DAD off to let the cluster decide", v.Addr, p.Interface)
		case !b.Tentative:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vip %s: waiting for duplicate address detection on %s (does the link have carrier?): %w", v.Addr, p.Interface, ctx.Err())
		case <-t.C:
		}
	}
}

// Release removes v. With v.Interface set it removes the address from that
// interface only; without, from every non-loopback interface holding it, so
// that it goes even when the routes that chose the interface are gone (link
// down). A VIP on a loopback device is the real-server configuration and is
// left alone unless named. Nothing but the address is touched. It reports
// whether anything was removed; an absent VIP is not an error.
func (m *Manager) Release(ctx context.Context, v VIP) (bool, error) {
	v, err := v.normalize()
	if err != nil {
		return false, err
	}
	st, err := m.Status(ctx, v.Addr)
	if err != nil {
		return false, err
	}
	removed := false
	var errs []error
	for _, b := range st.Bindings {
		if v.Interface != "" && b.Interface != v.Interface {
			continue
		}
		if v.Interface == "" && b.Loopback {
			continue
		}
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("vip %s: %w", v.Addr, err)
		}
		// Deleting an IPv4 primary address takes the secondaries of its
		// subnet with it unless promote_secondaries is set; those are other
		// VIPs or static addresses, which Release must not touch.
		var others []netlink.Addr
		if !b.Secondary && b.Addr.Addr().Is4() {
			others, err = m.secondariesOf(ctx, b)
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := m.delete(b, v); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = true
		if len(others) > 0 {
			if err := m.restore(ctx, b, others); err != nil {
				errs = append(errs, fmt.Errorf("vip %s: %w", v.Addr, err))
			}
		}
	}
	return removed, errors.Join(errs...)
}

// secondariesOf lists the IPv4 secondary addresses that hang off primary b.
func (m *Manager) secondariesOf(ctx context.Context, b Binding) ([]netlink.Addr, error) {
	link, err := m.nl.LinkByIndex(b.Index)
	if err != nil {
		return nil, fmt.Errorf("vip %s: read interface %s: %w", b.Addr.Addr(), b.Interface, err)
	}
	addrs, err := dump(ctx, "list addresses", func() ([]netlink.Addr, error) {
		return m.nl.AddrList(link, netlink.FAMILY_V4)
	})
	if err != nil {
		return nil, err
	}
	subnet := b.Addr.Masked()
	var out []netlink.Addr
	for _, a := range addrs {
		p, ok := prefixFromIPNet(a.IPNet)
		if ok && a.Flags&unix.IFA_F_SECONDARY != 0 && p.Bits() == subnet.Bits() && subnet.Contains(p.Addr()) {
			out = append(out, a)
		}
	}
	return out, nil
}

// restore re-adds those of others that the kernel flushed with primary b
// (promote_secondaries off), so that releasing one VIP leaves the rest.
func (m *Manager) restore(ctx context.Context, b Binding, others []netlink.Addr) error {
	var errs []error
	for _, a := range others {
		p, _ := prefixFromIPNet(a.IPNet)
		st, err := m.Status(ctx, p.Addr())
		if err != nil {
			return err
		}
		if _, ok := st.On(b.Interface); ok {
			continue // promoted or kept
		}
		a.Flags = 0
		if a.Broadcast == nil {
			a.Broadcast = net.IPv4zero
		}
		if err := m.nl.AddrAdd(nil, &a); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("the kernel removed %s from %s with primary %s and it could not be put back (%w): add it again, and set net.ipv4.conf.%s.promote_secondaries=1",
				p, b.Interface, b.Addr, err, b.Interface))
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) delete(b Binding, v VIP) error {
	a := &netlink.Addr{
		IPNet:     &net.IPNet{IP: net.IP(b.Addr.Addr().AsSlice()), Mask: net.CIDRMask(b.Addr.Bits(), b.Addr.Addr().BitLen())},
		Label:     b.Label,
		LinkIndex: b.Index,
	}
	if b.Addr.Addr().Is4() {
		a.Broadcast = net.IPv4zero // not matched by the kernel; stop netlink computing one
	}
	err := m.nl.AddrDel(nil, a)
	if err == nil || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
		return nil // gone already
	}
	return fmt.Errorf("vip %s: remove %s from %s: %w", v.Addr, b.Addr, b.Interface, hint(err))
}
