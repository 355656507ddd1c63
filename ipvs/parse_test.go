package ipvs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// walkThrough is /etc/sysconfig/ipvsadm from the LVS-DR walk-through
// (seed document 003), as an older ipvsadm saved it (unsorted).
const walkThrough = `-A -u 192.168.145.101:53 -s rr
-a -u 192.168.145.101:53 -r 192.168.145.201:53 -g -w 1
-a -u 192.168.145.101:53 -r 192.168.145.200:53 -g -w 1
-A -t 192.168.145.101:53 -s rr
-a -t 192.168.145.101:53 -r 192.168.145.201:53 -g -w 1
-a -t 192.168.145.101:53 -r 192.168.145.200:53 -g -w 1
-A -t 192.168.145.101:80 -s rr
-a -t 192.168.145.101:80 -r 192.168.145.200:80 -g -w 1
-a -t 192.168.145.101:80 -r 192.168.145.201:80 -g -w 1
`

func TestParseSaveWalkThrough(t *testing.T) {
	tbl, err := ParseSave(strings.NewReader(walkThrough))
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl) != 3 {
		t.Fatalf("%d services, want 3", len(tbl))
	}
	// Parsing keeps the file's order.
	if k := tbl[0].Key(); k.Protocol != UDP || k.Port != 53 {
		t.Errorf("first service %v, want the UDP :53 one", k)
	}
	for _, vs := range tbl {
		if vs.Scheduler != "rr" || len(vs.Destinations) != 2 || vs.Netmask != 0xffffffff {
			t.Errorf("service %v: %+v", vs.Key(), vs)
		}
		for _, d := range vs.Destinations {
			if d.Forward != Route || d.Weight != 1 || d.Port != vs.Port {
				t.Errorf("service %v destination %+v", vs.Key(), d)
			}
		}
	}
	var out bytes.Buffer
	if err := WriteSave(&out, tbl); err != nil {
		t.Fatal(err)
	}
	want := `-A -t 192.168.145.101:53 -s rr
-a -t 192.168.145.101:53 -r 192.168.145.200:53 -g -w 1
-a -t 192.168.145.101:53 -r 192.168.145.201:53 -g -w 1
-A -t 192.168.145.101:80 -s rr
-a -t 192.168.145.101:80 -r 192.168.145.200:80 -g -w 1
-a -t 192.168.145.101:80 -r 192.168.145.201:80 -g -w 1
-A -u 192.168.145.101:53 -s rr
-a -u 192.168.145.101:53 -r 192.168.145.200:53 -g -w 1
-a -u 192.168.145.101:53 -r 192.168.145.201:53 -g -w 1
`
	if out.String() != want {
		t.Errorf("saved:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestSaveRoundTrip: what WriteSave writes, ParseSave reads back to a table
// that saves identically.
func TestSaveRoundTrip(t *testing.T) {
	var first bytes.Buffer
	if err := WriteSave(&first, sampleTable()); err != nil {
		t.Fatal(err)
	}
	tbl, err := ParseSave(bytes.NewReader(first.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, first.String())
	}
	var second bytes.Buffer
	if err := WriteSave(&second, tbl); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("round trip changed the table:\n%s\nvs\n%s", first.String(), second.String())
	}
}

func TestParseSaveOptions(t *testing.T) {
	in := `# comment and blank lines are skipped

--add-service --tcp-service 10.0.0.1:80 --scheduler wlc --persistent
-a -t 10.0.0.1:80 -r 10.0.0.2 -x 100 -y 10 -w 5
-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m
-A -f 5 -6 -s sh -b sh-port -p 60 -M 48
-a -f 5 -6 -r [2001:db8::5]:0 -g
-A -u 10.0.0.9:53 -s rr -o
-a -u 10.0.0.9:53 -r 10.0.0.10 -i --tun-type gue --tun-port 6080 --tun-csum
-E -u 10.0.0.9:53 -s wrr -o
-e -u 10.0.0.9:53 -r 10.0.0.10 -i -w 9 --tun-type gre --tun-remcsum
`
	tbl, err := ParseSave(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl) != 3 {
		t.Fatalf("%d services", len(tbl))
	}
	s := tbl[0]
	if s.Scheduler != "wlc" || s.Flags != FlagPersistent || s.Timeout != 300 {
		t.Errorf("service 0: %+v", s.Service)
	}
	if d := s.Destinations[0]; d.Port != 80 || d.Weight != 5 || d.UpperThreshold != 100 || d.LowerThreshold != 10 || d.Forward != Route {
		t.Errorf("dest 0: %+v", d)
	}
	if d := s.Destinations[1]; d.Port != 8080 || d.Forward != Masq || d.Weight != 1 {
		t.Errorf("dest 1: %+v", d)
	}
	f := tbl[1]
	if f.Family != IPv6 || f.FWMark != 5 || f.Flags != FlagPersistent|FlagSHPort || f.Netmask != 48 || f.Timeout != 60 {
		t.Errorf("fwmark service: %+v", f.Service)
	}
	u := tbl[2]
	if u.Scheduler != "wrr" || u.Flags != FlagOnePacket {
		t.Errorf("edited service: %+v", u.Service)
	}
	if d := u.Destinations[0]; d.Forward != Tunnel || d.TunnelType != TunnelGRE || d.TunnelFlags != TunnelRemCsum || d.Weight != 9 || d.Port != 53 {
		t.Errorf("edited tunnel dest: %+v", d)
	}
}

func TestParseSaveErrors(t *testing.T) {
	tests := []struct {
		in   string
		line int
		msg  string
	}{
		{"-A -t 10.0.0.1:80 -s rr\n-X\n", 2, "expected a command"},
		{"-A -t 10.0.0.1:80 -s rr\n\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 2147483648\n", 3, "expected a weight from 0 to 2147483647"},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2\n", 1, "service -t 10.0.0.1:80 is not defined"},
		{"-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n", 2, "already exists"},
		{"-A -t www.example.com:80\n", 1, "expected a numeric address"},
		{"-A -t 10.0.0.1:http\n", 1, "expected a numeric port"},
		{"-A -t 10.0.0.1:80 -s\n", 1, "option -s expects a value"},
		{"-A -s rr\n", 1, "expected a service"},
		{"-A -t 10.0.0.1:0 -s rr\n", 1, "port 0 is only allowed for persistent services"},
		{"-A -t 10.0.0.1:80 -p 0\n", 1, "expected a persistence timeout"},
		{"-A -t 10.0.0.1:80 -M 300.0.0.0\n", 1, "expected an IPv4 netmask"},
		{"-A -t [2001:db8::1]:80 -p -M 129\n", 1, "expected an IPv6 netmask from 1 to 128"},
		{"-A -t 10.0.0.1:80 -o\n", 1, "one-packet scheduling"},
		{"-A -t 10.0.0.1:80 -b sh-port\n", 1, "expected scheduler flags"},
		{"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -g --tun-type gue\n", 2, "tunnel options need"},
		{"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue\n", 2, "expects --tun-port"},
		{"-A -t 10.0.0.1:80 -w 3\n", 1, "option -w is not allowed"},
		{"-A -t 10.0.0.1:80 -s rr -s wrr\n", 1, "given twice"},
		{"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r [2001:db8::1]:80\n", 2, "different address family"},
		{"-A -f 0\n", 1, "expected a firewall mark"},
		{"-A -t 10.0.0.1:80 -A\n", 1, "more than one command"},
		{"-A -t 10.0.0.1:80\n-d -t 10.0.0.1:80 -r 10.0.0.9\n", 2, "no such destination"},
		{"-A -t 10.0.0.1:80\n-A -u 10.0.0.1:53 -6\n", 2, "-6 is only for fwmark"},
	}
	for _, tt := range tests {
		tbl, err := ParseSave(strings.NewReader(tt.in))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %v, want a ParseError", tt.in, err)
			continue
		}
		if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
			t.Errorf("%q: got %q, want line %d containing %q", tt.in, err, tt.line, tt.msg)
		}
		if tbl != nil {
			t.Errorf("%q: a table came back with the error", tt.in)
		}
	}
}

func TestParseSaveClearAndDelete(t *testing.T) {
	in := `-A -t 10.0.0.1:80
-a -t 10.0.0.1:80 -r 10.0.0.2
-C
-A -t 10.0.0.5:80
-A -t 10.0.0.6:80
-a -t 10.0.0.6:80 -r 10.0.0.7
-a -t 10.0.0.6:80 -r 10.0.0.8
-d -t 10.0.0.6:80 -r 10.0.0.7
-D -t 10.0.0.5:80
`
	tbl, err := ParseSave(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl) != 1 || tbl[0].Addr != mustAddr("10.0.0.6") || len(tbl[0].Destinations) != 1 || tbl[0].Destinations[0].Addr != mustAddr("10.0.0.8") {
		t.Errorf("table %+v", tbl)
	}
}

// FuzzParseSave: the parser never panics, and whatever it accepts saves to
// text that parses back to a table that saves identically.
func FuzzParseSave(f *testing.F) {
	f.Add(walkThrough)
	f.Add("-A -f 5 -6 -s sh -b sh-port -p 60 -M 48\n-a -f 5 -6 -r [2001:db8::5]:0 -g\n")
	f.Add("-A -u 10.0.0.9:53 -s rr -o\n-a -u 10.0.0.9:53 -r 10.0.0.10 -i --tun-type gue --tun-port 6080 --tun-csum\n")
	f.Add("-A -t 10.0.0.1:80 -p\n-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -x 5 -y 1\n-C\n")
	f.Fuzz(func(t *testing.T, in string) {
		tbl, err := ParseSave(strings.NewReader(in))
		if err != nil {
			return
		}
		var a, b bytes.Buffer
		if err := WriteSave(&a, tbl); err != nil {
			t.Fatal(err)
		}
		tbl2, err := ParseSave(bytes.NewReader(a.Bytes()))
		if err != nil {
			t.Fatalf("saved output does not parse: %v\n%s", err, a.String())
		}
		if err := WriteSave(&b, tbl2); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Fatalf("not stable:\n%s\nvs\n%s", a.String(), b.String())
		}
	})
}
