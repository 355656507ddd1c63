package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/directord/directord/heartbeat/hacf"
	"github.com/directord/directord/heartbeat/media"
	"github.com/directord/directord/heartbeat/wire"
	"github.com/directord/directord/testbed/heartbeatd"
)

// The tests in this file run over real UDP between two network
// namespaces joined by veth pairs: hb0 198.51.100.1/.2 and, when asked,
// hb1 203.0.113.1/.2. Node A lives in the first namespace, node B in the
// second. Node A is either a directord engine or Debian's heartbeat 3.0.6.

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

// realNode is Debian's heartbeat 3.0.6 running as nodea (testbed/heartbeatd)
// with the vip resource script below.
type realNode struct {
	*heartbeatd.Node
	t *testing.T
}

func needHeartbeat(t *testing.T) {
	t.Helper()
	needRoot(t)
	if m := heartbeatd.Missing(); m != "" {
		t.Skipf("needs %s", m)
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
func newRealNode(t *testing.T, ns string, tm heartbeatd.Timing, fb hacf.AutoFailback, key string, peerIPs []string, extra ...string) *realNode {
	t.Helper()
	cf := heartbeatd.HACF{LogFile: heartbeatd.LogFile, DebugFile: heartbeatd.DebugFile, Timing: tm, AutoFailback: fb.String(), Nodes: []string{"nodeA", "nodeB"}, Extra: extra}
	for i, ip := range peerIPs {
		cf.Ucast = append(cf.Ucast, heartbeatd.Ucast{Dev: fmt.Sprintf("hb%d", i), Peer: ip})
	}
	rn := &realNode{t: t, Node: heartbeatd.ForTest(t, ns, "nodeA", map[string]string{
		"ha.cf":          cf.String(),
		"authkeys":       "auth 1\n1 sha1 " + key + "\n",
		"haresources":    "nodeA vip::" + gA + "\nnodeB vip::" + gB + "\n",
		"resource.d/vip": vipScript,
	})}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("log of heartbeat nodea:\n%s\nvip.log:\n%s", rn.Log(), rn.vipLog())
		}
	})
	return rn
}

func (rn *realNode) start() {
	rn.t.Helper()
	if err := rn.Start(); err != nil {
		rn.t.Fatal(err)
	}
}

// powerOff is kill -9 plus the loss of what the node held, as when the
// machine loses power: its resource state files go too.
func (rn *realNode) powerOff() {
	rn.Kill9()
	fs, _ := filepath.Glob(rn.LogPath("vip.*.*"))
	for _, f := range fs {
		if !strings.HasSuffix(f, "vip.log") {
			os.Remove(f)
		}
	}
}

func (rn *realNode) vipLog() string {
	b, _ := os.ReadFile(rn.LogPath("vip.log"))
	return string(b)
}

func (rn *realNode) holds(g string) bool {
	_, err := os.Stat(rn.LogPath("vip." + g))
	return err == nil
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
