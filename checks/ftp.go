package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FTPChecker is ldirectord's negotiate check for service=ftp: it logs in
// (user login, default "anonymous"; password passwd, default empty — the
// manual's "ldirectord@host" default is not what the code sends), changes to
// "/", switches to binary, fetches request and is up when the file's content
// matches receive. Like ldirectord it judges only the content: a step that
// fails leaves the content empty, which only a pattern matching the empty
// string accepts.
//
// ldirectord fetches in active mode (PORT, the server connects back); this
// check uses passive mode (PASV, or EPSV over IPv6) and always connects to
// the real server's address, ignoring the one in the reply.
//
// With no receive ldirectord matches Perl's empty pattern, which reuses
// whatever pattern last matched in the process; here an empty receive means
// up when the login succeeded and, if request names a file rather than "/",
// the file was fetched.
type FTPChecker struct {
	addr          netip.AddrPort
	login, passwd string
	request       string
	receive       *receiveRE
	maxBody       int64
	timeout       time.Duration
}

// NewFTP builds the check for service=ftp.
func NewFTP(cfg Config) (*FTPChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("ftp check: no real server address")
	}
	c := &FTPChecker{addr: cfg.Addr, login: cfg.Login, passwd: cfg.Passwd, request: cfg.request(),
		maxBody: cfg.maxBody(), timeout: cfg.negotiateTimeout()}
	if c.login == "" {
		c.login = "anonymous"
	}
	if strings.ContainsAny(c.login+c.passwd+c.request, "\r\n") {
		return nil, errors.New("ftp check: login, passwd or request contains a line break")
	}
	if cfg.Receive != "" {
		re, err := compileReceive(cfg.Receive)
		if err != nil {
			return nil, fmt.Errorf("ftp check: %w", err)
		}
		c.receive = re
	}
	return c, nil
}

// Check implements Checker.
func (c *FTPChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, func(ctx context.Context) Result {
		content, loggedIn, err := c.fetch(ctx)
		if c.receive == nil {
			if err != nil && !(loggedIn && c.request == "/") {
				return down("", err)
			}
			return up("logged in")
		}
		if c.receive.match(content) {
			return up(fmt.Sprintf("%d bytes of %s match %v", len(content), c.request, c.receive))
		}
		return down(fmt.Sprintf("content of %s does not match %v", c.request, c.receive), err)
	})
}

// fetch runs the session and returns what it could fetch. loggedIn reports
// whether the login succeeded.
func (c *FTPChecker) fetch(ctx context.Context) (content []byte, loggedIn bool, err error) {
	s, err := dialSession(ctx, "tcp", c.addr.String(), nil)
	if err != nil {
		return nil, false, err
	}
	defer s.close()
	greet, err := readReply(s.br)
	if err != nil {
		return nil, false, fmt.Errorf("greeting: %w", err)
	}
	if greet.class() != 2 {
		return nil, false, fmt.Errorf("greeting %v", greet)
	}
	r, err := s.command("USER " + c.login)
	if err != nil {
		return nil, false, err
	}
	if r.class() == 3 {
		if r, err = s.command("PASS " + c.passwd); err != nil {
			return nil, false, err
		}
	}
	if r.class() != 2 {
		return nil, false, fmt.Errorf("login refused: %v", r)
	}
	for _, cmd := range []string{"CWD /", "TYPE I"} {
		if err := expect2xx(s, cmd); err != nil {
			return nil, true, err
		}
	}
	if c.request == "/" && c.receive == nil {
		_, _ = s.command("QUIT")
		return nil, true, nil
	}
	content, err = c.retrieve(ctx, s)
	if err == nil {
		_, _ = s.command("QUIT")
	}
	return content, true, err
}

func expect2xx(s *session, cmd string) error {
	r, err := s.command(cmd)
	if err != nil {
		return err
	}
	if r.class() != 2 {
		return fmt.Errorf("%s refused: %v", verb(cmd), r)
	}
	return nil
}

var (
	pasvReply = regexp.MustCompile(`(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)`)
	epsvReply = regexp.MustCompile(`\(([!-~])([!-~])([!-~])(\d+)([!-~])\)`)
)

// parsePassive extracts the data port from a 227 (PASV) or 229 (EPSV)
// reply's text; the address in a 227 reply is ignored.
func parsePassive(r reply) (uint16, error) {
	var portText string
	switch r.code {
	case 227:
		m := pasvReply.FindStringSubmatch(r.text)
		if m == nil {
			return 0, fmt.Errorf("unparsable PASV reply %v", r)
		}
		hi, err1 := strconv.ParseUint(m[5], 10, 8)
		lo, err2 := strconv.ParseUint(m[6], 10, 8)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("bad port in PASV reply %v", r)
		}
		p := hi<<8 | lo
		if p == 0 {
			return 0, fmt.Errorf("port 0 in PASV reply %v", r)
		}
		return uint16(p), nil
	case 229:
		m := epsvReply.FindStringSubmatch(r.text)
		if m == nil || m[1] != m[2] || m[2] != m[3] || m[3] != m[5] {
			return 0, fmt.Errorf("unparsable EPSV reply %v", r)
		}
		portText = m[4]
	default:
		return 0, fmt.Errorf("passive mode refused: %v", r)
	}
	p, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("bad port in EPSV reply %v", r)
	}
	return uint16(p), nil
}

func (c *FTPChecker) retrieve(ctx context.Context, s *session) ([]byte, error) {
	cmd := "PASV"
	if c.addr.Addr().Is6() {
		cmd = "EPSV"
	}
	r, err := s.command(cmd)
	if err != nil {
		return nil, err
	}
	port, err := parsePassive(r)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	data, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(c.addr.Addr(), port).String())
	if err != nil {
		return nil, fmt.Errorf("data connection: %w", err)
	}
	defer data.Close()
	stop := context.AfterFunc(ctx, func() { data.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		data.SetDeadline(dl)
	}
	r, err = s.command("RETR " + c.request)
	if err != nil {
		return nil, err
	}
	if r.class() != 1 {
		return nil, fmt.Errorf("RETR %s refused: %v", c.request, r)
	}
	content, err := io.ReadAll(io.LimitReader(data, c.maxBody))
	if err != nil {
		return content, fmt.Errorf("reading %s: %w", c.request, err)
	}
	data.Close()
	r, err = readReply(s.br)
	if err != nil {
		return content, fmt.Errorf("RETR: %w", err)
	}
	if r.class() != 2 {
		return content, fmt.Errorf("RETR %s failed: %v", c.request, r)
	}
	return content, nil
}

// String says in words what the check does and expects.
func (c *FTPChecker) String() string {
	s := fmt.Sprintf("FTP to %s logging in as %q", c.addr, c.login)
	if c.receive != nil {
		s += fmt.Sprintf(" expecting %s to match %v", c.request, c.receive)
	} else if c.request != "/" {
		s += fmt.Sprintf(" expecting to fetch %s", c.request)
	}
	return s + fmt.Sprintf(" within %v", c.timeout)
}
