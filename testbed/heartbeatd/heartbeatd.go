// Package heartbeatd runs Debian's heartbeat 3.0.6 as one node of a cluster,
// for interop tests: the real daemon, in a network namespace the caller made
// (testbed/netns or `ip netns add`), and in mount, UTS and PID namespaces of
// its own, with private /etc/ha.d, /var/lib/heartbeat, /run and /var/log. So
// a test can run it next to directord on one machine, kill it with -9 (its
// PID namespace goes with it, every child included), restart it, and read
// its log, without touching the host's Heartbeat files.
//
// It needs root and the `heartbeat` package (and util-linux's unshare and
// nsenter); Missing says what is absent.
package heartbeatd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is Debian's heartbeat daemon.
const Binary = "/usr/libexec/heartbeat/heartbeat"

// Scripts run inside the node, e.g. with Node.Inside.
const (
	HBStandby  = "/usr/share/heartbeat/hb_standby"
	HBTakeover = "/usr/share/heartbeat/hb_takeover"
)

// Missing names what a node needs and this machine lacks: root, heartbeat,
// unshare, nsenter. It returns "" when nothing is missing.
func Missing() string {
	if os.Geteuid() != 0 {
		return "root (namespaces)"
	}
	for _, bin := range []string{Binary, "unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " (apt-get install heartbeat iproute2 util-linux)"
		}
	}
	return ""
}

// Timing is ha.cf's timing directives, in ha.cf's syntax ("200ms", "1").
type Timing struct{ Keepalive, WarnTime, DeadTime, InitDead string }

// Ucast is one "ucast DEV PEER" medium.
type Ucast struct{ Dev, Peer string }

// LogFile and DebugFile are where Node.Log expects Heartbeat's logs; a
// directord reading the same ha.cf logs there too, so leave them out of its
// copy.
const (
	LogFile   = "/var/log/ha-log"
	DebugFile = "/var/log/ha-debug"
)

// HACF is an ha.cf for a two-node test cluster on UDP port 694.
type HACF struct {
	// LogFile and DebugFile are "logfile" and "debugfile"; "" leaves them
	// out.
	LogFile, DebugFile string
	Timing
	Ucast        []Ucast
	AutoFailback string // on, off or legacy
	Nodes        []string
	// Extra lines, appended as they are (ping, respawn, apiauth…).
	Extra []string
}

// String returns the file's text.
func (c HACF) String() string {
	var b strings.Builder
	if c.LogFile != "" {
		fmt.Fprintf(&b, "logfile %s\n", c.LogFile)
	}
	if c.DebugFile != "" {
		fmt.Fprintf(&b, "debugfile %s\n", c.DebugFile)
	}
	fmt.Fprintf(&b, "keepalive %s\nwarntime %s\ndeadtime %s\ninitdead %s\nudpport 694\n",
		c.Keepalive, c.WarnTime, c.DeadTime, c.InitDead)
	for _, u := range c.Ucast {
		fmt.Fprintf(&b, "ucast %s %s\n", u.Dev, u.Peer)
	}
	fmt.Fprintf(&b, "auto_failback %s\n", c.AutoFailback)
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "node %s\n", n)
	}
	for _, l := range c.Extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// Node is one heartbeat node. Its methods are safe for concurrent use.
type Node struct {
	netns    string
	hostname string
	dir      string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// New prepares a node that will run in the named network namespace with
// the given host name (Heartbeat's node name is `uname -n`). Its private
// directories are made under dir: etc (its /etc/ha.d: a copy of the host's,
// so resource.d and the rc scripts are Debian's, with files written over
// it), lib, run and log. files maps paths under /etc/ha.d to contents;
// resource.d/* get mode 0755, the others 0600 (authkeys must not be
// readable by others). Nothing runs until Start.
func New(netns, hostname, dir string, files map[string]string) (*Node, error) {
	for _, d := range []string{"etc", "lib", "run", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("heartbeatd: %w", err)
		}
	}
	// Heartbeat wants the directories the package made (owned by
	// hacluster) in /run/heartbeat and /var/lib/heartbeat (cores, for one;
	// not the files: hb_uuid is the host's identity); the OCF agents behind
	// resource.d keep their state (send_arp's pid file) in
	// /run/resource-agents.
	cp := exec.Command("sh", "-c", fmt.Sprintf(`cp -a /etc/ha.d/. %[1]s/etc/ && (cp -a /run/heartbeat %[1]s/run/ || mkdir -p %[1]s/run/heartbeat) &&
mkdir -p -m 1755 %[1]s/run/resource-agents &&
if [ -d /var/lib/heartbeat ]; then cd /var/lib/heartbeat && find . -mindepth 1 -type d -print0 | tar --null --no-recursion -T - -cf - | tar -C %[1]s/lib -xpf -; fi`, dir))
	if out, err := cp.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("heartbeatd: copy /etc/ha.d: %v\n%s", err, out)
	}
	for name, text := range files {
		mode := os.FileMode(0o600)
		if strings.HasPrefix(name, "resource.d/") {
			mode = 0o755
		}
		p := filepath.Join(dir, "etc", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("heartbeatd: %w", err)
		}
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			return nil, fmt.Errorf("heartbeatd: %w", err)
		}
	}
	return &Node{netns: netns, hostname: hostname, dir: dir}, nil
}

// ForTest is New in t.TempDir() with the node killed (-9) when tb and its
// subtests finish, before namespaces made earlier are removed.
func ForTest(tb testing.TB, netns, hostname string, files map[string]string) *Node {
	tb.Helper()
	n, err := New(netns, hostname, tb.TempDir(), files)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Kill9)
	return n
}

// Dir returns the directory holding the node's etc, lib, run and log.
func (n *Node) Dir() string { return n.dir }

// LogPath returns the host path of the file the node sees as /var/log/NAME.
func (n *Node) LogPath(name string) string { return filepath.Join(n.dir, "log", name) }

// Start starts heartbeat in the foreground of a new PID namespace whose
// init it is, so that killing it kills every process it forked.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return errors.New("heartbeatd: already running")
	}
	os.Remove(filepath.Join(n.dir, "run", "heartbeat.pid"))
	script := fmt.Sprintf(`hostname %[3]s && mount --bind %[1]s/etc /etc/ha.d && mount --bind %[1]s/lib /var/lib/heartbeat &&
mount --bind %[1]s/run /run && mount --bind %[1]s/log /var/log && exec %[2]s -f`, n.dir, Binary, n.hostname)
	cmd := exec.Command("ip", "netns", "exec", n.netns, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--mount", "sh", "-c", script)
	n.note("starting heartbeat")
	out, err := os.OpenFile(n.outPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("heartbeatd: %w", err)
	}
	defer out.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("heartbeatd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}

// Running says whether Start's processes have not exited yet.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// PID returns the host pid of heartbeat itself (the PID namespace's init),
// 0 when it does not run.
func (n *Node) PID() int {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	// unshare --fork: unshare's only child is the namespace's init.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// Kill9 is "killall -9 heartbeat": killing the PID namespace's init takes
// every heartbeat process with it. Nothing is released: what its resource
// scripts set up (a VIP, say) stays. It returns once everything exited.
func (n *Node) Kill9() {
	pid := n.PID()
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	n.note("kill -9")
	if pid > 0 {
		exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
	}
	cmd.Process.Kill()
	<-done
}

// Inside runs a command in the node's namespaces (mount, UTS, network,
// PID), as an operator logged in there would, and returns its combined
// output.
func (n *Node) Inside(args ...string) (string, error) {
	pid := n.PID()
	if pid == 0 {
		return "", errors.New("heartbeatd: heartbeat is not running")
	}
	a := append([]string{"-t", strconv.Itoa(pid), "-m", "-u", "-n", "-p", "--"}, args...)
	out, err := exec.Command("nsenter", a...).CombinedOutput()
	return string(out), err
}

// Stop is "heartbeat -k", a graceful shutdown (resources released, the
// peer told), and waits up to timeout for heartbeat to exit. The -k client
// is killed with the PID namespace when heartbeat (its init) exits, so its
// exit status says nothing; heartbeat exiting does.
func (n *Node) Stop(timeout time.Duration) error {
	out, kerr := n.Inside(Binary, "-k")
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return errors.New("heartbeatd: heartbeat is not running")
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("heartbeatd: heartbeat -k did not stop heartbeat within %v: %v\n%s", timeout, kerr, out)
	}
	n.mu.Lock()
	if n.done == done {
		n.cmd, n.done = nil, nil
	}
	n.mu.Unlock()
	return nil
}

// Log returns the node's LogFile followed by what the daemon wrote to its
// stdout and stderr.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogPath(filepath.Base(LogFile)))
	o, _ := os.ReadFile(n.outPath())
	return string(b) + string(o)
}

// outPath is where the daemon's stdout and stderr go, across restarts
// (outside its /var/log, which it could rotate).
func (n *Node) outPath() string { return filepath.Join(n.dir, "stdout") }

// note writes a line of the caller's own into the stdout file.
func (n *Node) note(s string) {
	f, err := os.OpenFile(n.outPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "=== %s: %s\n", time.Now().Format("15:04:05.000"), s)
	f.Close()
}

// NodeStatus is `cl_status nodestatus NODE` run inside: "active", "dead"…
func (n *Node) NodeStatus(node string) string {
	out, _ := n.Inside("cl_status", "nodestatus", node)
	return strings.TrimSpace(out)
}
