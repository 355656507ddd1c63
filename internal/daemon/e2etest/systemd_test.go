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
// must say READY=1 once started, WATCHDOG=1 at about half the interval, and
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
	must(t, n1.signal(syscall.SIGTERM, 30*time.Second))
	if c, _ := count("STOPPING=1"); c != 1 {
		t.Errorf("STOPPING=1 sent %d times", c)
	}
	conn.Close()
	<-done
}
