package kerneltest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/directord/directord/ipvs"
)

// referenceTable is built with ipvsadm itself: the walk-through's DR
// services (TCP :80, TCP and UDP :53, rr and wrr, weight 0), plus what the
// formats must get right: fwmark (IPv4 and IPv6), IPv6 addresses,
// persistence with netmasks, one-packet scheduling, scheduler flags, SCTP,
// masquerading and tunnels, thresholds, the largest weight, and addresses
// whose order depends on libipvs's modular comparison (10.x after 192.x).
const referenceTable = `-A -t 192.0.2.101:80 -s rr
-a -t 192.0.2.101:80 -r 192.0.2.201:80 -g -w 1
-a -t 192.0.2.101:80 -r 192.0.2.200:80 -g -w 0
-a -t 192.0.2.101:80 -r 203.0.113.207:80 -g -w 3 -x 100 -y 10
-A -t 192.0.2.101:53 -s wrr
-a -t 192.0.2.101:53 -r 192.0.2.200 -g -w 1
-a -t 192.0.2.101:53 -r 192.0.2.201 -g -w 2
-A -u 192.0.2.101:53 -s wrr
-a -u 192.0.2.101:53 -r 192.0.2.201 -g -w 2
-a -u 192.0.2.101:53 -r 192.0.2.200 -g -w 1
-A -t 203.0.113.1:443 -s wlc -p 300
-a -t 203.0.113.1:443 -r 203.0.113.11:8443 -m -w 2147483647
-a -t 203.0.113.1:443 -r 203.0.113.12:443 -i -w 5 -x 7
-A -u 203.0.113.1:0 -s sh -b sh-fallback,sh-port -p 60 -M 255.255.255.0 -o
-a -u 203.0.113.1:0 -r 203.0.113.13:0 -g
-A -u 203.0.113.2:53 -s wrr -o
-A -t [2001:db8::1]:80 -s rr -p 1800 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8::20]:80 -g -w 4 -x 9 -y 3
-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m -w 1
-A -f 1 -s mh -b mh-port
-a -f 1 -r 192.0.2.201:0 -g -w 1
-a -f 1 -r 192.0.2.200:0 -g -w 1
-A -f 2 -6 -s rr -b flag-3 -p 30 -M 96
-a -f 2 -6 -r [2001:db8::30]:0 -g -w 1
-A --sctp-service 203.0.113.3:99 -s rr
-a --sctp-service 203.0.113.3:99 -r 203.0.113.4 -i --tun-type gue --tun-port 5555 --tun-csum
-a --sctp-service 203.0.113.3:99 -r 203.0.113.5 -i --tun-type gre
-a --sctp-service 203.0.113.3:99 -r 203.0.113.6 -i
-a --sctp-service 203.0.113.3:99 -r 203.0.113.7 -i --tun-type gue --tun-port 5556 --tun-remcsum
-a --sctp-service 203.0.113.3:99 -r 203.0.113.8 -i --tun-type gre --tun-csum
`

var listings = []struct {
	args []string
	opts ipvs.ListOptions
}{
	{[]string{"-L", "-n"}, ipvs.ListOptions{}},
	{[]string{"-L", "-n", "--stats"}, ipvs.ListOptions{Format: ipvs.ListStats}},
	{[]string{"-L", "-n", "--rate"}, ipvs.ListOptions{Format: ipvs.ListRate}},
	{[]string{"-L", "-n", "--thresholds"}, ipvs.ListOptions{Format: ipvs.ListThresholds}},
	{[]string{"-L", "-n", "--persistent-conn"}, ipvs.ListOptions{Format: ipvs.ListPersistentConn}},
	{[]string{"-L", "-n", "--stats", "--exact"}, ipvs.ListOptions{Format: ipvs.ListStats, Exact: true}},
	{[]string{"-L", "-n", "--rate", "--exact"}, ipvs.ListOptions{Format: ipvs.ListRate, Exact: true}},
	{[]string{"-L", "-n", "--nosort"}, ipvs.ListOptions{NoSort: true}},
	{[]string{"-L", "-n", "--tun-info"}, ipvs.ListOptions{Format: ipvs.ListTunInfo}},
}

// compareAll checks every listing and the save format of the kernel's
// current table against ipvsadm's, byte for byte.
func compareAll(t *testing.T, h *ipvs.Handle) {
	t.Helper()
	info, err := h.Info(ctx(t))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	tbl, err := h.Table(ctx(t))
	if err != nil {
		t.Fatalf("Table: %v", err)
	}
	for _, l := range listings {
		want := ipvsadm(t, "", l.args...)
		var got bytes.Buffer
		if err := ipvs.WriteList(&got, info, tbl, l.opts); err != nil {
			t.Fatal(err)
		}
		if got.String() != want {
			t.Errorf("ipvsadm %s differs:\n%s", strings.Join(l.args, " "), diff(want, got.String()))
		}
	}
	want := ipvsadm(t, "", "-S", "-n")
	var got bytes.Buffer
	if err := ipvs.WriteSave(&got, tbl); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("ipvsadm -S -n differs:\n%s", diff(want, got.String()))
	}
}

func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		mark := " "
		if wl != gl {
			mark = "!"
		}
		fmt.Fprintf(&b, "%s ipvsadm %q\n%s ours    %q\n", mark, wl, mark, gl)
	}
	return b.String()
}

// TestListMatchesIpvsadm: a table made by ipvsadm, read by our backend and
// printed by our formats, equals ipvsadm's own output for every listing
// option and for -S -n.
func TestListMatchesIpvsadm(t *testing.T) {
	h := open(t)
	ipvsadm(t, referenceTable, "-R")
	compareAll(t, h)

	// The header comes from the kernel, not from constants.
	info, err := h.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(ipvsadm(t, "", "-L", "-n"), "\n", 2)[0]
	if want := fmt.Sprintf("IP Virtual Server version %s (size=%d)", info.VersionString(), info.ConnTableSize); first != want {
		t.Errorf("header %q, want %q", first, want)
	}
	if info.ConnTableSize == 0 || info.Version == 0 {
		t.Errorf("info %+v", info)
	}
}

// TestEmptyTable: an empty table lists as ipvsadm lists it.
func TestEmptyTable(t *testing.T) {
	h := open(t)
	compareAll(t, h)
}

// TestParseSaveOfIpvsadm: ipvsadm's own save output parses, and applying
// it with our Reconcile to an empty table recreates the same table.
func TestParseSaveOfIpvsadm(t *testing.T) {
	h := open(t)
	ipvsadm(t, referenceTable, "-R")
	saved := ipvsadm(t, "", "-S", "-n")
	tbl, err := ipvs.ParseSave(strings.NewReader(saved))
	if err != nil {
		t.Fatalf("ParseSave of ipvsadm -S -n: %v\n%s", err, saved)
	}
	if err := h.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := ipvs.Reconcile(ctx(t), h, tbl, nil); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if again := ipvsadm(t, "", "-S", "-n"); again != saved {
		t.Errorf("restored table differs:\n%s", diff(saved, again))
	}
}
