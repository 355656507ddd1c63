package ipvs

// The generic netlink encoding of IPVS, from linux/ip_vs.h. This file only
// turns model values into attribute bytes and back; handle.go does the I/O.
//
// Byte orders, as the kernel reads them: ports (service, destination,
// tunnel) are big-endian, except the sync daemon's multicast port; the service netmask is a __be32 whose
// four bytes are the IPv4 mask in network order, while for IPv6 the kernel
// uses the same 32 bits, in host order, as a prefix length; everything else
// is host order. Addresses are a union nf_inet_addr (16 bytes); an IPv4
// address is its first 4 bytes.

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

// Generic netlink family.
const (
	genlName    = "IPVS"
	genlVersion = 1
)

// Commands (IPVS_CMD_*).
const (
	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7
	cmdGetDest    = 8
	cmdNewDaemon  = 9
	cmdDelDaemon  = 10
	cmdGetDaemon  = 11
	cmdSetConfig  = 12
	cmdGetConfig  = 13
	cmdGetInfo    = 15
	cmdZero       = 16
	cmdFlush      = 17
)

// Top-level attributes (IPVS_CMD_ATTR_*).
const (
	attrService       = 1
	attrDest          = 2
	attrDaemon        = 3
	attrTimeoutTCP    = 4
	attrTimeoutTCPFin = 5
	attrTimeoutUDP    = 6
)

// Service attributes (IPVS_SVC_ATTR_*).
const (
	svcAF        = 1
	svcProtocol  = 2
	svcAddr      = 3
	svcPort      = 4
	svcFWMark    = 5
	svcSchedName = 6
	svcFlags     = 7
	svcTimeout   = 8
	svcNetmask   = 9
	svcStats     = 10
	svcPEName    = 11
	svcStats64   = 12
)

// Destination attributes (IPVS_DEST_ATTR_*).
const (
	destAddr         = 1
	destPort         = 2
	destFwdMethod    = 3
	destWeight       = 4
	destUThresh      = 5
	destLThresh      = 6
	destActiveConns  = 7
	destInactConns   = 8
	destPersistConns = 9
	destStats        = 10
	destAddrFamily   = 11
	destStats64      = 12
	destTunType      = 13
	destTunPort      = 14
	destTunFlags     = 15
)

// Daemon attributes (IPVS_DAEMON_ATTR_*).
const (
	daemonState       = 1
	daemonMcastIfn    = 2
	daemonSyncID      = 3
	daemonSyncMaxLen  = 4
	daemonMcastGroup  = 5
	daemonMcastGroup6 = 6
	daemonMcastPort   = 7
	daemonMcastTTL    = 8
)

// Stats attributes (IPVS_STATS_ATTR_*).
const (
	statsConns    = 1
	statsInPkts   = 2
	statsOutPkts  = 3
	statsInBytes  = 4
	statsOutBytes = 5
	statsCPS      = 6
	statsInPPS    = 7
	statsOutPPS   = 8
	statsInBPS    = 9
	statsOutBPS   = 10
)

// Info attributes (IPVS_INFO_ATTR_*).
const (
	infoVersion     = 1
	infoConnTabSize = 2
)

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func addr16(a netip.Addr) []byte {
	b := make([]byte, 16)
	if FamilyOf(a) == IPv4 {
		v4 := a.Unmap().As4()
		copy(b, v4[:])
	} else {
		v6 := a.As16()
		copy(b, v6[:])
	}
	return b
}

func decodeAddr(b []byte, f Family) (netip.Addr, error) {
	switch {
	case f == IPv6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	case f == IPv4 && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes for %v", len(b), f)
}

func netmaskBytes(m uint32, f Family) []byte {
	if f == IPv6 {
		return binary.NativeEndian.AppendUint32(nil, m)
	}
	return binary.BigEndian.AppendUint32(nil, m)
}

func decodeNetmask(b []byte, f Family) uint32 {
	if len(b) < 4 {
		return 0
	}
	if f == IPv6 {
		return binary.NativeEndian.Uint32(b)
	}
	return binary.BigEndian.Uint32(b)
}

// encodeServiceKey writes the attributes that identify a service.
func encodeServiceKey(ae *netlink.AttributeEncoder, k ServiceKey) {
	ae.Uint16(svcAF, uint16(k.Family))
	if k.FWMark != 0 {
		ae.Uint32(svcFWMark, k.FWMark)
		return
	}
	ae.Uint16(svcProtocol, uint16(k.Protocol))
	ae.Bytes(svcAddr, addr16(k.Addr))
	ae.Bytes(svcPort, be16(k.Port))
}

// encodeService writes a full service entry, as NEW and SET need: the
// kernel rejects them without scheduler, flags, timeout and netmask.
func encodeService(ae *netlink.AttributeEncoder, s Service) {
	s = s.normalized()
	encodeServiceKey(ae, s.Key())
	ae.String(svcSchedName, s.Scheduler)
	if s.PE != "" {
		ae.String(svcPEName, s.PE)
	}
	// struct ip_vs_flags { flags, mask }: set every flag bit we model.
	fl := make([]byte, 8)
	binary.NativeEndian.PutUint32(fl[0:], uint32(s.Flags))
	binary.NativeEndian.PutUint32(fl[4:], ^uint32(0))
	ae.Bytes(svcFlags, fl)
	ae.Uint32(svcTimeout, s.Timeout)
	ae.Bytes(svcNetmask, netmaskBytes(s.Netmask, s.Family))
}

func encodeDest(ae *netlink.AttributeEncoder, d Destination, full bool) {
	f := FamilyOf(d.Addr)
	ae.Uint16(destAddrFamily, uint16(f))
	ae.Bytes(destAddr, addr16(d.Addr))
	ae.Bytes(destPort, be16(d.Port))
	if !full {
		return
	}
	ae.Uint32(destFwdMethod, uint32(d.Forward))
	ae.Uint32(destWeight, uint32(d.Weight))
	ae.Uint32(destUThresh, d.UpperThreshold)
	ae.Uint32(destLThresh, d.LowerThreshold)
	if d.Forward == Tunnel {
		ae.Uint8(destTunType, uint8(d.TunnelType))
		ae.Bytes(destTunPort, be16(d.TunnelPort))
		ae.Uint16(destTunFlags, uint16(d.TunnelFlags))
	}
}

// serviceAttrs returns the payload of a service command: the service nest.
func serviceAttrs(s Service, full bool) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(nae *netlink.AttributeEncoder) error {
		if full {
			encodeService(nae, s)
		} else {
			encodeServiceKey(nae, s.Key())
		}
		return nil
	})
	return ae.Encode()
}

// destAttrs returns the payload of a destination command: the service key
// nest and the destination nest.
func destAttrs(k ServiceKey, d Destination, full bool) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(nae *netlink.AttributeEncoder) error {
		encodeServiceKey(nae, k)
		return nil
	})
	ae.Nested(attrDest, func(nae *netlink.AttributeEncoder) error {
		encodeDest(nae, d, full)
		return nil
	})
	return ae.Encode()
}

func daemonAttrs(d Daemon, full bool) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrDaemon, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(daemonState, uint32(d.State))
		if !full {
			return nil
		}
		nae.String(daemonMcastIfn, d.Interface)
		nae.Uint32(daemonSyncID, uint32(d.SyncID))
		if d.MaxLen != 0 {
			nae.Uint16(daemonSyncMaxLen, d.MaxLen)
		}
		if d.Group.IsValid() {
			if FamilyOf(d.Group) == IPv4 {
				g := d.Group.Unmap().As4()
				nae.Bytes(daemonMcastGroup, g[:])
			} else {
				g := d.Group.As16()
				nae.Bytes(daemonMcastGroup6, g[:])
			}
		}
		if d.Port != 0 {
			// Host order, unlike every other port of IPVS (the kernel reads
			// it with nla_get_u16; found by ipvsadm showing it swapped).
			nae.Uint16(daemonMcastPort, d.Port)
		}
		if d.TTL != 0 {
			nae.Uint8(daemonMcastTTL, d.TTL)
		}
		return nil
	})
	return ae.Encode()
}

func timeoutAttrs(t Timeouts) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	if t.TCP != 0 {
		ae.Uint32(attrTimeoutTCP, t.TCP)
	}
	if t.TCPFin != 0 {
		ae.Uint32(attrTimeoutTCPFin, t.TCPFin)
	}
	if t.UDP != 0 {
		ae.Uint32(attrTimeoutUDP, t.UDP)
	}
	return ae.Encode()
}

// decodeStats reads a STATS or STATS64 nest. In STATS the packet and
// connection counters are 32-bit and the byte counters 64-bit; STATS64 has
// all 64-bit. The attribute length tells which.
func decodeStats(ad *netlink.AttributeDecoder, st *Stats, rt *Rates) error {
	for ad.Next() {
		var v uint64
		switch len(ad.Bytes()) {
		case 4:
			v = uint64(ad.Uint32())
		case 8:
			v = ad.Uint64()
		default:
			continue // padding
		}
		switch ad.Type() {
		case statsConns:
			st.Conns = v
		case statsInPkts:
			st.InPkts = v
		case statsOutPkts:
			st.OutPkts = v
		case statsInBytes:
			st.InBytes = v
		case statsOutBytes:
			st.OutBytes = v
		case statsCPS:
			rt.CPS = v
		case statsInPPS:
			rt.InPPS = v
		case statsOutPPS:
			rt.OutPPS = v
		case statsInBPS:
			rt.InBPS = v
		case statsOutBPS:
			rt.OutBPS = v
		}
	}
	return ad.Err()
}

// decodeServiceMsg decodes the attributes of one service in a dump.
func decodeServiceMsg(b []byte) (Service, error) {
	var s Service
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return s, err
	}
	found := false
	for ad.Next() {
		if ad.Type() != attrService {
			continue
		}
		found = true
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			var addr, mask []byte
			// Older kernels send only STATS (32-bit packet counters).
			var st32 Stats
			var rt32 Rates
			have64 := false
			for nad.Next() {
				switch nad.Type() {
				case svcAF:
					s.Family = Family(nad.Uint16())
				case svcProtocol:
					s.Protocol = Protocol(nad.Uint16())
				case svcAddr:
					addr = nad.Bytes()
				case svcPort:
					if b := nad.Bytes(); len(b) == 2 {
						s.Port = binary.BigEndian.Uint16(b)
					}
				case svcFWMark:
					s.FWMark = nad.Uint32()
				case svcSchedName:
					s.Scheduler = nad.String()
				case svcPEName:
					s.PE = nad.String()
				case svcFlags:
					if b := nad.Bytes(); len(b) >= 4 {
						s.Flags = ServiceFlags(binary.NativeEndian.Uint32(b))
					}
				case svcTimeout:
					s.Timeout = nad.Uint32()
				case svcNetmask:
					mask = nad.Bytes()
				case svcStats:
					nad.Nested(func(sd *netlink.AttributeDecoder) error { return decodeStats(sd, &st32, &rt32) })
				case svcStats64:
					have64 = true
					nad.Nested(func(sd *netlink.AttributeDecoder) error { return decodeStats(sd, &s.Stats, &s.Rates) })
				}
			}
			if !have64 {
				s.Stats, s.Rates = st32, rt32
			}
			if s.FWMark != 0 {
				s.Protocol = 0
			} else if addr != nil {
				a, err := decodeAddr(addr, s.Family)
				if err != nil {
					return err
				}
				s.Addr = a
			}
			s.Netmask = decodeNetmask(mask, s.Family)
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return s, fmt.Errorf("decode service: %w", err)
	}
	if !found {
		return s, fmt.Errorf("decode service: no service attribute")
	}
	return s, nil
}

// decodeDestMsg decodes the attributes of one destination in a dump of a
// service of family f.
func decodeDestMsg(b []byte, f Family) (Destination, error) {
	var d Destination
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return d, err
	}
	found := false
	for ad.Next() {
		if ad.Type() != attrDest {
			continue
		}
		found = true
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			var addr []byte
			af := f
			var st32 Stats
			var rt32 Rates
			have64 := false
			for nad.Next() {
				switch nad.Type() {
				case destAddr:
					addr = nad.Bytes()
				case destAddrFamily:
					af = Family(nad.Uint16())
				case destPort:
					if b := nad.Bytes(); len(b) == 2 {
						d.Port = binary.BigEndian.Uint16(b)
					}
				case destFwdMethod:
					d.Forward = ForwardMethod(nad.Uint32() & 7)
				case destWeight:
					d.Weight = int32(nad.Uint32())
				case destUThresh:
					d.UpperThreshold = nad.Uint32()
				case destLThresh:
					d.LowerThreshold = nad.Uint32()
				case destActiveConns:
					d.ActiveConns = nad.Uint32()
				case destInactConns:
					d.InactConns = nad.Uint32()
				case destPersistConns:
					d.PersistConns = nad.Uint32()
				case destTunType:
					d.TunnelType = TunnelType(nad.Uint8())
				case destTunPort:
					if b := nad.Bytes(); len(b) == 2 {
						d.TunnelPort = binary.BigEndian.Uint16(b)
					}
				case destTunFlags:
					d.TunnelFlags = TunnelFlags(nad.Uint16())
				case destStats:
					nad.Nested(func(sd *netlink.AttributeDecoder) error { return decodeStats(sd, &st32, &rt32) })
				case destStats64:
					have64 = true
					nad.Nested(func(sd *netlink.AttributeDecoder) error { return decodeStats(sd, &d.Stats, &d.Rates) })
				}
			}
			if !have64 {
				d.Stats, d.Rates = st32, rt32
			}
			a, err := decodeAddr(addr, af)
			if err != nil {
				return err
			}
			d.Addr = a
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return d, fmt.Errorf("decode destination: %w", err)
	}
	if !found {
		return d, fmt.Errorf("decode destination: no destination attribute")
	}
	return d, nil
}

func decodeInfo(b []byte) (Info, error) {
	var in Info
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return in, fmt.Errorf("decode info: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case infoVersion:
			in.Version = ad.Uint32()
		case infoConnTabSize:
			in.ConnTableSize = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return in, fmt.Errorf("decode info: %w", err)
	}
	return in, nil
}

func decodeTimeouts(b []byte) (Timeouts, error) {
	var t Timeouts
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return t, fmt.Errorf("decode timeouts: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case attrTimeoutTCP:
			t.TCP = ad.Uint32()
		case attrTimeoutTCPFin:
			t.TCPFin = ad.Uint32()
		case attrTimeoutUDP:
			t.UDP = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return t, fmt.Errorf("decode timeouts: %w", err)
	}
	return t, nil
}

func decodeDaemon(b []byte) (Daemon, error) {
	var d Daemon
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return d, fmt.Errorf("decode daemon: %w", err)
	}
	for ad.Next() {
		if ad.Type() != attrDaemon {
			continue
		}
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				switch nad.Type() {
				case daemonState:
					d.State = DaemonState(nad.Uint32())
				case daemonMcastIfn:
					d.Interface = nad.String()
				case daemonSyncID:
					d.SyncID = uint8(nad.Uint32())
				case daemonSyncMaxLen:
					d.MaxLen = nad.Uint16()
				case daemonMcastGroup:
					if b := nad.Bytes(); len(b) == 4 {
						d.Group = netip.AddrFrom4([4]byte(b))
					}
				case daemonMcastGroup6:
					if b := nad.Bytes(); len(b) == 16 {
						d.Group = netip.AddrFrom16([16]byte(b))
					}
				case daemonMcastPort:
					d.Port = nad.Uint16()
				case daemonMcastTTL:
					d.TTL = nad.Uint8()
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return d, fmt.Errorf("decode daemon: %w", err)
	}
	return d, nil
}
