package checks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// smtpHello is the name Net::SMTP greets with when given none.
const smtpHello = "localhost.localdomain"

// SMTPChecker is ldirectord's negotiate check for service=smtp and
// submission (Net::SMTP->new, then quit): up when the server's greeting is
// 2xx and it accepts "EHLO localhost.localdomain" with 2xx, or, after a 5xx
// to EHLO, accepts HELO with 2xx. It then sends QUIT, whose reply does not
// matter. Net::SMTP bounds each read by the timeout; here the whole exchange
// is bounded by negotiatetimeout.
type SMTPChecker struct {
	addr    string
	timeout time.Duration
}

// NewSMTP builds the check for service=smtp or submission.
func NewSMTP(cfg Config) (*SMTPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("smtp check: no real server address")
	}
	return &SMTPChecker{addr: cfg.Addr.String(), timeout: cfg.negotiateTimeout()}, nil
}

// Check implements Checker.
func (c *SMTPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *SMTPChecker) check(ctx context.Context) Result {
	s, err := dialSession(ctx, "tcp", c.addr, nil)
	if err != nil {
		return down("", err)
	}
	defer s.close()
	greet, err := readReply(s.br)
	if err != nil {
		return down("", fmt.Errorf("greeting: %w", err))
	}
	if greet.class() != 2 {
		return down("greeting "+greet.String(), nil)
	}
	r, err := s.command("EHLO " + smtpHello)
	if err != nil {
		return down("", err)
	}
	if r.class() == 5 {
		r, err = s.command("HELO " + smtpHello)
		if err != nil {
			return down("", err)
		}
	}
	if r.class() != 2 {
		return down("hello refused: "+r.String(), nil)
	}
	// Like Net::SMTP's quit, wait for the reply, but ldirectord ignores it.
	_, _ = s.command("QUIT")
	return up(greet.String())
}

// String says in words what the check does and expects.
func (c *SMTPChecker) String() string {
	return fmt.Sprintf("SMTP to %s expecting a 2xx greeting and a 2xx reply to EHLO (or HELO) within %v", c.addr, c.timeout)
}
