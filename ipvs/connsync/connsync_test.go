package connsync

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/directord/directord/ipvs"
)

// procSample is /proc/net/ip_vs_conn as Debian's 6.1 kernel prints it
// (format of ip_vs_conn_seq_show), with an IPv6 line and a template.
const procSample = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C000020A 9C40 C6336401 0050 C0000214 0050 ESTABLISHED     897
TCP C000020A 9C41 C6336401 0050 C0000215 0050 SYN_RECV         59
TCP C000020A 9C42 C6336401 0050 C0000214 0050 TIME_WAIT        119
UDP C000020A D431 C6336401 0035 C0000215 0035 UDP              299
UDP C000020A 0000 C6336401 0035 C0000215 0035 UDP              359
IP  C000020A 0000 00000000 0000 C0000214 0000 NONE             359
TCP 2001:0db8:0000:0000:0000:0000:0000:000a 9C43 2001:0db8:0000:0000:0000:0000:0000:0064 0050 2001:0db8:0000:0000:0000:0000:0000:0014 0050 FIN_WAIT         30
TCP C000020A 9C44 C6336409 0050 C0000214 0050 ESTABLISHED     897
`

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParseProc(t *testing.T) {
	got, err := ParseProc(strings.NewReader(procSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []Conn{
		{Protocol: ipvs.TCP, Client: ap("192.0.2.10:40000"), Virtual: ap("198.51.100.1:80"), Dest: ap("192.0.2.20:80"), State: 1, Expires: 897},
		{Protocol: ipvs.TCP, Client: ap("192.0.2.10:40001"), Virtual: ap("198.51.100.1:80"), Dest: ap("192.0.2.21:80"), State: 3, Expires: 59},
		{Protocol: ipvs.TCP, Client: ap("192.0.2.10:40002"), Virtual: ap("198.51.100.1:80"), Dest: ap("192.0.2.20:80"), State: 5, Expires: 119},
		{Protocol: ipvs.UDP, Client: ap("192.0.2.10:54321"), Virtual: ap("198.51.100.1:53"), Dest: ap("192.0.2.21:53"), Expires: 299},
		{Protocol: ipvs.UDP, Client: ap("192.0.2.10:0"), Virtual: ap("198.51.100.1:53"), Dest: ap("192.0.2.21:53"), Expires: 359},
		{Protocol: ipvs.TCP, Client: ap("[2001:db8::a]:40003"), Virtual: ap("[2001:db8::64]:80"), Dest: ap("[2001:db8::14]:80"), State: 4, Expires: 30},
		{Protocol: ipvs.TCP, Client: ap("192.0.2.10:40004"), Virtual: ap("198.51.100.9:80"), Dest: ap("192.0.2.20:80"), State: 1, Expires: 897},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseProc:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseProcErrors(t *testing.T) {
	head := "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
	for name, in := range map[string]string{
		"no header":     "TCP C000020A 9C40 C6336401 0050 C0000214 0050 ESTABLISHED 897\n",
		"short line":    head + "TCP C000020A 9C40 C6336401\n",
		"bad address":   head + "TCP C00002ZZ 9C40 C6336401 0050 C0000214 0050 ESTABLISHED 897\n",
		"bad port":      head + "TCP C000020A 9C4 C6336401 0050 C0000214 0050 ESTABLISHED 897\n",
		"unknown state": head + "TCP C000020A 9C40 C6336401 0050 C0000214 0050 DANCING 897\n",
		"bad expires":   head + "TCP C000020A 9C40 C6336401 0050 C0000214 0050 ESTABLISHED -1\n",
		"long line":     head + strings.Repeat("x", 5000) + "\n",
	} {
		if _, err := ParseProc(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func handoverTable() ipvs.Table {
	a := netip.MustParseAddr
	return ipvs.Table{
		{Service: ipvs.Service{Protocol: ipvs.TCP, Addr: a("198.51.100.1"), Port: 80},
			Destinations: []ipvs.Destination{{Addr: a("192.0.2.20"), Port: 80, Forward: ipvs.Route}, {Addr: a("192.0.2.21"), Port: 80, Forward: ipvs.Tunnel}}},
		{Service: ipvs.Service{Protocol: ipvs.UDP, Addr: a("198.51.100.1"), Port: 53},
			Destinations: []ipvs.Destination{{Addr: a("192.0.2.21"), Port: 53, Forward: ipvs.Route}}},
		{Service: ipvs.Service{Protocol: ipvs.TCP, Addr: a("2001:db8::64"), Port: 80},
			Destinations: []ipvs.Destination{{Addr: a("2001:db8::14"), Port: 80, Forward: ipvs.Masq}}},
	}
}

func TestHandover(t *testing.T) {
	conns, err := ParseProc(strings.NewReader(procSample))
	if err != nil {
		t.Fatal(err)
	}
	got := Handover(conns, handoverTable())
	var lines []string
	for _, c := range got {
		lines = append(lines, c.Client.String()+" state "+string(rune('0'+c.State))+" flags "+flagString(c.Flags))
	}
	// TIME_WAIT, the UDP template, the IP template and the connection of
	// a service this node does not have are left out; the forwarding
	// method is the destination's; only ESTABLISHED is active.
	want := []string{
		"192.0.2.10:40000 state 1 flags 0x0003",
		"192.0.2.10:40001 state 3 flags 0x0102",
		"192.0.2.10:54321 state 0 flags 0x0003",
		"[2001:db8::a]:40003 state 4 flags 0x0100",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("Handover:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func flagString(f uint32) string {
	const hex = "0123456789abcdef"
	return "0x" + string([]byte{hex[f>>12&15], hex[f>>8&15], hex[f>>4&15], hex[f&15]})
}

func TestEncodeDecode(t *testing.T) {
	conns, _ := ParseProc(strings.NewReader(procSample))
	conns = Handover(conns, handoverTable())
	for i := range conns {
		conns[i].Expires = 0 // not carried
		conns[i].Timeout = uint32(i * 7)
	}
	msgs := Encode(9, conns, 0)
	if len(msgs) != 1 {
		t.Fatalf("%d messages for 4 connections", len(msgs))
	}
	m := msgs[0]
	// Header: reserved, syncid, size, count, version, spare.
	if wantLen := 8 + 3*36 + 72; len(m) != wantLen || !bytes.Equal(m[:8], []byte{0, 9, byte(wantLen >> 8), byte(wantLen), 4, 1, 0, 0}) {
		t.Fatalf("header % x, length %d", m[:8], len(m))
	}
	id, got, err := Decode(m)
	if err != nil || id != 9 || !reflect.DeepEqual(got, conns) {
		t.Errorf("Decode: %v %d\n got %+v\nwant %+v", err, id, got, conns)
	}

	// Small messages split; every message stays within its bound and they
	// carry all connections in order.
	many := make([]Conn, 0, 600)
	for i := range 600 {
		c := conns[i%len(conns)]
		c.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(i))
		many = append(many, c)
	}
	for _, max := range []int{44, 100, 1000, 0} {
		var all []Conn
		for _, m := range Encode(1, many, max) {
			if max > 0 && len(m) > max && len(m) > 8+72 {
				t.Errorf("maxLen %d: a message of %d bytes", max, len(m))
			}
			_, cs, err := Decode(m)
			if err != nil {
				t.Fatalf("maxLen %d: %v", max, err)
			}
			if len(cs) > 255 {
				t.Errorf("%d connections in one message", len(cs))
			}
			all = append(all, cs...)
		}
		if !reflect.DeepEqual(all, many) {
			t.Errorf("maxLen %d: connections differ after the round trip", max)
		}
	}
	if Encode(1, nil, 0) != nil {
		t.Error("messages for no connections")
	}
}

func TestDecodeErrors(t *testing.T) {
	conns, _ := ParseProc(strings.NewReader(procSample))
	good := Encode(1, Handover(conns, handoverTable()), 0)[0]
	for name, mutate := range map[string]func([]byte) []byte{
		"short":        func(b []byte) []byte { return b[:7] },
		"size field":   func(b []byte) []byte { return b[:len(b)-4] },
		"version 0":    func(b []byte) []byte { b[5] = 0; return b },
		"reserved":     func(b []byte) []byte { b[0] = 1; return b },
		"count":        func(b []byte) []byte { b[4] = 9; return b },
		"conn version": func(b []byte) []byte { b[10] |= 0x10; return b },
		"conn size":    func(b []byte) []byte { b[11] = 8; return b },
	} {
		b := mutate(append([]byte(nil), good...))
		if _, _, err := Decode(b); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseProc(f *testing.F) {
	f.Add(procSample)
	f.Fuzz(func(t *testing.T, s string) {
		conns, err := ParseProc(strings.NewReader(s))
		if err != nil {
			return
		}
		// What parses encodes and decodes to itself.
		for i := range conns {
			conns[i].Expires = 0
			if conns[i].Client.Addr().Is4() != conns[i].Virtual.Addr().Is4() || conns[i].Client.Addr().Is4() != conns[i].Dest.Addr().Is4() {
				return // mixed families: not a line the kernel prints
			}
		}
		var all []Conn
		for _, m := range Encode(3, conns, 0) {
			_, cs, err := Decode(m)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			all = append(all, cs...)
		}
		if len(all) != len(conns) || (len(all) > 0 && !reflect.DeepEqual(all, conns)) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", all, conns)
		}
	})
}

func FuzzDecode(f *testing.F) {
	conns, _ := ParseProc(strings.NewReader(procSample))
	f.Add(Encode(1, Handover(conns, handoverTable()), 0)[0])
	f.Add([]byte{0, 1, 0, 8, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, cs, err := Decode(b)
		if err != nil {
			return
		}
		if len(cs) > 255 {
			t.Fatalf("%d connections", len(cs))
		}
		_ = id
	})
}

// BenchmarkHandover100k reads, filters and encodes a table of 100,000
// established connections, as a graceful handover does (the figure is in
// docs/benchmarks.md; sending is the kernel's).
func BenchmarkHandover100k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n")
	for i := range 100000 {
		fmt.Fprintf(&sb, "TCP C0%06X %04X C6336401 0050 C000021%d 0050 ESTABLISHED     897\n", i>>8, i&0xffff, 4+i%2)
	}
	proc := sb.String()
	tbl := handoverTable()
	b.SetBytes(int64(len(proc)))
	b.ReportAllocs()
	for b.Loop() {
		conns, err := ParseProc(strings.NewReader(proc))
		if err != nil {
			b.Fatal(err)
		}
		send := Handover(conns, tbl)
		if len(send) != 100000 {
			b.Fatalf("%d to send", len(send))
		}
		if msgs := Encode(1, send, 0); len(msgs) != (100000+39)/40 {
			b.Fatalf("%d messages", len(msgs))
		}
	}
}
