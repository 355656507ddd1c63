package checks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"
)

// POPChecker is the negotiate check for service=pop and pops (POP3 over
// TLS): up when the greeting starts with +OK and, when a login is
// configured, USER is answered with "+", PASS with +OK and STAT with +OK,
// as Mail::POP3Client's plain login requires. It ends with QUIT.
//
// ldirectord 4.12 tests the Mail::POP3Client object it gets back, which the
// module returns even when it could not connect, so without a login its POP
// check is always up. This check requires the +OK greeting instead.
type POPChecker struct {
	addr          string
	tls           *tls.Config
	login, passwd string
	timeout       time.Duration
}

// NewPOP builds the check for service=pop (useTLS false) or pops (true).
func NewPOP(cfg Config, useTLS bool) (*POPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("pop check: no real server address")
	}
	if strings.ContainsAny(cfg.Login+cfg.Passwd, "\r\n") {
		return nil, errors.New("pop check: login or passwd contains a line break")
	}
	return &POPChecker{addr: cfg.Addr.String(), tls: tlsFor(cfg, useTLS), login: cfg.Login, passwd: cfg.Passwd, timeout: cfg.negotiateTimeout()}, nil
}

// Check implements Checker.
func (c *POPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

// popOK reports whether a POP3 status line is positive, as
// Mail::POP3Client tests it (/^\+OK/i).
func popOK(line string) bool {
	return len(line) >= 3 && line[0] == '+' && strings.EqualFold(line[1:3], "OK")
}

func (c *POPChecker) check(ctx context.Context) Result {
	s, err := dialSession(ctx, "tcp", c.addr, c.tls)
	if err != nil {
		return down("", err)
	}
	defer s.close()
	greet, err := s.line()
	if err != nil {
		return down("", fmt.Errorf("greeting: %w", err))
	}
	if !popOK(greet) {
		return down(fmt.Sprintf("greeting %q", truncate(greet, 80)), nil)
	}
	if c.login != "" {
		if r := c.auth(s); !r.Up {
			return r
		}
	}
	// Mail::POP3Client's Close reads the reply; ldirectord ignores it.
	if s.send("QUIT") == nil {
		_, _ = s.line()
	}
	return up(truncate(greet, 80))
}

func (c *POPChecker) auth(s *session) Result {
	steps := []struct {
		cmd string
		ok  func(string) bool
	}{
		{"USER " + c.login, func(l string) bool { return strings.HasPrefix(l, "+") }},
		{"PASS " + c.passwd, popOK},
		{"STAT", popOK},
	}
	for _, st := range steps {
		if err := s.send(st.cmd); err != nil {
			return down("", fmt.Errorf("sending %s: %w", verb(st.cmd), err))
		}
		l, err := s.line()
		if err != nil {
			return down("", fmt.Errorf("%s: %w", verb(st.cmd), err))
		}
		if !st.ok(l) {
			return down(fmt.Sprintf("%s refused: %q", verb(st.cmd), truncate(l, 80)), nil)
		}
	}
	return up("")
}

// String says in words what the check does and expects.
func (c *POPChecker) String() string {
	name := "POP3"
	if c.tls != nil {
		name = "POP3S"
	}
	s := fmt.Sprintf("%s to %s expecting a +OK greeting", name, c.addr)
	if c.login != "" {
		s += fmt.Sprintf(" and a login as %q", c.login)
	}
	return s + fmt.Sprintf(" within %v", c.timeout)
}
