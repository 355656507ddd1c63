package e2etest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timings of the test cluster (see writeConfig): keepalive 200ms, deadtime
// 4s, initdead 8s. Deadtime is what a restart must fit in; under TCG a
// directord process takes over a second to start. The bounds below leave
// room for a loaded guest.
const (
	deadtime    = 4 * time.Second
	coldStartBy = 20 * time.Second
)

// TestAppliance walks the seeds' failover tests on one testbed, in order:
// cold start, status, reload (one weight, one op; a broken file, nothing),
// standby and takeover from the CLI, a restart without failover, a graceful
// stop, and kill -9.
func TestAppliance(t *testing.T) {
	a := newAppliance(t)
	n1, n2 := a.nodes[0], a.nodes[1]

	t.Log("cold start: the VIP goes to its owner, node1")
	n1.start()
	n2.start()
	d := waitFor(t, "VIP on node1 after a cold start", coldStartBy, n1.hasVIP)
	t.Logf("cold start: VIP on node1 %v after start", d.Round(time.Millisecond))
	waitFor(t, "both real servers up in node1's table", 15*time.Second, func() bool {
		out := n1.ipvsadm("-Ln")
		return strings.Contains(out, "192.0.2.21:80") && strings.Contains(out, "192.0.2.22:80")
	})
	if n2.hasVIP() {
		t.Fatal("the VIP is on both nodes after a cold start")
	}
	// The standby's table is warm too.
	waitFor(t, "node2's table warm", 15*time.Second, func() bool {
		return strings.Contains(n2.ipvsadm("-Ln"), "192.0.2.22:80")
	})

	waitFor(t, "node1's resource script started", 5*time.Second, func() bool { return len(n1.journal()) > 0 })
	if j := n1.journal(); len(j) != 1 || j[0] != "start_web_vip-up" {
		t.Errorf("node1's resource script journal after the cold start: %v, want one start after the VIP", j)
	}
	if j := n2.journal(); len(j) != 0 {
		t.Errorf("node2's resource script ran: %v", j)
	}

	tr := a.startTraffic(20 * time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	sent, failed, _, firstErr := tr.stop()
	if sent == 0 || failed > 0 {
		t.Fatalf("traffic through node1: %d sent, %d failed (%s)", sent, failed, firstErr)
	}
	if len(tr.by) != 2 {
		t.Errorf("traffic answered by %v, want both real servers", tr.by)
	}

	t.Run("status", func(t *testing.T) {
		waitFor(t, "node1 sees node2 active with both links up", 10*time.Second, func() bool {
			out, _, code := n1.cli("status", "--socket", n1.sock)
			return code == 0 && strings.Contains(out, "peer node2: active") && strings.Count(out, ": up\n") >= 2
		})
		out, errOut, code := n1.cli("status", "--socket", n1.sock)
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		t.Logf("directord status on node1:\n%s", out)
		for _, want := range []string{
			"on node node1",
			"status: active, holding local resources",
			"link hb0: up", "link eth0: up",
			"IPVS sync daemon: master on hb0 (syncid 7)",
			"IPaddr2::192.0.2.100/24/eth0 (owner node1): running",
			"IP Virtual Server version",
			"TCP  192.0.2.100:80 wrr",
			"  -> RemoteAddress:Port",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q", want)
			}
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "  -> 192.0.2.2") && (!strings.Contains(l, " up since ") || !strings.Contains(l, ", check ")) {
				t.Errorf("real server line without its check state or latency: %q", l)
			}
		}
		out2, _, _ := n2.cli("status", "--socket", n2.sock)
		if !strings.Contains(out2, "IPVS sync daemon: backup on hb0") {
			t.Errorf("node2's sync daemon is not the backup:\n%s", out2)
		}
		js, _, code := n1.cli("status", "--socket", n1.sock, "-o", "json")
		var v struct {
			IPVS struct {
				Services []struct{ Address string } `json:"services"`
			} `json:"ipvs"`
			Daemon struct {
				Node string
				HA   struct{ State string }
			} `json:"daemon"`
		}
		if err := json.Unmarshal([]byte(js), &v); err != nil || code != 0 {
			t.Fatalf("status -o json: %v (exit %d): %s", err, code, js)
		}
		if v.Daemon.Node != "node1" || v.Daemon.HA.State != "active" || len(v.IPVS.Services) != 1 || v.IPVS.Services[0].Address != "192.0.2.100" {
			t.Errorf("status -o json: %+v", v)
		}
		m := n1.metrics()
		for _, k := range []string{
			`directord_node_state{state="active"}`,
			`directord_group_held{group="IPaddr2::192.0.2.100/24/eth0",owner="node1"}`,
			`directord_link_up{link="hb0",peer="node2"}`,
			`directord_peer_up{peer="node2"}`,
			`directord_ipvs_sync_master`,
			`directord_real_server_up{real="192.0.2.21:80",service="-t 192.0.2.100:80"}`,
		} {
			if m[k] != 1 {
				t.Errorf("metric %s = %v, want 1", k, m[k])
			}
		}
		for _, rs := range []string{"192.0.2.21:80", "192.0.2.22:80"} {
			l := `{real="` + rs + `",service="-t 192.0.2.100:80"}`
			if v, ok := m["directord_real_server_check_latency_seconds"+l]; !ok || v <= 0 || v > 1 {
				t.Errorf("check latency of %s: %v (present %v), want a passing check's", rs, v, ok)
			}
			if v, ok := m["directord_real_server_check_failures"+l]; !ok || v != 0 {
				t.Errorf("check failures of %s: %v (present %v), want 0", rs, v, ok)
			}
		}
		if m2 := n2.metrics(); m2[`directord_group_held{group="IPaddr2::192.0.2.100/24/eth0",owner="node1"}`] != 0 || m2[`directord_ipvs_sync_master`] != 0 {
			t.Error("node2's metrics say it holds the group or is the sync master")
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n1.pid())); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "Threads:") {
					t.Logf("node1's daemon: %s", strings.Join(strings.Fields(l), " "))
				}
			}
		}
		// --kernel is ipvsadm -Ln byte for byte, daemon or not.
		k, _, _ := n1.cli("status", "--kernel")
		if want := n1.ipvsadm("-Ln"); k != want {
			t.Errorf("status --kernel:\n%s\nipvsadm -Ln:\n%s", k, want)
		}
	})

	t.Run("connection sync to the standby", func(t *testing.T) {
		// The active's sync master sends its connections to node2's
		// backup, which enters them in its own table: after a takeover
		// they continue there.
		tr := a.startTraffic(20 * time.Millisecond)
		d := waitFor(t, "client connections in node2's IPVS connection table", 10*time.Second, func() bool {
			return strings.Contains(n2.ipvsadm("-Lnc"), "192.0.2.10:")
		})
		tr.stop()
		t.Logf("sync: node1's connections appeared on node2 within %v", d.Round(time.Millisecond))
	})

	t.Run("reload one weight", func(t *testing.T) {
		before := n1.metrics()
		writeLnoded(t, n1.dir, lnodedCF([2]int{1, 3}))
		out, errOut, code := n1.cli("reload", "--socket", n1.sock)
		if code != 0 {
			t.Fatalf("reload: exit %d: %s", code, errOut)
		}
		t.Logf("reload: %s", strings.TrimSpace(out))
		waitFor(t, "weight 3 in the kernel", 5*time.Second, func() bool {
			return strings.Contains(n1.ipvsadm("-Ln"), "192.0.2.22:80                Route   3")
		})
		time.Sleep(500 * time.Millisecond)
		after := n1.metrics()
		if d := opsTotal(after) - opsTotal(before); d != 1 {
			t.Errorf("the reload issued %v IPVS ops, want 1 (before %v, after %v)", d, opsOf(before), opsOf(after))
		}
		if d := after[`directord_ipvs_ops_total{kind="edit_real"}`] - before[`directord_ipvs_ops_total{kind="edit_real"}`]; d != 1 {
			t.Errorf("edit_real ops: %v, want 1", d)
		}
	})

	t.Run("reload with a syntax error", func(t *testing.T) {
		before := n1.metrics()
		table := n1.ipvsadm("-Ln")
		writeLnoded(t, n1.dir, strings.Replace(lnodedCF([2]int{1, 3}), "scheduler=wrr", "scheduler=wrr\n\tfrobnicate=yes", 1))
		_, errOut, code := n1.cli("reload", "--socket", n1.sock)
		if code != 1 {
			t.Errorf("reload of a broken file: exit %d, want 1", code)
		}
		if !strings.Contains(errOut, "lnoded.cf:") || !strings.Contains(errOut, "nothing changed") {
			t.Errorf("reload error does not name the file and line, or does not say nothing changed: %s", errOut)
		}
		time.Sleep(time.Second)
		if got := n1.ipvsadm("-Ln"); got != table {
			t.Errorf("the table changed:\nbefore\n%s\nafter\n%s", table, got)
		}
		if d := opsTotal(n1.metrics()) - opsTotal(before); d != 0 {
			t.Errorf("a refused reload issued %v IPVS ops", d)
		}
		if !n1.hasVIP() || n2.hasVIP() {
			t.Error("a refused reload moved the VIP")
		}
		// SIGHUP is the same reload: with the file repaired it applies.
		writeLnoded(t, n1.dir, lnodedCF([2]int{1, 3}))
		n1.sendSignal(syscall.SIGHUP)
		waitFor(t, "SIGHUP reload applied", 5*time.Second, func() bool {
			out, _, _ := n1.cli("status", "--socket", n1.sock)
			return strings.Contains(out, "last reload") && strings.Contains(out, ": applied\n")
		})
	})

	t.Run("reload adding a resource to the held group", func(t *testing.T) {
		yaml := filepath.Join(n1.dir, "directord.yaml")
		b, err := os.ReadFile(yaml)
		must(t, err)
		web := "      - script: {name: marker, args: [web]}\n"
		must(t, os.WriteFile(yaml, []byte(strings.Replace(string(b), web, web+"      - script: {name: marker, args: [extra]}\n", 1)), 0o600))
		before := len(n1.journal())
		flapped := make(chan bool, 1)
		stop := make(chan struct{})
		go func() {
			lost := false
			for {
				select {
				case <-stop:
					flapped <- lost
					return
				case <-time.After(2 * time.Millisecond):
					lost = lost || !n1.hasVIP()
				}
			}
		}()
		out, errOut, code := n1.cli("reload", "--socket", n1.sock)
		close(stop)
		if code != 0 {
			t.Fatalf("reload: exit %d: %s", code, errOut)
		}
		t.Logf("reload: %s", strings.TrimSpace(out))
		if <-flapped {
			t.Error("the VIP went away while a resource was added to its group")
		}
		if j := n1.journal()[before:]; strings.Join(j, " ") != "start_extra_vip-up" {
			t.Errorf("the reload ran %v, want only the new resource started", j)
		}
		// And back: the resource is stopped, nothing else.
		must(t, os.WriteFile(yaml, b, 0o600))
		if _, errOut, code := n1.cli("reload", "--socket", n1.sock); code != 0 {
			t.Fatalf("reload: %s", errOut)
		}
		if j := n1.journal()[before:]; strings.Join(j, " ") != "start_extra_vip-up stop_extra_vip-up" {
			t.Errorf("the reload back ran %v", j)
		}
		// node2 was not touched and does not need to be: its own file
		// still has the group's old form, which only matters when it
		// holds the group.
	})

	t.Run("standby and takeover from the CLI", func(t *testing.T) {
		j1, j2 := len(n1.journal()), len(n2.journal())
		tr := a.startTraffic(20 * time.Millisecond)
		out, errOut, code := n1.cli("standby", "--socket", n1.sock)
		if code != 0 {
			t.Fatalf("standby: exit %d: %s", code, errOut)
		}
		t.Logf("standby: %s", strings.TrimSpace(out))
		d := waitFor(t, "VIP on node2 after standby", 10*time.Second, func() bool { return n2.hasVIP() && !n1.hasVIP() })
		t.Logf("standby: VIP moved to node2 in %v", d.Round(time.Millisecond))
		waitFor(t, "node2's sync daemon master", 5*time.Second, func() bool {
			out, _, _ := n2.cli("status", "--socket", n2.sock)
			return strings.Contains(out, "IPVS sync daemon: master")
		})
		time.Sleep(500 * time.Millisecond)
		if _, _, code := n1.cli("takeover", "--socket", n1.sock); code != 0 {
			t.Fatal("takeover failed")
		}
		d = waitFor(t, "VIP back on node1 after takeover", 10*time.Second, func() bool { return n1.hasVIP() && !n2.hasVIP() })
		t.Logf("takeover: VIP back on node1 in %v", d.Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond)
		sent, failed, longest, firstErr := tr.stop()
		t.Logf("traffic during standby+takeover: %d sent, %d failed, longest gap %v (%s)", sent, failed, longest.Round(time.Millisecond), firstErr)
		// The script was stopped before the VIP went and started after it
		// came, on both nodes. (It starts last: wait for it.)
		waitFor(t, "node1's script started again", 5*time.Second, func() bool { return len(n1.journal()) >= j1+2 })
		if j := strings.Join(n1.journal()[j1:], " "); j != "stop_web_vip-up start_web_vip-up" {
			t.Errorf("node1's script journal: %s", j)
		}
		if j := strings.Join(n2.journal()[j2:], " "); j != "start_web_vip-up stop_web_vip-up" {
			t.Errorf("node2's script journal: %s", j)
		}
		if _, _, code := n1.cli("standby", "--socket", n1.sock, "sideways"); code != 2 {
			t.Errorf("standby sideways: exit %d, want 2", code)
		}
	})

	t.Run("a failed start is rolled back and reported", func(t *testing.T) {
		must(t, os.WriteFile(filepath.Join(n2.dir, "marker.fail"), nil, 0o644))
		defer os.Remove(filepath.Join(n2.dir, "marker.fail"))
		if _, _, code := n1.cli("standby", "--socket", n1.sock); code != 0 {
			t.Fatal("standby failed")
		}
		waitFor(t, "node2's failed start reported", 10*time.Second, func() bool {
			out, _, _ := n2.cli("status", "--socket", n2.sock)
			return strings.Contains(out, "error: resource marker::web failed to start")
		})
		out, _, _ := n2.cli("status", "--socket", n2.sock)
		t.Logf("node2 after its failed start:\n%s", out[:strings.Index(out, "IP Virtual Server")])
		// The VIP, started before the script, was stopped again.
		time.Sleep(500 * time.Millisecond)
		if n2.hasVIP() {
			t.Error("node2 kept the VIP of a group that failed to start")
		}
		if !strings.Contains(n2.log.String(), "failed: stopping what was started") {
			t.Error("no log line for the rollback")
		}
		os.Remove(filepath.Join(n2.dir, "marker.fail"))
		// Whatever the engine made of it, node1 can take the group back.
		n1.cli("takeover", "--socket", n1.sock)
		waitFor(t, "VIP back on node1", 15*time.Second, func() bool { return n1.hasVIP() && !n2.hasVIP() })
		a.waitStable(t)
	})

	t.Run("restart in place without failover (SIGUSR1)", func(t *testing.T) {
		pid := n1.pid()
		restartWithoutFailover(t, a, func() {
			n1.sendSignal(syscall.SIGUSR1)
		}, func() {
			if n1.pid() != pid {
				t.Errorf("pid changed from %d to %d", pid, n1.pid())
			}
			if !strings.Contains(n1.log.String(), "restarting in place") {
				t.Error("no restart in the log")
			}
		})
	})

	t.Run("restart in place refused with a broken configuration", func(t *testing.T) {
		yaml := filepath.Join(n1.dir, "directord.yaml")
		good, err := os.ReadFile(yaml)
		must(t, err)
		must(t, os.WriteFile(yaml, append(append([]byte(nil), good...), "bogus_key: 1\n"...), 0o600))
		defer os.WriteFile(yaml, good, 0o600)
		pid, from := n1.pid(), len(n1.log.String())
		n1.sendSignal(syscall.SIGUSR1)
		waitFor(t, "the refusal logged", 10*time.Second, func() bool {
			return strings.Contains(n1.log.String()[from:], "not restarting in place")
		})
		if _, _, code := n1.cli("status", "--socket", n1.sock); code != 0 || n1.pid() != pid {
			t.Errorf("the daemon does not answer (exit %d) or changed (pid %d, was %d)", code, n1.pid(), pid)
		}
		if strings.Contains(n1.log.String()[from:], "Detaching") {
			t.Error("the daemon detached although the new one could not start")
		}
	})

	t.Run("restart by a new process without failover (SIGUSR2)", func(t *testing.T) {
		restartWithoutFailover(t, a, func() {
			if err := n1.signal(syscall.SIGUSR2, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if !n1.hasVIP() {
				t.Fatal("the detached daemon took the VIP with it")
			}
			n1.start()
		}, nil)
	})

	t.Run("graceful stop hands over", func(t *testing.T) {
		tr := a.startTraffic(20 * time.Millisecond)
		start := time.Now()
		if err := n1.signal(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		stopped := time.Since(start)
		if n1.hasVIP() {
			t.Error("node1 kept the VIP after a graceful stop")
		}
		d := waitFor(t, "VIP on node2 after node1's graceful stop", deadtime, n2.hasVIP)
		t.Logf("graceful stop: node1 exited in %v, VIP on node2 %v after SIGTERM", stopped.Round(time.Millisecond), (stopped + d).Round(time.Millisecond))
		time.Sleep(1500 * time.Millisecond)
		sent, failed, longest, _ := tr.stop()
		t.Logf("traffic during the graceful handover: %d sent, %d failed, longest gap %v", sent, failed, longest.Round(time.Millisecond))

		// auto_failback on: node1 takes its group back when it returns.
		n1.start()
		d = waitFor(t, "VIP back on node1 (auto_failback on)", coldStartBy, func() bool { return n1.hasVIP() && !n2.hasVIP() })
		t.Logf("failback: VIP back on node1 %v after it started", d.Round(time.Millisecond))
	})

	t.Run("kill -9 moves the VIP", func(t *testing.T) {
		waitFor(t, "cluster stable", 10*time.Second, func() bool {
			out, _, code := n2.cli("status", "--socket", n2.sock)
			return code == 0 && strings.Contains(out, "peer node1: active")
		})
		start := time.Now()
		if err := n1.signal(syscall.SIGKILL, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		d := waitFor(t, "VIP on node2 after kill -9 of node1", deadtime+5*time.Second, n2.hasVIP)
		t.Logf("kill -9: VIP on node2 %v after the kill (deadtime %v)", d.Round(time.Millisecond), deadtime)
		if d < deadtime/2 {
			t.Errorf("node2 took over %v after the kill, before any deadtime could pass", d)
		}
		// Without a watchdog the killed node keeps its VIP (seed 001,
		// test 5): that is what the watchdog test covers.
		if !n1.hasVIP() {
			t.Log("node1 lost its VIP without a watchdog?")
		}
		_ = start
		// Reboot node1 as the watchdog would, and start it again.
		n1.removeVIP()
		n1.ipvsadm("-C")
		n1.host.Run(exec.Command("ipvsadm", "--stop-daemon", "master"))
		n1.start()
		waitFor(t, "VIP back on node1 after its reboot", coldStartBy, func() bool { return n1.hasVIP() && !n2.hasVIP() })
	})
}

// waitStable waits until both engines report no transition under way, node1
// holding its group.
func (a *appliance) waitStable(t *testing.T) {
	t.Helper()
	waitFor(t, "both nodes stable, node1 holding its group", 15*time.Second, func() bool {
		for i, n := range a.nodes {
			js, _, code := n.cli("status", "--socket", n.sock, "-o", "json")
			var v struct {
				Daemon struct {
					HA struct {
						Stable    bool
						Resources string
					}
				}
			}
			if code != 0 || json.Unmarshal([]byte(js), &v) != nil || !v.Daemon.HA.Stable {
				return false
			}
			if want := []string{"local", "none"}[i]; v.Daemon.HA.Resources != want {
				return false
			}
		}
		return true
	})
}

func opsTotal(m map[string]float64) float64 {
	s := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "directord_ipvs_ops_total{") {
			s += v
		}
	}
	return s
}

func opsOf(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, "directord_ipvs_ops_total{") {
			out[k] = v
		}
	}
	return out
}

// restartWithoutFailover restarts node1's daemon with restart while a client
// sends requests, and checks that nobody noticed. check, when not nil, runs
// once the new daemon is up.
func restartWithoutFailover(t *testing.T, a *appliance, restart func(), check func()) {
	n1, n2 := a.nodes[0], a.nodes[1]
	waitFor(t, "cluster stable", 10*time.Second, func() bool { return n1.hasVIP() && !n2.hasVIP() })
	a.waitStable(t)
	before2 := n2.metrics()["directord_transitions_total"]
	log2, logFrom := n2.log.String(), len(n1.log.String())
	journal := len(n1.journal())
	watch := make(chan bool)
	onNode2 := make(chan bool, 1)
	go func() {
		seen := false
		for {
			select {
			case <-watch:
				onNode2 <- seen
				return
			case <-time.After(5 * time.Millisecond):
				seen = seen || n2.hasVIP()
			}
		}
	}()
	tr := a.startTraffic(10 * time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	started := time.Now()
	restart()
	waitFor(t, "a new daemon on node1, active", 20*time.Second, func() bool {
		js, _, code := n1.cli("status", "--socket", n1.sock, "-o", "json")
		var v struct {
			Daemon struct {
				Started time.Time
				HA      struct{ State, Resources string }
			}
		}
		return code == 0 && json.Unmarshal([]byte(js), &v) == nil && v.Daemon.Started.After(started) &&
			v.Daemon.HA.State == "active" && v.Daemon.HA.Resources == "local"
	})
	if check != nil {
		check()
	}
	time.Sleep(deadtime + 500*time.Millisecond)
	sent, failed, longest, firstErr := tr.stop()
	close(watch)
	// The VIP stays on node1 alone.
	waitFor(t, "VIP on node1 alone after the restart", 10*time.Second, func() bool { return n1.hasVIP() && !n2.hasVIP() })
	t.Logf("restart: %d requests, %d failed, longest gap %v", sent, failed, longest.Round(time.Millisecond))
	transitions := n2.metrics()["directord_transitions_total"] - before2
	sawVIP := <-onNode2
	// The new daemon resumed the old one's heartbeat (same generation,
	// next seq): node2 saw a pause, not a restart or a death.
	if m := regexp.MustCompile(`Resuming the previous daemon's heartbeat \(detached ([^ ]+) ago\)`).FindStringSubmatch(n1.log.String()[logFrom:]); m == nil {
		t.Error("the new daemon did not resume the old one's heartbeat")
	} else {
		t.Logf("restart: the new daemon resumed the heartbeat %s after the old one detached (deadtime %v)", m[1], deadtime)
	}
	for _, bad := range []string{"Heartbeat restart on node node1", "node node1 restarted", "node node1: is dead"} {
		if strings.Count(n2.log.String(), bad) > strings.Count(log2, bad) {
			t.Errorf("node2 logged %q during node1's restart", bad)
		}
	}
	// The old daemon's lnoded detached without cleanstop; the new one
	// reconciled the table it found.
	if strings.Contains(n1.log.String()[logFrom:], "Purged virtual server") {
		t.Error("the restart purged the IPVS table")
	}
	if sawVIP {
		t.Error("the VIP appeared on node2 during node1's restart")
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the restart (first: %s)", failed, sent, firstErr)
	}
	if transitions != 0 {
		t.Errorf("node2 made %v resource transitions during node1's restart", transitions)
	}
	// The script was adopted (its status says running), not started again.
	if j := n1.journal(); len(j) != journal {
		t.Errorf("the restart ran the resource script: %v", j[journal:])
	}
}
