package connsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/directord/directord/ipvs"
)

// The version 1 sync message (net/netfilter/ipvs/ip_vs_sync.c): an 8-byte
// header (reserved 0, syncid, size, number of connections, version 1,
// spare 0), then the connections, each padded to 4 bytes.
const (
	headerLen  = 8
	conn4Len   = 36
	conn6Len   = 72
	protoVer   = 1
	typeInet6  = 1      // STYPE_F_INET6
	sizeMask   = 0x0fff // SVER_MASK: the low 12 bits of ver_size
	maxMsgConn = 255    // nr_conns is a byte
)

// MaxMessage is the largest message Encode makes: what a backup daemon
// started without a maxlen receives (an MTU of at least 1500 less the IPv4
// and UDP headers).
const MaxMessage = 1500 - 20 - 8

// Encode packs conns into version 1 messages of at most maxLen bytes
// (MaxMessage when 0) for sync id syncID.
func Encode(syncID uint8, conns []Conn, maxLen int) [][]byte {
	if maxLen <= 0 || maxLen > MaxMessage {
		maxLen = MaxMessage
	}
	var msgs [][]byte
	var cur []byte
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		binary.BigEndian.PutUint16(cur[2:], uint16(len(cur)))
		cur[4] = byte(n)
		msgs = append(msgs, cur)
		cur, n = nil, 0
	}
	for _, c := range conns {
		size := conn4Len
		if !c.Client.Addr().Is4() {
			size = conn6Len
		}
		if cur != nil && (len(cur)+size > maxLen || n == maxMsgConn) {
			flush()
		}
		if cur == nil {
			cur = make([]byte, headerLen, maxLen)
			cur[1] = syncID
			cur[5] = protoVer
		}
		cur = appendConn(cur, c, size)
		n++
	}
	flush()
	return msgs
}

// appendConn appends one connection; sizes are multiples of 4, so no
// padding is ever needed between them.
func appendConn(b []byte, c Conn, size int) []byte {
	be := binary.BigEndian
	typ := byte(0)
	if size == conn6Len {
		typ = typeInet6
	}
	b = append(b, typ, byte(c.Protocol))
	b = be.AppendUint16(b, uint16(size)&sizeMask) // version 0 of the conn format
	b = be.AppendUint32(b, c.Flags)
	b = be.AppendUint16(b, c.State)
	b = be.AppendUint16(b, c.Client.Port())
	b = be.AppendUint16(b, c.Virtual.Port())
	b = be.AppendUint16(b, c.Dest.Port())
	b = be.AppendUint32(b, c.Fwmark)
	b = be.AppendUint32(b, c.Timeout)
	for _, a := range []netip.Addr{c.Client.Addr(), c.Virtual.Addr(), c.Dest.Addr()} {
		if size == conn6Len {
			v := a.As16()
			b = append(b, v[:]...)
		} else {
			v := a.Unmap().As4()
			b = append(b, v[:]...)
		}
	}
	return b
}

// ErrMessage is wrapped by every Decode error.
var ErrMessage = errors.New("not a version 1 IPVS sync message")

// Decode parses a version 1 message with the checks the backup daemon
// makes; options after a connection (sequence numbers, persistence data)
// are skipped. It is for tests and tools: the kernel is the receiver.
func Decode(b []byte) (syncID uint8, conns []Conn, err error) {
	be := binary.BigEndian
	if len(b) < headerLen {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrMessage, len(b))
	}
	if int(be.Uint16(b[2:])) != len(b) {
		return 0, nil, fmt.Errorf("%w: size field %d, message %d bytes", ErrMessage, be.Uint16(b[2:]), len(b))
	}
	if b[0] != 0 || b[5] != protoVer || be.Uint16(b[6:]) != 0 {
		return 0, nil, fmt.Errorf("%w: version %d (reserved %d, spare %d)", ErrMessage, int8(b[5]), b[0], be.Uint16(b[6:]))
	}
	syncID = b[1]
	p := headerLen
	for i := 0; i < int(b[4]); i++ {
		if p+conn4Len > len(b) {
			return 0, nil, fmt.Errorf("%w: connection %d runs past the end", ErrMessage, i+1)
		}
		vs := be.Uint16(b[p+2:])
		size := int(vs & sizeMask)
		if vs>>12 != 0 {
			return 0, nil, fmt.Errorf("%w: connection %d has format version %d", ErrMessage, i+1, vs>>12)
		}
		want := conn4Len
		if b[p]&typeInet6 != 0 {
			want = conn6Len
		}
		if size < want || p+size > len(b) {
			return 0, nil, fmt.Errorf("%w: connection %d: size %d", ErrMessage, i+1, size)
		}
		s := b[p : p+size]
		c := Conn{
			Protocol: ipvs.Protocol(s[1]),
			Flags:    be.Uint32(s[4:]),
			State:    be.Uint16(s[8:]),
			Fwmark:   be.Uint32(s[16:]),
			Timeout:  be.Uint32(s[20:]),
		}
		var addrs [3]netip.Addr
		for j := range addrs {
			if want == conn6Len {
				addrs[j] = netip.AddrFrom16([16]byte(s[24+16*j : 40+16*j]))
			} else {
				addrs[j] = netip.AddrFrom4([4]byte(s[24+4*j : 28+4*j]))
			}
		}
		c.Client = netip.AddrPortFrom(addrs[0], be.Uint16(s[10:]))
		c.Virtual = netip.AddrPortFrom(addrs[1], be.Uint16(s[12:]))
		c.Dest = netip.AddrPortFrom(addrs[2], be.Uint16(s[14:]))
		conns = append(conns, c)
		p += (size + 3) &^ 3
	}
	return syncID, conns, nil
}
