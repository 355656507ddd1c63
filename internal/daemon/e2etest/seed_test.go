package e2etest

import (
	"strings"
	"testing"
	"time"
)

// TestSeed003HADir runs the appliance from /etc/ha.d files as seed 003 writes
// them (haresources "node1 192.0.2.100 lnoded::lnoded.cf", ha.cf with ucast
// links and auto_failback on): the VIP comes up on node1 as eth0:0, traffic
// flows through both real servers, `directord standby` moves it and node2
// holds it as eth0:0 too. Connection sync is on without a word in those
// files: node2's table receives node1's connections.
func TestSeed003HADir(t *testing.T) {
	a := newAppliance(t)
	n1, n2 := a.nodes[0], a.nodes[1]
	for i, n := range a.nodes {
		writeHADir(t, n.dir, i)
	}
	n1.start()
	n2.start()
	d := waitFor(t, "VIP on node1", coldStartBy, n1.hasVIP)
	t.Logf("cold start from ha.d: VIP on node1 %v after start", d.Round(time.Millisecond))
	// IPaddr's form: an ifconfig alias, eth0:0, as the seed shows it.
	if out, err := n1.host.CombinedOutput(execCommand("ip", "-o", "-4", "addr", "show", "dev", "eth0")); err != nil || !strings.Contains(string(out), "192.0.2.100/24 brd 192.0.2.255 scope global secondary eth0:0") {
		t.Errorf("VIP on node1 is not the eth0:0 alias IPaddr makes: %s %v", out, err)
	}
	waitFor(t, "both real servers in node1's table", 15*time.Second, func() bool {
		out := n1.ipvsadm("-Ln")
		return strings.Contains(out, "192.0.2.21:80") && strings.Contains(out, "192.0.2.22:80")
	})
	tr := a.startTraffic(20 * time.Millisecond)
	time.Sleep(time.Second)
	sent, failed, _, firstErr := tr.stop()
	if sent == 0 || failed > 0 || len(tr.by) != 2 {
		t.Fatalf("traffic: %d sent, %d failed (%s), answered by %v", sent, failed, firstErr, tr.by)
	}
	// Connection sync is on by default (the group has an lnoded
	// resource), on the first heartbeat medium's interface, hb0: node2's
	// backup enters node1's connections in its own table.
	out, errOut, code := n1.cli("status", "--socket", n1.sock)
	if code != 0 || !strings.Contains(out, "192.0.2.100 (owner node1): running") || !strings.Contains(out, "IPVS sync daemon: master on hb0 (syncid 0)") {
		t.Errorf("status (exit %d, %s):\n%s", code, errOut, out)
	}
	if out2, _, _ := n2.cli("status", "--socket", n2.sock); !strings.Contains(out2, "IPVS sync daemon: backup on hb0 (syncid 0)") {
		t.Errorf("node2's sync daemon is not the backup on hb0:\n%s", out2)
	}
	tr = a.startTraffic(20 * time.Millisecond)
	d = waitFor(t, "client connections in node2's IPVS connection table (ha.d, sync by default)", 10*time.Second, func() bool {
		return strings.Contains(n2.ipvsadm("-Lnc"), "192.0.2.10:")
	})
	tr.stop()
	t.Logf("sync (ha.d defaults): node1's connections appeared on node2 within %v", d.Round(time.Millisecond))
	if _, _, code := n1.cli("standby", "--socket", n1.sock); code != 0 {
		t.Fatal("standby failed")
	}
	d = waitFor(t, "VIP on node2 after standby", 10*time.Second, func() bool { return n2.hasVIP() && !n1.hasVIP() })
	t.Logf("standby (ha.d): VIP on node2 in %v", d.Round(time.Millisecond))
	if out, _ := n2.host.CombinedOutput(execCommand("ip", "-o", "-4", "addr", "show", "dev", "eth0")); !strings.Contains(string(out), "eth0:0") {
		t.Errorf("VIP on node2 is not labelled eth0:0: %s", out)
	}
}
