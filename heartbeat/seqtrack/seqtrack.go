// Package seqtrack decides, per peer, whether an incoming Heartbeat
// message is new, a duplicate, a replay from an older generation, or a
// retransmission of one that was missing, and which sequence numbers
// are missing. It follows Heartbeat 3.0.6's should_drop_message() and
// is_lost_packet(); the caller sends NS_rexmit for Result.Request and
// retries Missing() every max_rexmit_delay.
package seqtrack

import (
	"fmt"
	"strings"

	"github.com/directord/directord/heartbeat/wire"
)

const (
	// MaxMissing is how many missing sequence numbers are remembered
	// (Heartbeat's MAXMISSING = MAXMSGHIST = 200); beyond it the lowest
	// is forgotten.
	MaxMissing = 200
	// MaxGap is FLOWCONTROL_LIMIT (MAXMSGHIST/2): a jump of more than
	// this many lost messages starts tracking afresh instead of asking
	// for them all.
	MaxGap = 100
)

// Verdict says what to do with a message.
type Verdict uint8

// Verdicts.
const (
	// Deliver: a new message for this node.
	Deliver Verdict = iota + 1
	// NotForUs: a new message addressed to another node; sequence state
	// was updated but the message is not to be processed here.
	NotForUs
	// Duplicate: already seen (the same seq as the last one, or an old
	// one that was not missing).
	Duplicate
	// Replay: from an older generation of the peer than already seen.
	Replay
	// Invalid: no usable seq, hg or ts.
	Invalid
)

// String names the verdict for logs.
func (v Verdict) String() string {
	switch v {
	case Deliver:
		return "deliver"
	case NotForUs:
		return "not-for-us"
	case Duplicate:
		return "duplicate"
	case Replay:
		return "replay"
	case Invalid:
		return "invalid"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Range is an inclusive range of sequence numbers.
type Range struct{ First, Last uint64 }

// Result is the outcome of Observe.
type Result struct {
	Verdict Verdict
	Seq     uint64 // the message's seq, 0 for NS_ types
	// Restart: a status message carried a newer generation (Heartbeat
	// logs "Heartbeat restart on node X" when one was known before).
	Restart bool
	// Healed: a status message of the current generation came from a
	// node marked dead: it returned after a partition.
	Healed bool
	// Recovered: the message filled a recorded gap (a retransmission).
	Recovered bool
	// Request: sequence numbers found missing by this message; ask the
	// peer to retransmit them.
	Request *Range
	// Reset: so many messages were lost that tracking started afresh.
	Reset bool
	// Lost: an NS_nak_rexmit said this seq can no longer be sent.
	Lost uint64
	// Err explains Invalid.
	Err error
}

// Tracker follows one peer's sequence numbers. It is not safe for
// concurrent use; the caller's receive loop owns it.
type Tracker struct {
	generation uint64
	lastSeq    uint64
	haveSeq    bool
	missing    []uint64
	statusSeq  uint64
	dead       bool
}

// New returns a tracker that has seen nothing.
func New() *Tracker { return &Tracker{} }

// Generation returns the peer's generation as last seen in a status.
func (t *Tracker) Generation() uint64 { return t.generation }

// LastSeq returns the highest sequence number seen, and whether any was.
func (t *Tracker) LastSeq() (uint64, bool) { return t.lastSeq, t.haveSeq }

// Missing returns the sequence numbers still missing, lowest first.
func (t *Tracker) Missing() []uint64 {
	out := append([]uint64(nil), t.missing...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// MarkDead records that the peer was declared dead, so that a status of
// the same generation is recognised as a healed partition.
func (t *Tracker) MarkDead() { t.dead = true }

func (t *Tracker) reset() {
	t.lastSeq, t.haveSeq = 0, false
	t.missing = t.missing[:0]
}

// ToUs reports whether m is addressed to the node self/selfUUID: by
// destuuid when present, else by dest, else (no destination) yes.
func ToUs(m *wire.Message, self string, selfUUID wire.UUID) bool {
	if u, err := m.UUIDField(wire.FieldDestUUID); err == nil && !u.IsZero() {
		return u == selfUUID
	}
	dest, ok := m.Get(wire.FieldDest)
	return !ok || dest == wire.NodeName(self)
}

// Observe classifies m, which came from this tracker's peer and passed
// authentication; toUs comes from ToUs.
func (t *Tracker) Observe(m *wire.Message, toUs bool) Result {
	typ := m.Type()
	keep := func(r Result) Result {
		if toUs {
			r.Verdict = Deliver
		} else {
			r.Verdict = NotForUs
		}
		return r
	}
	if strings.HasPrefix(typ, "NS_") {
		if typ == "NS_nak_rexmit" {
			first, ok := m.Get(wire.FieldFirstSeq)
			var seq uint64
			if _, err := fmt.Sscanf(first, "%x", &seq); !ok || err != nil || seq == 0 {
				return Result{Verdict: Invalid, Err: fmt.Errorf("NS_nak_rexmit: bad firstseq %q", first)}
			}
			t.forget(seq)
			return Result{Verdict: Duplicate, Lost: seq}
		}
		return keep(Result{})
	}
	seq, err := m.Uint(wire.FieldSeq)
	if err != nil || seq == 0 {
		return Result{Verdict: Invalid, Err: fmt.Errorf("bad sequence number: %v", err)}
	}
	var gen uint64
	if _, ok := m.Lookup(wire.FieldGen); ok {
		if gen, err = m.Uint(wire.FieldGen); err != nil {
			return Result{Verdict: Invalid, Err: err}
		}
	}
	r := Result{Seq: seq}
	if gen < t.generation {
		r.Verdict = Replay
		r.Err = fmt.Errorf("generation %x is older than %x (replay?)", gen, t.generation)
		return r
	}
	if typ == "status" {
		switch {
		case gen == t.generation && gen > 0 && t.dead:
			if seq <= t.statusSeq {
				r.Verdict = Duplicate
				return r
			}
			r.Healed = true
		case gen > t.generation:
			// A first contact resets too, but is not reported as a restart.
			r.Restart = t.generation > 0
			t.reset()
			t.statusSeq = 0
		}
		t.generation = gen
		t.dead = false
	}
	r = t.sequence(m, r, keep)
	if typ == "status" && (r.Verdict == Deliver || r.Verdict == NotForUs) {
		t.statusSeq = seq
	}
	return r
}

// sequence applies the sequence-number rules to a message of the current
// generation.
func (t *Tracker) sequence(m *wire.Message, r Result, keep func(Result) Result) Result {
	seq := r.Seq
	switch {
	case !t.haveSeq || seq == t.lastSeq+1:
		t.lastSeq, t.haveSeq = seq, true
		return keep(r)
	case seq == t.lastSeq:
		r.Verdict = Duplicate
		return r
	case seq > t.lastSeq:
		first, last := t.lastSeq+1, seq-1
		if last-first+1 > MaxGap {
			t.reset()
			t.lastSeq, t.haveSeq = seq, true
			r.Reset = true
			return keep(r)
		}
		r.Request = &Range{First: first, Last: last}
		for k := first; k <= last; k++ {
			t.addMissing(k)
		}
		t.lastSeq = seq
		return keep(r)
	}
	// Older than the last one: a retransmission we asked for?
	if t.forget(seq) {
		r.Recovered = true
		return keep(r)
	}
	if r.Healed || r.Restart {
		if ts, err := m.Uint(wire.FieldTime); err != nil || ts == 0 {
			r.Verdict = Invalid
			r.Err = fmt.Errorf("bad timestamp on restart: %v", err)
			return r
		}
		t.reset()
		t.lastSeq, t.haveSeq = seq, true
		return keep(r)
	}
	r.Verdict = Duplicate
	return r
}

// addMissing records k, replacing the lowest recorded seq when full.
func (t *Tracker) addMissing(k uint64) {
	if len(t.missing) < MaxMissing {
		t.missing = append(t.missing, k)
		return
	}
	low := 0
	for i, s := range t.missing {
		if s < t.missing[low] {
			low = i
		}
	}
	t.missing[low] = k
}

// forget removes seq from the missing list and reports whether it was
// there.
func (t *Tracker) forget(seq uint64) bool {
	for i, s := range t.missing {
		if s == seq {
			t.missing = append(t.missing[:i], t.missing[i+1:]...)
			return true
		}
	}
	return false
}

// Resume returns a tracker that continues where another left off: the
// peer's generation and the highest sequence number seen, as Generation and
// LastSeq reported them. A restarted node that resumes its predecessor's
// tracker asks for what the peer sent in between instead of accepting any
// sequence number as a first contact.
func Resume(generation, lastSeq uint64) *Tracker {
	return &Tracker{generation: generation, lastSeq: lastSeq, haveSeq: lastSeq > 0, statusSeq: lastSeq}
}
