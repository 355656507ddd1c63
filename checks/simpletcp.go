package checks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// SimpleTCPChecker is ldirectord's negotiate check for service=simpletcp: it
// connects (over the virtual service's protocol), sends request without its
// leading "/" and with each `\n` replaced by a newline, shuts down its
// sending side, and reads the reply line by line; it is up as soon as a line
// matches receive, down when the server closes first.
//
// With no receive configured ldirectord matches Perl's empty pattern, which
// reuses whatever pattern last matched in the process; here an empty receive
// matches any line, so the check is up when the server answers anything.
type SimpleTCPChecker struct {
	network string
	addr    string
	request string
	receive *receiveRE
	timeout time.Duration
}

// NewSimpleTCP builds the check for service=simpletcp.
func NewSimpleTCP(cfg Config) (*SimpleTCPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("simpletcp check: no real server address")
	}
	c := &SimpleTCPChecker{
		network: "tcp",
		addr:    cfg.Addr.String(),
		request: strings.ReplaceAll(strings.TrimPrefix(cfg.request(), "/"), `\n`, "\n"),
		timeout: cfg.negotiateTimeout(),
	}
	if cfg.protocol() == "udp" {
		c.network = "udp"
	}
	if cfg.Receive != "" {
		re, err := compileReceive(cfg.Receive)
		if err != nil {
			return nil, fmt.Errorf("simpletcp check: %w", err)
		}
		c.receive = re
	}
	return c, nil
}

// Check implements Checker.
func (c *SimpleTCPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *SimpleTCPChecker) check(ctx context.Context) Result {
	s, err := dialSession(ctx, c.network, c.addr, nil)
	if err != nil {
		return down("", err)
	}
	defer s.close()
	if _, err := io.WriteString(s.conn, c.request); err != nil {
		return down("", fmt.Errorf("sending request: %w", err))
	}
	if tc, ok := s.conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	return matchLines(s.br, c.receive)
}

// matchLines reads lines (each with its newline, as Perl's <$sock> gives
// them) until one matches receive; a nil receive matches any line.
func matchLines(br *bufio.Reader, receive *receiveRE) Result {
	for {
		line, err := readRawLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return down("no reply line matched", err)
		}
		if line != "" && (receive == nil || receive.match([]byte(line))) {
			return up(fmt.Sprintf("reply line %q", truncate(strings.TrimRight(line, "\r\n"), 80)))
		}
		if err != nil {
			return down("no reply line matches", nil)
		}
	}
}

// readRawLine returns the next line including its "\n"; the last line of a
// reply may lack it, in which case io.EOF comes with it.
func readRawLine(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		frag, err := br.ReadSlice('\n')
		b.Write(frag)
		if b.Len() > maxLine {
			return "", errLineTooLong
		}
		if err == nil {
			return b.String(), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return b.String(), err
		}
	}
}

// String says in words what the check does and expects.
func (c *SimpleTCPChecker) String() string {
	recv := "any reply line"
	if c.receive != nil {
		recv = "a reply line ~ " + c.receive.String()
	}
	return fmt.Sprintf("%s to %s sending %q expecting %s within %v", strings.ToUpper(c.network), c.addr, c.request, recv, c.timeout)
}
