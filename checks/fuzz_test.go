package checks

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHTTPResponse parses a raw HTTP response and judges it as the HTTP
// check does: never a panic, and up exactly when the status is 2xx and the
// body matches receive (Perl's $ also before a final newline).
func FuzzHTTPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n"), "OK$")
	f.Add([]byte("HTTP/1.1 503 Service Unavailable\r\n\r\nOK"), "OK")
	f.Add([]byte("HTTP/1.0 204 No Content\r\n\r\n"), "")
	f.Add([]byte("HTTP/1.1 299 Odd\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"), "^hi$")
	f.Add([]byte("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n"), "")
	f.Fuzz(func(t *testing.T, raw []byte, receive string) {
		var re *receiveRE
		if receive != "" {
			var err error
			if re, err = compileReceive(receive); err != nil {
				return
			}
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxBody))
		resp.Body.Close()
		r := judgeHTTP(resp.StatusCode, resp.Status, body, re)
		is2xx := resp.StatusCode >= 200 && resp.StatusCode <= 299
		want := is2xx && (re == nil || re.re.Match(body) || (bytes.HasSuffix(body, []byte("\n")) && re.re.Match(body[:len(body)-1])))
		if r.Up != want {
			t.Fatalf("status %d body %q receive %q: up=%v want %v", resp.StatusCode, body, receive, r.Up, want)
		}
		if !is2xx && r.Up {
			t.Fatal("non-2xx judged up")
		}
	})
}

// FuzzReadReply reads SMTP/FTP/NNTP numbered replies (Net::Cmd's rules).
func FuzzReadReply(f *testing.F) {
	f.Add([]byte("220 ready\r\n"))
	f.Add([]byte("250-first\r\n250-second\r\n250 last\r\n"))
	f.Add([]byte("220-multi\n220 no CR\n"))
	f.Add([]byte("22 short\r\n"))
	f.Add([]byte("abc\r\n"))
	f.Add([]byte("530"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		r, err := readReply(br)
		if err != nil {
			return
		}
		if r.code < 0 || r.code > 999 {
			t.Fatalf("code %d", r.code)
		}
		// The reply's last line starts with its code and no "-" after it.
		text := strings.ReplaceAll(string(data), "\r\n", "\n")
		lines := strings.Split(text, "\n")
		found := false
		for _, l := range lines {
			c, more, _, ok := parseReplyLine(l)
			if ok && !more && c == r.code {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("reply %v not in %q", r, data)
		}
	})
}

// FuzzParsePassive parses FTP PASV and EPSV replies.
func FuzzParsePassive(f *testing.F) {
	f.Add(227, "Entering Passive Mode (127,0,0,1,195,80).")
	f.Add(227, "=127,0,0,1,0,21")
	f.Add(229, "Entering Extended Passive Mode (|||6446|)")
	f.Add(229, "(!!!0!)")
	f.Add(227, "(1,2,3,4,256,1)")
	f.Add(500, "no")
	f.Fuzz(func(t *testing.T, code int, text string) {
		p, err := parsePassive(reply{code: code, text: text})
		if err == nil && p == 0 {
			t.Fatalf("port 0 accepted from %d %q", code, text)
		}
		if err == nil && code != 227 && code != 229 {
			t.Fatalf("code %d accepted", code)
		}
	})
}

// FuzzMatchLines is the simpletcp reply matcher.
func FuzzMatchLines(f *testing.F) {
	f.Add([]byte("banner\nstatus: OK\n"), "^status: OK$")
	f.Add([]byte("no newline at end"), "end$")
	f.Add([]byte("\r\n\r\n"), "")
	f.Add([]byte(""), "")
	f.Add([]byte("a\nb\nc"), "^b")
	f.Fuzz(func(t *testing.T, data []byte, receive string) {
		var re *receiveRE
		if receive != "" {
			var err error
			if re, err = compileReceive(receive); err != nil {
				return
			}
		}
		r := matchLines(bufio.NewReader(bytes.NewReader(data)), re)
		// Reference: split into lines that keep their "\n".
		want := false
		rest := data
		for len(rest) > 0 && len(rest) <= maxLine {
			i := bytes.IndexByte(rest, '\n')
			line := rest
			if i >= 0 {
				line = rest[:i+1]
			}
			rest = rest[len(line):]
			if re == nil || re.match(line) {
				want = true
				break
			}
		}
		if len(data) <= maxLine && r.Up != want {
			t.Fatalf("%q ~ %q: up=%v want %v", data, receive, r.Up, want)
		}
	})
}

// FuzzIMAPTagged reads IMAP responses up to LOGIN's tagged reply.
func FuzzIMAPTagged(f *testing.F) {
	f.Add([]byte("0 OK done\r\n"))
	f.Add([]byte("* CAPABILITY x\r\n0 NO bad\r\n"))
	f.Add([]byte("* LIST {5}\r\n0 OK\r\n0 BAD\r\n"))
	f.Add([]byte("* x {99999999999999999999}\r\n"))
	f.Add([]byte("1 OK\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &session{br: bufio.NewReader(bytes.NewReader(data))}
		ok, line, err := imapTagged(s)
		if ok && (err != nil || !regexp.MustCompile(`(?i)^0\s+OK`).MatchString(line)) {
			t.Fatalf("ok with line %q err %v", line, err)
		}
	})
}

// FuzzGreetings judges first lines: POP3, IMAP, NNTP, SIP.
func FuzzGreetings(f *testing.F) {
	for _, s := range []string{"+OK ready", "+ok", "-ERR", "* OK IMAP4", "*\tpreauth", "* BYE", "200 news", "SIP/2.0 200 OK", "", "+O"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if got, want := popOK(line), len(line) >= 3 && strings.EqualFold(line[:3], "+OK"); got != want {
			t.Fatalf("popOK(%q) = %v", line, got)
		}
		imapGreeting(line)
		if r := judgeNNTP([]byte(line), nil); r.Up != strings.HasPrefix(line, "2") {
			t.Fatalf("judgeNNTP(%q) = %v", line, r)
		}
		if sipStatusOK(line) != strings.HasPrefix(line, "SIP/2.0 200 OK") {
			t.Fatalf("sipStatusOK(%q)", line)
		}
	})
}

// FuzzRADIUSVerify checks answers to an Access-Request: only a packet
// signed with the secret is accepted, and its code is returned.
func FuzzRADIUSVerify(f *testing.F) {
	var auth [16]byte
	copy(auth[:], "0123456789abcdef")
	sign := func(p []byte) []byte {
		h := md5.New()
		h.Write(p[:4])
		h.Write(auth[:])
		h.Write(p[20:])
		h.Write([]byte("s3cret"))
		copy(p[4:20], h.Sum(nil))
		return p
	}
	f.Add(sign(append([]byte{2, 7, 0, 20}, make([]byte, 16)...)))
	f.Add(sign(append([]byte{3, 7, 0, 24}, append(make([]byte, 16), 18, 4, 'n', 'o')...)))
	f.Add(append([]byte{2, 7, 0, 20}, make([]byte, 16)...))
	f.Add([]byte{2, 7, 0, 255})
	f.Fuzz(func(t *testing.T, p []byte) {
		code, err := radiusVerify(p, auth, []byte("s3cret"))
		if err != nil {
			return
		}
		if code != p[0] {
			t.Fatalf("code %d from packet %x", code, p)
		}
		// Accepted packets carry the right Response Authenticator.
		n := int(binary.BigEndian.Uint16(p[2:4]))
		q := sign(append([]byte(nil), p[:n]...))
		if !bytes.Equal(q[4:20], p[4:20]) {
			t.Fatalf("accepted a forged answer %x", p)
		}
	})
}

// FuzzJudgeDNS unpacks a DNS message and judges its answers.
func FuzzJudgeDNS(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "www.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{192, 0, 2, 1}})
	m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: "1.2.0.192.in-addr.arpa.", Rrtype: dns.TypePTR, Class: dns.ClassINET}, Ptr: "www.example.org."})
	packed, err := m.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(packed, `192\.0\.2\.1`)
	f.Add(packed, `^www\.example\.org$`)
	f.Add(packed, "")
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0}, ".")
	f.Fuzz(func(t *testing.T, raw []byte, receive string) {
		var re *receiveRE
		if receive != "" {
			var err error
			if re, err = compileReceive(receive); err != nil {
				return
			}
		}
		msg := new(dns.Msg)
		if msg.Unpack(raw) != nil {
			return
		}
		r := judgeDNS(msg, re)
		if r.Up && re == nil {
			t.Fatal("up with an empty receive")
		}
		if r.Up {
			any := false
			for _, rr := range msg.Answer {
				switch rr.(type) {
				case *dns.A, *dns.PTR:
					any = true
				}
			}
			if !any {
				t.Fatal("up without an A or PTR answer")
			}
		}
	})
}
