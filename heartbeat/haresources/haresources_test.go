package haresources

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `# haresources
linuxha1.linux-ha.org 192.168.85.3 httpd smb   # from seed 000
linuxha1 IPaddr::192.168.85.3 httpd smb maid::vacuum
NodeB 198.51.100.10/27/198.51.100.31 \
	IPaddr2::203.0.113.10/24/eth0/203.0.113.255 \
  lnoded::lnoded.cf Filesystem::/dev/sda1::/data1::ext2
node1 192.0.2.10 lnoded::lnoded.cf
node2 ldirectord::ldirectord.cf ldirectord
alssme_probe3 IPaddr::172.18.158.111/24/bond0 mysql
`
	c, err := Parse(strings.NewReader(in), "haresources")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range c.Groups {
		var rs []string
		for _, r := range g.Resources {
			rs = append(rs, r.String())
		}
		got = append(got, g.Node+"@"+strconv.Itoa(g.Line)+": "+strings.Join(rs, " "))
	}
	want := []string{
		"linuxha1.linux-ha.org@2: IPaddr::192.168.85.3 httpd smb",
		"linuxha1@3: IPaddr::192.168.85.3 httpd smb maid::vacuum",
		"nodeb@4: IPaddr::198.51.100.10/27/198.51.100.31 IPaddr2::203.0.113.10/24/eth0/203.0.113.255 lnoded::lnoded.cf Filesystem::/dev/sda1::/data1::ext2",
		"node1@7: IPaddr::192.0.2.10 lnoded::lnoded.cf",
		"node2@8: ldirectord::ldirectord.cf ldirectord",
		"alssme_probe3@9: IPaddr::172.18.158.111/24/bond0 mysql",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	g := c.Groups[2]
	if g.Key() != "198.51.100.10/27/198.51.100.31" {
		t.Errorf("key = %q", g.Key())
	}
	ip1 := IPAddr{Addr: netip.MustParseAddr("198.51.100.10"), PrefixLen: 27, Broadcast: netip.MustParseAddr("198.51.100.31")}
	ip2 := IPAddr{Addr: netip.MustParseAddr("203.0.113.10"), PrefixLen: 24, Interface: "eth0", Broadcast: netip.MustParseAddr("203.0.113.255")}
	if *g.Resources[0].IP != ip1 || *g.Resources[1].IP != ip2 {
		t.Errorf("ips = %+v %+v", *g.Resources[0].IP, *g.Resources[1].IP)
	}
	if g.Resources[0].Script != IPaddr || g.Resources[1].Script != IPaddr2 || g.Resources[2].Script != Lnoded {
		t.Errorf("scripts = %+v", g.Resources)
	}
	if ip := c.Groups[5].Resources[0].IP; ip.Interface != "bond0" || ip.PrefixLen != 24 || ip.Broadcast.IsValid() {
		t.Errorf("bond0 ip = %+v", ip)
	}
	if ip := c.Groups[0].Resources[0].IP; ip.PrefixLen != -1 || ip.Interface != "" {
		t.Errorf("bare ip = %+v", ip)
	}
	if err := c.CheckNodes(func(n string) bool { return n != "node2" }); err == nil || err.Error() != `haresources:8: node "node2" is not declared with "node" in ha.cf` {
		t.Errorf("CheckNodes = %v", err)
	}
}

// A backslash joins lines without inserting a blank, as sed does.
func TestContinuationJoinsVerbatim(t *testing.T) {
	c, err := Parse(strings.NewReader("n1 http\\\nd smb\\\n"), "haresources")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Groups) != 1 || c.Groups[0].Resources[0].Word != "httpd" || len(c.Groups[0].Resources) != 2 {
		t.Errorf("groups = %+v", c.Groups)
	}
}

func TestLooksLikeIP(t *testing.T) {
	for w, want := range map[string]bool{
		"192.0.2.1": true, "192.0.2.1/24/eth0": true, "1.2.3.4x": true, "10.0.0.170": true,
		"httpd": false, "1.2.3": false, "a.1.2.3": false, "1...2": false, "1.a.b.c": false, "": false,
	} {
		if got := looksLikeIP(w); got != want {
			t.Errorf("looksLikeIP(%q) = %v", w, got)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"node1\n", "haresources:1: node \"node1\" has no resources"},
		{"n1 a\n\nn2 b\\\n c\nn3 ::x\n", "haresources:5: resource \"::x\" has no script name"},
		{"n1 a::\n", "haresources:1: resource \"a::\" has an empty argument"},
		{"n1 a\nn2 a b\n", "haresources:2: first resource \"a\" already starts the group on line 1"},
		{"n1 IPaddr\n", "haresources:1: resource \"IPaddr\": IPaddr takes one argument"},
		{"n1 IPaddr::1.2.3.4::x\n", "haresources:1: resource \"IPaddr::1.2.3.4::x\": IPaddr takes one argument"},
		{"n1 IPaddr::a.b.c.d\n", "haresources:1: resource \"IPaddr::a.b.c.d\": \"a.b.c.d\" is not an IPv4 address"},
		{"n1 1.2.3.4x\n", "haresources:1: resource \"1.2.3.4x\": \"1.2.3.4x\" is not an IPv4 address"},
		{"n1 IPaddr::2001:db8::1\n", "haresources:1: resource \"IPaddr::2001:db8::1\": IPaddr takes one argument"},
		{"n1 192.0.2.1/33\n", "haresources:1: resource \"192.0.2.1/33\": prefix length \"33\" is not 0..32"},
		{"n1 192.0.2.1/24/eth0/x\n", "haresources:1: resource \"192.0.2.1/24/eth0/x\": broadcast \"x\" is not an address"},
		{"n1 192.0.2.1/24/eth0/1.2.3.4/5\n", "haresources:1: resource \"192.0.2.1/24/eth0/1.2.3.4/5\": \"192.0.2.1/24/eth0/1.2.3.4/5\" has too many"},
		{"n1 192.0.2.1//eth0\n", "haresources:1: resource \"192.0.2.1//eth0\": prefix length \"\""},
		{"n1 lnoded\n", "haresources:1: resource \"lnoded\": lnoded takes one argument"},
		{"n1 ldirectord::a::b\n", "haresources:1: resource \"ldirectord::a::b\": ldirectord takes at most one"},
		{"n1 ../x\n", "haresources:1: resource \"../x\": script name \"../x\" may not contain"},
		{"n1 a\n" + strings.Repeat("x", maxLine+1), "haresources:2: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.in), "haresources")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%.40q) = %v\nwant prefix %q", tt.in, err, tt.want)
		}
	}
}

// "::" separates arguments, so an IPv6 address can only be written in
// full, as with Heartbeat's ResourceManager.
func TestIPaddr2IPv6(t *testing.T) {
	if _, err := ParseResource("IPaddr2::2001:db8::10/64/eth0"); err == nil {
		t.Error("compressed IPv6 address accepted")
	}
	r, err := ParseResource("IPaddr2::2001:db8:0:0:0:0:0:10/64/eth0")
	if err != nil {
		t.Fatal(err)
	}
	if r.IP.Addr != netip.MustParseAddr("2001:db8::10") || r.IP.PrefixLen != 64 || r.IP.Interface != "eth0" {
		t.Errorf("ip = %+v", r.IP)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "haresources")
	if err := os.WriteFile(p, []byte("node1 192.168.145.101 lnoded::lnoded.cf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || len(c.Groups) != 1 || c.Groups[0].Resources[1].Args[0] != "lnoded.cf" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Error("missing file loaded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("node1 192.168.145.101 lnoded::lnoded.cf\n")
	f.Add("n1 IPaddr2::203.0.113.10/24/eth0/203.0.113.255 \\\n httpd # c\n")
	f.Add("n1 IPaddr::198.51.100.1/27/198.51.100.31 Filesystem::/dev/sda1::/data\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in), "haresources")
		if err != nil {
			return
		}
		for _, g := range c.Groups {
			if len(g.Resources) == 0 || g.Node != lower(g.Node) {
				t.Fatalf("bad group %+v", g)
			}
			for _, r := range g.Resources {
				again, err := ParseResource(r.String())
				if err != nil || again.String() != r.String() {
					t.Fatalf("resource %q does not reparse: %v", r.String(), err)
				}
			}
		}
	})
}
