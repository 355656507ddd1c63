package proto

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/directord/directord/heartbeat/wire"
)

// Identity is what a node puts in every message it sends.
type Identity struct {
	Name       string    // node name; lowercased on the wire
	UUID       wire.UUID // /var/lib/heartbeat/hb_uuid
	Generation uint64    // hb_generation, one more on every start
	// TTL is hopfudge + the number of nodes (3 on two nodes).
	TTL int
}

// Stamper adds the common control fields to outgoing messages and owns
// the sender's sequence counter, which starts at 1 and is shared by all
// messages whose type does not start with NS_. It is safe for concurrent
// use.
type Stamper struct {
	id Identity
	// UUIDOf returns the uuid of a destination node, when known, for
	// the destuuid field.
	uuidOf func(node string) (wire.UUID, bool)
	now    func() time.Time
	load   func() string

	mu  sync.Mutex
	seq uint64
}

// StamperOption customises a Stamper.
type StamperOption func(*Stamper)

// WithClock sets the clock used for ts (tests).
func WithClock(now func() time.Time) StamperOption {
	return func(s *Stamper) { s.now = now }
}

// WithLoad sets the source of the ld field (tests); the default reads the
// first line of /proc/loadavg.
func WithLoad(load func() string) StamperOption {
	return func(s *Stamper) { s.load = load }
}

// WithFirstSeq sets the next sequence number (tests, restarts in place).
func WithFirstSeq(seq uint64) StamperOption {
	return func(s *Stamper) { s.seq = seq }
}

// NewStamper returns a Stamper for id. uuidOf may be nil when no peer
// uuid is known yet; destuuid is then left out.
func NewStamper(id Identity, uuidOf func(string) (wire.UUID, bool), opts ...StamperOption) *Stamper {
	id.Name = wire.NodeName(id.Name)
	s := &Stamper{id: id, uuidOf: uuidOf, now: time.Now, load: procLoadavg, seq: 1}
	for _, o := range opts {
		o(s)
	}
	return s
}

// procLoadavg returns the first line of /proc/loadavg as Heartbeat does
// (at most 63 bytes), or "n/a".
func procLoadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil || len(b) == 0 {
		return "n/a"
	}
	if len(b) > 63 {
		b = b[:63]
	}
	s, _, _ := strings.Cut(string(b), "\n")
	if s == "" {
		return "n/a"
	}
	return s
}

// Stamp adds the common fields to m as Heartbeat's
// add_control_msg_fields does and returns the sequence number it used
// (0 for NS_ types). Fields already present are replaced in place, except
// that NS_ messages keep the ones they have.
func (s *Stamper) Stamp(m *wire.Message) (uint64, error) {
	typ := m.Type()
	if typ == "" {
		return 0, fmt.Errorf("message has no type (t) field")
	}
	if dest, ok := m.Get(wire.FieldDest); ok && s.uuidOf != nil {
		if u, ok := s.uuidOf(dest); ok {
			setBinary(m, wire.FieldDestUUID, u[:])
		}
	}
	noseq := IsNoSeq(typ)
	set := func(name, value string) {
		if noseq {
			if _, ok := m.Lookup(name); ok {
				return
			}
		}
		m.Set(name, value)
	}
	set(wire.FieldSrc, s.id.Name)
	if _, ok := m.Lookup(wire.FieldSrcUUID); !ok || !noseq {
		setBinary(m, wire.FieldSrcUUID, s.id.UUID[:])
	}
	var seq uint64
	if !noseq {
		s.mu.Lock()
		seq = s.seq
		s.seq++
		s.mu.Unlock()
		m.Set(wire.FieldSeq, strconv.FormatUint(seq, 16))
	}
	set(wire.FieldGen, strconv.FormatUint(s.id.Generation, 16))
	set(wire.FieldTime, strconv.FormatInt(s.now().Unix(), 16))
	if !noseq {
		m.Set(wire.FieldLoad, s.load())
	}
	set(wire.FieldTTL, strconv.Itoa(s.id.TTL))
	return seq, nil
}

// setBinary replaces the first field called name with a binary value, in
// place, or appends it (cl_msg_moduuid).
func setBinary(m *wire.Message, name string, v []byte) {
	if f, ok := m.Lookup(name); ok {
		*f = wire.Field{Name: name, Type: wire.TypeBinary, Value: append([]byte(nil), v...)}
		return
	}
	m.AddBinary(name, v)
}

// Next returns the sequence number the next sequenced message will carry,
// for a node that hands its identity to a successor (a restart in place).
func (s *Stamper) Next() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}
