package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/directord/directord/config"
	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/testbed/netns"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
)

// The appliance's addresses, documentation ranges only: the LAN (clients,
// directors, real servers, the VIP) is 192.0.2.0/24, the directors'
// heartbeat cable 198.51.100.0/24.
var (
	lanBits  = 24
	vip      = netip.MustParseAddr("192.0.2.100")
	clientIP = netip.MustParseAddr("192.0.2.10")
	pingIP   = netip.MustParseAddr("192.0.2.254") // ipfail's ping node (a router)
	nodeLAN  = [2]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	nodeHB   = [2]netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}
	realIPs  = [2]netip.Addr{netip.MustParseAddr("192.0.2.21"), netip.MustParseAddr("192.0.2.22")}
	nodeName = [2]string{"node1", "node2"}
)

// Ports of the services behind the VIP. echoPort carries the long-lived
// connections (RFC 862 echo, one line at a time).
const (
	httpPort = 80
	dnsPort  = 53
	echoPort = 7
)

// Timing is the heartbeat timing written into ha.cf.
type Timing struct {
	Keepalive, Warntime, Deadtime, Initdead time.Duration
}

// DefaultTiming is directord's own default timing (docs/heartbeat.md):
// keepalive 100 ms, deadtime 500 ms.
var DefaultTiming = Timing{Keepalive: 100 * time.Millisecond, Warntime: 300 * time.Millisecond, Deadtime: 500 * time.Millisecond, Initdead: 2 * time.Second}

// bed is the whole testbed: the namespaces, the two directors and their
// daemons, the real servers and their services.
type bed struct {
	o     Options
	topo  *netns.Topology
	dir   string
	start time.Time

	lan    *netns.Switch
	client *netns.Host
	ping   *netns.Host
	nodes  [2]*director
	reals  [2]*realServer
	ports  int // switch ports plugged so far (netns names them p1, p2, …)
	step   func(format string, args ...any)
	ipfail bool
}

// director is one directord node.
type director struct {
	i     int
	name  string
	host  *netns.Host
	dir   string // its /etc/ha.d
	sock  string
	port  string // its LAN port on the switch
	b     *bed
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	log   *os.File
	runs  int
	extra []string // ha.cf lines added for the scenario
}

func (b *bed) plug(h *netns.Host, addr netip.Addr) (string, error) {
	if _, err := b.topo.Plug(h, "eth0", b.lan); err != nil {
		return "", err
	}
	b.ports++
	return fmt.Sprintf("p%d", b.ports), h.AddAddr("eth0", netip.PrefixFrom(addr, lanBits))
}

// build creates the namespaces, prepares the real servers with `directord
// realserver up` and starts their services, and writes each director's
// /etc/ha.d.
func (b *bed) build(ctx context.Context) error {
	var err error
	if b.lan, err = b.topo.Switch("lan"); err != nil {
		return err
	}
	if b.client, err = b.topo.Host("client"); err != nil {
		return err
	}
	if _, err := b.plug(b.client, clientIP); err != nil {
		return err
	}
	if b.ipfail {
		if b.ping, err = b.topo.Host("router"); err != nil {
			return err
		}
		if _, err := b.plug(b.ping, pingIP); err != nil {
			return err
		}
	}
	for i := range b.nodes {
		h, err := b.topo.Host(nodeName[i])
		if err != nil {
			return err
		}
		port, err := b.plug(h, nodeLAN[i])
		if err != nil {
			return err
		}
		d := &director{i: i, name: nodeName[i], host: h, port: port, b: b, dir: filepath.Join(b.dir, nodeName[i], "ha.d")}
		d.sock = filepath.Join(b.dir, nodeName[i], "directord.sock")
		if err := os.MkdirAll(filepath.Join(b.dir, nodeName[i], "state"), 0o700); err != nil {
			return err
		}
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return err
		}
		b.nodes[i] = d
	}
	// The dedicated heartbeat cable, the seeds' eth1.
	if err := b.topo.Cable(b.nodes[0].host, "hb0", b.nodes[1].host, "hb0"); err != nil {
		return err
	}
	for i, d := range b.nodes {
		if err := d.host.AddAddr("hb0", netip.PrefixFrom(nodeHB[i], 24)); err != nil {
			return err
		}
	}
	for i := range b.reals {
		name := fmt.Sprintf("rs%d", i+1)
		h, err := b.topo.Host(name)
		if err != nil {
			return err
		}
		if _, err := b.plug(h, realIPs[i]); err != nil {
			return err
		}
		b.step("%s (%s): directord realserver up %s (VIP on lo, arp_ignore=1, arp_announce=2); web :80, DNS :53 UDP+TCP, echo :7", name, realIPs[i], vip)
		cmd := exec.Command(b.o.Binary, "realserver", "up", vip.String(), "--state-dir", filepath.Join(b.dir, name))
		if out, err := h.CombinedOutput(cmd); err != nil {
			return fmt.Errorf("%s: directord realserver up: %v: %s", name, err, out)
		}
		rs := &realServer{name: name, host: h}
		if err := rs.startAll(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b.reals[i] = rs
	}
	for i, d := range b.nodes {
		if err := b.writeHADir(d, i); err != nil {
			return err
		}
	}
	return nil
}

// writeHADir writes node i's /etc/ha.d as the seeds do. The IPVS
// connection sync daemon is on by default on the first heartbeat medium (hb0
// here); without sync, the YAML that `directord import` makes of the same
// files turns it off, as an operator would.
func (b *bed) writeHADir(d *director, i int) error {
	peer := 1 - i
	t := b.o.Timing
	hacf := fmt.Sprintf(`# /etc/ha.d/ha.cf of %s, as seeds 001 and 003 write it (faster timings)
keepalive %s
warntime %s
deadtime %s
initdead %s
udpport 694
ucast hb0 %s
ucast eth0 %s
auto_failback on
node node1
node node2
`, d.name, haDur(t.Keepalive), haDur(t.Warntime), haDur(t.Deadtime), haDur(t.Initdead), nodeHB[peer], nodeLAN[peer])
	if b.ipfail {
		hacf += fmt.Sprintf("ping %s\nrespawn hacluster /usr/lib/heartbeat/ipfail\n", pingIP)
	}
	files := []struct {
		name, text string
		mode       os.FileMode
	}{
		{"ha.cf", hacf, 0o644},
		{"haresources", fmt.Sprintf("node1 IPaddr::%s/%d/eth0 lnoded::lnoded.cf\n", vip, lanBits), 0o644},
		{"authkeys", "auth 1\n1 sha1 testbed-demo-secret\n", 0o600},
		{"lnoded.cf", lnodedCF([2]int{1, 1}), 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(d.dir, f.name), []byte(f.text), f.mode); err != nil {
			return err
		}
	}
	if b.o.NoSync {
		cfg, err := config.LoadHADir(context.Background(), d.dir, &config.Options{NodeName: d.name})
		if err != nil {
			return fmt.Errorf("%s: the generated ha.d does not load: %w", d.name, err)
		}
		cfg.Directord.Sync = config.Sync{Enabled: false}
		y, err := config.MarshalYAML(cfg)
		if err != nil {
			return err
		}
		if err := os.WriteFile(d.yaml(), y, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (d *director) yaml() string { return filepath.Join(filepath.Dir(d.dir), "directord.yaml") }

// haDur writes a duration in ha.cf's syntax (seconds, or "ms").
func haDur(x time.Duration) string {
	if x%time.Second == 0 {
		return fmt.Sprint(int(x / time.Second))
	}
	return fmt.Sprintf("%dms", x.Milliseconds())
}

// lnodedCF is the lnoded.cf of seed 003 (web, DNS over TCP and UDP) plus the
// echo service that carries the long-lived connections; w are the real
// servers' weights in the web service.
func lnodedCF(w [2]int) string {
	s := "# lnoded.cf: seed 003's, with a short checkinterval\nchecktimeout=1\ncheckinterval=1\nquiescent=yes\n"
	block := func(port int, proto, check string) {
		s += fmt.Sprintf("\nvirtual=%s:%d\n", vip, port)
		for i, r := range realIPs {
			weight := 1
			if port == httpPort {
				weight = w[i]
			}
			s += fmt.Sprintf("\treal=%s:%d gate %d\n", r, port, weight)
		}
		s += check + "\tscheduler=wrr\n\tprotocol=" + proto + "\n"
	}
	block(httpPort, "tcp", "\tservice=http\n\trequest=\".test.html\"\n\treceive=\"ok\"\n\tvirtualhost=www.a.com\n")
	block(dnsPort, "tcp", "\tservice=dns\n\trequest=\"www.a.com\"\n\treceive=\""+vip.String()+"\"\n")
	block(dnsPort, "udp", "\tservice=dns\n\trequest=\"www.a.com\"\n\treceive=\""+vip.String()+"\"\n")
	block(echoPort, "tcp", "\tchecktype=connect\n")
	return s
}

// writeLnoded replaces lnoded.cf whole (write and rename, as an editor does).
func (d *director) writeLnoded(text string) error {
	tmp := filepath.Join(d.dir, ".lnoded.cf.new")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.dir, "lnoded.cf"))
}

// startDaemon runs `directord run` in the node's namespace, its log in a
// file next to its configuration.
func (d *director) startDaemon() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return fmt.Errorf("%s: directord already runs", d.name)
	}
	cfg := []string{"--ha-dir", d.dir}
	if d.b.o.NoSync {
		cfg = []string{"--config", d.yaml()}
	}
	args := append([]string{"run"}, cfg...)
	args = append(args, "--node", d.name, "--state-dir", filepath.Join(filepath.Dir(d.dir), "state"),
		"--socket", d.sock, "--metrics", "127.0.0.1:9700", "--init-dir", filepath.Join(d.dir, "init.d"))
	d.runs++
	logf, err := os.OpenFile(d.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s: directord %s\n", time.Now().Format("15:04:05.000"), strings.Join(args, " "))
	cmd := exec.Command(d.b.o.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := d.host.Start(cmd); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	d.cmd, d.done, d.log = cmd, done, logf
	return nil
}

func (d *director) logPath() string { return filepath.Join(filepath.Dir(d.dir), "directord.log") }

// pid is the daemon's pid, 0 when none runs.
func (d *director) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// signal sends sig to the daemon and waits up to timeout for it to exit.
func (d *director) signal(sig syscall.Signal, timeout time.Duration) error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("%s: directord still runs %v after %v", d.name, timeout, sig)
	}
	d.mu.Lock()
	d.cmd = nil
	d.mu.Unlock()
	return nil
}

// stopDaemon stops the daemon gracefully, and kills it when that takes too
// long.
func (d *director) stopDaemon() {
	if err := d.signal(syscall.SIGTERM, 5*time.Second); err != nil {
		d.signal(syscall.SIGKILL, 5*time.Second)
	}
}

// status asks the daemon over its control socket.
func (d *director) status(ctx context.Context) (*control.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := control.Do(ctx, d.sock, control.Request{Command: control.CmdStatus})
	if err != nil {
		return nil, err
	}
	if !r.OK || r.Status == nil {
		return nil, errors.New(r.Error)
	}
	return r.Status, nil
}

// cli runs the directord binary in the node's namespace, as an operator on
// that node would, and returns its output.
func (d *director) cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.b.o.Binary, args...)
	out, err := d.host.CombinedOutput(cmd)
	return string(out), err
}

// hasVIP reads the kernel: is the VIP on the node's eth0?
func (d *director) hasVIP() bool { return d.host.HasAddr("eth0", vip) }

// setLinks brings the node's interfaces up or down: a pulled cable, or the
// machine losing power (its peers see the carrier go).
func (d *director) setLinks(up bool, names ...string) error {
	nl := d.host.Netlink()
	for _, n := range names {
		l, err := nl.LinkByName(n)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", d.name, n, err)
		}
		if up {
			err = nl.LinkSetUp(l)
		} else {
			err = nl.LinkSetDown(l)
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", d.name, n, err)
		}
	}
	return nil
}

// isolate makes the node's switch port unable to reach the other isolated
// port (the other director) while still reaching clients and real servers.
func (d *director) isolate(on bool) error {
	sw := d.b.lan.Bridge().Netlink()
	l, err := sw.LinkByName(d.port)
	if err != nil {
		return err
	}
	return sw.LinkSetIsolated(l, on)
}

// reboot plays what a rebooted machine starts with: no VIP, an empty IPVS
// table, no sync daemon.
func (d *director) reboot(ctx context.Context) {
	nl := d.host.Netlink()
	if l, err := nl.LinkByName("eth0"); err == nil {
		addr, _ := netlink.ParseAddr(fmt.Sprintf("%s/%d", vip, lanBits))
		nl.AddrDel(l, addr)
	}
	d.host.Run(exec.CommandContext(ctx, "ipvsadm", "-C"))
	d.host.Run(exec.CommandContext(ctx, "ipvsadm", "--stop-daemon", "master"))
	d.host.Run(exec.CommandContext(ctx, "ipvsadm", "--stop-daemon", "backup"))
}

// tail returns the last lines of the daemon's log.
func (d *director) tail(n int) string {
	b, _ := os.ReadFile(d.logPath())
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// metric scrapes one sample (the sum of every series of a name prefix) from
// the daemon's metrics endpoint.
func (d *director) metric(ctx context.Context, prefix string) (float64, error) {
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.host.Dial(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:9700/metrics", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		var v float64
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			fmt.Sscan(l[i+1:], &v)
		}
		sum += v
	}
	return sum, sc.Err()
}

// realServer is one LVS-DR real server: web, DNS and echo on every address
// (the VIP for the clients' traffic, its own for the directors' checks).
type realServer struct {
	name string
	host *netns.Host

	mu   sync.Mutex
	web  *http.Server
	dns  []*dns.Server
	echo net.Listener
	wg   sync.WaitGroup
	// conns are the echo connections, closed on stop.
	conns map[net.Conn]struct{}
}

func (rs *realServer) startAll() error {
	if err := rs.startWeb(); err != nil {
		return err
	}
	if err := rs.startDNS(); err != nil {
		return err
	}
	return rs.startEcho()
}

// startWeb serves ".test.html" with "ok" (the check of seed 003) and any
// other path with the server's name, so the client sees who answered.
func (rs *realServer) startWeb() error {
	ln, err := rs.host.Listen("tcp", fmt.Sprintf(":%d", httpPort))
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".test.html") {
			fmt.Fprintln(w, "ok")
			return
		}
		fmt.Fprintln(w, rs.name)
	})}
	rs.mu.Lock()
	rs.web = srv
	rs.mu.Unlock()
	rs.wg.Add(1)
	go func() { defer rs.wg.Done(); srv.Serve(ln) }()
	return nil
}

func (rs *realServer) stopWeb() {
	rs.mu.Lock()
	srv := rs.web
	rs.web = nil
	rs.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// startDNS answers www.a.com. A VIP on UDP and TCP :53 (github.com/miekg/dns).
func (rs *realServer) startDNS() error {
	pc, err := rs.host.ListenPacket("udp", fmt.Sprintf(":%d", dnsPort))
	if err != nil {
		return err
	}
	ln, err := rs.host.Listen("tcp", fmt.Sprintf(":%d", dnsPort))
	if err != nil {
		pc.Close()
		return err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA && strings.EqualFold(qq.Name, "www.a.com.") {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: vip.AsSlice()})
			}
		}
		w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		rs.wg.Add(1)
		go func() { defer rs.wg.Done(); s.ActivateAndServe() }()
		<-started
		rs.mu.Lock()
		rs.dns = append(rs.dns, s)
		rs.mu.Unlock()
	}
	return nil
}

// startEcho echoes each line back prefixed with the server's name, on :7.
func (rs *realServer) startEcho() error {
	ln, err := rs.host.Listen("tcp", fmt.Sprintf(":%d", echoPort))
	if err != nil {
		return err
	}
	rs.mu.Lock()
	rs.echo = ln
	rs.conns = map[net.Conn]struct{}{}
	rs.mu.Unlock()
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rs.mu.Lock()
			rs.conns[c] = struct{}{}
			rs.mu.Unlock()
			rs.wg.Add(1)
			go func() {
				defer rs.wg.Done()
				defer func() { rs.mu.Lock(); delete(rs.conns, c); rs.mu.Unlock(); c.Close() }()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(append([]byte(rs.name+" "), line...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return nil
}

func (rs *realServer) stop() {
	rs.stopWeb()
	rs.mu.Lock()
	srvs, echo := rs.dns, rs.echo
	rs.dns, rs.echo = nil, nil
	for c := range rs.conns {
		c.Close()
	}
	rs.mu.Unlock()
	for _, s := range srvs {
		s.Shutdown()
	}
	if echo != nil {
		echo.Close()
	}
	rs.wg.Wait()
}

// get fetches url and returns the first line of the body.
func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	// A request that fails says how far it got: a timeout after the
	// handshake (the request lost on its way to the real server) is not a
	// SYN that never got through.
	start := time.Now()
	var mu sync.Mutex
	var stages []string
	stage := func(what string) {
		mu.Lock()
		stages = append(stages, fmt.Sprintf("%s +%dms", what, time.Since(start).Milliseconds()))
		mu.Unlock()
	}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				stage("connected")
			}
		},
		GotConn:      func(ci httptrace.GotConnInfo) { stage("from " + ci.Conn.LocalAddr().String()) },
		WroteRequest: func(httptrace.WroteRequestInfo) { stage("request written") },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		if len(stages) > 0 {
			return "", fmt.Errorf("%w (%s)", err, strings.Join(stages, ", "))
		}
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
	return string(bytes.TrimSpace(b)), nil
}
