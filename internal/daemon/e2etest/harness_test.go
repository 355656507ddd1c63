package e2etest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/vishvananda/netlink"
)

// The appliance's addresses, documentation ranges only.
var (
	vipAddr  = netip.MustParseAddr("192.0.2.100")
	lanNet   = 24
	clientIP = netip.MustParseAddr("192.0.2.10")
	nodeLAN  = []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	nodeHB   = []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}
	realIPs  = []netip.Addr{netip.MustParseAddr("192.0.2.21"), netip.MustParseAddr("192.0.2.22")}
	nodeName = []string{"node1", "node2"}
)

// node is one director: its namespace, its configuration directory and the
// directord process running there.
type node struct {
	t    *testing.T
	i    int
	name string
	host *netns.Host
	dir  string
	sock string
	bin  string

	// env is added to the daemon's environment.
	env []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// appliance is the whole testbed.
type appliance struct {
	t      *testing.T
	topo   *netns.Topology
	nodes  [2]*node
	client *netns.Host
	reals  []*http.Server
}

// config writes node i's configuration: YAML (so that the IPVS sync daemon
// can be configured) naming an lnoded.cf in ldirectord's syntax.
func writeConfig(t *testing.T, dir string, i int, weights [2]int) {
	t.Helper()
	peer := 1 - i
	yaml := fmt.Sprintf(`cluster:
  nodes: [node1, node2]
  media:
    - ucast: hb0
      peer: %s
    - ucast: eth0
      peer: %s
  keepalive: 200ms
  warntime: 2s
  deadtime: 4s
  initdead: 8s
  auto_failback: on
auth:
  active: 1
  keys:
    - {num: 1, method: sha1, secret: e2e-secret}
groups:
  - owner: node1
    resources:
      - vip: {address: 192.0.2.100, prefix: 24, interface: eth0, agent: IPaddr2}
      - lnoded: lnoded.cf
      - script: {name: marker, args: [web]}
directord:
  sync:
    enabled: true
    interface: hb0
    syncid: 7
  garp:
    count: 3
    interval: 100ms
`, nodeHB[peer], nodeLAN[peer])
	if err := os.WriteFile(filepath.Join(dir, "directord.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	writeLnoded(t, dir, lnodedCF(weights))
	// A resource script after the VIP: it checks, when started and when
	// stopped, that the VIP is there (started left to right, stopped right
	// to left), and keeps a journal of what it was asked.
	initd := filepath.Join(dir, "init.d")
	if err := os.MkdirAll(initd, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
# marker ARG start|stop|status
journal=` + filepath.Join(dir, "marker.journal") + `
state=` + filepath.Join(dir, "marker.state") + `.$1
vip() { /usr/sbin/ip -o -4 addr show dev eth0 | grep -q ' 192.0.2.100/'; }
case "$2" in
start) if [ -f ` + filepath.Join(dir, "marker.fail") + ` ]; then echo "start $1 FAIL" >> $journal; echo "cannot start web: marker.fail exists" >&2; exit 1; fi
	if vip; then echo "start $1 vip-up" >> $journal; echo on > $state; else echo "start $1 NO-VIP" >> $journal; exit 1; fi ;;
stop) if vip; then echo "stop $1 vip-up" >> $journal; else echo "stop $1 NO-VIP" >> $journal; fi; rm -f $state ;;
status) if [ -f $state ]; then echo running; else echo stopped; fi ;;
*) exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(initd, "marker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeHADir replaces node i's configuration with an /etc/ha.d directory
// written as seed 003 writes it: "node1 192.0.2.100 lnoded::lnoded.cf", the
// VIP in IPaddr's short form (interface by route, label eth0:0).
func writeHADir(t *testing.T, dir string, i int) {
	t.Helper()
	peer := 1 - i
	files := map[string]string{
		"ha.cf": fmt.Sprintf(`logfacility local0
keepalive 200ms
warntime 2
deadtime 4
initdead 8
udpport 694
ucast hb0 %s
ucast eth0 %s
auto_failback on
node node1
node node2
`, nodeHB[peer], nodeLAN[peer]),
		"haresources": "node1 192.0.2.100 lnoded::lnoded.cf\n",
		"authkeys":    "auth 1\n1 sha1 seed-secret\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(dir, "directord.yaml"))
}

// journal returns what node's marker script was asked, one line per call.
func (n *node) journal() []string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "marker.journal"))
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

// pid returns the running directord's pid, 0 when none.
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

func lnodedCF(weights [2]int) string {
	return fmt.Sprintf(`checktimeout=1
checkinterval=1
quiescent=no
virtual=192.0.2.100:80
	real=192.0.2.21:80 gate %d
	real=192.0.2.22:80 gate %d
	service=http
	request="health"
	receive="ok"
	scheduler=wrr
	protocol=tcp
`, weights[0], weights[1])
}

func writeLnoded(t *testing.T, dir, content string) {
	t.Helper()
	// Written whole and renamed, as an editor does, so that a reload never
	// reads half a file.
	tmp := filepath.Join(dir, ".lnoded.cf.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "lnoded.cf")); err != nil {
		t.Fatal(err)
	}
}

func newAppliance(t *testing.T) *appliance {
	t.Helper()
	a := &appliance{t: t, topo: netns.ForTest(t)}
	lan, err := a.topo.Switch("lan")
	must(t, err)
	host := func(name string, addr netip.Addr) *netns.Host {
		h, err := a.topo.Host(name)
		must(t, err)
		_, err = a.topo.Plug(h, "eth0", lan)
		must(t, err)
		must(t, h.AddAddr("eth0", netip.PrefixFrom(addr, lanNet)))
		return h
	}
	a.client = host("client", clientIP)
	bin := directordBinary(t)
	for i := range a.nodes {
		n := &node{t: t, i: i, name: nodeName[i], host: host(nodeName[i], nodeLAN[i]), dir: t.TempDir(), bin: bin, log: &lockedBuffer{}}
		n.sock = filepath.Join(n.dir, "directord.sock")
		writeConfig(t, n.dir, i, [2]int{1, 1})
		a.nodes[i] = n
	}
	// The dedicated heartbeat cable, as in the seeds' eth1.
	must(t, a.topo.Cable(a.nodes[0].host, "hb0", a.nodes[1].host, "hb0"))
	for i, n := range a.nodes {
		must(t, n.host.AddAddr("hb0", netip.PrefixFrom(nodeHB[i], 24)))
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i, ip := range realIPs {
		h := host(fmt.Sprintf("rs%d", i+1), ip)
		for k, v := range map[string]string{
			"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.lo.arp_ignore": "1",
			"net.ipv4.conf.all.arp_announce": "2", "net.ipv4.conf.lo.arp_announce": "2",
		} {
			must(t, h.Sysctl(k, v))
		}
		must(t, h.AddAddr("lo", netip.PrefixFrom(vipAddr, 32)))
		// On all addresses: the VIP for DR traffic, the real address for
		// the directors' checks.
		ln, err := h.Listen("tcp", ":80")
		must(t, err)
		name := fmt.Sprintf("rs%d", i+1)
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				fmt.Fprintln(w, "ok")
				return
			}
			fmt.Fprintln(w, name)
		})}
		wg.Add(1)
		go func() { defer wg.Done(); srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
		a.reals = append(a.reals, srv)
	}
	t.Cleanup(func() {
		for _, n := range a.nodes {
			n.kill()
			if t.Failed() {
				t.Logf("=== log of %s ===\n%s", n.name, n.log.String())
			}
		}
	})
	return a
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// start runs `directord run` in the node's namespace.
func (n *node) start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.t.Fatalf("%s: already running", n.name)
	}
	cfg := []string{"--config", filepath.Join(n.dir, "directord.yaml")}
	if _, err := os.Stat(filepath.Join(n.dir, "ha.cf")); err == nil {
		cfg = []string{"--ha-dir", n.dir}
	}
	cmd := exec.Command(n.bin, append(append([]string{"run"}, cfg...),
		"--node", n.name,
		"--state-dir", filepath.Join(n.dir, "state"),
		"--socket", n.sock,
		"--metrics", "127.0.0.1:9700",
		"--init-dir", filepath.Join(n.dir, "init.d"))...)
	fmt.Fprintf(n.log, "=== %s: starting directord\n", time.Now().Format("15:04:05.000"))
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if n.env != nil {
		cmd.Env = append(os.Environ(), n.env...)
	}
	if err := os.MkdirAll(filepath.Join(n.dir, "state"), 0o700); err != nil {
		n.t.Fatal(err)
	}
	if err := n.host.Start(cmd); err != nil {
		n.t.Fatalf("%s: starting directord: %v", n.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
}

// signal sends sig and waits (up to timeout) for the process to exit.
func (n *node) signal(sig syscall.Signal, timeout time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s: not running", n.name)
	}
	fmt.Fprintf(n.log, "=== %s: sending %v\n", time.Now().Format("15:04:05.000"), sig)
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("%s: still running %v after %v", n.name, timeout, sig)
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && sig != syscall.SIGKILL && st.ExitStatus() != 0 {
		return fmt.Errorf("%s: exit status %d after %v", n.name, st.ExitStatus(), sig)
	}
	return nil
}

// sendSignal sends sig without waiting for anything.
func (n *node) sendSignal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		fmt.Fprintf(n.log, "=== %s: sending %v\n", time.Now().Format("15:04:05.000"), sig)
		n.cmd.Process.Signal(sig)
	}
}

func (n *node) kill() {
	n.mu.Lock()
	running := n.cmd != nil
	n.mu.Unlock()
	if running {
		n.signal(syscall.SIGKILL, 10*time.Second)
	}
}

// cli runs the directord binary with args (the client commands) and returns
// its stdout, stderr and exit code.
func (n *node) cli(args ...string) (string, string, int) {
	cmd := exec.Command(n.bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := n.host.Run(cmd)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatalf("%s: directord %s: %v", n.name, strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// hasVIP reads the kernel: is the VIP on the node's eth0?
func (n *node) hasVIP() bool { return n.host.HasAddr("eth0", vipAddr) }

func (n *node) removeVIP() {
	nl := n.host.Netlink()
	l, err := nl.LinkByName("eth0")
	must(n.t, err)
	addr, _ := netlink.ParseAddr(vipAddr.String() + "/24")
	nl.AddrDel(l, addr)
}

// metrics scrapes the node's metrics endpoint and returns the samples by
// their full name with labels, as the text format writes them.
func (n *node) metrics() map[string]float64 {
	n.t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.host.Dial(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	resp, err := hc.Get("http://127.0.0.1:9700/metrics")
	if err != nil {
		n.t.Fatalf("%s: metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// waitFor polls cond every 10ms until it holds or timeout passes, and returns
// how long it took.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// traffic is a client sending one HTTP request through the VIP every
// interval, each on a new connection, recording the failures.
type traffic struct {
	mu       sync.Mutex
	sent     int
	failed   int
	by       map[string]int
	firstErr string
	lastOK   time.Time
	longest  time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
}

func (a *appliance) startTraffic(interval time.Duration) *traffic {
	stopCtx, cancel := context.WithCancel(context.Background())
	tr := &traffic{by: map[string]int{}, cancel: cancel, done: make(chan struct{}), lastOK: time.Now()}
	// 3s: a SYN lost while the VIP moves is retransmitted after 1s, which
	// delays a request (the longest gap shows it) without losing it.
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return a.client.Dial(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	go func() {
		defer close(tr.done)
		for stopCtx.Err() == nil {
			// A request in flight when stop is called finishes (or times
			// out) and counts: cancelling it would hide a failure.
			who, err := get(context.Background(), hc, "http://"+vipAddr.String()+"/")
			now := time.Now()
			tr.mu.Lock()
			tr.sent++
			if err != nil {
				tr.failed++
				if tr.firstErr == "" {
					tr.firstErr = err.Error()
				}
			} else {
				tr.by[who]++
				if gap := now.Sub(tr.lastOK); gap > tr.longest {
					tr.longest = gap
				}
				tr.lastOK = now
			}
			tr.mu.Unlock()
			select {
			case <-stopCtx.Done():
			case <-time.After(interval):
			}
		}
	}()
	return tr
}

func (tr *traffic) stop() (sent, failed int, longest time.Duration, firstErr string) {
	tr.cancel()
	<-tr.done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sent, tr.failed, tr.longest, tr.firstErr
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// ipvsadm runs ipvsadm in the node's namespace.
func (n *node) ipvsadm(args ...string) string {
	n.t.Helper()
	out, err := n.host.CombinedOutput(exec.Command("ipvsadm", args...))
	if err != nil {
		n.t.Fatalf("%s: ipvsadm %s: %v: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
