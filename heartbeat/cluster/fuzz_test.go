package cluster

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/heartbeat/wire"
)

// FuzzReceive feeds the node authenticated messages from its peer with
// arbitrary fields (one "name=value" per line; the peer's src is added),
// then lets time pass and resource work run: whatever the peer sends,
// the node must not panic or hang.
func FuzzReceive(f *testing.F) {
	for _, s := range []string{
		"t=status\nst=active\ndt=3e8\nseq=1\nhg=9\nts=1",
		"t=resource\nrsc_hold=foreign\nrtype=full\nisstable=1\nseq=2\nhg=9",
		"t=starting\nseq=3\nhg=9",
		"t=ask_resources\nrsc_hold=all\ninfo=me\nseq=4\nhg=9",
		"t=ask_resources\nrsc_hold=local\ninfo=done\nseq=5\nhg=9",
		"t=hb_takeover\nrsc_hold=failback\nseq=6\nhg=9",
		"t=shutdone\nst=dead\nseq=7\nhg=9",
		"t=NS_rexmit\ndest=nodea\nfirstseq=18446744073709551610\nlastseq=18446744073709551615\nhg=9",
		"t=NS_nak_rexmit\ndest=nodea\nfirstseq=ff\nhg=9",
		"t=num_ping_nodes\ndest=nodea\nnum_ping=-1\nseq=8\nhg=9",
		"t=you_are_dead\nseq=9\nhg=9",
		"t=status\nst=active\ndt=ffffffffffffffff\nseq=ffffffffffffffff\nhg=ffffffffffffffff",
		"t=resource\nrsc_hold=bogus\nseq=a\nhg=9",
	} {
		f.Add([]byte(s), []byte("t=status\nst=up\nseq=2\nhg=9"))
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		h := newHarness(t, 2, slowTiming())
		for i, in := range [][]byte{first, second} {
			m := wire.New("")
			m.Fields = m.Fields[:0]
			for _, line := range bytes.Split(in, []byte("\n")) {
				name, value, ok := bytes.Cut(line, []byte("="))
				if !ok || len(name) == 0 || len(value) == 0 || bytes.ContainsAny(name, "=\x00") || bytes.ContainsRune(value, 0) {
					continue
				}
				m.Add(string(name), string(value))
			}
			m.Add(wire.FieldSrc, "nodeb")
			pkt, err := testKeyring().Seal(m)
			if err != nil {
				return // not encodable: nothing a peer could send
			}
			h.n.receive(inbound{link: i % 2, pkt: pkt})
			h.n.drainOwn()
			h.runJobs()
			h.tickFor(300 * time.Millisecond)
			h.runJobs()
		}
		h.tickFor(3 * time.Second)
		h.runJobs()
		h.n.publish()
	})
}

// FuzzParseAddrs: dd_addrs from the peer is bounded and yields only valid,
// unicast-capable addresses.
func FuzzParseAddrs(f *testing.F) {
	for _, s := range []string{"192.0.2.1,2001:db8::1", "", ",,", "0.0.0.0,224.0.0.1,::ffff:192.0.2.7", "x,192.0.2.300, 198.51.100.2 ", strings.Repeat("192.0.2.1,", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		as := parseAddrs(s)
		if len(as) > maxAddrs {
			t.Fatalf("%d addresses", len(as))
		}
		for _, a := range as {
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() {
				t.Fatalf("address %v from %q", a, s)
			}
		}
	})
}

func TestParseAddrs(t *testing.T) {
	got := fmt.Sprint(parseAddrs("x,192.0.2.300, 198.51.100.2 ,0.0.0.0,ff02::1,::ffff:192.0.2.7,2001:db8::1"))
	if want := "[198.51.100.2 192.0.2.7 2001:db8::1]"; got != want {
		t.Errorf("parseAddrs: %s, want %s", got, want)
	}
	if n := len(parseAddrs(strings.Repeat("192.0.2.1,", 100))); n != maxAddrs {
		t.Errorf("%d addresses from 100, want %d", n, maxAddrs)
	}
}
