package kerneltest

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/ipvs/connsync"
	"github.com/directord/directord/testbed/netns"
)

// TestConnHandover: real connections through director d1's IPVS are read
// from its /proc table, encoded by connsync and sent to the sync group; the
// backup sync daemon of director d2 (another namespace on the same LAN)
// must install them, so that d2 forwards them after a handover.
func TestConnHandover(t *testing.T) {
	ds := lanDirectors(t)
	var hs [2]*ipvs.Handle
	for i := range ds {
		must(t, ds[i].AddDummy("vip0"))
		must(t, ds[i].AddAddr("vip0", netip.MustParsePrefix("198.51.100.1/32")))
		must(t, ds[i].AddAddr("vip0", netip.MustParsePrefix("198.51.100.2/32")))
		must(t, ds[i].Do(func() (err error) { hs[i], err = ipvs.Open(); return err }))
		h := hs[i]
		t.Cleanup(func() { h.Close() })
		tbl := ipvs.Table{{
			Service:      ipvs.Service{Protocol: ipvs.TCP, Addr: addr("198.51.100.1"), Port: 80, Scheduler: "rr"},
			Destinations: []ipvs.Destination{{Addr: addr("198.51.100.2"), Port: 8080, Forward: ipvs.Masq, Weight: 1}},
		}}
		if _, err := ipvs.Reconcile(ctx(t), h, tbl, nil); err != nil {
			t.Fatal(err)
		}
	}
	const syncID = 5
	if err := hs[1].StartDaemon(ctx(t), ipvs.Daemon{State: ipvs.DaemonBackup, Interface: "eth0", SyncID: syncID}); err != nil {
		t.Fatalf("backup on d2: %v", err)
	}
	t.Cleanup(func() { hs[1].StopDaemon(ctx(t), ipvs.DaemonBackup) })

	// Three connections held open through d1's service (a local client,
	// a local real server: the table is what matters here).
	ln, err := ds[0].Listen("tcp", "198.51.100.2:8080")
	must(t, err)
	defer netns.Serve(ln, netns.Echo)()
	var ports []uint16
	for range 3 {
		c, err := ds[0].Dial(ctx(t), "tcp", "198.51.100.1:80")
		must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 6)); err != nil {
			t.Fatalf("echo through IPVS: %v", err)
		}
		ports = append(ports, uint16(c.LocalAddr().(*net.TCPAddr).Port))
	}

	var own []connsync.Conn
	must(t, ds[0].Do(func() error {
		f, err := os.Open("/proc/thread-self/net/ip_vs_conn")
		if err != nil {
			return err
		}
		defer f.Close()
		own, err = connsync.ParseProc(f)
		return err
	}))
	tbl, err := hs[0].Table(ctx(t))
	must(t, err)
	send := connsync.Handover(own, tbl)
	if len(send) != 3 {
		t.Fatalf("d1's table %+v: %d to hand over, want the 3 established connections", own, len(send))
	}
	for _, c := range send {
		if c.State != 1 || c.Virtual != netip.MustParseAddrPort("198.51.100.1:80") || c.Dest != netip.MustParseAddrPort("198.51.100.2:8080") {
			t.Errorf("read from /proc: %+v", c)
		}
	}
	must(t, ds[0].Do(func() error {
		return connsync.Send(ctx(t), "eth0", netip.Addr{}, 0, connsync.Encode(syncID, send, 0))
	}))

	// d2's backup installs them: its table lists the same client ports.
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for {
		must(t, ds[1].Do(func() error {
			b, err := os.ReadFile("/proc/thread-self/net/ip_vs_conn")
			got = string(b)
			return err
		}))
		n := 0
		for _, p := range ports {
			if strings.Contains(got, fmt.Sprintf(" %04X C6336401 0050 C6336402 1F90 ESTABLISHED ", p)) {
				n++
			}
		}
		if n == len(ports) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("d2's connection table after the handover (client ports %v):\n%s", ports, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("d2's connection table:\n%s", got)
	parsed, err := connsync.ParseProc(strings.NewReader(got))
	if err != nil || len(parsed) != 3 {
		t.Errorf("parsing d2's table: %v, %d connections", err, len(parsed))
	}
}

// lanDirectors makes two hosts, d1 and d2, on one LAN switch, with eth0
// 192.0.2.1/24 and 192.0.2.2/24: a director pair for the sync daemon.
func lanDirectors(tb testing.TB) [2]*netns.Host {
	tb.Helper()
	topo := netns.ForTest(tb)
	lan, err := topo.Switch("lan")
	must(tb, err)
	var ds [2]*netns.Host
	for i := range ds {
		ds[i], err = topo.Host(fmt.Sprintf("d%d", i+1))
		must(tb, err)
		_, err = topo.Plug(ds[i], "eth0", lan)
		must(tb, err)
		must(tb, ds[i].AddAddr("eth0", netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", i+1))))
	}
	return ds
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
