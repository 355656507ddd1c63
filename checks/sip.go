package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// SIPChecker is ldirectord's negotiate check for service=sip: it sends an
// OPTIONS request for sip:login (over UDP or TCP, following the virtual
// service's protocol) and is up when the first line of the reply starts with
// "SIP/2.0 200 OK" and the reply's header ends (an empty line, or the
// connection closing) within negotiatetimeout. ldirectord's default login is
// empty, giving the request URI "sip:", and so is this one's.
type SIPChecker struct {
	network string
	addr    string
	login   string
	timeout time.Duration
}

// NewSIP builds the check for service=sip.
func NewSIP(cfg Config) (*SIPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("sip check: no real server address")
	}
	if strings.ContainsAny(cfg.Login, "\r\n") {
		return nil, errors.New("sip check: login contains a line break")
	}
	c := &SIPChecker{network: "tcp", addr: cfg.Addr.String(), login: cfg.Login, timeout: cfg.negotiateTimeout()}
	if cfg.protocol() == "udp" {
		c.network = "udp"
	}
	return c, nil
}

// Check implements Checker.
func (c *SIPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

// sipOptions is ldirectord's OPTIONS request, byte for byte but for the
// random Call-ID.
func sipOptions(login string, local net.Addr, callID string) string {
	return "OPTIONS sip:" + login + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local.String() + ";branch=z9hG4bKhjhs8ass877\r\n" +
		"Max-Forwards: 70\r\n" +
		"To: <sip:" + login + ">\r\n" +
		"From: <sip:" + login + ">;tag=1928301774\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 63104 OPTIONS\r\n" +
		"Contact: <sip:" + login + ">\r\n" +
		"Accept: application/sdp\r\n" +
		"Content-Length: 0\r\n\r\n"
}

func (c *SIPChecker) check(ctx context.Context) Result {
	s, err := dialSession(ctx, c.network, c.addr, nil)
	if err != nil {
		return down("", err)
	}
	defer s.close()
	callID := fmt.Sprintf("%016x", rand.Uint64())
	if _, err := io.WriteString(s.conn, sipOptions(c.login, s.conn.LocalAddr(), callID)); err != nil {
		return down("", fmt.Errorf("sending OPTIONS: %w", err))
	}
	status, err := s.line()
	if err != nil {
		return down("", fmt.Errorf("reading status line: %w", err))
	}
	if !sipStatusOK(status) {
		return down(fmt.Sprintf("status %q", truncate(status, 80)), nil)
	}
	for i := 0; ; i++ {
		if i > maxReplyLines {
			return down(status, errors.New("header too long"))
		}
		l, err := s.line()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return down(status, fmt.Errorf("reading header: %w", err))
		}
		if l == "" {
			break
		}
	}
	return up(status)
}

// sipStatusOK is ldirectord's test of the status line.
func sipStatusOK(line string) bool { return strings.HasPrefix(line, "SIP/2.0 200 OK") }

// String says in words what the check does and expects.
func (c *SIPChecker) String() string {
	return fmt.Sprintf("SIP OPTIONS sip:%s over %s to %s expecting SIP/2.0 200 OK within %v", c.login, c.network, c.addr, c.timeout)
}
