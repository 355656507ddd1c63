package checks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// maxLine caps one protocol line; a server streaming an endless line is
// cut off instead of filling memory.
const maxLine = 64 << 10

// errLineTooLong is returned for a line longer than maxLine.
var errLineTooLong = errors.New("line too long")

// session is a dialled text-protocol connection whose every read and write
// is bounded by the context it was opened with.
type session struct {
	conn net.Conn
	br   *bufio.Reader
	stop func() bool
}

// dialSession connects to addr over network ("tcp" or "udp"), wrapping the
// connection in TLS when tlsCfg is not nil. The context's
// deadline becomes the connection's, and cancelling the context unblocks any
// read or write in progress.
func dialSession(ctx context.Context, network, addr string, tlsCfg *tls.Config) (*session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	if tlsCfg != nil {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			conn.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	return &session{conn: conn, br: bufio.NewReaderSize(conn, 4096), stop: stop}, nil
}

func (s *session) close() {
	s.stop()
	s.conn.Close()
}

// line reads one line, without its CRLF or LF.
func (s *session) line() (string, error) {
	return readLine(s.br)
}

// send writes one command line terminated by CRLF.
func (s *session) send(cmd string) error {
	_, err := io.WriteString(s.conn, cmd+"\r\n")
	return err
}

// readLine reads a line ended by LF (a CR before it is dropped), refusing
// lines longer than maxLine. A final line without LF is returned with
// io.ErrUnexpectedEOF.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxLine {
			return "", errLineTooLong
		}
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			return string(buf), io.ErrUnexpectedEOF
		}
		return "", err
	}
	buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte("\r"))
	return string(buf), nil
}

// reply is a numbered reply of SMTP, FTP or NNTP: its code and its lines'
// texts.
type reply struct {
	code int
	text string
}

func (r reply) String() string { return strconv.Itoa(r.code) + " " + r.text }

// class is the first digit of the code: 2 is success, 3 "more needed".
func (r reply) class() int { return r.code / 100 }

// parseReplyLine splits a line of a numbered reply as Perl's Net::Cmd does:
// three digits, then one optional character, which is "-" when more lines
// follow. ok is false when the line does not start with three digits.
func parseReplyLine(line string) (code int, more bool, text string, ok bool) {
	if len(line) < 3 {
		return 0, false, "", false
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", false
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	rest := line[3:]
	if rest != "" {
		more = rest[0] == '-'
		rest = rest[1:]
	}
	return code, more, rest, true
}

// maxReplyLines caps a multi-line reply.
const maxReplyLines = 1000

// readReply reads a possibly multi-line numbered reply. Like Net::Cmd, it
// ends at the first line without the "-" continuation mark and takes that
// line's code.
func readReply(br *bufio.Reader) (reply, error) {
	var r reply
	for i := 0; ; i++ {
		if i >= maxReplyLines {
			return r, errors.New("reply has too many lines")
		}
		line, err := readLine(br)
		if err != nil {
			return r, fmt.Errorf("reading reply: %w", err)
		}
		code, more, text, ok := parseReplyLine(line)
		if !ok {
			return r, fmt.Errorf("malformed reply line %q", truncate(line, 80))
		}
		r.code = code
		if r.text == "" {
			r.text = text
		}
		if !more {
			return r, nil
		}
	}
}

// command sends cmd and reads its reply.
func (s *session) command(cmd string) (reply, error) {
	if err := s.send(cmd); err != nil {
		return reply{}, fmt.Errorf("sending %s: %w", verb(cmd), err)
	}
	r, err := readReply(s.br)
	if err != nil {
		return r, fmt.Errorf("%s: %w", verb(cmd), err)
	}
	return r, nil
}

// verb is a command's first word, so that passwords never reach messages.
func verb(cmd string) string {
	if i := bytes.IndexByte([]byte(cmd), ' '); i >= 0 {
		return cmd[:i]
	}
	return cmd
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
