package e2etest

import (
	"bufio"
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
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/testbed/netns"
)

// The LAN of seed 003, in documentation addresses: the director holds the
// VIP, the two real servers hold it on lo with ARP kept quiet.
var (
	vip      = netip.MustParseAddr("192.0.2.100")
	director = netip.MustParseAddr("192.0.2.1")
	client   = netip.MustParseAddr("192.0.2.10")
	reals    = []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")}
)

// v6 maps a testbed IPv4 address to its IPv6 twin, 2001:db8::<last octet>.
func v6(a netip.Addr) netip.Addr {
	b := netip.MustParseAddr("2001:db8::").As16()
	b[15] = a.As4()[3]
	return netip.AddrFrom16(b)
}

// bed is the testbed: namespaces, real servers and a handle on the
// director's IPVS.
type bed struct {
	t        *testing.T
	topo     *netns.Topology
	director *netns.Host
	client   *netns.Host
	rs       []*realServer
	h        *ipvs.Handle
	dir      string // holds lnoded.cf
}

func newBed(t *testing.T) *bed {
	t.Helper()
	b := &bed{t: t, topo: netns.ForTest(t), dir: t.TempDir()}
	lan, err := b.topo.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	host := func(name string, a netip.Addr) *netns.Host {
		h, err := b.topo.Host(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.topo.Plug(h, "eth0", lan); err != nil {
			t.Fatal(err)
		}
		if err := h.AddAddr("eth0", netip.PrefixFrom(a, 24)); err != nil {
			t.Fatal(err)
		}
		// The same host in IPv6: 2001:db8::<last octet>/64.
		if err := h.AddAddr("eth0", netip.PrefixFrom(v6(a), 64)); err != nil {
			t.Fatal(err)
		}
		return h
	}
	b.director = host("director", director)
	if err := b.director.AddAddr("eth0", netip.PrefixFrom(vip, 32)); err != nil {
		t.Fatal(err)
	}
	b.client = host("client", client)
	for i, a := range reals {
		rs := &realServer{t: t, name: fmt.Sprintf("rs%d", i+1), addr: a}
		rs.host = host(rs.name, a)
		// Seed 003's real-server preparation: the VIP on lo, and ARP
		// settings so that only the director answers for it.
		for k, v := range map[string]string{
			"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.lo.arp_ignore": "1",
			"net.ipv4.conf.all.arp_announce": "2", "net.ipv4.conf.lo.arp_announce": "2",
		} {
			if err := rs.host.Sysctl(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := rs.host.AddAddr("lo", netip.PrefixFrom(vip, 32)); err != nil {
			t.Fatal(err)
		}
		b.rs = append(b.rs, rs)
		t.Cleanup(rs.stopAll)
	}
	if err := b.director.Do(func() (err error) { b.h, err = ipvs.Open(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.h.Close() })
	// Start from an empty table: the guest is shared by the tests.
	if err := b.h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

// realServer runs an HTTP server (:80) and DNS servers (UDP and TCP :53)
// in its namespace, each of which can be stopped and started.
type realServer struct {
	t    *testing.T
	name string
	addr netip.Addr
	host *netns.Host

	mu       sync.Mutex
	testHTML string // content of /.test.html; empty means 404
	web      *http.Server
	webDone  chan struct{}
	dnsSrv   []*dns.Server
}

func (rs *realServer) setTestHTML(s string) {
	rs.mu.Lock()
	rs.testHTML = s
	rs.mu.Unlock()
}

func (rs *realServer) startWeb() {
	rs.t.Helper()
	var ln net.Listener
	if err := rs.host.Do(func() (err error) { ln, err = net.Listen("tcp", ":80"); return err }); err != nil {
		rs.t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.test.html" {
			rs.mu.Lock()
			body := rs.testHTML
			rs.mu.Unlock()
			if body == "" {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, body)
			return
		}
		io.WriteString(w, rs.name+"\n")
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	rs.mu.Lock()
	rs.web, rs.webDone = srv, done
	rs.mu.Unlock()
}

func (rs *realServer) stopWeb() {
	rs.mu.Lock()
	srv, done := rs.web, rs.webDone
	rs.web = nil
	rs.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// startDNS serves www.a.com. A 192.0.2.100 on UDP and TCP :53.
func (rs *realServer) startDNS() {
	rs.t.Helper()
	var (
		pc net.PacketConn
		ln net.Listener
	)
	if err := rs.host.Do(func() (err error) {
		if pc, err = net.ListenPacket("udp", ":53"); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", ":53")
		return err
	}); err != nil {
		rs.t.Fatal(err)
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
	var srvs []*dns.Server
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		srvs = append(srvs, s)
	}
	rs.mu.Lock()
	rs.dnsSrv = srvs
	rs.mu.Unlock()
}

func (rs *realServer) stopDNS() {
	rs.mu.Lock()
	srvs := rs.dnsSrv
	rs.dnsSrv = nil
	rs.mu.Unlock()
	for _, s := range srvs {
		s.Shutdown()
	}
}

func (rs *realServer) stopAll() { rs.stopWeb(); rs.stopDNS() }

// writeConfig replaces lnoded.cf atomically, as an editor that renames
// does, and returns its path.
func (b *bed) writeConfig(text string) string {
	b.t.Helper()
	p := filepath.Join(b.dir, "lnoded.cf")
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// writeConfigFile writes a file next to lnoded.cf (a maintenance file, a
// script).
func (b *bed) writeConfigFile(name, content string) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.dir, name), []byte(content), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// table renders the director's kernel table, sorted, one service a line:
// "-t 192.0.2.100:80 rr | 192.0.2.11:80 w1, 192.0.2.12:80 w0".
func (b *bed) table() string {
	t, err := b.h.Table(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return render(t)
}

func render(t ipvs.Table) string {
	var lines []string
	for _, vs := range t {
		l := vs.Key().String() + " " + vs.Scheduler + " |"
		var ds []string
		for _, d := range vs.Destinations {
			ds = append(ds, fmt.Sprintf(" %s w%d", netip.AddrPortFrom(d.Addr, d.Port), d.Weight))
		}
		slices.Sort(ds)
		lines = append(lines, l+strings.Join(ds, ","))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// service picks one service's line out of a rendered table.
func service(table, key string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, key+" ") {
			return l
		}
	}
	return ""
}

// waitFor polls the kernel table until the line of service key equals want,
// failing after limit; it returns how long that took.
func (b *bed) waitFor(key, want string, limit time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	var got string
	for time.Since(start) < limit {
		if got = service(b.table(), key); got == want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("after %v, %s is\n  %q\nwant\n  %q\nwhole table:\n%s", limit, key, got, want, b.table())
	return 0
}

// proc is a daemon (lnoded or ldirectord) running in the director's
// namespace, with its log collected line by line.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []string
	done chan struct{}
}

func (b *bed) start(cmd *exec.Cmd) *proc {
	b.t.Helper()
	p := &proc{t: b.t, cmd: cmd, done: make(chan struct{})}
	r, err := cmd.StderrPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := b.director.Start(cmd); err != nil {
		b.t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log = append(p.log, time.Now().Format("15:04:05.000 ")+sc.Text())
			p.mu.Unlock()
		}
		cmd.Wait()
	}()
	b.t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if b.t.Failed() {
			b.t.Logf("log of %s:\n%s", cmd.Path, p.said(0))
		}
	})
	return p
}

func (p *proc) signal(s syscall.Signal) {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(s)
	}
}

// lines returns the log from line from on.
func (p *proc) lines(from int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log[min(from, len(p.log)):])
}

func (p *proc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.log)
}

// waitLog waits until a line from from on matches re.
func (p *proc) waitLog(from int, re string, limit time.Duration) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, l := range p.lines(from) {
			if rx.MatchString(l) {
				return l
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before logging %q", p.cmd.Path, re)
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s did not log %q within %v", p.cmd.Path, re, limit)
	return ""
}

// stop sends SIGTERM and waits for the exit.
func (p *proc) stop(limit time.Duration) error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(limit):
		return errors.New("did not exit after SIGTERM")
	}
}

// said returns the log lines from line from on, for a failure message.
func (p *proc) said(from int) string { return strings.Join(p.lines(from), "\n") }

var opRE = regexp.MustCompile(`ipvsadm="([^"]*)"`)

// ops returns the IPVS operations lnoded logged from line from on, in
// ipvsadm's syntax.
func (p *proc) ops(from int) []string {
	var out []string
	for _, l := range p.lines(from) {
		if m := opRE.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
