package kerneltest

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
)

// bigTable has nsvc TCP services with ndest direct-routing destinations.
func bigTable(nsvc, ndest int) ipvs.Table {
	var t ipvs.Table
	for i := range nsvc {
		vs := ipvs.VirtualService{Service: ipvs.Service{Protocol: ipvs.TCP,
			Addr: netip.AddrFrom4([4]byte{10, 100, byte(i / 250), byte(i%250 + 1)}), Port: 80, Scheduler: "wrr"}}
		for j := range ndest {
			vs.Destinations = append(vs.Destinations, ipvs.Destination{
				Addr: netip.AddrFrom4([4]byte{10, 200, byte(j), byte(i%250 + 1)}), Port: 80, Forward: ipvs.Route, Weight: int32(j + 1)})
		}
		t = append(t, vs)
	}
	return t
}

// programBoth programs tbl into an empty kernel table twice, once with our
// Reconcile on one handle and once with `ipvsadm -R` fed the same table in
// the save format, and returns both times. Each result is checked.
func programBoth(tb testing.TB, h *ipvs.Handle, tbl ipvs.Table) (ours, theirs time.Duration) {
	tb.Helper()
	var save strings.Builder
	if err := ipvs.WriteSave(&save, tbl); err != nil {
		tb.Fatal(err)
	}
	if err := h.Flush(ctx(tb)); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if _, err := ipvs.Reconcile(ctx(tb), h, tbl, nil); err != nil {
		tb.Fatal(err)
	}
	ours = time.Since(start)
	if got := ipvsadm(tb, "", "-S", "-n"); got != save.String() {
		tb.Fatalf("table programmed by Reconcile differs from the desired one")
	}

	if err := h.Flush(ctx(tb)); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(ipvsadmPath, "-R")
	cmd.Stdin = strings.NewReader(save.String())
	start = time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ipvsadm -R: %v: %s", err, out)
	}
	theirs = time.Since(start)
	if got := ipvsadm(tb, "", "-S", "-n"); got != save.String() {
		tb.Fatalf("table programmed by ipvsadm -R differs from the desired one")
	}
	return ours, theirs
}

// BenchmarkProgram1000x10 programs 1,000 services × 10 destinations (11,000
// netlink operations) into an empty table through package ipvs and through
// ipvsadm -R, in the same kernel, and reports both and their ratio:
//
//	go test -run '^$' -bench Program1000x10 -benchtime 3x ./ipvs/kerneltest
func BenchmarkProgram1000x10(b *testing.B) {
	h := open(b)
	tbl := bigTable(1000, 10)
	var ours, theirs time.Duration
	n := 0
	for b.Loop() {
		o, t := programBoth(b, h, tbl)
		ours += o
		theirs += t
		n++
	}
	b.ReportMetric(float64(ours.Milliseconds())/float64(n), "ipvs-ms/op")
	b.ReportMetric(float64(theirs.Milliseconds())/float64(n), "ipvsadm-R-ms/op")
	b.ReportMetric(float64(theirs)/float64(ours), "speedup")
	b.Logf("1000x10: ipvs %v, ipvsadm -R %v per run (%d runs)", ours/time.Duration(n), theirs/time.Duration(n), n)
	if err := h.Flush(ctx(b)); err != nil {
		b.Fatal(err)
	}
}
