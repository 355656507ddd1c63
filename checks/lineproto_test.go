package checks

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// textPeer is the server side of a scripted text-protocol conversation.
type textPeer struct {
	c  net.Conn
	br *bufio.Reader
}

func (p *textPeer) say(lines ...string) {
	for _, l := range lines {
		io.WriteString(p.c, l+"\r\n")
	}
}

func (p *textPeer) hear() string {
	l, err := p.br.ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimRight(l, "\r\n")
}

// recorder keeps the lines a scripted server heard.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) add(l string) string {
	r.mu.Lock()
	r.lines = append(r.lines, l)
	r.mu.Unlock()
	return l
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func textServer(t *testing.T, script func(p *textPeer)) netip.AddrPort {
	return tcpServer(t, func(c net.Conn) { script(&textPeer{c: c, br: bufio.NewReader(c)}) })
}

func TestSMTP(t *testing.T) {
	noLeaks(t)
	rec := &recorder{}
	tests := []struct {
		name   string
		script func(p *textPeer)
		want   bool
	}{
		{"ESMTP", func(p *textPeer) {
			p.say("220-mail.example ESMTP", "220 ready")
			if rec.add(p.hear()) == "EHLO localhost.localdomain" {
				p.say("250-mail.example", "250 PIPELINING")
			}
			rec.add(p.hear())
		}, true},
		{"EHLO refused with 5xx, HELO accepted", func(p *textPeer) {
			p.say("220 old smtp")
			p.hear()
			p.say("502 what?")
			if p.hear() == "HELO localhost.localdomain" {
				p.say("250 hello")
			}
		}, true},
		{"EHLO refused with 4xx", func(p *textPeer) {
			p.say("220 ready")
			p.hear()
			p.say("421 busy")
		}, false},
		{"HELO refused too", func(p *textPeer) {
			p.say("220 ready")
			p.hear()
			p.say("500 no")
			p.hear()
			p.say("501 no")
		}, false},
		{"greeting 554", func(p *textPeer) { p.say("554 go away") }, false},
		{"garbage greeting", func(p *textPeer) { p.say("hello there") }, false},
		{"closes at once", func(p *textPeer) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := textServer(t, tt.script)
			expect(t, mustNew(t, Config{Service: "smtp", Addr: addr, NegotiateTimeout: 2 * time.Second}), tt.want)
		})
	}
	if got := strings.Join(rec.all(), "|"); got != "EHLO localhost.localdomain|QUIT" {
		t.Errorf("ESMTP conversation: %q", got)
	}
}

func TestPOP(t *testing.T) {
	server := func(greet string, users map[string]string) netip.AddrPort {
		return textServer(t, func(p *textPeer) {
			p.say(greet)
			var user string
			for {
				l := p.hear()
				switch {
				case l == "":
					return
				case strings.HasPrefix(l, "USER "):
					user = l[5:]
					p.say("+OK")
				case strings.HasPrefix(l, "PASS "):
					if pw, ok := users[user]; ok && pw == l[5:] {
						p.say("+OK logged in")
					} else {
						p.say("-ERR bad login")
					}
				case l == "STAT":
					p.say("+OK 2 320")
				case l == "QUIT":
					p.say("+OK bye")
					return
				default:
					p.say("-ERR")
				}
			}
		})
	}
	good := server("+OK POP3 ready <1.2@host>", map[string]string{"alice": "s3cret"})
	expect(t, mustNew(t, Config{Service: "pop", Addr: good}), true)
	expect(t, mustNew(t, Config{Service: "pop", Addr: good, Login: "alice", Passwd: "s3cret"}), true)
	expect(t, mustNew(t, Config{Service: "pop", Addr: good, Login: "alice", Passwd: "wrong"}), false)
	bad := server("-ERR maintenance", nil)
	expect(t, mustNew(t, Config{Service: "pop", Addr: bad}), false)
	// ldirectord's POP check without login is up even here; this one is not.
	expect(t, mustNew(t, Config{Service: "pop", Addr: closedPort(t)}), false)
	expect(t, mustNew(t, Config{Service: "pop", Addr: hungServer(t), NegotiateTimeout: 200 * time.Millisecond}), false)
}

func TestIMAP(t *testing.T) {
	rec := &recorder{}
	server := func(greet string) netip.AddrPort {
		return textServer(t, func(p *textPeer) {
			p.say(greet)
			for {
				l := p.hear()
				if l == "" {
					return
				}
				rec.add(l)
				tag, cmd, _ := strings.Cut(l, " ")
				switch {
				case strings.HasPrefix(cmd, `LOGIN bob "pa\"ss"`):
					p.say(`* CAPABILITY IMAP4rev1 {5}`)
					io.WriteString(p.c, "0 OK\r\n") // a literal that looks like the tagged reply
					p.say("* OK more", tag+" OK LOGIN done")
				case strings.HasPrefix(cmd, "LOGIN"):
					p.say(tag + " NO [AUTHENTICATIONFAILED] nope")
				case cmd == "LOGOUT":
					p.say("* BYE", tag+" OK")
					return
				default:
					p.say(tag + " BAD")
				}
			}
		})
	}
	good := server("* OK IMAP4rev1 ready")
	expect(t, mustNew(t, Config{Service: "imap", Addr: good}), true)
	expect(t, mustNew(t, Config{Service: "imap", Addr: good, Login: "bob", Passwd: `pa"ss`}), true)
	expect(t, mustNew(t, Config{Service: "imap", Addr: good, Login: "bob", Passwd: "x"}), false)
	expect(t, mustNew(t, Config{Service: "imap", Addr: server("* PREAUTH welcome")}), true)
	expect(t, mustNew(t, Config{Service: "imap", Addr: server("* BYE overloaded")}), false)
	expect(t, mustNew(t, Config{Service: "imap", Addr: server("* NO go away")}), false)
	expect(t, mustNew(t, Config{Service: "imap", Addr: hungServer(t), NegotiateTimeout: 200 * time.Millisecond}), false)
	if got := rec.all(); len(got) == 0 || got[0] != "1 LOGOUT" {
		t.Errorf("first conversation: %q; want LOGOUT", got)
	}
}

func TestNNTP(t *testing.T) {
	expect(t, mustNew(t, Config{Service: "nntp", Addr: textServer(t, func(p *textPeer) { p.say("200 news ready") })}), true)
	expect(t, mustNew(t, Config{Service: "nntp", Addr: textServer(t, func(p *textPeer) { p.say("400 no news") })}), false)
	expect(t, mustNew(t, Config{Service: "nntp", Addr: textServer(t, func(p *textPeer) {})}), false)
	expect(t, mustNew(t, Config{Service: "nntp", Addr: hungServer(t), NegotiateTimeout: 200 * time.Millisecond}), false)
}

func TestSimpleTCP(t *testing.T) {
	rec := &recorder{}
	addr := tcpServer(t, func(c net.Conn) {
		req, _ := io.ReadAll(c) // the checker shuts down its side
		rec.add(string(req))
		io.WriteString(c, "banner\nstatus: "+strings.ToUpper(strings.TrimSpace(string(req)))+"\nlast line without newline")
	})
	tests := []struct {
		request, receive string
		want             bool
	}{
		{`/ping\n`, "^status: PING$", true},
		{`ping\n`, "PONG", false},
		{`ping`, "without newline$", true},
		{`ping`, "", true}, // empty receive: any line
	}
	for _, tt := range tests {
		expect(t, mustNew(t, Config{Service: "simpletcp", Addr: addr, Request: tt.request, Receive: tt.receive}), tt.want)
	}
	if got := rec.all(); got[0] != "ping\n" {
		t.Errorf("server got %q; want the leading / stripped and \\n turned into a newline", got[0])
	}
	expect(t, mustNew(t, Config{Service: "simpletcp", Addr: textServer(t, func(p *textPeer) {})}), false)
	expect(t, mustNew(t, Config{Service: "simpletcp", Addr: hungServer(t), Receive: "x", NegotiateTimeout: 200 * time.Millisecond}), false)
}

func TestSIP(t *testing.T) {
	reply := func(status string) func(req string) string {
		return func(req string) string {
			return status + "\r\nVia: x\r\nCSeq: 63104 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		}
	}
	tcp := func(h func(string) string) netip.AddrPort {
		return tcpServer(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			var req strings.Builder
			for {
				l, err := br.ReadString('\n')
				req.WriteString(l)
				if err != nil || l == "\r\n" {
					break
				}
			}
			io.WriteString(c, h(req.String()))
			io.Copy(io.Discard, c)
		})
	}
	expect(t, mustNew(t, Config{Service: "sip", Addr: tcp(reply("SIP/2.0 200 OK"))}), true)
	expect(t, mustNew(t, Config{Service: "sip", Addr: tcp(reply("SIP/2.0 404 Not Found"))}), false)
	// The header must end: a server that stops mid-header fails by timeout.
	expect(t, mustNew(t, Config{Service: "sip", NegotiateTimeout: 200 * time.Millisecond,
		Addr: tcp(func(string) string { return "SIP/2.0 200 OK\r\nVia: x\r\n" })}), false)

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 2048)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		got <- string(buf[:n])
		pc.WriteTo([]byte(reply("SIP/2.0 200 OK")("")), from)
	}()
	c := mustNew(t, Config{Service: "sip", Protocol: "udp", Login: "ldirectord@director", Addr: netip.MustParseAddrPort(pc.LocalAddr().String())})
	expect(t, c, true)
	req := <-got
	for _, want := range []string{"OPTIONS sip:ldirectord@director SIP/2.0\r\n", "\r\nVia: SIP/2.0/UDP 127.0.0.1:", "\r\nCSeq: 63104 OPTIONS\r\n", "\r\nContent-Length: 0\r\n\r\n"} {
		if !strings.Contains(req, want) {
			t.Errorf("request lacks %q:\n%s", want, req)
		}
	}
}

// ftpServer is a minimal FTP server with passive (PASV) and active (PORT)
// data connections, serving files to the users given.
func ftpServer(t *testing.T, users, files map[string]string, rec *recorder) netip.AddrPort {
	return textServer(t, func(p *textPeer) {
		p.say("220 ftp ready")
		var user string
		var loggedIn bool
		var pasv net.Listener
		var port string
		defer func() {
			if pasv != nil {
				pasv.Close()
			}
		}()
		for {
			l := p.hear()
			if l == "" {
				return
			}
			rec.add(l)
			cmd, arg, _ := strings.Cut(l, " ")
			switch {
			case cmd == "USER":
				user = arg
				p.say("331 password please")
			case cmd == "PASS":
				if pw, ok := users[user]; ok && pw == arg {
					loggedIn = true
					p.say("230 welcome")
				} else {
					p.say("530 no")
				}
			case !loggedIn:
				p.say("530 log in first")
			case cmd == "CWD", cmd == "TYPE":
				p.say("250 ok")
			case cmd == "PASV":
				var err error
				if pasv, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					p.say("425 no")
					continue
				}
				port = ""
				pp := pasv.Addr().(*net.TCPAddr).Port
				// An address that must be ignored.
				p.say(fmt.Sprintf("227 Entering Passive Mode (203,0,113,9,%d,%d).", pp>>8, pp&255))
			case cmd == "PORT":
				f := strings.Split(arg, ",")
				if len(f) != 6 {
					p.say("501 bad PORT")
					continue
				}
				var hi, lo int
				fmt.Sscan(f[4], &hi)
				fmt.Sscan(f[5], &lo)
				port = fmt.Sprintf("%s:%d", strings.Join(f[:4], "."), hi<<8|lo)
				p.say("200 PORT ok")
			case cmd == "RETR":
				body, ok := files[arg]
				if !ok || (pasv == nil && port == "") {
					p.say("550 no such file")
					continue
				}
				var dc net.Conn
				var err error
				if port != "" {
					p.say("150 connecting")
					dc, err = net.Dial("tcp", port)
				} else {
					dc, err = pasv.Accept()
					p.say("150 sending")
				}
				if err != nil {
					p.say("425 no data connection")
					continue
				}
				io.WriteString(dc, body)
				dc.Close()
				p.say("226 done")
			case cmd == "QUIT":
				p.say("221 bye")
				return
			default:
				p.say("502 ?")
			}
		}
	})
}

func TestFTP(t *testing.T) {
	noLeaks(t)
	files := map[string]string{"/health.txt": "service OK\n"}
	rec := &recorder{}
	server := func(users map[string]string) netip.AddrPort { return ftpServer(t, users, files, rec) }
	addr := server(map[string]string{"anonymous": "", "carol": "pw"})
	tests := []struct {
		name                            string
		login, passwd, request, receive string
		want                            bool
	}{
		{"anonymous fetch matches", "", "", "/health.txt", "OK$", true},
		{"request without leading slash", "", "", "health.txt", "service", true},
		{"content does not match", "", "", "/health.txt", "FAIL", false},
		{"missing file", "", "", "/nope", "OK", false},
		{"missing file, pattern matching empty", "", "", "/nope", "^$", true},
		{"user login", "carol", "pw", "/health.txt", "OK", true},
		{"bad password", "carol", "nope", "/health.txt", "OK", false},
		{"no receive: login is enough", "carol", "pw", "", "", true},
		{"no receive: bad login", "carol", "nope", "", "", false},
		{"no receive, file named: it must be fetched", "", "", "/nope", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, Config{Service: "ftp", Addr: addr, Login: tt.login, Passwd: tt.passwd, Request: tt.request, Receive: tt.receive, NegotiateTimeout: 3 * time.Second})
			expect(t, c, tt.want)
		})
	}
	if got := strings.Join(rec.all()[:7], "|"); got != "USER anonymous|PASS |CWD /|TYPE I|PASV|RETR /health.txt|QUIT" {
		t.Errorf("first session: %s", got)
	}
	expect(t, mustNew(t, Config{Service: "ftp", Addr: hungServer(t), Receive: "x", NegotiateTimeout: 200 * time.Millisecond}), false)
}

func TestPOPSAndIMAPS(t *testing.T) {
	cert := selfSigned(t, "mail.example.org")
	tlsServer := func(greet string) netip.AddrPort {
		return tcpServer(t, func(c net.Conn) {
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			p := &textPeer{c: tc, br: bufio.NewReader(tc)}
			p.say(greet)
			for {
				l := p.hear()
				if l == "" {
					return
				}
				if tag, _, ok := strings.Cut(l, " "); ok && strings.HasSuffix(l, "LOGOUT") {
					p.say(tag + " OK")
					return
				}
				p.say("+OK")
			}
		})
	}
	pops := tlsServer("+OK pops")
	imaps := tlsServer("* OK imaps")
	expect(t, mustNew(t, Config{Service: "pops", Addr: pops, InsecureTLS: true}), true)
	expect(t, mustNew(t, Config{Service: "imaps", Addr: imaps, InsecureTLS: true}), true)
	expect(t, mustNew(t, Config{Service: "pops", Addr: pops}), false)
	expect(t, mustNew(t, Config{Service: "imaps", Addr: imaps}), false)
	// Plain text to a TLS port.
	expect(t, mustNew(t, Config{Service: "pop", Addr: pops, NegotiateTimeout: 300 * time.Millisecond}), false)
}
