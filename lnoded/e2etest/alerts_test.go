package e2etest

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// mailSink is an SMTP server on the director's loopback address, port 25
// (where lnoded sends smtp= alerts), that keeps every message it is sent.
type mailSink struct {
	mu   sync.Mutex
	msgs []string
	wg   sync.WaitGroup
}

func (b *bed) mailSink() *mailSink {
	b.t.Helper()
	ln, err := b.director.Listen("tcp", "127.0.0.1:25")
	if err != nil {
		b.t.Fatal(err)
	}
	s := &mailSink{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	b.t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *mailSink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	say := func(l string) { c.Write([]byte(l + "\r\n")) }
	say("220 sink ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case cmd == "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, b.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

// wait returns the first message matching re, failing after limit.
func (s *mailSink) wait(t *testing.T, re string, limit time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(limit)
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			if rx.MatchString(m) {
				s.mu.Unlock()
				return m
			}
		}
		all := strings.Join(s.msgs, "\n----\n")
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no mail matching %q within %v; got:\n%s", re, limit, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDRPathAlertsMonitor runs lnoded in the director's namespace with
// drpathcheck, emailalert over smtp= and a monitorfile. rs2 answers ARP
// for the VIP (arp_ignore=0) although its web check passes: drpathcheck
// keeps it at weight 0 and says why, in the log and the monitorfile, and
// the alerts report each operation; once rs2 is fixed it is restored and
// that is mailed too.
func TestDRPathAlertsMonitor(t *testing.T) {
	b := newBed(t)
	sink := b.mailSink()
	for _, rs := range b.rs {
		rs.setTestHTML("ok")
		rs.startWeb()
	}
	rs2 := b.rs[1]
	arpIgnore := func(v string) {
		t.Helper()
		for _, k := range []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.lo.arp_ignore"} {
			if err := rs2.host.Sysctl(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	arpIgnore("0")
	mon := filepath.Join(b.dir, "monitor.log")
	b.writeConfig(`checkinterval=1
quiescent=yes
emailalert="ops@example.com"
emailalertfrom=lnoded@example.com
smtp=127.0.0.1

virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	real=192.0.2.12:80 gate
	service=http
	request=".test.html"
	receive="ok"
	scheduler=rr
	drpathcheck=yes
	servicename=web
	monitorfile="` + mon + `"
`)
	ld := b.startLnoded()
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w0"), 10*time.Second)
	ld.waitLog(0, `Deactivated service 192.0.2.12:80 \(tcp:192.0.2.100:80\): real server 192.0.2.12 \([0-9a-f:]+\) answers ARP for the VIP 192.0.2.100`, 5*time.Second)

	// The first round of checks is part of the start, as in ldirectord.
	m := sink.wait(t, `Subject: \[web\] Restored real server: 192.0.2.11:80 \(192.0.2.100:80\) \(Weight set to 1\)`, 10*time.Second)
	for _, want := range []string{"From: lnoded@example.com\r\n", "To: ops@example.com\r\n", "Daemon-Status: starting\r\n", "Service name: web\r\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("alert lacks %q:\n%s", want, m)
		}
	}
	sink.wait(t, `Subject: \[web\] Added real server: 192.0.2.12:80 \(192.0.2.100:80\) \(Weight set to 0\)\r\n(.|\r\n)*Daemon-Status: starting`, 5*time.Second)

	waitMonitor := func(re string) {
		t.Helper()
		rx := regexp.MustCompile(re)
		deadline := time.Now().Add(10 * time.Second)
		for {
			data, _ := os.ReadFile(mon)
			for _, l := range strings.Split(string(data), "\n") {
				if rx.MatchString(l) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("monitorfile has no line matching %q:\n%s", re, data)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMonitor(`^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] \[\d+\] negotiate http tcp 192\.0\.2\.11 80 1 gate /\.test\.html ok \[up\] 192\.0\.2\.100:80 answered through real server 192\.0\.2\.11 .*200 OK`)
	waitMonitor(`\] negotiate http tcp 192\.0\.2\.12 80 1 gate /\.test\.html ok \[down\] real server 192\.0\.2\.12 .* answers ARP for the VIP 192\.0\.2\.100`)

	// Fixed: the DR path passes, rs2 is restored and that is alerted.
	arpIgnore("1")
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), 10*time.Second)
	sink.wait(t, `Subject: \[web\] Restored real server: 192.0.2.12:80 \(192.0.2.100:80\) \(Weight set to 1\)\r\n(.|\r\n)*Daemon-Status: running`, 10*time.Second)

	// The VIP gone from rs2's lo: its web check still passes, the DR path
	// does not.
	if err := rs2.host.Netlink().AddrDel(mustLink(t, rs2, "lo"), mustAddr(t, vip.String()+"/32")); err != nil {
		t.Fatal(err)
	}
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w0"), 15*time.Second)
	ld.waitLog(0, `Deactivated service 192.0.2.12:80 \(tcp:192.0.2.100:80\): no answer from 192.0.2.100:80 through real server 192.0.2.12 .*not on its loopback`, 5*time.Second)
	sink.wait(t, `Subject: \[web\] Quiescent real server: 192.0.2.12:80 \(192.0.2.100:80\) \(Weight set to 0\)`, 10*time.Second)

	if err := ld.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func mustLink(t *testing.T, rs *realServer, name string) netlink.Link {
	t.Helper()
	l, err := rs.host.Netlink().LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustAddr(t *testing.T, s string) *netlink.Addr {
	t.Helper()
	a, err := netlink.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
