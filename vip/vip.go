package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for announcements, IPaddr2's arp_count and arp_interval.
const (
	DefaultARPCount    = 5
	DefaultARPInterval = 200 * time.Millisecond
)

// VIP describes one virtual IP address, as a haresources
// "IPaddr::ip/prefix/interface/broadcast" entry or an IPaddr2 resource does.
// Only Addr is required; the zero value of every other field means "as
// Heartbeat would choose".
type VIP struct {
	// Addr is the address, IPv4 or IPv6 (an IPv4-mapped IPv6 address is
	// taken as IPv4).
	Addr netip.Addr
	// Prefix is the prefix length given to the address (IPaddr2's
	// cidr_netmask). Zero takes the prefix of the route that chose the
	// interface.
	Prefix int
	// Broadcast is the IPv4 broadcast address. The zero value means the
	// highest address of the subnet (none for /31 and /32). Ignored for IPv6.
	Broadcast netip.Addr
	// Interface is the base interface (IPaddr2's nic), e.g. "eth0". Empty
	// means choose by route. The legacy "eth0:0" form sets Label too.
	Interface string
	// Label is the IPv4 address label, as IPaddr2's iflabel: either the part
	// after the colon ("0", "vip") or the whole label ("eth0:0"). The kernel
	// label is "interface:label", at most 15 bytes; `ifconfig` shows only
	// labelled secondary addresses, as eth0:0. Labels are IPv4 only.
	Label string
	// AutoLabel labels an IPv4 VIP that has no Label "interface:N" with the
	// lowest N not in use on the interface, as Heartbeat's IPaddr (ifconfig
	// aliases eth0:0, eth0:1, ...) does; IPaddr2 labels nothing by default.
	AutoLabel bool
	// ARPCount is how many announcements Acquire sends: pairs of gratuitous
	// ARP request+reply for IPv4, unsolicited neighbour advertisements for
	// IPv6. Zero means DefaultARPCount; negative sends none.
	ARPCount int
	// ARPInterval is the time between announcements; zero means
	// DefaultARPInterval.
	ARPInterval time.Duration
	// DAD makes Acquire of an IPv6 VIP run duplicate address detection and
	// wait for it, instead of adding the address with IFA_F_NODAD. See the
	// package documentation for why NODAD is the default.
	DAD bool
}

// String formats v as haresources does: ip[/prefix][/interface][/broadcast].
func (v VIP) String() string {
	var b strings.Builder
	b.WriteString(v.Addr.String())
	if v.Prefix > 0 {
		fmt.Fprintf(&b, "/%d", v.Prefix)
	}
	if v.Interface != "" {
		b.WriteString("/" + v.Interface)
	}
	if v.Broadcast.IsValid() {
		b.WriteString("/" + v.Broadcast.String())
	}
	return b.String()
}

func (v VIP) count() int {
	switch {
	case v.ARPCount < 0:
		return 0
	case v.ARPCount == 0:
		return DefaultARPCount
	}
	return v.ARPCount
}

func (v VIP) interval() time.Duration {
	if v.ARPInterval <= 0 {
		return DefaultARPInterval
	}
	return v.ARPInterval
}

// normalize checks v and returns it with Addr unmapped and the "eth0:0"
// interface form split into Interface and Label.
func (v VIP) normalize() (VIP, error) {
	if !v.Addr.IsValid() {
		return v, errors.New("vip: no address: give the IPaddr resource an IP address")
	}
	v.Addr = v.Addr.Unmap()
	if v.Addr.Zone() != "" {
		return v, fmt.Errorf("vip %s: zones are not supported: name the interface instead", v.Addr)
	}
	if v.Addr.IsUnspecified() || v.Addr.IsMulticast() {
		return v, fmt.Errorf("vip %s: not a unicast address: check the IPaddr resource's IP", v.Addr)
	}
	if v.Prefix < 0 || v.Prefix > v.Addr.BitLen() {
		return v, fmt.Errorf("vip %s: invalid prefix length /%d: use 1..%d", v.Addr, v.Prefix, v.Addr.BitLen())
	}
	if base, label, ok := strings.Cut(v.Interface, ":"); ok {
		if v.Label != "" && v.Label != label && v.Label != v.Interface {
			return v, fmt.Errorf("vip %s: interface %q and label %q disagree: give the label once", v.Addr, v.Interface, v.Label)
		}
		v.Interface, v.Label = base, label
	}
	if len(v.Interface) >= unix.IFNAMSIZ || strings.ContainsAny(v.Interface, "/ \t") {
		return v, fmt.Errorf("vip %s: invalid interface name %q: check the IPaddr resource's interface", v.Addr, v.Interface)
	}
	if v.Label != "" && v.Addr.Is6() {
		return v, fmt.Errorf("vip %s: address labels are IPv4-only: drop the label (%q) for IPv6", v.Addr, v.Label)
	}
	if v.Broadcast.IsValid() && !v.Broadcast.Unmap().Is4() {
		return v, fmt.Errorf("vip %s: broadcast %s is not an IPv4 address", v.Addr, v.Broadcast)
	}
	v.Broadcast = v.Broadcast.Unmap()
	return v, nil
}

// label returns the kernel label for v on interface ifname, "" for none.
func (v VIP) label(ifname string) (string, error) {
	if v.Label == "" {
		return "", nil
	}
	suffix := v.Label
	if base, rest, ok := strings.Cut(v.Label, ":"); ok {
		if base != ifname {
			return "", fmt.Errorf("vip %s: label %q does not start with the chosen interface %s: give only the part after the colon", v.Addr, v.Label, ifname)
		}
		suffix = rest
	}
	full := ifname + ":" + suffix
	if suffix == "" || len(full) >= unix.IFNAMSIZ || strings.ContainsAny(suffix, ":/ \t") {
		return "", fmt.Errorf("vip %s: invalid label %q: interface:label must be at most %d characters without spaces", v.Addr, full, unix.IFNAMSIZ-1)
	}
	return full, nil
}

// broadcastFor returns the broadcast address for v with prefix bits: v's own,
// else the highest address of the subnet; invalid for IPv6, /31 and /32.
func (v VIP) broadcastFor(bits int) netip.Addr {
	if !v.Addr.Is4() {
		return netip.Addr{}
	}
	if v.Broadcast.IsValid() {
		return v.Broadcast
	}
	if bits >= 31 {
		return netip.Addr{}
	}
	a := v.Addr.As4()
	mask := net.CIDRMask(bits, 32)
	for i := range a {
		a[i] |= ^mask[i]
	}
	return netip.AddrFrom4(a)
}

// Placement is where a VIP goes or is: the result of Resolve and Acquire.
type Placement struct {
	// Addr is the VIP with its prefix length, e.g. 192.0.2.10/24.
	Addr netip.Prefix
	// Interface and Index name the base interface.
	Interface string
	Index     int
	// HardwareAddr is the interface's MAC address, which announcements bind
	// the VIP to.
	HardwareAddr net.HardwareAddr
	// Broadcast is the IPv4 broadcast address; invalid when none.
	Broadcast netip.Addr
	// Label is the full kernel label ("eth0:0"); empty when none.
	Label string
	// Route is the route that chose the interface; invalid when the VIP
	// named both its interface and its prefix.
	Route netip.Prefix
	// Existing is set by Acquire when the address was already on the
	// interface and was adopted as it was.
	Existing bool
}

// String describes p for logs, e.g. "192.0.2.10/24 brd 192.0.2.255 on eth0 (label eth0:0)".
func (p Placement) String() string {
	var b strings.Builder
	b.WriteString(p.Addr.String())
	if p.Broadcast.IsValid() {
		b.WriteString(" brd " + p.Broadcast.String())
	}
	b.WriteString(" on " + p.Interface)
	if p.Label != "" {
		b.WriteString(" (label " + p.Label + ")")
	}
	if p.Route.IsValid() {
		b.WriteString(" via route " + p.Route.String())
	}
	return b.String()
}

// Binding is one instance of an address on an interface, as Status reports.
type Binding struct {
	// Interface and Index name the interface holding the address.
	Interface string
	Index     int
	// Addr is the address with its prefix length.
	Addr netip.Prefix
	// Label is the IPv4 label when it differs from the interface name.
	Label string
	// Broadcast is the IPv4 broadcast address, invalid when none.
	Broadcast netip.Addr
	// Secondary reports an IPv4 secondary address.
	Secondary bool
	// Tentative and DADFailed report IPv6 duplicate address detection in
	// progress and failed.
	Tentative, DADFailed bool
	// Loopback reports that the interface is a loopback device (the
	// real-server LVS-DR configuration, not a director's VIP).
	Loopback bool
}

// Status says whether an address is configured on this host and where.
type Status struct {
	Addr     netip.Addr
	Bindings []Binding
}

// Present reports whether the address is on any interface.
func (s Status) Present() bool { return len(s.Bindings) > 0 }

// On returns the binding on interface ifname, if any.
func (s Status) On(ifname string) (Binding, bool) {
	for _, b := range s.Bindings {
		if b.Interface == ifname {
			return b, true
		}
	}
	return Binding{}, false
}

// Interfaces lists the interfaces holding the address.
func (s Status) Interfaces() []string {
	names := make([]string, 0, len(s.Bindings))
	for _, b := range s.Bindings {
		names = append(names, b.Interface)
	}
	return names
}
