package wire

import (
	"fmt"
	"strconv"
)

// Field names used by Heartbeat's control messages (ha_msg.h).
const (
	FieldT           = "t"           // message type
	FieldSrc         = "src"         // sender node name, lowercased
	FieldSrcUUID     = "srcuuid"     // sender uuid, 16 raw bytes
	FieldDest        = "dest"        // destination node name
	FieldDestUUID    = "destuuid"    // destination uuid, 16 raw bytes
	FieldSeq         = "seq"         // sequence number, hex
	FieldGen         = "hg"          // generation, hex
	FieldTime        = "ts"          // time() in seconds, hex
	FieldLoad        = "ld"          // first line of /proc/loadavg
	FieldTTL         = "ttl"         // hop limit, decimal
	FieldAuth        = "auth"        // in-message (classic) auth
	FieldStatus      = "st"          // node status
	FieldDeadtime    = "dt"          // sender's deadtime in ms, hex
	FieldProtocol    = "protocol"    // protocol version, "1"
	FieldAckSeq      = "ackseq"      // acknowledged seq, hex
	FieldFirstSeq    = "firstseq"    // first seq asked for, decimal
	FieldLastSeq     = "lastseq"     // last seq asked for, decimal
	FieldRscHold     = "rsc_hold"    // resources held: none/local/foreign/all
	FieldRType       = "rtype"       // resource message type: full
	FieldIsStable    = "isstable"    // 0/1
	FieldInfo        = "info"        // free-form qualifier
	FieldNodeList    = "nodelist"    // repnodes: "a b "
	FieldDelNodeList = "delnodelist" // repnodes: " "
	FieldComment     = "comment"
)

// Base returns the number base Heartbeat uses for the numeric field name
// (16 or 10), or 0 when name is not a known numeric field. Hex fields are
// written with %lx and no 0x; decimal ones with %d.
func Base(name string) int {
	switch name {
	case FieldSeq, FieldGen, FieldTime, FieldDeadtime, FieldAckSeq:
		return 16
	case FieldFirstSeq, FieldLastSeq, FieldTTL, FieldIsStable, FieldProtocol:
		return 10
	}
	return 0
}

// SetUint sets a numeric field in the base Heartbeat uses for it (see
// Base), in place if present; unknown field names are an error.
func (m *Message) SetUint(name string, v uint64) error {
	base := Base(name)
	if base == 0 {
		return fmt.Errorf("field %q is not a known numeric field", name)
	}
	m.Set(name, strconv.FormatUint(v, base))
	return nil
}

// Uint reads a numeric field in the base Heartbeat uses for it. Values
// must be plain digits (no sign, no 0x, no spaces) and fit in 64 bits.
func (m *Message) Uint(name string) (uint64, error) {
	base := Base(name)
	if base == 0 {
		return 0, fmt.Errorf("field %q is not a known numeric field", name)
	}
	s, ok := m.Get(name)
	if !ok {
		return 0, fmt.Errorf("field %q missing", name)
	}
	if len(s) > 16 || (len(s) > 0 && (s[0] == '+' || s[0] == '-')) {
		return 0, fmt.Errorf("field %q: bad number %q", name, s)
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, fmt.Errorf("field %q: bad base-%d number %q", name, base, s)
	}
	return v, nil
}

// UUID is a node's 16-byte uuid, sent raw in binary fields.
type UUID [16]byte

// String formats u in the usual 8-4-4-4-12 form.
func (u UUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// IsZero reports whether u is all zeros (Heartbeat's cleared uuid).
func (u UUID) IsZero() bool { return u == UUID{} }

// AddUUID appends a binary uuid field.
func (m *Message) AddUUID(name string, u UUID) *Message {
	return m.AddBinary(name, u[:])
}

// UUIDField reads a binary uuid field, which must be exactly 16 bytes.
func (m *Message) UUIDField(name string) (UUID, error) {
	b, ok := m.Binary(name)
	if !ok {
		return UUID{}, fmt.Errorf("binary field %q missing", name)
	}
	if len(b) != len(UUID{}) {
		return UUID{}, fmt.Errorf("field %q: uuid of %d bytes, want 16", name, len(b))
	}
	return UUID(b), nil
}

// NodeName returns name as Heartbeat puts it on the wire: ASCII letters
// lowercased (inplace_ascii_strdown), everything else unchanged.
func NodeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
