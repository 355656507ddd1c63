package lnoded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/directord/directord/ipvs"
	"github.com/directord/directord/lnoded/config"
)

// Limits of the e-mail alerts. A mail server that is slow or gone must
// never hold up checks or IPVS updates: alerts wait in a bounded queue for
// one sender goroutine, each is bounded by mailTimeout, and a full queue
// drops (and logs) the newest.
const (
	mailTimeout = 30 * time.Second
	mailQueue   = 64
	// mailDrain bounds how long a stopping module waits for queued alerts
	// (those of its own stop included) to go out.
	mailDrain = 10 * time.Second
)

// notifier sends ldirectord's e-mail alerts (emailalert, emailalertfreq,
// emailalertstatus, emailalertfrom, smtp) and writes monitorfile lines.
type notifier struct {
	log      *slog.Logger
	hostname string
	user     string
	// dial connects to an smtp= server (port 25, as Net::SMTP); tests
	// point it elsewhere.
	dial     func(ctx context.Context, host string) (net.Conn, error)
	sendmail string        // the mailer used when no smtp= is set
	timeout  time.Duration // bounds each mail
	drain    time.Duration // bounds the wait for queued mails at stop
	now      func() time.Time

	phase   atomic.Uint32 // a config.AlertStatus bit: what ldirectord calls the daemon status
	checked atomic.Bool   // every real server has had its first check

	mu      sync.Mutex
	pending map[string]pendingAlert // ldirectord's %EMAILSTATUS: real servers to re-alert about
	monErr  map[string]bool         // monitor files whose last write failed
	seen    map[string]bool         // jobs with a result, until checked
	queue   chan alertMail          // nil unless the sender runs
	done    chan struct{}
	stopNow context.CancelFunc
}

// pendingAlert is a real server taken out with emailalertfreq set: while it
// stays out an "Inaccessible real server" alert is repeated every freq.
type pendingAlert struct {
	cfg  *config.Config
	v    *config.Virtual
	last time.Time
}

// alertMail is one alert, composed when its event happens.
type alertMail struct {
	smtp    string
	from    string // envelope sender
	to      []string
	message []byte
	subject string
}

func newNotifier(logger *slog.Logger) *notifier {
	n := &notifier{
		log:      logger,
		hostname: hostname(),
		user:     "root",
		sendmail: "/usr/sbin/sendmail",
		timeout:  mailTimeout,
		drain:    mailDrain,
		now:      time.Now,
		pending:  map[string]pendingAlert{},
		monErr:   map[string]bool{},
		seen:     map[string]bool{},
	}
	if u, err := user.Current(); err == nil {
		n.user = u.Username
	}
	n.dial = func(ctx context.Context, host string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort(host, "25"))
	}
	n.phase.Store(uint32(config.AlertStarting))
	return n
}

// hostname is Sys::Hostname's answer, which ldirectord puts in alerts.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// setPhase records the daemon status alerts are filtered by and report.
func (n *notifier) setPhase(s config.AlertStatus) { n.phase.Store(uint32(s)) }

// settled is called after each reconcile. It ends a reload (the
// reconcile applied it) and a start once every real server has had its
// first check (checked): ldirectord is "starting" through its first round
// of checks, so emailalertstatus=running leaves out the start-up alerts.
func (n *notifier) settled() {
	n.phase.CompareAndSwap(uint32(config.AlertReloading), uint32(config.AlertRunning))
	if n.checked.Load() {
		n.phase.CompareAndSwap(uint32(config.AlertStarting), uint32(config.AlertRunning))
	}
}

// firstResult records that job id has had a result and returns how many
// jobs have, so that the scheduler's status is only read once the first
// round may be over.
func (n *notifier) firstResult(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.checked.Load() {
		n.seen = nil
		return 0
	}
	n.seen[id] = true
	return len(n.seen)
}

// start runs the sender until the returned stop is called, which waits up
// to mailDrain for the queued alerts.
func (n *notifier) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	n.mu.Lock()
	q, done := make(chan alertMail, mailQueue), make(chan struct{})
	n.queue, n.done, n.stopNow = q, done, cancel
	n.mu.Unlock()
	go func() {
		defer close(done)
		for m := range q {
			if ctx.Err() != nil {
				n.log.Error("emailalert not sent: stopping", "subject", m.subject)
				continue
			}
			mctx, mcancel := context.WithTimeout(ctx, n.timeout)
			if err := n.deliver(mctx, m); err != nil {
				n.log.Error("failed to send email message", "subject", m.subject, "err", err)
			}
			mcancel()
		}
	}()
	return func() {
		n.mu.Lock()
		close(q)
		n.queue = nil
		n.mu.Unlock()
		t := time.AfterFunc(n.drain, cancel)
		<-done
		t.Stop()
		cancel()
	}
}

// op is called for every IPVS operation lnoded logs, with its log message;
// real tells a configured real server (not a fallback, not a purge) apart.
// Like ldirectord's ld_emailalert_send it sends the message as an alert and
// keeps track of real servers to alert about again while they stay out.
func (n *notifier) op(p *plan, op ipvs.Op, msg string, real bool) {
	if op.Kind != ipvs.AddDest && op.Kind != ipvs.EditDest && op.Kind != ipvs.DeleteDest {
		return
	}
	sk := op.Service.Key()
	v := p.virtualOf(sk)
	if v == nil {
		return
	}
	id := destString(op.Dest.Key()) + " (" + serviceString(sk) + ")"
	out := op.Kind == ipvs.DeleteDest || (op.Kind == ipvs.EditDest && op.Dest.Weight == 0)
	n.mu.Lock()
	if out && real && v.EmailAlertFreq > 0 {
		n.pending[id] = pendingAlert{cfg: p.cfg, v: v, last: n.now()}
	} else {
		delete(n.pending, id)
	}
	n.mu.Unlock()
	n.alert(p.cfg, v, msg)
}

// resend is ldirectord's ld_emailalert_resend, run after checks: an
// "Inaccessible real server" alert for each real server still out
// emailalertfreq after the last alert about it.
func (n *notifier) resend() {
	now := n.now()
	type due struct {
		cfg *config.Config
		v   *config.Virtual
		id  string
	}
	var send []due
	n.mu.Lock()
	for id, pa := range n.pending {
		if now.Sub(pa.last) < pa.v.EmailAlertFreq {
			continue
		}
		pa.last = now
		n.pending[id] = pa
		send = append(send, due{pa.cfg, pa.v, id})
	}
	n.mu.Unlock()
	for _, d := range send {
		n.alert(d.cfg, d.v, "Inaccessible real server: "+d.id)
	}
}

// alert queues subject as an alert about v if v's emailalert and
// emailalertstatus ask for one now.
func (n *notifier) alert(cfg *config.Config, v *config.Virtual, subject string) {
	phase := config.AlertStatus(n.phase.Load())
	if v.EmailAlert == "" || v.EmailAlertStatus&phase == 0 {
		return
	}
	n.log.Info("emailalert: " + subject)
	m := n.compose(cfg, v, subject, phase)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.queue == nil {
		n.log.Error("emailalert not sent: lnoded is not running", "subject", subject)
		return
	}
	select {
	case n.queue <- m:
	default:
		n.log.Error("emailalert not sent: too many alerts waiting for the mail server", "subject", subject)
	}
}

// compose writes the mail ldirectord's ld_emailalert_net_smtp sends: the
// subject prefixed by "[servicename]", a body of "ldirectord host",
// "Log-Message" and "Daemon-Status" lines, then the service name and
// comment. The From header is emailalertfrom, else user@host; directord adds
// a Date header, which Net::SMTP leaves to the mail server.
func (n *notifier) compose(cfg *config.Config, v *config.Virtual, subject string, phase config.AlertStatus) alertMail {
	if v.ServiceName != "" {
		subject = "[" + v.ServiceName + "] " + subject
	}
	sender := n.user + "@" + n.hostname
	from := cfg.Global.EmailAlertFrom
	if from == "" {
		from = sender
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n\r\n", oneLine(from), oneLine(v.EmailAlert), oneLine(subject), n.now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "ldirectord host: %s\r\nLog-Message: %s\r\nDaemon-Status: %s\r\n", n.hostname, oneLine(subject), phase)
	var extra string
	if v.ServiceName != "" {
		extra += "Service name: " + oneLine(v.ServiceName) + "\r\n"
	}
	if v.Comment != "" {
		extra += "Comment: " + oneLine(v.Comment) + "\r\n"
	}
	if extra != "" {
		b.WriteString("\r\n" + extra + "\r\n")
	}
	return alertMail{smtp: v.SMTP, from: sender, to: recipients(v.EmailAlert), message: b.Bytes(), subject: subject}
}

// oneLine keeps a header value on its line.
func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// recipients splits emailalert's comma-separated list into addresses for
// RCPT TO. ldirectord hands the whole list to Net::SMTP as one recipient,
// which mail servers refuse when it holds more than one address.
func recipients(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if addr, err := mail.ParseAddress(a); err == nil {
			a = addr.Address
		}
		out = append(out, a)
	}
	return out
}

// deliver sends m through its smtp= server, or through the local mailer
// (sendmail -t) when there is none, as Mail::Send does.
func (n *notifier) deliver(ctx context.Context, m alertMail) error {
	if m.smtp == "" {
		cmd := exec.CommandContext(ctx, n.sendmail, "-t", "-oi")
		cmd.Stdin = bytes.NewReader(m.message)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s -t: %w: %s", n.sendmail, err, bytes.TrimSpace(out))
		}
		return nil
	}
	conn, err := n.dial(ctx, m.smtp)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.smtp, err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := smtpSend(conn, m.smtp, n.hostname, m); err != nil {
		return fmt.Errorf("smtp %s: %w", m.smtp, err)
	}
	return nil
}

func smtpSend(conn net.Conn, host, helo string, m alertMail) error {
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return err
	}
	if err := c.Mail(m.from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	var rcptErr []error
	ok := 0
	for _, to := range m.to {
		if err := c.Rcpt(to); err != nil {
			rcptErr = append(rcptErr, fmt.Errorf("RCPT TO %s: %w", to, err))
			continue
		}
		ok++
	}
	if ok == 0 {
		return errors.Join(append(rcptErr, errors.New("no recipient accepted"))...)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(m.message); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	c.Quit()
	return errors.Join(rcptErr...)
}
