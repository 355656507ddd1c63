package e2etest

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify plays systemd for one daemon: NOTIFY_SOCKET and
// WATCHDOG_USEC as a Type=notify unit with WatchdogSec= sets them. The daemon
// must say READY=1 once started, WATCHDOG=1 at about half the interval,
// RELOADING=1 then READY=1 again for a restart in place (SIGUSR1), and
// STOPPING=1 when asked to stop.
func TestSystemdNotify(t *testing.T) {
	a := newAppliance(t)
	n1 := a.nodes[0]
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	must(t, err)
	defer conn.Close()
	type note struct {
		at  time.Time
		msg string
	}
	var mu sync.Mutex
	var notes []note
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				notes = append(notes, note{time.Now(), l})
			}
			mu.Unlock()
		}
	}()
	const interval = 1200 * time.Millisecond
	n1.env = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=1200000"}
	n1.start()
	count := func(msg string) (int, []time.Time) {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		var at []time.Time
		for _, n := range notes {
			if n.msg == msg {
				c++
				at = append(at, n.at)
			}
		}
		return c, at
	}
	d := waitFor(t, "READY=1", 20*time.Second, func() bool { c, _ := count("READY=1"); return c > 0 })
	t.Logf("READY=1 %v after start", d.Round(time.Millisecond))
	time.Sleep(4 * interval)
	c, at := count("WATCHDOG=1")
	// Half the interval: about 8 in 4 intervals; fewer than 6 would let a
	// late tick trip systemd's watchdog.
	if c < 6 {
		t.Errorf("%d WATCHDOG=1 in %v with WatchdogSec=%v", c, 4*interval, interval)
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap > interval*3/4 {
			t.Errorf("WATCHDOG=1 gap of %v with WatchdogSec=%v", gap, interval)
		}
	}
	// SIGUSR1 re-executes in place: systemd is told RELOADING=1 (not
	// STOPPING=1, which would end the unit), and the same pid says READY=1
	// again and keeps feeding the watchdog.
	pid := n1.pid()
	n1.sendSignal(syscall.SIGUSR1)
	waitFor(t, "READY=1 after the restart in place", 20*time.Second, func() bool { c, _ := count("READY=1"); return c == 2 })
	if c, _ := count("RELOADING=1"); c != 1 {
		t.Errorf("RELOADING=1 sent %d times for a restart in place", c)
	}
	if c, _ := count("STOPPING=1"); c != 0 {
		t.Errorf("STOPPING=1 sent for a restart in place")
	}
	if n1.pid() != pid {
		t.Errorf("pid %d after the restart in place, was %d", n1.pid(), pid)
	}
	before, _ := count("WATCHDOG=1")
	time.Sleep(2 * interval)
	if after, _ := count("WATCHDOG=1"); after-before < 2 {
		t.Errorf("%d WATCHDOG=1 in %v after the restart in place", after-before, 2*interval)
	}
	must(t, n1.signal(syscall.SIGTERM, 30*time.Second))
	if c, _ := count("STOPPING=1"); c != 1 {
		t.Errorf("STOPPING=1 sent %d times", c)
	}
	conn.Close()
	<-done
}
