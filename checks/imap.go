package checks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// IMAPChecker is ldirectord's negotiate check for service=imap and imaps
// (Net::IMAP::Simple): up when the greeting is "* OK" or "* PREAUTH" and,
// when a login is configured, the server answers `0 LOGIN user "passwd"`
// with a tagged OK. It ends with LOGOUT.
//
// ldirectord passes the port to Net::IMAP::Simple as an option that the
// module ignores when the server is an IPv4 address, so ldirectord always
// probes port 143 (993 for imaps) whatever checkport or the real server's
// port say. This check probes the configured port.
type IMAPChecker struct {
	addr          string
	tls           *tls.Config
	login, passwd string
	timeout       time.Duration
}

// NewIMAP builds the check for service=imap (useTLS false) or imaps (true).
func NewIMAP(cfg Config, useTLS bool) (*IMAPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("imap check: no real server address")
	}
	if strings.ContainsAny(cfg.Login+cfg.Passwd, "\r\n") {
		return nil, errors.New("imap check: login or passwd contains a line break")
	}
	return &IMAPChecker{addr: cfg.Addr.String(), tls: tlsFor(cfg, useTLS), login: cfg.Login, passwd: cfg.Passwd, timeout: cfg.negotiateTimeout()}, nil
}

// Check implements Checker.
func (c *IMAPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

var (
	imapGreetOK  = regexp.MustCompile(`(?i)^\*\s+(?:OK|PREAUTH)`)
	imapLiteral  = regexp.MustCompile(`\{(\d+)\}$`)
	imapTaggedOK = regexp.MustCompile(`(?i)^0\s+OK`)
	imapTaggedNO = regexp.MustCompile(`(?i)^0\s+(?:NO|BAD)`)
)

// imapGreeting judges the greeting line as Net::IMAP::Simple does.
func imapGreeting(line string) bool { return imapGreetOK.MatchString(line) }

// imapQuote quotes a string as Net::IMAP::Simple's _escape does.
func imapQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}

// maxIMAPLines caps the untagged lines read while waiting for LOGIN's answer.
const maxIMAPLines = 1000

// imapTagged reads lines until the reply tagged 0, skipping untagged
// responses and their literals. ok is whether it was OK.
func imapTagged(s *session) (ok bool, line string, err error) {
	for i := 0; i < maxIMAPLines; i++ {
		line, err = s.line()
		if err != nil {
			return false, "", err
		}
		switch {
		case imapTaggedOK.MatchString(line):
			return true, line, nil
		case imapTaggedNO.MatchString(line):
			return false, line, nil
		}
		if m := imapLiteral.FindStringSubmatch(line); m != nil {
			n, err := strconv.ParseInt(m[1], 10, 64)
			if err != nil || n > maxLine {
				return false, "", fmt.Errorf("literal of %s bytes", m[1])
			}
			if _, err := s.br.Discard(int(n)); err != nil {
				return false, "", err
			}
		}
	}
	return false, "", errors.New("no tagged reply")
}

func (c *IMAPChecker) check(ctx context.Context) Result {
	s, err := dialSession(ctx, "tcp", c.addr, c.tls)
	if err != nil {
		return down("", err)
	}
	defer s.close()
	greet, err := s.line()
	if err != nil {
		return down("", fmt.Errorf("greeting: %w", err))
	}
	if !imapGreeting(greet) {
		return down(fmt.Sprintf("greeting %q", truncate(greet, 80)), nil)
	}
	if c.login != "" {
		if err := s.send("0 LOGIN " + c.login + " " + imapQuote(c.passwd)); err != nil {
			return down("", fmt.Errorf("sending LOGIN: %w", err))
		}
		ok, line, err := imapTagged(s)
		if err != nil {
			return down("", fmt.Errorf("LOGIN: %w", err))
		}
		if !ok {
			return down(fmt.Sprintf("LOGIN refused: %q", truncate(line, 80)), nil)
		}
	}
	// Net::IMAP::Simple's quit waits for LOGOUT's reply; ldirectord ignores
	// it.
	if s.send("1 LOGOUT") == nil {
		for i := 0; i < maxIMAPLines; i++ {
			if l, err := s.line(); err != nil || strings.HasPrefix(l, "1 ") {
				break
			}
		}
	}
	return up(truncate(greet, 80))
}

// String says in words what the check does and expects.
func (c *IMAPChecker) String() string {
	name := "IMAP"
	if c.tls != nil {
		name = "IMAPS"
	}
	s := fmt.Sprintf("%s to %s expecting a * OK or * PREAUTH greeting", name, c.addr)
	if c.login != "" {
		s += fmt.Sprintf(" and a LOGIN as %q", c.login)
	}
	return s + fmt.Sprintf(" within %v", c.timeout)
}
