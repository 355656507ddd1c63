package lnoded

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// smtpServer is a minimal SMTP server on the loopback address that records
// what it is sent. With hang set it accepts connections and never answers.
type smtpServer struct {
	ln   net.Listener
	hang bool
	mu   sync.Mutex
	got  []gotMail
	ch   chan gotMail
	wg   sync.WaitGroup
}

type gotMail struct {
	helo, from string
	to         []string
	data       string
}

func newSMTPServer(t *testing.T, hang bool) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, hang: hang, ch: make(chan gotMail, 100)}
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
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if s.hang {
		c.Read(make([]byte, 1))
		return
	}
	r := bufio.NewReader(c)
	say := func(l string) { c.Write([]byte(l + "\r\n")) }
	say("220 mail.example ESMTP test")
	var m gotMail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			m.helo = strings.TrimSpace(line[4:])
			say("250 mail.example")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			m.from = line[len("MAIL FROM:"):]
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			m.to = append(m.to, line[len("RCPT TO:"):])
			say("250 ok")
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
			m.data = b.String()
			s.mu.Lock()
			s.got = append(s.got, m)
			s.mu.Unlock()
			s.ch <- m
			m = gotMail{}
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 unknown")
		}
	}
}

func (s *smtpServer) wait(t *testing.T) gotMail {
	t.Helper()
	select {
	case m := <-s.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no mail arrived")
	}
	return gotMail{}
}

func (s *smtpServer) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.ch:
		t.Fatalf("unexpected mail: %q", m.data)
	case <-time.After(d):
	}
}

// alertPlan parses src and builds its plan.
func alertPlan(t *testing.T, src string) *plan {
	t.Helper()
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testNotifier sends to s whatever smtp= says, and runs until the test ends.
func testNotifier(t *testing.T, s *smtpServer) (*notifier, *lockedWriter) {
	log := &lockedWriter{}
	n := newNotifier(slog.New(slog.NewTextHandler(log, nil)))
	n.hostname, n.user = "director1", "root"
	n.dial = func(ctx context.Context, host string) (net.Conn, error) {
		if host != "mail.example" {
			t.Errorf("dialled smtp server %q, want mail.example", host)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", s.ln.Addr().String())
	}
	n.drain = time.Second
	n.checked.Store(true) // settled() ends "starting"
	stop := n.start()
	t.Cleanup(stop)
	return n, log
}

type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

const alertConf = `emailalert="ops@example.com, Backup Team <backup@example.com>"
emailalertfrom="LVS" <lvs@example.com>
emailalertfreq=60
smtp=mail.example

virtual=192.0.2.100:80
	real=192.0.2.11:80 gate
	real=192.0.2.12:80 gate
	servicename=www
	comment=public web
	emailalertstatus=running,stopping
`

func quiesce(p *plan, vip, rip string, weight int32) ipvs.Op {
	v := p.virtualOf(mustServiceKey(p, vip))
	svc, _ := ServiceOf(v)
	for i := range v.Reals {
		d := DestOf(v, &v.Reals[i])
		if d.Addr.String() == rip {
			d.Weight = weight
			return ipvs.Op{Kind: ipvs.EditDest, Service: svc, Dest: d}
		}
	}
	panic("no real " + rip)
}

func mustServiceKey(p *plan, vip string) ipvs.ServiceKey {
	for i := range p.cfg.Virtuals {
		if s, err := ServiceOf(&p.cfg.Virtuals[i]); err == nil && serviceString(s.Key()) == vip {
			return s.Key()
		}
	}
	panic("no virtual " + vip)
}

// TestAlertMail: the mail ldirectord's ld_emailalert_net_smtp sends, to
// each address of emailalert, from emailalertfrom, subject prefixed with
// the service name, body with host, message, daemon status, service name and
// comment; only in the states emailalertstatus lists; none for a virtual
// service whose emailalert is empty.
func TestAlertMail(t *testing.T) {
	s := newSMTPServer(t, false)
	n, _ := testNotifier(t, s)
	p := alertPlan(t, alertConf)

	// Starting is not in emailalertstatus: nothing is sent.
	op := quiesce(p, "192.0.2.100:80", "192.0.2.11", 0)
	n.op(p, op, "Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)", true)
	s.none(t, 300*time.Millisecond)

	n.settled()
	n.op(p, op, "Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)", true)
	m := s.wait(t)
	if m.helo != "director1" || m.from != "<root@director1>" {
		t.Errorf("HELO %q, MAIL FROM %q", m.helo, m.from)
	}
	if strings.Join(m.to, " ") != "<ops@example.com> <backup@example.com>" {
		t.Errorf("RCPT TO %q", m.to)
	}
	for _, want := range []string{
		"From: \"LVS\" <lvs@example.com>\r\n",
		"To: ops@example.com, Backup Team <backup@example.com>\r\n",
		"Subject: [www] Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)\r\n",
		"\r\n\r\nldirectord host: director1\r\nLog-Message: [www] Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)\r\nDaemon-Status: running\r\n" +
			"\r\nService name: www\r\nComment: public web\r\n\r\n",
	} {
		if !strings.Contains(m.data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.data)
		}
	}

	// A virtual service without emailalert gets no mail.
	p2 := alertPlan(t, "virtual=192.0.2.102:80\n\treal=192.0.2.11:80 gate\n")
	n.op(p2, quiesce(p2, "192.0.2.102:80", "192.0.2.11", 0), "Quiescent real server: 192.0.2.11:80 (192.0.2.102:80) (Weight set to 0)", true)
	s.none(t, 300*time.Millisecond)

	n.setPhase(config.AlertReloading) // not in the list
	n.op(p, quiesce(p, "192.0.2.100:80", "192.0.2.12", 0), "Quiescent real server: 192.0.2.12:80 (192.0.2.100:80) (Weight set to 0)", true)
	s.none(t, 300*time.Millisecond)
	n.setPhase(config.AlertStopping)
	n.op(p, quiesce(p, "192.0.2.100:80", "192.0.2.12", 0), "Deleted real server: 192.0.2.12:80 (192.0.2.100:80)", true)
	if m := s.wait(t); !strings.Contains(m.data, "Daemon-Status: stopping\r\n") {
		t.Errorf("stopping alert:\n%s", m.data)
	}
}

// TestAlertResend: emailalertfreq repeats "Inaccessible real server" while
// the real server stays out, every freq, and stops once it is restored.
func TestAlertResend(t *testing.T) {
	s := newSMTPServer(t, false)
	n, _ := testNotifier(t, s)
	now := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	n.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	p := alertPlan(t, alertConf)
	n.setPhase(config.AlertRunning)

	n.op(p, quiesce(p, "192.0.2.100:80", "192.0.2.11", 0), "Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)", true)
	s.wait(t)
	advance(59 * time.Second)
	n.resend()
	s.none(t, 200*time.Millisecond)
	advance(time.Second)
	n.resend()
	if m := s.wait(t); !strings.Contains(m.data, "Subject: [www] Inaccessible real server: 192.0.2.11:80 (192.0.2.100:80)\r\n") {
		t.Errorf("resend:\n%s", m.data)
	}
	n.resend() // just sent: not again
	s.none(t, 200*time.Millisecond)
	advance(60 * time.Second)
	n.resend()
	s.wait(t)

	n.op(p, quiesce(p, "192.0.2.100:80", "192.0.2.11", 1), "Restored real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 1)", true)
	if m := s.wait(t); !strings.Contains(m.data, "Restored real server") {
		t.Errorf("restore alert:\n%s", m.data)
	}
	advance(time.Hour)
	n.resend()
	s.none(t, 200*time.Millisecond)

	// A fallback server going out is alerted once, never repeated.
	n.op(p, quiesce(p, "192.0.2.100:80", "192.0.2.12", 0), "Deleted fallback server: 192.0.2.12:80 (192.0.2.100:80)", false)
	s.wait(t)
	advance(time.Hour)
	n.resend()
	s.none(t, 200*time.Millisecond)
}

// TestAlertNeverBlocks: a mail server that accepts and never answers holds
// up neither the caller (alerts are queued) nor later alerts beyond the
// per-mail timeout, and the failure is logged; a full queue drops.
func TestAlertNeverBlocks(t *testing.T) {
	s := newSMTPServer(t, true)
	n, log := testNotifier(t, s)
	n.timeout = 200 * time.Millisecond
	p := alertPlan(t, alertConf)
	n.setPhase(config.AlertRunning)
	op := quiesce(p, "192.0.2.100:80", "192.0.2.11", 0)
	start := time.Now()
	for range mailQueue + 10 {
		n.op(p, op, "Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)", true)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("queuing %d alerts took %v", mailQueue+10, d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "failed to send email message") {
		if time.Now().After(deadline) {
			t.Fatalf("no send failure logged:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "too many alerts waiting") {
		t.Errorf("a full queue was not logged:\n%s", log.String())
	}
}

// TestAlertSendmail: without smtp= the alert goes to the local mailer as
// "sendmail -t -oi" with the whole message on its standard input, as
// Mail::Send hands it over; a failing mailer is logged.
func TestAlertSendmail(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/mail"
	script := dir + "/sendmail"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+out+".args\ncat > "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := &lockedWriter{}
	n := newNotifier(slog.New(slog.NewTextHandler(log, nil)))
	n.hostname, n.sendmail, n.drain = "director1", script, time.Second
	n.checked.Store(true)
	stop := n.start()
	p := alertPlan(t, "emailalert=ops@example.com\n\nvirtual=192.0.2.100:80\n\treal=192.0.2.11:80 gate\n")
	n.settled()
	n.op(p, quiesce(p, "192.0.2.100:80", "192.0.2.11", 0), "Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)", true)
	stop() // waits for the queue
	args, _ := os.ReadFile(out + ".args")
	msg, _ := os.ReadFile(out)
	if string(args) != "-t -oi\n" {
		t.Errorf("sendmail arguments %q", args)
	}
	for _, want := range []string{"To: ops@example.com\r\n", "Subject: Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)\r\n", "Daemon-Status: running\r\n"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}

	n2 := newNotifier(slog.New(slog.NewTextHandler(log, nil)))
	n2.sendmail, n2.drain = dir+"/missing-sendmail", time.Second
	n2.checked.Store(true)
	stop2 := n2.start()
	n2.settled()
	n2.op(p, quiesce(p, "192.0.2.100:80", "192.0.2.11", 0), "Quiescent real server: 192.0.2.11:80 (192.0.2.100:80) (Weight set to 0)", true)
	stop2()
	if !strings.Contains(log.String(), "failed to send email message") {
		t.Errorf("a missing mailer was not logged:\n%s", log.String())
	}
}

// TestAlertPhases: "starting" lasts until a reconcile after every real
// server's first check, as ldirectord's first round of checks is part of
// its start; "reloading" ends at the reconcile after the reload.
func TestAlertPhases(t *testing.T) {
	n := newNotifier(slog.New(slog.DiscardHandler))
	phase := func() config.AlertStatus { return config.AlertStatus(n.phase.Load()) }
	if phase() != config.AlertStarting {
		t.Fatalf("a new notifier is %v", phase())
	}
	n.settled()
	if phase() != config.AlertStarting {
		t.Errorf("after a reconcile before the first checks: %v, want starting", phase())
	}
	n.checked.Store(true)
	n.settled()
	if phase() != config.AlertRunning {
		t.Errorf("after the first checks and a reconcile: %v, want running", phase())
	}
	n.setPhase(config.AlertReloading)
	n.settled()
	if phase() != config.AlertRunning {
		t.Errorf("after a reload's reconcile: %v, want running", phase())
	}
	n.setPhase(config.AlertStopping)
	n.settled()
	if phase() != config.AlertStopping {
		t.Errorf("a reconcile during stop: %v, want stopping", phase())
	}
}
