package kerneltest

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/ipvs/connsync"
)

// BenchmarkProcConnRead measures what a handover's first step costs the
// kernel: reading /proc/net/ip_vs_conn with n connections in the table
// (installed through a backup sync daemon, as a peer's would be). The file
// gives at most a page per read(2) and each read walks the connection
// table from its start to where the last one stopped, so the cost grows
// faster than n; the per-connection figure shows by how much.
//
//	go test -run '^$' -bench ProcConnRead -benchtime 3x ./ipvs/kerneltest
func BenchmarkProcConnRead(b *testing.B) {
	for _, n := range []int{1000, 4000, 16000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchProcConnRead(b, n) })
	}
}

func benchProcConnRead(b *testing.B, n int) {
	ds := lanDirectors(b)
	var h *ipvs.Handle
	must(b, ds[1].Do(func() (err error) { h, err = ipvs.Open(); return err }))
	b.Cleanup(func() { h.Close() })
	virtual := netip.MustParseAddrPort("198.51.100.1:80")
	dest := netip.MustParseAddrPort("203.0.113.1:80")
	tbl := ipvs.Table{{
		Service:      ipvs.Service{Protocol: ipvs.TCP, Addr: virtual.Addr(), Port: virtual.Port(), Scheduler: "rr"},
		Destinations: []ipvs.Destination{{Addr: dest.Addr(), Port: dest.Port(), Forward: ipvs.Route, Weight: 1}},
	}}
	if _, err := ipvs.Reconcile(ctx(b), h, tbl, nil); err != nil {
		b.Fatal(err)
	}
	const syncID = 9
	must(b, h.StartDaemon(ctx(b), ipvs.Daemon{State: ipvs.DaemonBackup, Interface: "eth0", SyncID: syncID}))
	b.Cleanup(func() { h.StopDaemon(ctx(b), ipvs.DaemonBackup) })

	// Installed in batches, each waited for: a burst of thousands of
	// messages would overflow the backup's socket.
	const batch = 500
	for from := 0; from < n; from += batch {
		var conns []connsync.Conn
		for i := from; i < min(from+batch, n); i++ {
			client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i/60000)}), uint16(1024+i%60000))
			conns = append(conns, connsync.Conn{Protocol: ipvs.TCP, Client: client, Virtual: virtual, Dest: dest, State: 1, Flags: uint32(ipvs.Route), Timeout: 900})
		}
		must(b, ds[0].Do(func() error {
			return connsync.Send(ctx(b), "eth0", netip.Addr{}, 0, connsync.Encode(syncID, conns, 0))
		}))
		want := min(from+batch, n)
		deadline := time.Now().Add(30 * time.Second)
		for got := 0; got < want; {
			must(b, ds[1].Do(func() error {
				data, err := os.ReadFile("/proc/thread-self/net/ip_vs_conn")
				got = bytes.Count(data, []byte("\n")) - 1
				return err
			}))
			if got < want && time.Now().After(deadline) {
				b.Fatalf("the backup installed %d of %d connections in 30 s", got, want)
			}
		}
	}

	var reads int
	for b.Loop() {
		must(b, ds[1].Do(func() error {
			f, err := os.Open("/proc/thread-self/net/ip_vs_conn")
			if err != nil {
				return err
			}
			defer f.Close()
			buf := make([]byte, 1<<20)
			reads = 0
			for {
				k, err := f.Read(buf)
				reads++
				if k == 0 || err != nil {
					return nil
				}
			}
		}))
	}
	perConn := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(n)
	b.ReportMetric(perConn, "ns/conn")
	b.ReportMetric(float64(reads), "reads/op")
}
