// Package wdtest checks the seeds' fifth failover test against a real
// kernel watchdog: `kill -9` of directord must get the node reset by the
// watchdog (so that it does not keep its VIP after the peer takes over),
// while a daemon that runs keeps it fed and a graceful stop disarms it.
//
// The test boots its own testbed VM with the softdog module (the host has no
// /dev/watchdog, and resetting the host is not an option); the guest resets
// when softdog fires, which ends qemu (-no-reboot), and that is what the
// host observes.
package wdtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/directord/directord/testbed/netns"
	"github.com/directord/directord/testbed/vm"
)

// guestEnv makes the test binary play the guest's part; its value is the
// path of the directord binary in the guest.
const guestEnv = "DIRECTORD_WDTEST_GUEST"

const directordPkg = "github.com/directord/directord/cmd/directord"

// wdTimeout is the watchdog timeout the daemon sets: ha.cf's deadtime.
const wdTimeout = 2 * time.Second

// TestKill9ResetsNode boots a guest with softdog, runs the guest half
// (guest, from TestMain) there and watches the console: the guest must reset within the
// watchdog timeout of the kill, and not before.
func TestKill9ResetsNode(t *testing.T) {
	bin, cleanup, err := vm.BuildGoBinary(directordPkg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	carry := vm.GoBinaryFile(directordPkg, bin)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var killedAt, lastLine time.Time
	var console bytes.Buffer
	w := lineWriter(func(l string) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		lastLine = now
		console.WriteString(now.Format("15:04:05.000 ") + l + "\n")
		if strings.Contains(l, "WDTEST KILLING") {
			killedAt = now
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := vm.Config{
		Modules: []string{"softdog"},
		// Keep kernel messages: softdog's are the evidence.
		KernelArgs: []string{"directord.vm.debug=1", "loglevel=7"},
		Console:    w,
	}
	res, err := cfg.Run(ctx, vm.Job{
		Path:  self,
		Args:  nil,
		Env:   []string{guestEnv + "=" + carry.Guest},
		Files: []vm.File{carry},
	})
	ended := time.Now()
	mu.Lock()
	out := console.String()
	k := killedAt
	mu.Unlock()
	if t.Failed() || testing.Verbose() {
		defer func() { t.Logf("guest console:\n%s", out) }()
	}
	if err == nil {
		t.Fatalf("the guest was not reset: the job exited %d", res.ExitCode)
	}
	if !strings.Contains(out, "WDTEST PHASE-A-OK") {
		t.Fatalf("the guest reset before the kill (the watchdog was not fed, or a graceful stop did not disarm it): %v", err)
	}
	if k.IsZero() {
		t.Fatalf("the guest never reached the kill: %v", err)
	}
	if strings.Contains(out, "WDTEST NO-RESET") {
		t.Fatal("the guest was still running 20s after kill -9")
	}
	// qemu exits when the guest resets; the console's last line is the
	// nearest host-side mark of it.
	reset := lastLine
	if reset.Before(k) {
		reset = ended
	}
	d := reset.Sub(k)
	t.Logf("kill -9 at %s; guest reset %v later (watchdog timeout %v)", k.Format("15:04:05.000"), d.Round(time.Millisecond), wdTimeout)
	if d > wdTimeout+3*time.Second {
		t.Errorf("the reset came %v after the kill, more than the %v timeout allows", d, wdTimeout)
	}
	if !strings.Contains(out, "softdog") {
		t.Errorf("no softdog message on the console: was it the watchdog that reset the guest? (%v)", err)
	}
}

// lineWriter calls f for each line written.
type lineWriter func(string)

func (f lineWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		f(sc.Text())
	}
	return len(p), nil
}

// TestMain runs the guest's half instead of the tests when this binary is
// the job of the guest that TestKill9ResetsNode boots.
func TestMain(m *testing.M) {
	if bin := os.Getenv(guestEnv); bin != "" {
		guest(bin)
		// Reached only when the watchdog did not reset the guest.
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// fatalf ends the guest's half; the host sees the missing marker.
func fatalf(format string, args ...any) {
	fmt.Printf("WDTEST FAILED: "+format+"\n", args...)
	os.Exit(1)
}

// guest is the guest's half: directord with "watchdog /dev/watchdog", alone
// (its peer never answers, so it takes its group after initdead), run from
// the binary bin.
func guest(bin string) {
	if _, err := os.Stat("/dev/watchdog"); err != nil {
		fatalf("no /dev/watchdog in the guest: %v", err)
	}

	topo, err := netns.New()
	check(err)
	defer topo.Close()
	h, err := topo.Host("node1")
	check(err)
	check(h.AddDummy("eth0"))
	check(h.AddAddr("eth0", netip.MustParsePrefix("192.0.2.1/24")))
	dir, err := os.MkdirTemp("", "wdtest-")
	check(err)
	writeHADir(dir)

	start := func() (*exec.Cmd, chan struct{}) {
		cmd := exec.Command(bin, "run", "--ha-dir", dir, "--node", "node1",
			"--state-dir", dir, "--socket", filepath.Join(dir, "sock"))
		cmd.Stdout, cmd.Stderr = prefixed("directord: "), prefixed("directord: ")
		check(h.Start(cmd))
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		return cmd, done
	}

	// Phase A: a running daemon keeps the watchdog fed far longer than
	// its timeout, and a graceful stop disarms it.
	cmd, done := start()
	time.Sleep(4 * wdTimeout)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		fatalf("directord did not stop on SIGTERM")
	}
	time.Sleep(3 * wdTimeout)
	fmt.Println("WDTEST PHASE-A-OK " + strconv.FormatInt(time.Now().UnixMilli(), 10))

	// Phase B: kill -9. The guest must reset within the timeout.
	cmd, done = start()
	time.Sleep(2 * wdTimeout)
	fmt.Println("WDTEST KILLING " + strconv.FormatInt(time.Now().UnixMilli(), 10))
	cmd.Process.Kill()
	<-done
	time.Sleep(20 * time.Second)
	fmt.Println("WDTEST NO-RESET")
}

// check ends the guest's half on an error.
func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func writeHADir(dir string) {
	files := map[string]string{
		"ha.cf": `keepalive 200ms
warntime 1
deadtime 2
initdead 4
udpport 694
ucast eth0 192.0.2.2
auto_failback on
node node1 node2
watchdog /dev/watchdog
`,
		"haresources": "node1 IPaddr2::192.0.2.100/24/eth0\n",
		"authkeys":    "auth 1\n1 sha1 wdtest\n",
	}
	for name, content := range files {
		check(os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
}

func prefixed(p string) io.Writer {
	return lineWriter(func(l string) { fmt.Println(p + l) })
}
