package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/ipvs"
)

// sampleStatus is what a daemon holding one group answers: the table has
// one real server up, one quiescent (weight 0, down) and one configured real
// server absent from the kernel (down with quiescent=no).
func sampleStatus(now time.Time) *control.Status {
	svc := ipvs.Service{Protocol: ipvs.TCP, Addr: netip.MustParseAddr("192.0.2.100"), Port: 80, Scheduler: "wrr"}
	return &control.Status{
		Node: "node1", PID: 42, Version: "1.0", Started: now.Add(-90 * time.Second),
		HA: control.HA{Engine: true, State: "active", Resources: "local", AutoFailback: "on", Transitions: 1,
			Peers: []control.Peer{{Name: "node2", Status: "active", LastHeartbeat: now.Add(-200 * time.Millisecond),
				Links: []control.Link{{Name: "hb0", Status: "up"}, {Name: "eth0", Status: "dead"}}}},
			PingNodes: []control.PingNode{{Name: "192.0.2.254", Status: "up"}}},
		Groups: []control.Group{{Name: "IPaddr2::192.0.2.100/24/eth0", Owner: "node1", State: "running", Since: now.Add(-time.Minute),
			Resources: []control.Resource{{Name: "IPaddr2::192.0.2.100/24/eth0", Kind: "vip", State: "running"}, {Name: "lnoded::lnoded.cf", Kind: "lnoded", State: "running"}}}},
		Reals: []control.Real{
			{Service: svc.Key(), Addr: netip.MustParseAddr("198.51.100.10"), Port: 80, Health: "up", Since: now.Add(-time.Minute),
				Latency: 2345 * time.Microsecond, LastFailure: "HTTP 503", LastFailureTime: now.Add(-61 * time.Second)},
			{Service: svc.Key(), Addr: netip.MustParseAddr("198.51.100.11"), Port: 80, Health: "down", Since: now.Add(-time.Minute), LastFailure: "connection refused", Failures: 3},
			{Service: svc.Key(), Addr: netip.MustParseAddr("198.51.100.12"), Port: 80, Health: "down", LastFailure: "timeout"},
		},
		Sync: control.Sync{Enabled: true, State: "master", Interface: "hb0", SyncID: 7},
		IPVS: control.IPVS{Info: ipvs.Info{Version: 0x010201, ConnTableSize: 4096}, Table: ipvs.Table{{
			Service: svc,
			Destinations: []ipvs.Destination{
				{Addr: netip.MustParseAddr("198.51.100.10"), Port: 80, Forward: ipvs.Route, Weight: 1},
				{Addr: netip.MustParseAddr("198.51.100.11"), Port: 80, Forward: ipvs.Route, Weight: 0},
			},
		}}},
	}
}

func TestDaemonStatusView(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	st := sampleStatus(now)
	var b bytes.Buffer
	if err := writeDaemonStatus(&b, st, ipvs.ListOptions{}, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"directord 1.0 on node node1 (pid 42), up 1m30s\n",
		"  status: active, holding local resources (auto_failback on, 1 transitions)\n",
		"  peer node2: active, last heartbeat 0.2s ago\n",
		"    link hb0: up\n    link eth0: dead\n",
		"  ping node 192.0.2.254: up\n",
		"  IPVS sync daemon: master on hb0 (syncid 7)\n",
		"  IPaddr2::192.0.2.100/24/eth0 (owner node1): running since 11:59:00\n",
		"TCP  192.0.2.100:80 wrr\n",
		"Real servers not in the IPVS table:\n  -> 198.51.100.12:80",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// The table part is ipvsadm's layout with the check state appended:
	// removing the appended column gives WriteList's output back.
	var plain bytes.Buffer
	ipvs.WriteList(&plain, st.IPVS.Info, st.IPVS.Table, ipvs.ListOptions{})
	table := out[strings.Index(out, "IP Virtual Server"):strings.Index(out, "Real servers not in")]
	var stripped []string
	for _, l := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if i := strings.Index(l, "  up since"); i > 0 {
			l = strings.TrimRight(l[:i], " ") + " "
		}
		if i := strings.Index(l, "  down since"); i > 0 {
			l = strings.TrimRight(l[:i], " ") + " "
		}
		if i := strings.Index(l, "  Check"); i > 0 {
			l = strings.TrimRight(l[:i], " ")
		}
		stripped = append(stripped, l)
	}
	want := strings.Split(strings.TrimRight(plain.String(), "\n"), "\n")
	for i := range want {
		if i >= len(stripped) || strings.TrimRight(stripped[i], " ") != strings.TrimRight(want[i], " ") {
			t.Fatalf("table line %d differs from ipvsadm's layout:\n got %q\nwant %q", i, stripped[min(i, len(stripped)-1)], want[i])
		}
	}
	if !strings.Contains(out, "198.51.100.11:80             Route   0      0          0           down since 11:59:00: connection refused (3 checks in a row)\n") {
		t.Errorf("the down real server's line lacks its reason:\n%s", out)
	}
	// A recovered server keeps its last failure; the check's latency shows.
	if !strings.Contains(out, "up since 11:59:00, last failure 11:58:59: HTTP 503, check 2.3ms\n") {
		t.Errorf("the recovered real server's line lacks its last failure or latency:\n%s", out)
	}
}

func TestDaemonStatusJSON(t *testing.T) {
	st := sampleStatus(time.Now())
	var b bytes.Buffer
	if err := writeDaemonJSON(&b, st); err != nil {
		t.Fatal(err)
	}
	var v struct {
		IPVS   jsonIPVS        `json:"ipvs"`
		Daemon *control.Status `json:"daemon"`
	}
	if err := json.Unmarshal(b.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	// The kernel's table has one documented form with or without a daemon.
	if len(v.IPVS.Services) != 1 || v.IPVS.Services[0].Address != "192.0.2.100" || len(v.IPVS.Services[0].Destinations) != 2 {
		t.Errorf("ipvs: %+v", v.IPVS)
	}
	if v.Daemon == nil || v.Daemon.Node != "node1" || len(v.Daemon.Reals) != 3 || v.Daemon.Reals[1].LastFailure != "connection refused" {
		t.Errorf("daemon: %+v", v.Daemon)
	}
	if len(v.Daemon.IPVS.Table) != 0 {
		t.Error("the table is repeated under daemon")
	}
}
