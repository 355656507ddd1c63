// Package proto builds the control messages a Heartbeat 3.0.6 node sends
// in a two-node haresources cluster, field for field and in Heartbeat's
// order, and stamps them with the fields every message carries
// (add_control_msg_fields): destuuid, src, srcuuid, seq, hg, ts, ld, ttl.
//
// Constructors return the type-specific fields only; Stamper.Stamp adds
// the common ones and wire.Keyring.Seal signs and encodes the result.
package proto

import (
	"strconv"
	"strings"

	"github.com/directord/directord/heartbeat/wire"
)

// Message types (ha_msg.h).
const (
	TypeStatus       = "status"
	TypeRexmit       = "NS_rexmit"
	TypeNakRexmit    = "NS_nak_rexmit"
	TypeAck          = "NS_ackmsg"
	TypeReqNodes     = "reqnodes"
	TypeRepNodes     = "repnodes"
	TypeStarting     = "starting"
	TypeResource     = "resource"
	TypeAskResources = "ask_resources"
	TypeTakeover     = "hb_takeover"
	TypeIPRequest    = "ip-request-resp"
	TypeStonith      = "stonith"
	TypeShutdone     = "shutdone"
)

// NoSeqPrefix marks message types outside the sequence/retransmission
// protocol: they get no seq and no ld field.
const NoSeqPrefix = "NS_"

// IsNoSeq reports whether messages of type t carry no sequence number.
func IsNoSeq(t string) bool { return strings.HasPrefix(t, NoSeqPrefix) }

// Node statuses carried in status messages (st).
const (
	StatusInit   = "init"
	StatusUp     = "up"
	StatusActive = "active"
	StatusDead   = "dead"
	StatusPing   = "ping"
)

// Resource holdings (rsc_hold).
const (
	HoldNone    = "none"
	HoldLocal   = "local"
	HoldForeign = "foreign"
	HoldAll     = "all"
)

// Status is the keepalive: st, dt (the sender's deadtime in ms, hex) and
// protocol=1.
func Status(st string, deadtimeMS uint64) *wire.Message {
	return wire.New(TypeStatus).Add(wire.FieldStatus, st).
		Add(wire.FieldDeadtime, strconv.FormatUint(deadtimeMS, 16)).
		Add(wire.FieldProtocol, "1")
}

// Rexmit asks dest to retransmit seqs first..last. Unlike seq, these two
// are decimal. Heartbeat asks for one seq at a time.
func Rexmit(dest string, first, last uint64) *wire.Message {
	return wire.New(TypeRexmit).Add(wire.FieldDest, wire.NodeName(dest)).
		Add(wire.FieldFirstSeq, strconv.FormatUint(first, 10)).
		Add(wire.FieldLastSeq, strconv.FormatUint(last, 10))
}

// NakRexmit tells dest that seq cannot be retransmitted any more; its
// firstseq is hex (heartbeat.c parses it with %lx).
func NakRexmit(dest string, seq uint64) *wire.Message {
	return wire.New(TypeNakRexmit).Add(wire.FieldDest, wire.NodeName(dest)).
		Add(wire.FieldFirstSeq, strconv.FormatUint(seq, 16))
}

// Ack acknowledges every message of dest up to ackseq (hex).
func Ack(dest string, ackseq uint64) *wire.Message {
	return wire.New(TypeAck).Add(wire.FieldDest, wire.NodeName(dest)).
		Add(wire.FieldAckSeq, strconv.FormatUint(ackseq, 16))
}

// ReqNodes asks dest for its node list at start-up.
func ReqNodes(dest string) *wire.Message {
	return wire.New(TypeReqNodes).Add(wire.FieldDest, wire.NodeName(dest))
}

// RepNodes answers ReqNodes. Heartbeat writes each name followed by a
// blank ("nodea nodeb ") and an empty deletion list as " ", because an
// empty field value is not allowed.
func RepNodes(dest string, nodes, deleted []string) *wire.Message {
	list := func(names []string) string {
		var b strings.Builder
		for _, n := range names {
			b.WriteString(wire.NodeName(n))
			b.WriteByte(' ')
		}
		if b.Len() == 0 {
			return " "
		}
		return b.String()
	}
	return wire.New(TypeRepNodes).Add(wire.FieldDest, wire.NodeName(dest)).
		Add(wire.FieldNodeList, list(nodes)).Add(wire.FieldDelNodeList, list(deleted))
}

// Starting announces the start of the auto_failback start-up protocol.
func Starting() *wire.Message { return wire.New(TypeStarting) }

// Resource announces what the sender holds. stable is isstable; info is
// optional ("" leaves it out), e.g. "req_our_resources()", "standby",
// "shutdown".
func Resource(hold string, stable bool, info string) *wire.Message {
	m := wire.New(TypeResource).Add(wire.FieldRscHold, hold).Add(wire.FieldRType, "full")
	isstable := "0"
	if stable {
		isstable = "1"
	}
	m.Add(wire.FieldIsStable, isstable)
	if info != "" {
		m.Add(wire.FieldInfo, info)
	}
	return m
}

// MachDown is the resource message sent after taking over a dead node's
// resources: just rsc_hold=foreign info=mach_down.
func MachDown() *wire.Message {
	return wire.New(TypeResource).Add(wire.FieldRscHold, HoldForeign).Add(wire.FieldInfo, "mach_down")
}

// AskResources is the standby/failback handshake: hold is foreign or
// all, info is me, other or done.
func AskResources(hold, info string) *wire.Message {
	return wire.New(TypeAskResources).Add(wire.FieldRscHold, hold).Add(wire.FieldInfo, info)
}

// Takeover is what hb_takeover sends.
func Takeover() *wire.Message {
	return wire.New(TypeTakeover).Add(wire.FieldRscHold, HoldAll)
}

// StonithResult reports the fate of node after it was declared dead;
// with no STONITH device Heartbeat sends result=n_stnth.
func StonithResult(node, result string) *wire.Message {
	return wire.New(TypeStonith).Add("node", wire.NodeName(node)).Add("result", result)
}

// Shutdone is the last message of a graceful shutdown.
func Shutdone() *wire.Message {
	return wire.New(TypeShutdone).Add(wire.FieldStatus, StatusDead)
}
