// Package ipvs is directord's interface to the kernel's IP Virtual Server.
//
// It has four parts, each usable without the others:
//
//   - a typed model on net/netip (Service, Destination, VirtualService,
//     Table, Stats, Rates, Info, Timeouts, Daemon);
//   - a kernel backend over generic netlink (Handle), the only code in
//     directord that talks to the kernel's IPVS;
//   - Plan and Apply, which turn a desired and an actual Table into the
//     fewest add/edit/delete operations, touching only owned services;
//   - the text formats of ipvsadm 1.31 (WriteList for "ipvsadm -L -n" and
//     its --stats, --rate, --thresholds, --persistent-conn and --exact
//     variants, WriteSave for "ipvsadm -S -n") and ParseSave, a parser of
//     the save format that applies nothing on error.
//
// Addresses are always printed numerically: the formats correspond to
// ipvsadm's -n; names are never resolved.
package ipvs

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Family is an address family, with the kernel's values.
type Family uint16

// Address families.
const (
	IPv4 Family = 2  // AF_INET
	IPv6 Family = 10 // AF_INET6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// FamilyOf returns the family of a, IPv4 for IPv4 and IPv4-mapped addresses.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Protocol is the IP protocol of a virtual service (an IPPROTO_* number).
// Firewall-mark services have no protocol.
type Protocol uint16

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns "TCP", "UDP" or "SCTP".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// ServiceFlags are the kernel's virtual service flags (IP_VS_SVC_F_*).
type ServiceFlags uint32

// Service flags. FlagHashed is set by the kernel on every service and is
// ignored when comparing services.
const (
	FlagPersistent ServiceFlags = 0x0001
	FlagHashed     ServiceFlags = 0x0002
	FlagOnePacket  ServiceFlags = 0x0004
	FlagSched1     ServiceFlags = 0x0008
	FlagSched2     ServiceFlags = 0x0010
	FlagSched3     ServiceFlags = 0x0020

	// The sh and mh schedulers name FlagSched1 and FlagSched2.
	FlagSHFallback = FlagSched1
	FlagSHPort     = FlagSched2

	schedFlags = FlagSched1 | FlagSched2 | FlagSched3
)

// ServiceKey identifies a virtual service: either protocol, address and
// port, or a firewall mark and an address family. It is comparable.
type ServiceKey struct {
	Family   Family
	Protocol Protocol // zero for fwmark services
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32 // non-zero for fwmark services
}

// String renders the key the way ipvsadm names a service on its command
// line: "-t 10.0.0.1:80", "-u [2001:db8::1]:53", "-f 1", "-f 1 -6".
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		if k.Family == IPv6 {
			return fmt.Sprintf("-f %d -6", k.FWMark)
		}
		return fmt.Sprintf("-f %d", k.FWMark)
	}
	sw := "--sctp-service"
	switch k.Protocol {
	case TCP:
		sw = "-t"
	case UDP:
		sw = "-u"
	}
	return sw + " " + addrPort(k.Addr, k.Port)
}

// Service is a virtual service: either Protocol, Addr and Port, or FWMark
// (with Family) identify it.
type Service struct {
	// Family may be left zero: it is then the family of Addr, or IPv4 for a
	// fwmark service. Set IPv6 for an IPv6 fwmark service.
	Family   Family
	Protocol Protocol // TCP, UDP or SCTP; zero for fwmark services
	Addr     netip.Addr
	Port     uint16 // 0 only for persistent services (all ports)
	FWMark   uint32 // non-zero for fwmark services

	Scheduler string       // "rr", "wrr", "wlc", "sh", "mh", ...
	Flags     ServiceFlags // FlagPersistent, FlagOnePacket, FlagSched1..3
	// Timeout is the persistence timeout in seconds (used with FlagPersistent).
	Timeout uint32
	// Netmask is the persistence granularity as the kernel keeps it: for IPv4
	// the mask as a number (0xffffffff is /32, 0xffffff00 is /24), for IPv6
	// the prefix length (128). Zero means the full mask, which is also what
	// ipvsadm sets by default.
	Netmask uint32
	// PE is the persistence engine ("sip"), usually empty.
	PE string

	// Read-only, filled by the kernel backend.
	Stats Stats
	Rates Rates
}

// Key returns the identity of s.
func (s Service) Key() ServiceKey {
	k := ServiceKey{Family: s.Family, FWMark: s.FWMark}
	if s.FWMark == 0 {
		k.Protocol, k.Addr, k.Port = s.Protocol, s.Addr.Unmap(), s.Port
	}
	if k.Family == 0 && s.Addr.IsValid() {
		k.Family = FamilyOf(s.Addr)
	}
	if k.Family == 0 {
		k.Family = IPv4
	}
	return k
}

// FullNetmask returns the mask that means "one client address" for f.
func FullNetmask(f Family) uint32 {
	if f == IPv6 {
		return 128
	}
	return 0xffffffff
}

// normalized fills the defaults the kernel would report back, so that a
// desired service compares equal to the same service read from the kernel.
func (s Service) normalized() Service {
	k := s.Key()
	s.Family = k.Family
	if s.Netmask == 0 {
		s.Netmask = FullNetmask(s.Family)
	}
	if s.Addr.Is4In6() {
		s.Addr = s.Addr.Unmap()
	}
	s.Flags &^= FlagHashed
	return s
}

// Validate reports whether s can be given to the kernel.
func (s Service) Validate() error {
	if s.FWMark != 0 {
		if s.Addr.IsValid() || s.Port != 0 {
			return fmt.Errorf("fwmark service %d: address and port must be unset", s.FWMark)
		}
		if s.Family != 0 && s.Family != IPv4 && s.Family != IPv6 {
			return fmt.Errorf("fwmark service %d: bad family %d", s.FWMark, s.Family)
		}
	} else {
		if !s.Addr.IsValid() {
			return fmt.Errorf("service: no address and no fwmark")
		}
		switch s.Protocol {
		case TCP, UDP, SCTP:
		default:
			return fmt.Errorf("service %s: unsupported protocol %d", s.Addr, s.Protocol)
		}
		if s.Family != 0 && s.Family != FamilyOf(s.Addr) {
			return fmt.Errorf("service %s: family %v does not match address", s.Addr, s.Family)
		}
		if s.Port == 0 && s.Flags&FlagPersistent == 0 {
			return fmt.Errorf("service %s: port 0 needs persistence", s.Addr)
		}
	}
	if s.Scheduler == "" || len(s.Scheduler) >= 16 {
		return fmt.Errorf("service %s: scheduler name %q must have 1 to 15 characters", s.Key(), s.Scheduler)
	}
	if len(s.PE) >= 16 {
		return fmt.Errorf("service %s: persistence engine name %q is too long", s.Key(), s.PE)
	}
	if s.Key().Family == IPv6 && s.Netmask > 128 {
		return fmt.Errorf("service %s: IPv6 netmask %d is more than 128", s.Key(), s.Netmask)
	}
	return nil
}

// ForwardMethod is how a destination receives packets (IP_VS_CONN_F_*).
type ForwardMethod uint32

// Forwarding methods.
const (
	Masq   ForwardMethod = 0 // NAT, ipvsadm -m
	Local  ForwardMethod = 1 // local node
	Tunnel ForwardMethod = 2 // IP-in-IP and friends, ipvsadm -i
	Route  ForwardMethod = 3 // direct routing, "gate", ipvsadm -g
)

// String returns the name ipvsadm lists: "Masq", "Local", "Tunnel", "Route".
func (m ForwardMethod) String() string {
	switch m {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return "ForwardMethod(" + strconv.Itoa(int(m)) + ")"
}

// TunnelType is the encapsulation of a Tunnel destination.
type TunnelType uint8

// Tunnel types.
const (
	TunnelIPIP TunnelType = 0
	TunnelGUE  TunnelType = 1
	TunnelGRE  TunnelType = 2
)

// String returns the name ipvsadm uses: "ipip", "gue", "gre".
func (t TunnelType) String() string {
	switch t {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return "gue"
	case TunnelGRE:
		return "gre"
	}
	return "tunnel" + strconv.Itoa(int(t))
}

// TunnelFlags are the encapsulation checksum options of GUE and GRE tunnels.
type TunnelFlags uint16

// Tunnel flags; zero is "no checksum".
const (
	TunnelCsum    TunnelFlags = 1
	TunnelRemCsum TunnelFlags = 2
)

// MaxWeight is the largest weight the kernel accepts (INT_MAX).
const MaxWeight = 1<<31 - 1

// DestKey identifies a destination within its service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

// Destination is a real server of a virtual service.
type Destination struct {
	Addr    netip.Addr
	Port    uint16
	Forward ForwardMethod
	Weight  int32 // 0 (quiescent) to MaxWeight
	// Connection thresholds; zero means no limit.
	UpperThreshold uint32
	LowerThreshold uint32

	// Tunnel options, meaningful when Forward is Tunnel.
	TunnelType  TunnelType
	TunnelPort  uint16
	TunnelFlags TunnelFlags

	// Read-only, filled by the kernel backend.
	ActiveConns  uint32
	InactConns   uint32
	PersistConns uint32
	Stats        Stats
	Rates        Rates
}

// Key returns the identity of d within its service.
func (d Destination) Key() DestKey {
	return DestKey{Addr: d.Addr.Unmap(), Port: d.Port}
}

// Validate reports whether d can be given to the kernel for a service of
// family f.
func (d Destination) Validate(f Family) error {
	if !d.Addr.IsValid() {
		return fmt.Errorf("destination: no address")
	}
	if FamilyOf(d.Addr) != f && d.Forward != Tunnel {
		return fmt.Errorf("destination %s: a different address family is allowed only for tunnels", d.Addr)
	}
	if d.Weight < 0 {
		return fmt.Errorf("destination %s: negative weight %d", d.Addr, d.Weight)
	}
	if d.Forward > Route {
		return fmt.Errorf("destination %s: bad forwarding method %d", d.Addr, d.Forward)
	}
	if d.Forward != Tunnel && (d.TunnelType != 0 || d.TunnelPort != 0 || d.TunnelFlags != 0) {
		return fmt.Errorf("destination %s: tunnel options need forwarding method Tunnel", d.Addr)
	}
	return nil
}

// Stats are the cumulative counters of a service or destination (64-bit).
type Stats struct {
	Conns    uint64 // connections scheduled
	InPkts   uint64 // incoming packets
	OutPkts  uint64 // outgoing packets
	InBytes  uint64 // incoming bytes
	OutBytes uint64 // outgoing bytes
}

// Rates are the kernel's estimated per-second rates of a service or
// destination. The kernel updates them every 2 seconds.
type Rates struct {
	CPS    uint64 // connections per second
	InPPS  uint64 // incoming packets per second
	OutPPS uint64 // outgoing packets per second
	InBPS  uint64 // incoming bytes per second
	OutBPS uint64 // outgoing bytes per second
}

// VirtualService is a service with its destinations.
type VirtualService struct {
	Service
	Destinations []Destination
}

// Table is a set of virtual services, as read from the kernel or parsed
// from a saved file. Order carries no meaning; the text formats sort the
// way ipvsadm does.
type Table []VirtualService

// Info is the kernel's IPVS version and connection table size, which
// ipvsadm prints as "IP Virtual Server version 1.2.1 (size=4096)".
type Info struct {
	Version       uint32 // 0x010201 is 1.2.1
	ConnTableSize uint32
}

// VersionString returns the version as "1.2.1".
func (i Info) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", i.Version>>16&0xff, i.Version>>8&0xff, i.Version&0xff)
}

// Timeouts are the kernel's connection timeouts in seconds. Zero in
// SetTimeouts leaves a value unchanged.
type Timeouts struct {
	TCP    uint32
	TCPFin uint32
	UDP    uint32
}

// DaemonState selects the sync daemon role.
type DaemonState uint32

// Sync daemon roles.
const (
	DaemonMaster DaemonState = 1
	DaemonBackup DaemonState = 2
)

// String returns "master" or "backup".
func (s DaemonState) String() string {
	switch s {
	case DaemonMaster:
		return "master"
	case DaemonBackup:
		return "backup"
	}
	return "DaemonState(" + strconv.Itoa(int(s)) + ")"
}

// Daemon is a connection synchronisation daemon. For StartDaemon, State,
// Interface and SyncID are required; the rest are optional (zero: the
// kernel's default).
type Daemon struct {
	State     DaemonState
	Interface string // multicast interface, e.g. "eth0"
	SyncID    uint8
	MaxLen    uint16     // UDP payload size
	Group     netip.Addr // multicast group (224.0.0.81 by default)
	Port      uint16     // multicast port (8848 by default)
	TTL       uint8      // multicast TTL (1 by default)
}

func addrPort(a netip.Addr, port uint16) string {
	if FamilyOf(a) == IPv6 {
		return "[" + a.String() + "]:" + strconv.Itoa(int(port))
	}
	return a.Unmap().String() + ":" + strconv.Itoa(int(port))
}
