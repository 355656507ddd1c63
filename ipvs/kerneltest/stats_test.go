package kerneltest

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/testbed/netns"
)

// TestStatsWithTraffic sends real connections through a virtual service
// (a local client to a VIP on a dummy interface, scheduled to a local
// listener) and checks our counters against ipvsadm's --stats, --exact.
func TestStatsWithTraffic(t *testing.T) {
	h := open(t)
	ip(t, "link", "set", "lo", "up")
	ip(t, "link", "add", "ipvsvip0", "type", "dummy")
	t.Cleanup(func() { ip(t, "link", "del", "ipvsvip0") })
	ip(t, "addr", "add", "198.51.100.1/32", "dev", "ipvsvip0")
	ip(t, "addr", "add", "198.51.100.2/32", "dev", "ipvsvip0")
	ip(t, "link", "set", "ipvsvip0", "up")

	ln, err := net.Listen("tcp", "198.51.100.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer netns.Serve(ln, netns.Echo)()
	desired := ipvs.Table{{
		Service:      ipvs.Service{Protocol: ipvs.TCP, Addr: addr("198.51.100.1"), Port: 80, Scheduler: "rr"},
		Destinations: []ipvs.Destination{{Addr: addr("198.51.100.2"), Port: 8080, Forward: ipvs.Masq, Weight: 1}},
	}}
	if _, err := ipvs.Reconcile(ctx(t), h, desired, nil); err != nil {
		t.Fatal(err)
	}
	const conns = 5
	payload := bytes.Repeat([]byte("x"), 10000)
	for range conns {
		c, err := net.DialTimeout("tcp", "198.51.100.1:80", 10*time.Second)
		if err != nil {
			t.Fatalf("dial through IPVS: %v", err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, len(payload))); err != nil {
			t.Fatalf("echo through IPVS: %v", err)
		}
		c.Close()
	}
	// The kernel folds per-CPU counters into the exported ones every 2 s.
	var tbl ipvs.Table
	deadline := time.Now().Add(10 * time.Second)
	for {
		tbl, err = h.Table(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if s := tbl[0].Stats; s.Conns == conns && s.InBytes >= conns*10000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	s, d := tbl[0].Stats, tbl[0].Destinations[0].Stats
	if s.Conns != conns || s.InPkts == 0 || s.OutPkts == 0 || s.InBytes < conns*10000 || s.OutBytes < conns*10000 {
		t.Errorf("service stats %+v after %d echoed connections of %d bytes", s, conns, len(payload))
	}
	if d != s {
		t.Errorf("destination stats %+v, service %+v", d, s)
	}
	// Rates are estimates; they only have to be read. Compare the listing
	// with ipvsadm's right after our read; counters only move with traffic,
	// and there is none now.
	info, err := h.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err = h.Table(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range listings[:2] {
		if l.opts.Format != ipvs.ListStats {
			continue
		}
		for _, exact := range []bool{false, true} {
			args := append([]string(nil), l.args...)
			o := l.opts
			if exact {
				args, o.Exact = append(args, "--exact"), true
			}
			var got bytes.Buffer
			if err := ipvs.WriteList(&got, info, tbl, o); err != nil {
				t.Fatal(err)
			}
			if want := ipvsadm(t, "", args...); got.String() != want {
				t.Errorf("ipvsadm %s:\n%s", strings.Join(args, " "), diff(want, got.String()))
			}
		}
	}
	if err := h.Zero(ctx(t)); err != nil {
		t.Fatal(err)
	}
	tbl, err = h.Table(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if tbl[0].Stats != (ipvs.Stats{}) {
		t.Errorf("after Zero: %+v", tbl[0].Stats)
	}
}
