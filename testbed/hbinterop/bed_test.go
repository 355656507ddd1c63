package hbinterop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/directord/directord/testbed/heartbeatd"
	"github.com/directord/directord/testbed/netns"
)

// The bed's addresses, documentation ranges only. nodea is the peer under
// test (Heartbeat or a second directord), nodeb is directord.
var (
	lanA     = netip.MustParsePrefix("192.0.2.1/24")
	lanB     = netip.MustParsePrefix("192.0.2.2/24")
	lanC     = netip.MustParsePrefix("192.0.2.50/24") // the client
	cableA   = netip.MustParsePrefix("198.51.100.1/24")
	cableB   = netip.MustParsePrefix("198.51.100.2/24")
	vipA     = netip.MustParseAddr("192.0.2.110") // owned by nodea
	vipB     = netip.MustParseAddr("192.0.2.120") // owned by nodeb
	vips     = []netip.Addr{vipA, vipB}
	haresrcs = fmt.Sprintf("nodea IPaddr2::%s/24/eth0\nnodeb IPaddr2::%s/24/eth0\n", vipA, vipB)
)

const (
	nodeA = "nodea"
	nodeB = "nodeb"
	// servicePort is each node's "who am I" service, reached through a VIP.
	servicePort = 7000
	key         = "hbinterop-key"
)

// The kinds of nodea.
const (
	kindHeartbeat = "heartbeat"
	kindDirectord = "directord"
)

// forPeers runs f as a subtest for each kind of nodea: every scenario holds
// for directord ↔ Heartbeat and for directord ↔ directord.
func forPeers(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range []string{kindHeartbeat, kindDirectord} {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

// Sub-second timings, as the engine's interop tests use, keep the runs
// short. deadTime is ha.cf's deadtime.
var fast = heartbeatd.Timing{Keepalive: "200ms", WarnTime: "600ms", DeadTime: "1", InitDead: "2"}

const deadTime = time.Second

// wait bounds every expectation: generous for a loaded 2-core machine; the
// timing assertions are separate.
const wait = 30 * time.Second

type options struct {
	tm       heartbeatd.Timing // both sides' timing; zero: fast
	failback string            // auto_failback: on or off
	aKey     string            // nodea's sha1 secret
	bKey     string            // nodeb's
	// aInitDead, bInitDead override each side's initdead.
	aInitDead, bInitDead string
}

// bed is the two nodes, the client and the LAN between them.
type bed struct {
	t       *testing.T
	topo    *netns.Topology
	a, b, c *netns.Host // nodea, nodeb, the client
	pa      peer        // nodea's daemon
	dd      *directord  // nodeb's
}

func newBed(t *testing.T, kind string, o options) *bed {
	t.Helper()
	if testing.Short() {
		t.Skip("processes in namespaces: not in -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces)")
	}
	if m := heartbeatd.Missing(); m != "" && kind == kindHeartbeat {
		t.Skipf("needs %s", m)
	}
	bin := os.Getenv(binEnv)
	if _, err := os.Stat(bin); bin == "" || err != nil {
		t.Fatalf("directord binary %q: %v (run with go test, whose TestMain builds it)", bin, err)
	}
	if o.failback == "" {
		o.failback = "on"
	}
	if o.aKey == "" {
		o.aKey = key
	}
	if o.bKey == "" {
		o.bKey = key
	}
	b := &bed{t: t, topo: netns.ForTest(t)}
	lan, err := b.topo.Switch("lan")
	must(t, err)
	host := func(name string, p netip.Prefix) *netns.Host {
		h, err := b.topo.Host(name)
		must(t, err)
		_, err = b.topo.Plug(h, "eth0", lan)
		must(t, err)
		must(t, h.AddAddr("eth0", p))
		return h
	}
	b.a, b.b, b.c = host(nodeA, lanA), host(nodeB, lanB), host("client", lanC)
	must(t, b.topo.Cable(b.a, "hb0", b.b, "hb0"))
	must(t, b.a.AddAddr("hb0", cableA))
	must(t, b.b.AddAddr("hb0", cableB))
	for _, n := range []struct {
		h    *netns.Host
		name string
	}{{b.a, nodeA}, {b.b, nodeB}} {
		serveName(t, n.h, n.name)
	}

	if o.tm == (heartbeatd.Timing{}) {
		o.tm = fast
	}
	cf := func(peer netip.Prefix, initDead string) heartbeatd.HACF {
		tm := o.tm
		if initDead != "" {
			tm.InitDead = initDead
		}
		return heartbeatd.HACF{Timing: tm, AutoFailback: o.failback, Nodes: []string{nodeA, nodeB},
			Ucast: []heartbeatd.Ucast{{Dev: "hb0", Peer: peer.Addr().String()}}}
	}
	files := func(cf heartbeatd.HACF, key string) map[string]string {
		return map[string]string{
			"ha.cf":       cf.String(),
			"authkeys":    "auth 1\n1 sha1 " + key + "\n",
			"haresources": haresrcs,
		}
	}
	acf := cf(cableB, o.aInitDead)
	if kind == kindHeartbeat {
		acf.LogFile, acf.DebugFile = heartbeatd.LogFile, heartbeatd.DebugFile
		b.pa = &hbPeer{b: b, n: heartbeatd.ForTest(t, b.a.NetnsName(), nodeA, files(acf, o.aKey))}
	} else {
		b.pa = newDirectord(t, b.a, nodeA, bin, files(acf, o.aKey))
	}
	b.dd = newDirectord(t, b.b, nodeB, bin, files(cf(cableA, o.bInitDead), o.bKey))

	t.Cleanup(func() {
		if t.Failed() || os.Getenv("HBINTEROP_LOGS") != "" {
			t.Logf("addresses: nodea %v, nodeb %v", b.held(b.a), b.held(b.b))
			t.Logf("=== %s (nodea) log ===\n%s", b.pa.kind(), b.pa.dump())
			t.Logf("=== directord (nodeb) log ===\n%s", b.dd.log())
		}
	})
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// serveName answers every connection to servicePort in h with name: what
// the client reads tells which node a VIP leads to.
func serveName(t *testing.T, h *netns.Host, name string) {
	ln, err := h.Listen("tcp", fmt.Sprintf(":%d", servicePort))
	must(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// held returns the VIPs among vips on h's eth0, read over netlink.
func (b *bed) held(h *netns.Host) []netip.Addr {
	l, err := h.Netlink().LinkByName("eth0")
	if err != nil {
		return nil
	}
	addrs, err := h.Netlink().AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, v := range vips {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v {
				out = append(out, v)
			}
		}
	}
	return out
}

func (b *bed) holds(h *netns.Host, v netip.Addr) bool {
	for _, x := range b.held(h) {
		if x == v {
			return true
		}
	}
	return false
}

// drop removes v from h: what a machine that lost power no longer has.
func (b *bed) drop(h *netns.Host, v netip.Addr) {
	l, err := h.Netlink().LinkByName("eth0")
	must(b.t, err)
	must(b.t, h.Netlink().AddrDel(l, &netlink.Addr{IPNet: &net.IPNet{IP: v.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
}

// answer is what the client reads from v's service: the name of the node
// it reached, or "" when nothing answered.
func (b *bed) answer(v netip.Addr) string {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c, err := b.c.Dial(ctx, "tcp", netip.AddrPortFrom(v, servicePort).String())
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// owners says which node holds vipA and vipB.
type owners struct{ a, b string }

func (o owners) String() string { return fmt.Sprintf("%s on %s, %s on %s", vipA, o.a, vipB, o.b) }

// state describes what the bed looks like now, for messages.
func (b *bed) state() string {
	return fmt.Sprintf("nodea holds %v, nodeb holds %v; the client reaches %s at %q, %s at %q",
		b.held(b.a), b.held(b.b), vipA, b.answer(vipA), vipB, b.answer(vipB))
}

// is says whether each VIP is on its expected node only, and the client
// reaches that node through it.
func (b *bed) is(o owners) bool {
	for i, who := range []string{o.a, o.b} {
		v := vips[i]
		on, off := b.a, b.b
		if who == nodeB {
			on, off = b.b, b.a
		}
		if !b.holds(on, v) || b.holds(off, v) || b.answer(v) != who {
			return false
		}
	}
	return true
}

// expect waits for o and returns how long it took.
func (b *bed) expect(what string, o owners) time.Duration {
	b.t.Helper()
	start := time.Now()
	for !b.is(o) {
		if time.Since(start) > wait {
			b.t.Fatalf("%s: want %v within %v; %s", what, o, wait, b.state())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// stays checks that o holds for d: nothing moves by itself.
func (b *bed) stays(what string, o owners, d time.Duration) {
	b.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !b.is(o) {
			// A client's connect can fail once under load; the addresses
			// must not move.
			time.Sleep(200 * time.Millisecond)
			if !b.is(o) {
				b.t.Fatalf("%s: want %v to stay; %s", what, o, b.state())
			}
		}
	}
}

// waitVIP waits until v is on h and returns how long it took.
func (b *bed) waitVIP(what string, h *netns.Host, v netip.Addr) time.Duration {
	b.t.Helper()
	start := time.Now()
	for !b.holds(h, v) {
		if time.Since(start) > wait {
			b.t.Fatalf("%s: %s not on %s within %v; %s", what, v, h.Name(), wait, b.state())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// waitLog waits until log() contains s after its first from bytes.
func waitLog(t *testing.T, what string, log func() string, from int, s string) {
	t.Helper()
	start := time.Now()
	for !strings.Contains(log()[from:], s) {
		if time.Since(start) > wait {
			t.Fatalf("%s: %q not logged within %v", what, s, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// directord is a `directord run` process: nodeb always, nodea in the
// directord ↔ directord variants. Its standard error (the log) goes to
// logf, a file in dir, across restarts.
type directord struct {
	t    *testing.T
	host *netns.Host
	node string
	bin  string
	dir  string // its --ha-dir, holding its state dir, socket and log
	sock string
	logf *os.File // O_APPEND: the test's own lines and the daemon's interleave whole

	mu   sync.Mutex
	proc *process
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once err is set
	err  error         // Wait's
}

// newDirectord prepares node's directord in h with files (ha.cf, authkeys,
// haresources) as its --ha-dir; nothing runs until start.
func newDirectord(t *testing.T, h *netns.Host, node, bin string, files map[string]string) *directord {
	dir := t.TempDir()
	for name, text := range files {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	must(t, os.Mkdir(filepath.Join(dir, "state"), 0o700))
	logf, err := os.OpenFile(filepath.Join(dir, "directord.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	must(t, err)
	t.Cleanup(func() { logf.Close() })
	d := &directord{t: t, host: h, node: node, bin: bin, dir: dir, sock: filepath.Join(dir, "directord.sock"), logf: logf}
	t.Cleanup(d.kill9)
	return d
}

// note writes a line of the test's own into the log.
func (d *directord) note(s string) {
	fmt.Fprintf(d.logf, "=== %s: %s\n", time.Now().Format("15:04:05.000"), s)
}

// log returns everything the daemon logged so far.
func (d *directord) log() string {
	b, _ := os.ReadFile(d.logf.Name())
	return string(b)
}

func (d *directord) start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil {
		d.t.Fatal("directord already runs")
	}
	d.note("starting directord")
	cmd := exec.Command(d.bin, "run", "--ha-dir", d.dir, "--node", d.node,
		"--state-dir", filepath.Join(d.dir, "state"), "--socket", d.sock)
	cmd.Stdout, cmd.Stderr = d.logf, d.logf
	if err := d.host.Start(cmd); err != nil {
		d.t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	d.proc = p
}

// signal sends sig and waits for the process to exit; it returns the exit
// error (nil for status 0).
func (d *directord) signal(sig syscall.Signal) error {
	d.mu.Lock()
	p := d.proc
	d.proc = nil
	d.mu.Unlock()
	if p == nil {
		return errors.New("directord does not run")
	}
	d.note(sig.String())
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("directord still ran %v after %v", wait, sig)
	}
	return p.err
}

func (d *directord) kill9() { d.signal(syscall.SIGKILL) }

// cli runs `directord ARGS` in the node's namespace, as an operator there.
func (d *directord) cli(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(d.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := d.host.Run(cmd)
	return out.String(), err
}

// waitStable waits until directord's status says stable: no transition
// under way here, and the peer's last word was isstable=1.
func (d *directord) waitStable() {
	d.t.Helper()
	start := time.Now()
	for {
		out, err := d.cli("status", "-o", "json", "--socket", d.sock)
		var st struct {
			Daemon struct {
				HA struct{ Stable bool }
			}
		}
		if err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Daemon.HA.Stable {
			return
		}
		if time.Since(start) > wait {
			d.t.Fatalf("directord (%s) not stable within %v: %v\n%s", d.node, wait, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// request runs a standby or takeover, retrying while the daemon refuses it
// (a transition under way).
func (d *directord) request(args ...string) {
	d.t.Helper()
	args = append([]string{args[0], "--socket", d.sock}, args[1:]...)
	start := time.Now()
	for {
		out, err := d.cli(args...)
		if err == nil {
			return
		}
		if time.Since(start) > wait {
			d.t.Fatalf("directord (%s) %s: %v\n%s", d.node, strings.Join(args, " "), err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peer is nodea's daemon, Heartbeat or directord, driven through what an
// operator of each would do, so that one test body covers both pairs.
type peer interface {
	kind() string
	start()
	kill9()
	// stop is the graceful stop: heartbeat -k, SIGTERM. It returns once
	// the daemon exited, with an error if it did not stop cleanly.
	stop() error
	standby()  // hb_standby, directord standby
	takeover() // hb_takeover all, directord takeover
	// log is the daemon's log, which only grows: offsets into it stay
	// valid.
	log() string
	dump() string // everything it wrote, for a failed test
	// settle waits until a kill -9 would measure ha.cf's deadtime.
	settle()
	// quiet waits until no transition is under way at the node.
	quiet()
	// sees says whether the node sees node's status as status.
	sees(node, status string) bool
	// authFailure is what the node logs for a packet with another key.
	authFailure() string
	// lost is what the node logs, in order, when it missed nodeb's
	// packets and got them again.
	lost() []string
}

// The directord peer: its own --ha-dir, --state-dir and --socket in nodea's
// namespace, with the same files as Heartbeat would have.

func (d *directord) kind() string { return kindDirectord }
func (d *directord) stop() error  { return d.signal(syscall.SIGTERM) }
func (d *directord) standby()     { d.request("standby") }
func (d *directord) takeover()    { d.request("takeover") }
func (d *directord) dump() string { return d.log() }
func (d *directord) quiet()       { d.waitStable() }
func (d *directord) authFailure() string {
	return "heartbeat packet rejected: authentication failed"
}
func (d *directord) lost() []string { return []string{"Retransmitted message"} }

// settle: directord advertises its deadtime from the start, so a kill once
// no transition is under way measures it.
func (d *directord) settle() { d.waitStable() }

func (d *directord) sees(node, status string) bool {
	out, err := d.cli("status", "--socket", d.sock)
	return err == nil && strings.Contains(out, fmt.Sprintf("peer %s: %s", node, status))
}

// hbPeer is Heartbeat 3.0.6 as nodea (testbed/heartbeatd).
type hbPeer struct {
	b *bed
	n *heartbeatd.Node

	mu      sync.Mutex
	started time.Time
}

func (p *hbPeer) kind() string { return kindHeartbeat }

func (p *hbPeer) start() {
	p.b.t.Helper()
	must(p.b.t, p.n.Start())
	p.mu.Lock()
	p.started = time.Now()
	p.mu.Unlock()
}

func (p *hbPeer) kill9()              { p.n.Kill9() }
func (p *hbPeer) stop() error         { return p.n.Stop(wait) }
func (p *hbPeer) standby()            { p.inside(heartbeatd.HBStandby) }
func (p *hbPeer) takeover()           { p.inside(heartbeatd.HBTakeover, "all") }
func (p *hbPeer) dump() string        { return p.n.Log() }
func (p *hbPeer) authFailure() string { return "authtoken does not match" }
func (p *hbPeer) lost() []string {
	return []string{"lost packet(s) for [nodeb]", "No pkts missing from nodeb!"}
}
func (p *hbPeer) sees(node, status string) bool { return p.n.NodeStatus(node) == status }

// log returns heartbeat's ha-log, which only grows (Node.Log appends its
// standard output, which is no use for offsets).
func (p *hbPeer) log() string {
	s, _ := os.ReadFile(p.n.LogPath(filepath.Base(heartbeatd.LogFile)))
	return string(s)
}

// inside runs a command inside heartbeat's namespaces. Callers wait for
// bed.quiet first: Heartbeat ignores a standby asked for during a
// transition (its rule; an operator retries).
func (p *hbPeer) inside(args ...string) {
	p.b.t.Helper()
	if out, err := p.n.Inside(args...); err != nil {
		p.b.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// settle waits until heartbeat has run long enough to advertise its
// deadtime: for its first 5 s it announces dt 3000 ms (seen on the wire),
// which we honour, and a kill then would measure that.
func (p *hbPeer) settle() {
	p.mu.Lock()
	left := time.Until(p.started.Add(6 * time.Second))
	p.mu.Unlock()
	time.Sleep(left)
}

// quiet waits until Heartbeat runs none of its resource scripts (it says
// isstable=1 before the ones it starts for its own group at start-up have
// finished). On a loaded machine those scripts take seconds, and Heartbeat
// handles a peer's shutdown or standby arriving meanwhile late or not at
// all.
func (p *hbPeer) quiet() {
	p.b.t.Helper()
	start := time.Now()
	for {
		// pgrep exits 1 when nothing matches.
		out, err := p.n.Inside("pgrep", "-f", "ResourceManager|mach_down|/rc.d/|harc")
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return
		}
		if time.Since(start) > wait {
			p.b.t.Fatalf("heartbeat's resource scripts still run after %v: %v\n%s", wait, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9A and kill9B kill a node's daemon (-9) and return how long the
// other node took to hold every VIP the killed one held. A VIP lingers
// after kill -9 (nothing is released: checked); it is then removed, as the
// killed machine's reboot by its watchdog would remove it, so that the
// client's path is not ambiguous.
func (b *bed) kill9A() time.Duration { return b.kill9(b.a, b.b, b.pa.kill9) }
func (b *bed) kill9B() time.Duration { return b.kill9(b.b, b.a, b.dd.kill9) }

func (b *bed) kill9(dead, other *netns.Host, kill func()) time.Duration {
	b.t.Helper()
	had := b.held(dead)
	if len(had) == 0 {
		b.t.Fatalf("%s holds no VIP to take over; %s", dead.Name(), b.state())
	}
	start := time.Now()
	kill()
	if got := b.held(dead); fmt.Sprint(got) != fmt.Sprint(had) {
		b.t.Errorf("kill -9 of %s's daemon released VIPs: %v before, %v after", dead.Name(), had, got)
	}
	for _, v := range had {
		b.drop(dead, v)
	}
	for _, v := range had {
		b.waitVIP("takeover after kill -9 of "+dead.Name(), other, v)
	}
	return time.Since(start)
}

// quiet waits until no transition is under way: nodeb's directord says
// stable (which includes the peer's last isstable=1) and nodea's daemon
// says so its own way.
func (b *bed) quiet() {
	b.t.Helper()
	b.dd.waitStable()
	b.pa.quiet()
}

// watch follows, until end, which nodes hold each VIP, from the kernel's
// address notifications of both namespaces on one netlink socket
// (NETLINK_LISTEN_ALL_NSID). The kernel queues each notification before
// the change's system call returns, so a change that caused another (the
// acquisition that lets the peer release, or the release that lets it
// acquire) is queued first: the order read is the true one. Polling both
// namespaces, even every 250 µs, missed the gap of a release followed by
// an acquisition between two directord processes (well under 1 ms here,
// with no lnoded resource).
type watch struct {
	b    *bed
	fd   int
	ids  map[int32]*netns.Host // the nodes' namespaces' ids in ours
	on   map[netip.Addr]map[*netns.Host]bool
	stop chan struct{}
	done chan struct{}

	// set by the reader, read after done
	events int
	err    error
	missed map[netip.Addr]int           // per VIP, how often it went on no node
	gap    map[netip.Addr]time.Duration // the longest time, as read, on no node
}

func (b *bed) watch() *watch {
	b.t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	must(b.t, err)
	w := &watch{b: b, fd: fd, ids: map[int32]*netns.Host{}, on: map[netip.Addr]map[*netns.Host]bool{},
		stop: make(chan struct{}), done: make(chan struct{}),
		missed: map[netip.Addr]int{}, gap: map[netip.Addr]time.Duration{}}
	setup := func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_LISTEN_ALL_NSID, 1); err != nil {
			return err
		}
		// Every namespace with an id here is heard, other tests' too (one
		// tearing down floods): room enough that none is dropped (ENOBUFS).
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
			return err
		}
		// A receive timeout lets the reader see stop.
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR})
	}
	if err := setup(); err != nil {
		unix.Close(fd)
		b.t.Fatalf("netlink socket for address notifications: %v", err)
	}
	for _, h := range []*netns.Host{b.a, b.b} {
		w.ids[nsid(b.t, h)] = h
	}
	// Read after subscribing: a change meanwhile is both read here and
	// notified, and applying it twice is harmless.
	for _, v := range vips {
		w.on[v] = map[*netns.Host]bool{}
		for _, h := range []*netns.Host{b.a, b.b} {
			w.on[v][h] = b.holds(h, v)
		}
	}
	go w.run()
	return w
}

// nsid returns h's namespace's id in ours, having the kernel assign one if
// it has none: notifications from another namespace carry it.
func nsid(t *testing.T, h *netns.Host) int32 {
	t.Helper()
	id, err := netlink.GetNetNsIdByFd(int(h.NS()))
	must(t, err)
	if id < 0 {
		must(t, netlink.SetNetNsIdByFd(int(h.NS()), -1))
		id, err = netlink.GetNetNsIdByFd(int(h.NS()))
		must(t, err)
	}
	return int32(id)
}

func (w *watch) run() {
	defer close(w.done)
	defer unix.Close(w.fd)
	since := map[netip.Addr]time.Time{} // when a VIP went on no node
	buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(4))
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(w.fd, buf, oob, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			w.err = err // ENOBUFS: notifications were lost
			return
		}
		h := w.from(oob[:oobn])
		if h == nil {
			continue // another namespace's
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			w.err = err
			return
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR {
				continue
			}
			attrs, err := syscall.ParseNetlinkRouteAttr(&m)
			if err != nil {
				continue
			}
			for _, a := range attrs {
				v, ok := netip.AddrFromSlice(a.Value)
				if a.Attr.Type != unix.IFA_LOCAL || !ok || w.on[v] == nil {
					continue
				}
				w.events++
				w.on[v][h] = m.Header.Type == unix.RTM_NEWADDR
				now := time.Now()
				if w.on[v][w.b.a] || w.on[v][w.b.b] {
					if t, ok := since[v]; ok {
						w.gap[v] = max(w.gap[v], now.Sub(t))
						delete(since, v)
					}
				} else if _, ok := since[v]; !ok {
					since[v] = now
					w.missed[v]++
				}
			}
		}
	}
}

// from returns the node a notification came from (its namespace's id is
// in the ancillary data), nil for any other namespace.
func (w *watch) from(oob []byte) *netns.Host {
	cms, _ := unix.ParseSocketControlMessage(oob)
	for _, c := range cms {
		if c.Header.Level == unix.SOL_NETLINK && c.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(c.Data) >= 4 {
			return w.ids[int32(binary.NativeEndian.Uint32(c.Data))]
		}
	}
	return nil
}

// end stops watching; what the reader set may be read then.
func (w *watch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// makeBeforeBreak ends w and, when both nodes are directord, fails the
// test if a VIP went on no node: what moved VIPs meanwhile was a handover
// between directord nodes, which acquire before the other releases.
// Against Heartbeat (break before make) it logs the gaps.
func (b *bed) makeBeforeBreak(what string, w *watch) {
	b.t.Helper()
	w.end()
	if w.err != nil {
		b.t.Errorf("%s: following the addresses: %v", what, w.err)
	}
	if w.events == 0 {
		b.t.Errorf("%s: no address notification read: nothing was followed", what)
	}
	held := true
	for _, v := range vips {
		missed, gap := w.missed[v], w.gap[v].Round(10*time.Microsecond)
		held = held && missed == 0
		switch {
		case missed == 0:
		case b.pa.kind() == kindDirectord:
			b.t.Errorf("%s: %s went on no node %d time(s), for up to %v; want make before break", what, v, missed, gap)
		default:
			b.t.Logf("%s: %s on no node for %v: break before make", what, v, gap)
		}
	}
	if held {
		b.t.Logf("%s: each VIP always on a node (%d address changes followed)", what, w.events)
	}
}

// dropUDP694 is classic BPF for a tc filter in direct-action mode, run on
// frames from the Ethernet header: IPv4, UDP, destination port 694 →
// TC_ACT_SHOT (2), anything else → TC_ACT_OK (0). Direct action needs no
// action module (act_gact), which some kernels lack.
const dropUDP694 = "9,40 0 0 12,21 0 5 2048,48 0 0 23,21 0 3 17,177 0 0 14,72 0 0 16,21 1 0 694,6 0 0 0,6 0 0 2"

// dropHeartbeats drops every heartbeat packet arriving on h's hb0 for d,
// with a tc filter on the cable's ingress: the other node's heartbeats are
// lost one way.
func (b *bed) dropHeartbeats(h *netns.Host, d time.Duration) {
	b.t.Helper()
	tc := func(args ...string) {
		b.t.Helper()
		if out, err := h.CombinedOutput(exec.Command("tc", args...)); err != nil {
			b.t.Fatalf("tc %s in %s: %v\n%s", strings.Join(args, " "), h.Name(), err, out)
		}
	}
	tc("qdisc", "add", "dev", "hb0", "clsact")
	tc("filter", "add", "dev", "hb0", "ingress", "bpf", "da", "bytecode", dropUDP694)
	start := time.Now()
	time.Sleep(d)
	tc("qdisc", "del", "dev", "hb0", "clsact")
	b.t.Logf("heartbeats to %s dropped for %v", h.Name(), time.Since(start).Round(time.Millisecond))
}
