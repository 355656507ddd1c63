package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/media"
	"github.com/directord/directord/heartbeat/wire"
)

// The tests in this file run over real UDP between two network
// namespaces joined by veth pairs: hb0 198.51.100.1/.2 and, when asked,
// hb1 203.0.113.1/.2. Node A lives in the first namespace, node B in the
// second. Node A is either a directord engine or Debian's heartbeat 3.0.6.

const realHeartbeat = "/usr/libexec/heartbeat/heartbeat"

var nsSeq atomic.Int32

type nsPair struct {
	a, b   string // namespace names
	hA, hB netns.NsHandle
	links  int
}

func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("network namespaces: not in -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func newNSPair(t *testing.T, links int) *nsPair {
	t.Helper()
	needRoot(t)
	id := nsSeq.Add(1)
	p := &nsPair{a: fmt.Sprintf("ddcl-a-%d-%d", os.Getpid(), id), b: fmt.Sprintf("ddcl-b-%d-%d", os.Getpid(), id), links: links}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", p.a).Run()
		exec.Command("ip", "netns", "del", p.b).Run()
	})
	run(t, "ip", "netns", "add", p.a)
	run(t, "ip", "netns", "add", p.b)
	nets := []string{"198.51.100", "203.0.113"}
	for i := range links {
		dev := fmt.Sprintf("hb%d", i)
		run(t, "ip", "link", "add", dev, "netns", p.a, "type", "veth", "peer", "name", dev, "netns", p.b)
		run(t, "ip", "-n", p.a, "addr", "add", nets[i]+".1/24", "dev", dev)
		run(t, "ip", "-n", p.b, "addr", "add", nets[i]+".2/24", "dev", dev)
		run(t, "ip", "-n", p.a, "link", "set", dev, "up")
		run(t, "ip", "-n", p.b, "link", "set", dev, "up")
	}
	for _, n := range []string{p.a, p.b} {
		run(t, "ip", "-n", n, "link", "set", "lo", "up")
	}
	var err error
	if p.hA, err = netns.GetFromName(p.a); err != nil {
		t.Fatal(err)
	}
	if p.hB, err = netns.GetFromName(p.b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.hA.Close(); p.hB.Close() })
	return p
}

// setLink brings link i up or down on node A's side.
func (p *nsPair) setLink(t *testing.T, i int, up bool) {
	st := "down"
	if up {
		st = "up"
	}
	run(t, "ip", "-n", p.a, "link", "set", fmt.Sprintf("hb%d", i), st)
}

// media returns the ucast media of node a (peer .2) or b (peer .1).
func (p *nsPair) media(side string) []hacf.Medium {
	nets := []string{"198.51.100", "203.0.113"}
	peer := ".2"
	if side == "b" {
		peer = ".1"
	}
	var ms []hacf.Medium
	for i := range p.links {
		ms = append(ms, hacf.Medium{Type: hacf.Ucast, Interface: fmt.Sprintf("hb%d", i), Peer: nets[i] + peer, Port: hacf.DefaultUDPPort})
	}
	return ms
}

// openIn opens m inside ns; sockets keep the namespace they were made in.
func openIn(ns netns.NsHandle, m hacf.Medium) (link, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return nil, err
	}
	md, oerr := media.Open(context.Background(), m)
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: let it die with us.
		runtime.LockOSThread()
		return nil, err
	}
	if oerr != nil {
		return nil, oerr
	}
	return md, nil
}

// ourNode starts a directord engine in namespace ns.
func startOurs(t *testing.T, ns netns.NsHandle, cfg Config, tweak func(*Engine)) *testNode {
	t.Helper()
	lb := &logBuf{}
	cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res := newRecorder(cfg.Node)
	e, err := New(cfg, res)
	if err != nil {
		t.Fatal(err)
	}
	e.openLink = func(_ context.Context, m hacf.Medium) (link, error) { return openIn(ns, m) }
	if tweak != nil {
		tweak(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{name: cfg.Node, e: e, res: res, log: lb, cancel: cancel, errc: make(chan error, 1), dir: cfg.StateDir}
	go func() { tn.errc <- e.Run(ctx) }()
	t.Cleanup(func() {
		tn.kill()
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("log of directord %s:\n%s", tn.name, maybeFilter(lb.String()))
		}
	})
	return tn
}

func filterLog(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "level=DEBUG") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// realNode is Debian's heartbeat 3.0.6 running as nodea in its own
// network, mount, UTS and PID namespaces with private /etc/ha.d,
// /var/lib/heartbeat, /run and /var/log.
type realNode struct {
	t   *testing.T
	ns  string
	dir string
	cmd *exec.Cmd
	out *logBuf // the daemon's stdout and stderr, written by exec
}

type realTiming struct{ keepalive, warntime, deadtime, initdead string }

func needHeartbeat(t *testing.T) {
	t.Helper()
	needRoot(t)
	for _, bin := range []string{realHeartbeat, "unshare", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install heartbeat)", bin)
		}
	}
}

// vipScript is the resource script the real node runs for its groups: it
// records start and stop, and answers status, as ResourceManager expects.
const vipScript = `#!/bin/sh
state=/var/log/vip.$1
case "$2" in
start)  echo "start $1" >> /var/log/vip.log; touch "$state";;
stop)   echo "stop $1" >> /var/log/vip.log; rm -f "$state";;
status) if [ -e "$state" ]; then echo running; else echo stopped; fi;;
esac
exit 0
`

// newRealNode prepares nodea's files; extra lines are appended to ha.cf.
func newRealNode(t *testing.T, ns string, tm realTiming, fb hacf.AutoFailback, key string, peerIPs []string, extra ...string) *realNode {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc", "lib", "run", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cp := exec.Command("sh", "-c", fmt.Sprintf("cp -a /etc/ha.d/. %[1]s/etc/ && (cp -a /run/heartbeat %[1]s/run/ || mkdir -p %[1]s/run/heartbeat)", dir))
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var media strings.Builder
	for i, ip := range peerIPs {
		fmt.Fprintf(&media, "ucast hb%d %s\n", i, ip)
	}
	hacfText := fmt.Sprintf("logfile /var/log/ha-log\ndebugfile /var/log/ha-debug\nkeepalive %s\nwarntime %s\ndeadtime %s\ninitdead %s\n"+
		"udpport 694\n%sauto_failback %s\nnode nodeA\nnode nodeB\n%s", tm.keepalive, tm.warntime, tm.deadtime, tm.initdead, media.String(), fb,
		strings.Join(append(extra, ""), "\n"))
	files := map[string]string{
		"ha.cf":          hacfText,
		"authkeys":       "auth 1\n1 sha1 " + key + "\n",
		"haresources":    "nodeA vip::" + gA + "\nnodeB vip::" + gB + "\n",
		"resource.d/vip": vipScript,
	}
	for name, text := range files {
		mode := os.FileMode(0o600)
		if strings.HasPrefix(name, "resource.d/") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	rn := &realNode{t: t, ns: ns, dir: dir}
	t.Cleanup(func() {
		rn.kill9()
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("log of heartbeat nodea:\n%s\nvip.log:\n%s", rn.log(), rn.vipLog())
		}
	})
	return rn
}

func (rn *realNode) start() {
	rn.t.Helper()
	os.Remove(filepath.Join(rn.dir, "run", "heartbeat.pid"))
	script := fmt.Sprintf(`hostname nodeA && mount --bind %[1]s/etc /etc/ha.d && mount --bind %[1]s/lib /var/lib/heartbeat &&
mount --bind %[1]s/run /run && mount --bind %[1]s/log /var/log && exec %[2]s -f`, rn.dir, realHeartbeat)
	rn.cmd = exec.Command("ip", "netns", "exec", rn.ns, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--mount", "sh", "-c", script)
	rn.out = &logBuf{}
	rn.cmd.Stdout, rn.cmd.Stderr = rn.out, rn.out
	if err := rn.cmd.Start(); err != nil {
		rn.t.Fatal(err)
	}
}

// pid1 returns the host pid of the namespace's init: heartbeat itself.
func (rn *realNode) pid1() int {
	if rn.cmd == nil || rn.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", rn.cmd.Process.Pid, rn.cmd.Process.Pid))
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

// kill9 is "killall -9 heartbeat": killing the PID namespace's init takes
// every heartbeat process with it; resources are not released.
func (rn *realNode) kill9() {
	if rn.cmd == nil {
		return
	}
	if pid := rn.pid1(); pid > 0 {
		exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
	}
	rn.cmd.Process.Kill()
	rn.cmd.Wait()
	rn.cmd = nil
}

// powerOff is kill9 plus the loss of what the node held, as when the
// machine loses power: its resource state files go too.
func (rn *realNode) powerOff() {
	rn.kill9()
	fs, _ := filepath.Glob(filepath.Join(rn.dir, "log", "vip.*.*"))
	for _, f := range fs {
		if !strings.HasSuffix(f, "vip.log") {
			os.Remove(f)
		}
	}
}

// inside runs a command in the node's namespaces (mount, UTS, net, PID).
func (rn *realNode) inside(args ...string) (string, error) {
	pid := rn.pid1()
	if pid == 0 {
		return "", fmt.Errorf("heartbeat is not running")
	}
	a := append([]string{"-t", strconv.Itoa(pid), "-m", "-u", "-n", "-p", "--"}, args...)
	out, err := exec.Command("nsenter", a...).CombinedOutput()
	return string(out), err
}

// stop is "heartbeat -k": a graceful shutdown. The -k client itself is
// killed with the PID namespace when heartbeat (its init) exits, so its
// exit status says nothing; heartbeat exiting does.
func (rn *realNode) stop() error {
	out, kerr := rn.inside(realHeartbeat, "-k")
	done := make(chan struct{})
	go func() { rn.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("heartbeat -k did not stop heartbeat: %v\n%s", kerr, out)
	}
	rn.cmd = nil
	return nil
}

func (rn *realNode) log() string {
	b, _ := os.ReadFile(filepath.Join(rn.dir, "log", "ha-log"))
	if rn.out != nil {
		return string(b) + rn.out.String()
	}
	return string(b)
}

func (rn *realNode) vipLog() string {
	b, _ := os.ReadFile(filepath.Join(rn.dir, "log", "vip.log"))
	return string(b)
}

func (rn *realNode) holds(g string) bool {
	_, err := os.Stat(filepath.Join(rn.dir, "log", "vip."+g))
	return err == nil
}

func (rn *realNode) statusOf(node string) string {
	out, _ := rn.inside("cl_status", "nodestatus", node)
	return strings.TrimSpace(out)
}

// ourConfig is node B's configuration, matching the real node's files.
func ourConfig(t *testing.T, p *nsPair, side string, tm Timing, fb hacf.AutoFailback, key string) Config {
	self, peer := "nodeb", "nodea"
	if side == "a" {
		self, peer = peer, self
	}
	return Config{
		Node: self, Peers: []string{peer}, Media: p.media(side),
		Keyring: wire.NewKeyring(wire.Key{Num: 1, Method: wire.SHA1, Secret: []byte(key)}),
		Timing:  tm, AutoFailback: fb, StateDir: t.TempDir(),
		Groups: []Group{{Name: gA, Owner: "nodea"}, {Name: gB, Owner: "nodeb"}},
	}
}

func maybeFilter(s string) string {
	if os.Getenv("CLUSTER_TEST_LOGS") == "debug" {
		return s
	}
	return filterLog(s)
}
