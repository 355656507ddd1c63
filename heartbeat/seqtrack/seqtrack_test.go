package seqtrack

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/directord/directord/heartbeat/wire"
)

func msg(typ string, seq, gen uint64) *wire.Message {
	m := wire.New(typ)
	if seq > 0 {
		m.Add(wire.FieldSeq, strconv.FormatUint(seq, 16))
	}
	m.Add(wire.FieldGen, strconv.FormatUint(gen, 16)).Add(wire.FieldTime, "6b000000")
	return m
}

func status(seq, gen uint64) *wire.Message { return msg("status", seq, gen) }

type step struct {
	m    *wire.Message
	toUs bool
	want Result
}

func run(t *testing.T, tr *Tracker, steps []step) {
	t.Helper()
	for i, s := range steps {
		got := tr.Observe(s.m, s.toUs)
		got.Err = nil
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d (%s seq=%v): got %+v, want %+v", i, s.m.Type(), s.want.Seq, got, s.want)
		}
	}
}

func TestInOrderDuplicateAndGap(t *testing.T) {
	tr := New()
	run(t, tr, []step{
		{status(1, 7), true, Result{Verdict: Deliver, Seq: 1}},
		{status(2, 7), true, Result{Verdict: Deliver, Seq: 2}},
		{status(2, 7), true, Result{Verdict: Duplicate, Seq: 2}},
		{msg("resource", 3, 7), false, Result{Verdict: NotForUs, Seq: 3}},
		// 4..6 lost.
		{status(7, 7), true, Result{Verdict: Deliver, Seq: 7, Request: &Range{4, 6}}},
		{status(5, 7), true, Result{Verdict: Deliver, Seq: 5, Recovered: true}},
		{status(5, 7), true, Result{Verdict: Duplicate, Seq: 5}},
		{status(1, 7), true, Result{Verdict: Duplicate, Seq: 1}},
	})
	if got := tr.Missing(); !reflect.DeepEqual(got, []uint64{4, 6}) {
		t.Errorf("missing = %v", got)
	}
	if last, ok := tr.LastSeq(); !ok || last != 7 {
		t.Errorf("LastSeq = %d %v", last, ok)
	}
}

func TestRestartAndReplay(t *testing.T) {
	tr := New()
	run(t, tr, []step{
		{status(40, 7), true, Result{Verdict: Deliver, Seq: 40}},
		// The peer restarts: new generation, seq from 1.
		{status(1, 8), true, Result{Verdict: Deliver, Seq: 1, Restart: true}},
		{msg("starting", 2, 8), true, Result{Verdict: Deliver, Seq: 2}},
		// A message from the old incarnation is a replay.
		{status(41, 7), true, Result{Verdict: Replay, Seq: 41}},
		// Only status messages move the generation: a newer one on
		// another type is checked against the current sequence.
		{msg("resource", 1, 9), true, Result{Verdict: Duplicate, Seq: 1}},
	})
	if tr.Generation() != 8 {
		t.Errorf("generation = %d", tr.Generation())
	}
}

func TestHealedPartition(t *testing.T) {
	tr := New()
	run(t, tr, []step{
		{status(10, 7), true, Result{Verdict: Deliver, Seq: 10}},
		{msg("resource", 20, 7), true, Result{Verdict: Deliver, Seq: 20, Request: &Range{11, 19}}},
	})
	tr.MarkDead()
	run(t, tr, []step{
		// Not newer than the last status: stale data.
		{status(3, 7), true, Result{Verdict: Duplicate, Seq: 3}},
		// Same generation from a dead node: it returns after a partition.
		{status(15, 7), true, Result{Verdict: Deliver, Seq: 15, Healed: true, Recovered: true}},
		{status(21, 7), true, Result{Verdict: Deliver, Seq: 21}},
		{msg("resource", 30, 7), true, Result{Verdict: Deliver, Seq: 30, Request: &Range{22, 29}}},
		// The peer gives up on 0x19 = 25.
		{wire.New("NS_nak_rexmit").Add(wire.FieldFirstSeq, "19"), true, Result{Verdict: Duplicate, Lost: 25}},
	})
	tr.MarkDead()
	// Neither new nor missing, after a partition: tracking starts afresh.
	run(t, tr, []step{{status(25, 7), true, Result{Verdict: Deliver, Seq: 25, Healed: true}}})
	if m := tr.Missing(); len(m) != 0 {
		t.Errorf("missing after healed reset = %v", m)
	}
	// Without a partition the same message is a duplicate.
	run(t, tr, []step{{status(24, 7), true, Result{Verdict: Duplicate, Seq: 24}}})
}

func TestBigGapResets(t *testing.T) {
	tr := New()
	run(t, tr, []step{
		{status(1, 7), true, Result{Verdict: Deliver, Seq: 1}},
		{status(2+MaxGap, 7), true, Result{Verdict: Deliver, Seq: 2 + MaxGap, Request: &Range{2, 1 + MaxGap}}},
		{status(3+2*MaxGap+1, 7), true, Result{Verdict: Deliver, Seq: 3 + 2*MaxGap + 1, Reset: true}},
	})
	if m := tr.Missing(); len(m) != 0 {
		t.Errorf("missing after reset = %d entries", len(m))
	}
}

func TestMissingBounded(t *testing.T) {
	tr := New()
	tr.Observe(status(1, 7), true)
	seq := uint64(1)
	for range 5 {
		seq += MaxGap // MaxGap-1 missing each time
		tr.Observe(status(seq, 7), true)
	}
	m := tr.Missing()
	if len(m) != MaxMissing {
		t.Fatalf("missing = %d, want %d", len(m), MaxMissing)
	}
	// The lowest ones were forgotten: the newest gap is fully recorded.
	if m[len(m)-1] != seq-1 || m[0] <= 2 {
		t.Errorf("missing range %d..%d", m[0], m[len(m)-1])
	}
}

func TestNoSeqAndNak(t *testing.T) {
	tr := New()
	tr.Observe(status(1, 7), true)
	tr.Observe(status(5, 7), true)
	nak := wire.New("NS_nak_rexmit").Add(wire.FieldDest, "nodeb").Add(wire.FieldFirstSeq, "3")
	run(t, tr, []step{
		{wire.New("NS_ackmsg").Add(wire.FieldAckSeq, "5"), true, Result{Verdict: Deliver}},
		{wire.New("NS_rexmit"), false, Result{Verdict: NotForUs}},
		{nak, true, Result{Verdict: Duplicate, Lost: 3}},
	})
	if got := tr.Missing(); !reflect.DeepEqual(got, []uint64{2, 4}) {
		t.Errorf("missing = %v", got)
	}
	bad := wire.New("NS_nak_rexmit").Add(wire.FieldFirstSeq, "zz")
	if r := tr.Observe(bad, true); r.Verdict != Invalid {
		t.Errorf("bad nak: %+v", r)
	}
}

func TestInvalid(t *testing.T) {
	tr := New()
	for _, m := range []*wire.Message{
		msg("status", 0, 7),
		wire.New("status").Add(wire.FieldSeq, "0x1").Add(wire.FieldGen, "7"),
		wire.New("status").Add(wire.FieldSeq, "1").Add(wire.FieldGen, "-7"),
	} {
		if r := tr.Observe(m, true); r.Verdict != Invalid || r.Err == nil {
			t.Errorf("%v: %+v", m, r)
		}
	}
	// A missing hg counts as generation 0, as in Heartbeat.
	if r := tr.Observe(wire.New("status").Add(wire.FieldSeq, "1"), true); r.Verdict != Deliver {
		t.Errorf("no hg: %+v", r)
	}
}

func TestToUs(t *testing.T) {
	self := wire.UUID{1}
	other := wire.UUID{2}
	tests := []struct {
		m    *wire.Message
		want bool
	}{
		{wire.New("x"), true},
		{wire.New("x").Add(wire.FieldDest, "nodea"), true},
		{wire.New("x").Add(wire.FieldDest, "nodeb"), false},
		{wire.New("x").Add(wire.FieldDest, "nodeb").AddUUID(wire.FieldDestUUID, self), true},
		{wire.New("x").Add(wire.FieldDest, "nodea").AddUUID(wire.FieldDestUUID, other), false},
		{wire.New("x").Add(wire.FieldDest, "nodea").AddUUID(wire.FieldDestUUID, wire.UUID{}), true},
	}
	for i, tt := range tests {
		if got := ToUs(tt.m, "NodeA", self); got != tt.want {
			t.Errorf("%d: ToUs = %v", i, got)
		}
	}
}

func FuzzObserve(f *testing.F) {
	f.Add([]byte{1, 2, 3, 5, 4, 4, 200, 1})
	f.Fuzz(func(t *testing.T, seqs []byte) {
		tr := New()
		for i, s := range seqs {
			gen := uint64(7 + i%3/2)
			r := tr.Observe(status(uint64(s)+1, gen), i%2 == 0)
			if len(tr.missing) > MaxMissing {
				t.Fatalf("missing grew to %d", len(tr.missing))
			}
			if r.Verdict == 0 {
				t.Fatalf("no verdict: %+v", r)
			}
		}
	})
}

// TestResume: a tracker resumed from another's generation and last seq
// takes the next seq as new, asks for a gap, and treats the same
// generation as no restart.
func TestResume(t *testing.T) {
	tr := New()
	tr.Observe(status(9, 7), true)
	last, _ := tr.LastSeq()
	r := Resume(tr.Generation(), last)
	run(t, r, []step{
		{status(9, 7), true, Result{Verdict: Duplicate, Seq: 9}},
		{status(12, 7), true, Result{Verdict: Deliver, Seq: 12, Request: &Range{10, 11}}},
		{status(10, 7), true, Result{Verdict: Deliver, Seq: 10, Recovered: true}},
		{status(3, 6), true, Result{Verdict: Replay, Seq: 3}},
	})
}
